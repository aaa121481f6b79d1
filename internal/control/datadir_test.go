package control_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/control"
)

func TestADataDirectoryIsMadeOnceAndOpens(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	token, err := control.Init(t.Context(), dir, "example.org")
	if err != nil {
		t.Fatal(err)
	}
	data, err := control.OpenData(t.Context(), control.OpenConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer data.Store.Close()
	if !bytes.Equal(data.AdminTokenHash, control.HashAdminToken(token)) {
		t.Error("stored hash is not the admin token's")
	}
	if td := data.CA.TrustDomain().Name(); td != "example.org" {
		t.Errorf("trust domain %q", td)
	}
	if b, err := data.Store.TrustBundle(t.Context()); err != nil || !bytes.Equal(b.Data, data.CA.BundlePEM()) {
		t.Errorf("stored trust bundle: %v", err)
	}
	if _, err := control.Init(t.Context(), dir, "example.org"); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("second Init: %v", err)
	}
}

func TestAFailedInitLeavesNothingBehind(t *testing.T) {
	empty := t.TempDir()
	missing := filepath.Join(t.TempDir(), "new")
	for _, dir := range []string{empty, missing} {
		if _, err := control.Init(t.Context(), dir, "Not A Trust Domain!"); err == nil {
			t.Fatalf("Init with an invalid trust domain succeeded")
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 0 {
			t.Errorf("%s holds %d entries after a failed init", dir, len(entries))
		}
	}
	if _, err := control.OpenData(t.Context(), control.OpenConfig{Dir: empty}); err == nil || !strings.Contains(err.Error(), "rampart init") {
		t.Errorf("OpenData of an empty directory: %v, want advice to run rampart init", err)
	}
}

// TestOpenDataRefusesAnActorKeysKEKItMustNotTrust: the key-encryption key
// of the actor-token keys is read by package ca's reader of KEK files, so
// a file others can read, or one that holds no key, stops the server with
// the file named; a missing one, while the store holds keys sealed under
// it, says where to copy it from.
func TestOpenDataRefusesAnActorKeysKEKItMustNotTrust(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := control.Init(t.Context(), dir, "example.org"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, control.CADir, control.KEKFile)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		spoil func() error
		want  string
	}{
		{"readable by others", func() error { return os.Chmod(path, 0o644) }, "want 0600"},
		{"not a key", func() error { return os.WriteFile(path, []byte("c2hvcnQ=\n"), 0o600) }, "32 random bytes"},
		{"missing", func() error { return os.Remove(path) }, "copy " + control.KEKFile + " from the data directory of a replica"},
	} {
		t.Run(c.name, func(t *testing.T) {
			os.Remove(path)
			if err := os.WriteFile(path, good, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := c.spoil(); err != nil {
				t.Fatal(err)
			}
			data, err := control.OpenData(t.Context(), control.OpenConfig{Dir: dir})
			if err == nil {
				data.Store.Close()
				t.Fatal("OpenData succeeded")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not say %q about %s", err, c.want, path)
			}
		})
	}
	// Restored, it opens again.
	os.Remove(path)
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	data, err := control.OpenData(t.Context(), control.OpenConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	data.Store.Close()
}
