package ca

import (
	"encoding/pem"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// FuzzOpenSealedKey opens arbitrary sealed-key files: each is refused with
// an error, or opens only if it is the real one, never panics.
func FuzzOpenSealedKey(f *testing.F) {
	td := spiffeid.RequireTrustDomainFromString("rampart.test")
	c, err := Generate(td, Config{})
	if err != nil {
		f.Fatal(err)
	}
	kek := NewKEK()
	sealed, err := c.sealKey(kek)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed)
	block, _ := pem.Decode(sealed)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: sealedPEMType, Bytes: block.Bytes[:sealedHeader]}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: sealedPEMType, Bytes: []byte{2}}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: block.Bytes}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		keyPEM, err := openKey(data, kek, td, c.cert.Raw)
		if err != nil {
			return
		}
		if string(data) != string(sealed) {
			b, _ := pem.Decode(data)
			if b == nil || string(b.Bytes) != string(block.Bytes) {
				t.Fatalf("a forged sealed key opened: %q", data)
			}
		}
		if _, err := parseKeyPEM(keyPEM); err != nil {
			t.Fatalf("the opened key does not parse: %v", err)
		}
	})
}
