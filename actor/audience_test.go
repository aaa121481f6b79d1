package actor

import (
	"errors"
	"slices"
	"testing"

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
