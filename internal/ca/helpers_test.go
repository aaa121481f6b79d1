package ca_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

var td = spiffeid.RequireTrustDomainFromString("rampart.test")

func newCA(t testing.TB, cfg ca.Config) *ca.CA {
	t.Helper()
	c, err := ca.Generate(td, cfg)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return c
}

func p256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ed(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// csr returns a DER CSR signed by key; tmpl may be nil.
func csr(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	if tmpl == nil {
		tmpl = &x509.CertificateRequest{Subject: pkix.Name{CommonName: "workload"}}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatalf("CreateCertificateRequest: %v", err)
	}
	return der
}

func serviceID(t testing.TB, service string) spiffeid.ID {
	t.Helper()
	id, err := ca.ServiceID(td, service)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
