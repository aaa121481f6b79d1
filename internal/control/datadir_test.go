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
