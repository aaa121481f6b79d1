package ca_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

func Example() {
	// Control plane, at init: a CA for the trust domain.
	authority, err := ca.Generate(spiffeid.RequireTrustDomainFromString("rampart.local"), ca.Config{})
	if err != nil {
		log.Fatal(err)
	}

	// Service: its own key, and a CSR for it. The key stays here.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csrDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)

	// Control plane, once the join token checks out: sign.
	svid, err := authority.SignCSR(csrDER, "orders", time.Hour)
	if err != nil {
		log.Fatal(err)
	}

	// Any peer: verify the SVID against the trust bundle.
	bundle, _ := x509bundle.Parse(authority.TrustDomain(), authority.BundlePEM())
	id, _, err := x509svid.Verify(svid, bundle)
	fmt.Println(id, err)
	// Output: spiffe://rampart.local/svc/orders <nil>
}

func ExampleKeySet() {
	keys, err := ca.NewKeySet(ca.KeySetConfig{Algorithm: jose.EdDSA}, time.Now())
	if err != nil {
		log.Fatal(err)
	}
	// Gateways sign actor tokens with the current key…
	signer, _ := jose.NewSigner(keys.Current().JOSE(), nil)
	jws, _ := signer.Sign([]byte(`{"ip":"203.0.113.7"}`))
	compact, _ := jws.CompactSerialize()

	// …and services verify them with the published JWKS (after a rotation
	// it holds the previous key too, until its tokens have expired).
	jwks, _ := keys.JWKS(time.Now())
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		fmt.Println(err)
	}
	parsed, _ := jose.ParseSigned(compact, []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256})
	payload, err := parsed.Verify(set.Key(parsed.Signatures[0].Header.KeyID)[0])
	fmt.Println(string(payload), err)
	// Output: {"ip":"203.0.113.7"} <nil>
}
