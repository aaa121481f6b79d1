package actor

import (
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// FuzzVerify feeds Verify what a client could put in the actor header. It
// must never panic, and whatever it accepts must be a token the signer made
// for alice: a mutation that still verifies would be a forgery.
func FuzzVerify(f *testing.F) {
	c := newClock()
	k := newTestKey(f, jose.ES256)
	s, _ := newPair(f, k, c)
	good, _ := s.Token(alice)
	parts := strings.Split(good, ".")
	for _, seed := range []string{
		good, "", ".", "..", "a.b.c", good + ".", parts[0] + "." + parts[1] + ".",
		`eyJhbGciOiJub25lIn0.e30.`, strings.Repeat("A", MaxTokenSize+1),
		parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		v, err := NewVerifier(VerifierConfig{Audience: testAudience, Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.SetKeys(jwks(t, k)); err != nil {
			t.Fatal(err)
		}
		a, err := v.Verify(token)
		if err != nil {
			return
		}
		if a.IP != alice.IP || a.User != alice.User || a.Session != alice.Session || a.KeyID != k.id {
			t.Fatalf("accepted %q as %+v", token, a)
		}
	})
}
