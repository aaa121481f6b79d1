package ca_test

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"errors"
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
	os.Chmod(path, 0o644)
	if _, err := ca.ReadKEKFile(path); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Errorf("ReadKEKFile of a file others can read: %v", err)
	}
	for _, bad := range []string{"", "c2hvcnQ=", strings.Repeat("A", 43), "not base64!"} {
		if _, err := ca.ParseKEK(bad); err == nil {
			t.Errorf("ParseKEK(%q) accepted it", bad)
		}
	}
}
