package ca_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// FuzzSignCSR feeds arbitrary bytes to SignCSR as a CSR. It must never
// panic, must refuse with ErrInvalidCSR or ErrUnsupportedKey, and must issue
// a certificate only for a well-formed CSR whose signature verifies, for
// that CSR's key and the requested service alone. Seeds are in
// testdata/fuzz/FuzzSignCSR (valid CSRs of each key type, weak keys, bad
// signatures, truncations, a certificate, requested identities).
func FuzzSignCSR(f *testing.F) {
	c := newCA(f, ca.Config{})
	bundle := c.Bundle()
	want := serviceID(f, "orders")
	f.Add(csr(f, p256(f), nil))
	f.Add(csr(f, ed(f), nil))

	f.Fuzz(func(t *testing.T, der []byte) {
		svid, err := c.SignCSR(der, "orders", 0)

		// An independent judgment of the input, with the standard library.
		parsed, perr := x509.ParseCertificateRequest(der)
		valid := perr == nil && len(der) <= ca.MaxCSRSize && parsed.CheckSignature() == nil

		if err != nil {
			if svid != nil {
				t.Fatalf("a certificate with the error %v", err)
			}
			if !errors.Is(err, ca.ErrInvalidCSR) && !errors.Is(err, ca.ErrUnsupportedKey) {
				t.Fatalf("error %v wraps neither ErrInvalidCSR nor ErrUnsupportedKey", err)
			}
			if valid && preferredKey(parsed.PublicKey) {
				t.Fatalf("a valid CSR for a %T key was refused: %v", parsed.PublicKey, err)
			}
			return
		}
		if !valid {
			t.Fatalf("issued a certificate for an invalid CSR (parse: %v)", perr)
		}
		if len(svid) != 1 {
			t.Fatalf("chain of %d certificates", len(svid))
		}
		leaf := svid[0]
		if !leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(parsed.PublicKey) {
			t.Fatal("the SVID does not certify the CSR's key")
		}
		id, _, err := x509svid.Verify(svid, bundle)
		if err != nil {
			t.Fatalf("issued SVID does not verify: %v", err)
		}
		if id != want || len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 || leaf.IsCA {
			t.Fatalf("SVID says ID %s, DNS %v, IP %v, email %v, CA %v; want %s alone", id, leaf.DNSNames, leaf.IPAddresses, leaf.EmailAddresses, leaf.IsCA, want)
		}
	})
}

// preferredKey reports whether the CA must certify a key: P-256 and
// Ed25519, the keys Rampart's agents generate.
func preferredKey(pub crypto.PublicKey) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return k.Curve == elliptic.P256()
	case ed25519.PublicKey:
		return true
	}
	return false
}

// TestFuzzSeeds checks that the committed seed corpus is what it claims:
// go test fuzz v1 files, valid CSRs that SignCSR accepts and malformed or
// weak ones it refuses, so that fuzzing starts from both sides of the line.
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzSignCSR")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 10 {
		t.Fatalf("%d seeds, want at least 10", len(entries))
	}
	c := newCA(t, ca.Config{})
	wantIssued := map[string]bool{"p256": true, "ed25519": true, "ed25519-empty-subject": true, "p384": true, "rsa2048": true, "requested-ids": true}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		header, value, ok := strings.Cut(strings.TrimSpace(string(data)), "\n")
		lit, ok2 := strings.CutPrefix(value, "[]byte(")
		lit, ok3 := strings.CutSuffix(lit, ")")
		if !ok || !ok2 || !ok3 || header != "go test fuzz v1" {
			t.Errorf("%s: not a go test fuzz v1 file with one []byte value", e.Name())
			continue
		}
		s, err := strconv.Unquote(lit)
		if err != nil {
			t.Errorf("%s: %v", e.Name(), err)
			continue
		}
		_, err = c.SignCSR([]byte(s), "orders", 0)
		if issued := err == nil; issued != wantIssued[e.Name()] {
			t.Errorf("seed %s: issued %v (err %v), want %v", e.Name(), issued, err, wantIssued[e.Name()])
		}
	}
}
