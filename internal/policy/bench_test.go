package policy_test

import (
	"testing"

	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/policy/policytest"
)

// BenchmarkAuthorizer decides requests against the 200 allow rules of
// policytest.Bench: one that only the last rule admits, one that no rule
// admits after following the patterns as deep as they go, and a mix of
// 1024 random requests (policytest.Random, about a fifth of them allowed).
func BenchmarkAuthorizer(b *testing.B) {
	p, err := policy.Parse(policytest.Bench())
	if err != nil {
		b.Fatal(err)
	}
	a := p.Compile(policytest.Service)
	for _, bc := range []struct {
		name string
		reqs []policytest.Request
	}{
		{"case=last-rule", []policytest.Request{policytest.LastRule()}},
		{"case=no-rule", []policytest.Request{policytest.NoRule()}},
		{"case=random", policytest.Random(p, policytest.Service, 1, 1024)},
	} {
		b.Run(bc.name+"/op=allow", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r := bc.reqs[i%len(bc.reqs)]
				a.Allow(r.Caller, r.Method, r.Path)
				i++
			}
		})
		b.Run(bc.name+"/op=sensitive", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r := bc.reqs[i%len(bc.reqs)]
				a.Sensitive(r.Method, r.Path)
				i++
			}
		})
	}
	b.Run("op=compile", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p.Compile(policytest.Service)
		}
	})
}
