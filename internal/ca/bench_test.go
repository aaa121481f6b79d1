package ca_test

import (
	"crypto"
	"testing"

	"github.com/rampartsec/rampart/internal/ca"
)

// BenchmarkSignCSR measures SVID issuance as the API layer calls it: parse
// the CSR, check its signature and key, sign the SVID with the P-256 root,
// parse it back. Join-token checks and transport are not included.
func BenchmarkSignCSR(b *testing.B) {
	c := newCA(b, ca.Config{})
	for _, bc := range []struct {
		name string
		key  crypto.Signer
	}{
		{"P-256", p256(b)},
		{"Ed25519", ed(b)},
	} {
		der := csr(b, bc.key, nil)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.SignCSR(der, "orders", 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "issuances/s")
		})
		b.Run(bc.name+"/parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.SignCSR(der, "orders", 0); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "issuances/s")
		})
	}
}

// BenchmarkRenew adds the verification of the current SVID to issuance.
func BenchmarkRenew(b *testing.B) {
	c := newCA(b, ca.Config{})
	der := csr(b, p256(b), nil)
	current, err := c.SignCSR(der, "orders", 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Renew(current, der, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "renewals/s")
}
