package actor_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/netip"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/rampartsec/rampart/actor"
)

// The gateway signs a token for the actor; a service verifies it with the
// key set the control plane publishes.
func Example() {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"},
	}})

	signer, _ := actor.NewSigner(actor.SignerConfig{Issuer: "spiffe://example.org/svc/gateway", Audience: "spiffe://example.org"})
	signer.SetKey("k1", key)
	token, _ := signer.Token(actor.Actor{IP: netip.MustParseAddr("203.0.113.7"), User: "alice"})

	verifier, _ := actor.NewVerifier(actor.VerifierConfig{Audience: "spiffe://example.org"})
	verifier.SetKeys(jwks)
	a, err := verifier.Verify(token)
	fmt.Println(a.IP, a.User, err)
	// Output: 203.0.113.7 alice <nil>
}
