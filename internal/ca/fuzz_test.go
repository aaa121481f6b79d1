package ca_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/corpus"
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
	seeds := corpus.Seeds(t, "FuzzSignCSR")
	if len(seeds) < 10 {
		t.Fatalf("%d seeds, want at least 10", len(seeds))
	}
	c := newCA(t, ca.Config{})
	wantIssued := map[string]bool{"p256": true, "ed25519": true, "ed25519-empty-subject": true, "p384": true, "rsa2048": true, "requested-ids": true}
	for _, s := range seeds {
		der, ok := s.Values[0].([]byte)
		if len(s.Values) != 1 || !ok {
			t.Errorf("%s: values %T, want one []byte", s.Name, s.Values)
			continue
		}
		_, err := c.SignCSR(der, "orders", 0)
		if issued := err == nil; issued != wantIssued[s.Name] {
			t.Errorf("seed %s: issued %v (err %v), want %v", s.Name, issued, err, wantIssued[s.Name])
		}
	}
}
