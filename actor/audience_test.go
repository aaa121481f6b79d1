package actor

import (
	"errors"
	"slices"
	"syscall"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	gatewayID = "spiffe://example.org/svc/gateway"
	webID     = "spiffe://example.org/svc/web"
	ordersID  = "spiffe://example.org/svc/orders"
	billingID = "spiffe://example.org/svc/billing"
)

// TestATokenIsAcceptedOnlyByTheServicesItNames mints a token for the
// services behind web (web and orders) and checks that billing, another
// service of the same trust domain with the same keys, refuses it, and that
// only the gateway that signed it and the services it names may hold it.
func TestATokenIsAcceptedOnlyByTheServicesItNames(t *testing.T) {
	c := newClock()
	k := newTestKey(t, jose.EdDSA)
	s, _ := newPair(t, k, c)
	aud, err := NewAudience(ordersID, webID, ordersID)
	if err != nil {
		t.Fatal(err)
	}
	if got := aud.IDs(); !slices.Equal(got, []string{ordersID, webID}) {
		t.Fatalf("audience %v: want sorted, no repeats", got)
	}
	token, err := s.TokenFor(alice, aud)
	if err != nil {
		t.Fatal(err)
	}
	verifier := func(self string) *Verifier {
		v, err := NewVerifier(VerifierConfig{Audience: self, Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.SetKeys(jwks(t, k)); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, self := range []string{webID, ordersID} {
		a, err := verifier(self).Verify(token)
		if err != nil {
			t.Fatalf("%s refused a token naming it: %v", self, err)
		}
		if !slices.Equal(a.Audience, []string{ordersID, webID}) {
			t.Errorf("%s: audience %v", self, a.Audience)
		}
		for id, want := range map[string]bool{gatewayID: true, webID: true, ordersID: true, billingID: false, "": false} {
			if got := a.HeldBy(id); got != want {
				t.Errorf("HeldBy(%q) = %v, want %v", id, got, want)
			}
		}
	}
	if _, err := verifier(billingID).Verify(token); !errors.Is(err, ErrAudience) {
		t.Errorf("billing, not named, verified the token: %v", err)
	}
	// The signer reuses a token per actor and audience, not across them.
	again, _ := s.TokenFor(alice, aud)
	other, _ := NewAudience(billingID)
	forBilling, _ := s.TokenFor(alice, other)
	if again != token || forBilling == token {
		t.Error("the signer's cache does not key on the audience")
	}
	if _, err := NewAudience(); err == nil {
		t.Error("an empty audience was accepted")
	}
	if _, err := s.TokenFor(alice, Audience{}); err == nil {
		t.Error("TokenFor with the zero Audience minted a token")
	}
}

// BenchmarkFirstVerify is what a service pays on an actor's first request:
// a token it has not seen, naming the service and its caller, verified
// cold. Besides ns/op it reports the process's CPU time per verification
// (cpu-µs/op), steadier than wall time on a shared machine, and the p50
// and p99 of single verifications.
//
//	go test -run '^$' -bench FirstVerify -count 6 ./actor
func BenchmarkFirstVerify(b *testing.B) {
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA} {
		b.Run(string(alg), func(b *testing.B) {
			c := newClock()
			k := newTestKey(b, alg)
			s, _ := newPair(b, k, c)
			aud, _ := NewAudience(ordersID, webID)
			v, _ := NewVerifier(VerifierConfig{Audience: ordersID, Now: c.Now})
			v.SetKeys(jwks(b, k))
			token, _ := s.TokenFor(alice, aud)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			cpu := cpuTime()
			for range b.N {
				start := time.Now()
				if _, err := v.verify(token, c.Now()); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			used := cpuTime() - cpu
			b.StopTimer()
			b.ReportMetric(float64(used)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2])/1e3, "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100])/1e3, "p99-µs")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
