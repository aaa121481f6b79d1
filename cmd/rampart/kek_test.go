package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/control"
)

// serverErr runs 'rampart server' with args, expecting it to refuse to
// start, and returns its error (nil if it served instead, for 20 s).
func serverErr(t *testing.T, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out, errOut syncBuffer
	err := run(ctx, append([]string{"server", "-addr", "127.0.0.1:0"}, args...), &out, &errOut)
	if err != nil && strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans lines: %q", err)
	}
	return err
}

// noKeyInTheClear fails if a file under dir holds a PEM private key.
func noKeyInTheClear(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "PRIVATE KEY-----") {
			t.Errorf("%s holds a private key in the clear", path)
		}
		return nil
	})
}

func TestTheCAKeyIsSealedUnderAKEKTheServerNeedsAtStart(t *testing.T) {
	t.Setenv("RAMPART_CA_KEK", "")
	cp := initControlPlane(t) // with -ca-kek-file outside the data directory
	noKeyInTheClear(t, cp.dir)
	caDir := filepath.Join(cp.dir, control.CADir)
	if _, err := ca.Load(caDir); err == nil {
		t.Error("the CA loads without its KEK")
	}
	kek, err := ca.ReadKEKFile(cp.kekFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.LoadSealed(caDir, kek); err != nil {
		t.Fatalf("the CA does not open with the KEK init made: %v", err)
	}

	err = serverErr(t, "-data", cp.dir)
	if err == nil || !strings.Contains(err.Error(), "sealed") || !strings.Contains(err.Error(), "-ca-kek-file") || !strings.Contains(err.Error(), "RAMPART_CA_KEK") {
		t.Errorf("server without the KEK: %v, want a refusal that says how to give it", err)
	}
	wrong := filepath.Join(t.TempDir(), "wrong.kek")
	if err := ca.WriteKEKFile(wrong, ca.NewKEK()); err != nil {
		t.Fatal(err)
	}
	err = serverErr(t, "-data", cp.dir, "-ca-kek-file", wrong)
	if err == nil || !strings.Contains(err.Error(), "does not open the CA key") || !strings.Contains(err.Error(), ca.KEKID(kek)) {
		t.Errorf("server with another KEK: %v, want a refusal naming the KEK id it needs", err)
	}
	t.Setenv("RAMPART_CA_KEK", "not a key")
	if err := serverErr(t, "-data", cp.dir); err == nil || !strings.Contains(err.Error(), "RAMPART_CA_KEK") {
		t.Errorf("server with a malformed RAMPART_CA_KEK: %v", err)
	}
	inside := filepath.Join(cp.dir, "ca.kek")
	if err := serverErr(t, "-data", cp.dir, "-ca-kek-file", inside); err == nil || !strings.Contains(err.Error(), "inside the data directory") {
		t.Errorf("server with a KEK file inside the data directory: %v", err)
	}

	// The KEK from the environment works as well as from a file.
	t.Setenv("RAMPART_CA_KEK", ca.EncodeKEK(kek))
	byEnv := *cp
	byEnv.kekFile = ""
	byEnv.stop = byEnv.serve(t)
	defer byEnv.stop()
	if out, err := byEnv.cli(t, "decisions", "list"); err != nil {
		t.Errorf("decisions list against the server given RAMPART_CA_KEK: %q, %v", out, err)
	}
}

func TestInitWithoutAKEKPrintsANewOneOnce(t *testing.T) {
	t.Setenv("RAMPART_CA_KEK", "")
	dir := filepath.Join(t.TempDir(), "data")
	var out, errOut strings.Builder
	if err := run(t.Context(), []string{"init", "-data", dir}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	printed := regexp.MustCompile(`(?m)^  ([A-Za-z0-9+/]{43}=)$`).FindStringSubmatch(out.String())
	if printed == nil {
		t.Fatalf("init printed no key-encryption key:\n%s", out.String())
	}
	kek, err := ca.ParseKEK(printed[1])
	if err != nil {
		t.Fatal(err)
	}
	noKeyInTheClear(t, dir)
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if data, _ := os.ReadFile(path); err == nil && !d.IsDir() && strings.Contains(string(data), printed[1]) {
			t.Errorf("%s holds the printed KEK", path)
		}
		return err
	})
	if _, err := ca.LoadSealed(filepath.Join(dir, control.CADir), kek); err != nil {
		t.Errorf("the CA does not open with the printed KEK: %v", err)
	}
}

func TestAServerGivenAKEKSealsACAKeyKeptInTheClear(t *testing.T) {
	t.Setenv("RAMPART_CA_KEK", "")
	dir := filepath.Join(t.TempDir(), "data")
	token, err := control.Init(t.Context(), dir, "old.test") // as before sealing: the key in the clear
	if err != nil {
		t.Fatal(err)
	}
	caDir := filepath.Join(dir, control.CADir)
	if _, err := os.Stat(filepath.Join(caDir, ca.KeyFile)); err != nil {
		t.Fatalf("Init without a KEK: %v", err)
	}
	kekFile := filepath.Join(t.TempDir(), "ca.kek")
	if err := ca.WriteKEKFile(kekFile, ca.NewKEK()); err != nil {
		t.Fatal(err)
	}
	cp := &controlPlane{dir: dir, token: token, caFile: filepath.Join(caDir, ca.CertFile), kekFile: kekFile}
	cp.stop = cp.serve(t)
	if out, err := cp.cli(t, "decisions", "list"); err != nil {
		t.Errorf("decisions list: %q, %v", out, err)
	}
	cp.stop()
	if _, err := os.Stat(filepath.Join(caDir, ca.KeyFile)); !os.IsNotExist(err) {
		t.Errorf("the key in the clear is still there after sealing: %v", err)
	}
	noKeyInTheClear(t, dir)
	if err := serverErr(t, "-data", dir); err == nil || !strings.Contains(err.Error(), "sealed") {
		t.Errorf("server without the KEK after sealing: %v, want a refusal", err)
	}
	cp.stop = cp.serve(t) // and with it, again
	cp.stop()
}
