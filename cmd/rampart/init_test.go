package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/control"
)

// An organisation brings its own root: init imports it and the control
// plane issues SVIDs under it.
func TestInitImportsAnExistingCA(t *testing.T) {
	own := filepath.Join(t.TempDir(), "own")
	root, err := ca.Generate(spiffeid.RequireTrustDomainFromString("corp.example"), ca.Config{CommonName: "Corp Root"})
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Save(own); err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(own, ca.CertFile), filepath.Join(own, ca.KeyFile)
	dir := filepath.Join(t.TempDir(), "data")
	var out, errOut bytes.Buffer
	kekFile := filepath.Join(t.TempDir(), "ca.kek")
	if err := run(t.Context(), []string{"init", "-data", dir, "-trust-domain", "corp.example", "-ca-cert", cert, "-ca-key", key, "-ca-kek-file", kekFile}, &out, &errOut); err != nil {
		t.Fatalf("init: %v (%s)", err, errOut.String())
	}
	want, _ := os.ReadFile(cert)
	got, _ := os.ReadFile(filepath.Join(dir, control.CADir, ca.CertFile))
	if !bytes.Equal(got, want) {
		t.Fatal("the data directory's root is not the imported one")
	}
	kek, err := ca.ReadKEKFile(kekFile)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := ca.LoadSealed(filepath.Join(dir, control.CADir), kek)
	if err != nil || loaded.Certificate().Subject.CommonName != "Corp Root" {
		t.Fatalf("load: %v", err)
	}

	// Refusals: a key that is not the certificate's, another trust
	// domain, half of the pair.
	other, _ := ca.Generate(spiffeid.RequireTrustDomainFromString("corp.example"), ca.Config{})
	otherDir := filepath.Join(t.TempDir(), "other")
	other.Save(otherDir)
	for name, args := range map[string][]string{
		"mismatched key":       {"-trust-domain", "corp.example", "-ca-cert", cert, "-ca-key", filepath.Join(otherDir, ca.KeyFile)},
		"another trust domain": {"-trust-domain", "other.example", "-ca-cert", cert, "-ca-key", key},
	} {
		d := filepath.Join(t.TempDir(), "data")
		err := run(t.Context(), append([]string{"init", "-data", d}, args...), &out, &errOut)
		if err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want a one-line error", name, err)
		}
		if _, statErr := os.Stat(d); !errors.Is(statErr, os.ErrNotExist) {
			t.Errorf("%s: a failed init left %s behind", name, d)
		}
	}
	var ue usageError
	if err := run(t.Context(), []string{"init", "-data", filepath.Join(t.TempDir(), "x"), "-ca-cert", cert}, &out, &errOut); !errors.As(err, &ue) {
		t.Errorf("-ca-cert without -ca-key: %v, want a usage error", err)
	}
}
