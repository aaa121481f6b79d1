package ca_test

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/ca"
)

// keyOf reads the CA key in the clear that Save wrote, as PKCS #8 DER.
func keyOf(t *testing.T, dir string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, ca.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no PEM key")
	}
	return block.Bytes
}

func TestASealedCAKeyIsNotOnDiskAndOpensOnlyWithItsKEK(t *testing.T) {
	c := newCA(t, ca.Config{})
	clearDir := filepath.Join(t.TempDir(), "clear")
	if err := c.Save(clearDir); err != nil {
		t.Fatal(err)
	}
	der := keyOf(t, clearDir)

	dir := filepath.Join(t.TempDir(), "ca")
	kek := ca.NewKEK()
	if err := c.SaveSealed(dir, kek); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ca.KeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("SaveSealed left a key in the clear: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range [][]byte{[]byte("PRIVATE KEY-----"), der, []byte(base64.StdEncoding.EncodeToString(der)[:40]), der[len(der)-32:]} {
			if bytes.Contains(data, secret) {
				t.Errorf("%s holds the CA's private key (%q…)", e.Name(), secret[:min(len(secret), 16)])
			}
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, ca.SealedKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("sealed key file: %v, %v; want mode 0600", fi.Mode(), err)
	}
	if sealed, _ := ca.IsSealed(dir); !sealed {
		t.Error("IsSealed says no")
	}

	loaded, err := ca.LoadSealed(dir, kek)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Certificate().Equal(c.Certificate()) {
		t.Error("LoadSealed gave another certificate")
	}
	if _, err := loaded.SignCSR(csr(t, p256(t), nil), "api", 0); err != nil {
		t.Errorf("the opened key does not sign: %v", err)
	}

	if _, err := ca.LoadSealed(dir, nil); !errors.Is(err, ca.ErrKEKRequired) {
		t.Errorf("LoadSealed without a KEK: %v, want ErrKEKRequired", err)
	}
	if _, err := ca.LoadSealed(dir, ca.NewKEK()); !errors.Is(err, ca.ErrWrongKEK) || !strings.Contains(err.Error(), ca.KEKID(kek)) {
		t.Errorf("LoadSealed with another KEK: %v, want ErrWrongKEK naming the right KEK id", err)
	}
	if _, err := ca.Load(dir); err == nil {
		t.Error("Load opened a sealed CA without its KEK")
	}

	// The sealed key moved next to another CA's certificate does not open,
	// even with its KEK.
	other := filepath.Join(t.TempDir(), "other")
	if err := newCA(t, ca.Config{}).SaveSealed(other, kek); err != nil {
		t.Fatal(err)
	}
	sealed, _ := os.ReadFile(filepath.Join(dir, ca.SealedKeyFile))
	os.Remove(filepath.Join(other, ca.SealedKeyFile))
	write(t, filepath.Join(other, ca.SealedKeyFile), sealed, 0o600)
	if _, err := ca.LoadSealed(other, kek); err == nil {
		t.Error("a sealed key opened next to another CA's certificate")
	}
	// A flipped bit does not open.
	block, _ := pem.Decode(sealed)
	block.Bytes[len(block.Bytes)-1] ^= 1
	os.Remove(filepath.Join(dir, ca.SealedKeyFile))
	write(t, filepath.Join(dir, ca.SealedKeyFile), pem.EncodeToMemory(block), 0o600)
	if _, err := ca.LoadSealed(dir, kek); err == nil {
		t.Error("a tampered sealed key opened")
	}
}

func TestSealMovesAKeyInTheClearUnderAKEK(t *testing.T) {
	c := newCA(t, ca.Config{})
	dir := filepath.Join(t.TempDir(), "ca")
	if err := c.Save(dir); err != nil {
		t.Fatal(err)
	}
	kek := ca.NewKEK()
	if err := ca.Seal(dir, kek); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ca.KeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Seal left the key in the clear: %v", err)
	}
	loaded, err := ca.LoadSealed(dir, kek)
	if err != nil || !loaded.Certificate().Equal(c.Certificate()) {
		t.Fatalf("LoadSealed after Seal: %v", err)
	}
	if err := ca.Seal(dir, kek); err == nil {
		t.Error("Seal of a sealed directory succeeded")
	}
}

func TestKEKFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ca.kek")
	kek := ca.NewKEK()
	if err := ca.WriteKEKFile(path, kek); err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteKEKFile(path, ca.NewKEK()); err == nil {
		t.Error("WriteKEKFile overwrote a KEK")
	}
	got, err := ca.ReadKEKFile(path)
	if err != nil || !bytes.Equal(got, kek) {
		t.Fatalf("ReadKEKFile = %x, %v", got, err)
	}
	for _, bad := range []string{"", "c2hvcnQ=", strings.Repeat("A", 43), "not base64!"} {
		if _, err := ca.ParseKEK(bad); err == nil {
			t.Errorf("ParseKEK(%q) accepted it", bad)
		}
	}
}

// TestReadKEKFileRefusesAFileItMustNotTrust covers the errors of the one
// reader of key-encryption key files, which the control plane uses for the
// actor-token keys' KEK too: it tells a missing file (fs.ErrNotExist, on
// which the control plane makes one) from one it must not use.
func TestReadKEKFileRefusesAFileItMustNotTrust(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, perm os.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), perm); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, perm); err != nil { // WriteFile's mode is subject to the umask
			t.Fatal(err)
		}
		return path
	}
	good := ca.EncodeKEK(ca.NewKEK()) + "\n"
	for _, c := range []struct {
		name, path, want string
	}{
		{"a missing file", filepath.Join(dir, "missing.kek"), "no such file"},
		{"a file others can read", write("open.kek", good, 0o644), "has mode 0644, want 0600"},
		{"a file its group can read", write("group.kek", good, 0o640), "has mode 0640, want 0600"},
		{"a key of 16 bytes", write("short.kek", base64.StdEncoding.EncodeToString(make([]byte, 16)), 0o600), "32 random bytes"},
		{"a key of 33 bytes", write("long.kek", base64.StdEncoding.EncodeToString(make([]byte, 33)), 0o600), "32 random bytes"},
		{"text that is not base64", write("text.kek", "not a key at all\n", 0o600), "32 random bytes"},
		{"an empty file", write("empty.kek", "", 0o600), "32 random bytes"},
		{"a directory", dir, "not a regular file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			kek, err := ca.ReadKEKFile(c.path)
			if err == nil {
				t.Fatalf("read %x", kek)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
				t.Errorf("error %q does not say %q about %s", err, c.want, c.path)
			}
			if missing := errors.Is(err, fs.ErrNotExist); missing != (c.name == "a missing file") {
				t.Errorf("errors.Is(err, fs.ErrNotExist) = %v", missing)
			}
		})
	}
}
