package actor_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log"
	"net/netip"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/rampartsec/rampart/actor"
)

// The gateway signs a token for the actor, naming the services a request
// to web can reach; a service verifies it with the key set the control
// plane publishes, and checks that the caller may present it.
func Example() {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: key.Public(), KeyID: "k1", Algorithm: "EdDSA", Use: "sig"},
	}})
	if err != nil {
		log.Fatal(err)
	}

	signer, err := actor.NewSigner(actor.SignerConfig{Issuer: "spiffe://example.org/svc/gateway", Audience: "spiffe://example.org/svc/web"})
	if err != nil {
		log.Fatal(err)
	}
	if err := signer.SetKey("k1", key); err != nil {
		log.Fatal(err)
	}
	webAndOrders, err := actor.NewAudience("spiffe://example.org/svc/web", "spiffe://example.org/svc/orders")
	if err != nil {
		log.Fatal(err)
	}
	token, err := signer.TokenFor(actor.Actor{IP: netip.MustParseAddr("203.0.113.7"), User: "alice"}, webAndOrders)
	if err != nil {
		log.Fatal(err)
	}

	// At orders, called by web:
	verifier, err := actor.NewVerifier(actor.VerifierConfig{Audience: "spiffe://example.org/svc/orders"})
	if err != nil {
		log.Fatal(err)
	}
	if err := verifier.SetKeys(jwks); err != nil {
		log.Fatal(err)
	}
	a, err := verifier.Verify(token)
	fmt.Println(a.IP, a.User, err)
	fmt.Println(a.HeldBy("spiffe://example.org/svc/web"), a.HeldBy("spiffe://example.org/svc/reports"))

	// At billing, which the token does not name:
	billing, err := actor.NewVerifier(actor.VerifierConfig{Audience: "spiffe://example.org/svc/billing"})
	if err != nil {
		log.Fatal(err)
	}
	if err := billing.SetKeys(jwks); err != nil {
		log.Fatal(err)
	}
	_, err = billing.Verify(token)
	fmt.Println(err != nil)
	// Output:
	// 203.0.113.7 alice <nil>
	// true false
	// true
}
