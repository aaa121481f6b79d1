package authn_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/rampartsec/rampart/internal/gateway/authn"
)

// The gateway trusts an OIDC provider: New discovers its JWKS, and each
// route's handler asks Authenticate who is calling.
func ExampleNew() {
	// An OIDC provider, on 127.0.0.1 for the example.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwk := jose.JSONWebKey{Key: key, KeyID: "2025-01", Algorithm: "ES256", Use: "sig"}
	mux := http.NewServeMux()
	idp := httptest.NewServer(mux)
	defer idp.Close()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": idp.URL, "jwks_uri": idp.URL + "/keys"})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk.Public()}})
	})

	a, err := authn.New(context.Background(), authn.Config{
		Issuers: []authn.IssuerConfig{{
			Issuer:            idp.URL,
			Audience:          "orders-api",
			AllowInsecureHTTP: true, // the example's issuer is http://127.0.0.1; real ones are https
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()

	// The provider mints a token for a user; the user calls the gateway.
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jwk}, nil)
	token, _ := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer:   idp.URL,
		Subject:  "user-4711",
		Audience: jwt.Audience{"orders-api"},
		Expiry:   jwt.NewNumericDate(time.Now().Add(time.Hour)),
	}).Serialize()
	r := httptest.NewRequest(http.MethodGet, "/orders", nil)
	r.Header.Set("Authorization", "Bearer "+token)

	p, err := a.Authenticate(r, authn.Required)
	fmt.Println(p.Subject, p.Method, err)

	// A token minted for another service is refused; the gateway answers
	// 401 and logs why.
	other, _ := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer:   idp.URL,
		Subject:  "user-4711",
		Audience: jwt.Audience{"billing-api"},
		Expiry:   jwt.NewNumericDate(time.Now().Add(time.Hour)),
	}).Serialize()
	r.Header.Set("Authorization", "Bearer "+other)
	_, err = a.Authenticate(r, authn.Required)
	fmt.Println(errors.Is(err, authn.ErrAudience))
	// Output:
	// user-4711 jwt <nil>
	// true
}

// API keys are configured by their SHA-256; routes choose their mode.
func ExampleAuthenticator_Authenticate() {
	sum := sha256.Sum256([]byte("rk_5b1f0e6c2d8a4b3f9e7c1a2d"))
	a, err := authn.New(context.Background(), authn.Config{
		APIKeys: []authn.APIKey{{Name: "billing-batch", SHA256: hex.EncodeToString(sum[:])}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()

	withKey := httptest.NewRequest(http.MethodGet, "/invoices", nil)
	withKey.Header.Set("X-API-Key", "rk_5b1f0e6c2d8a4b3f9e7c1a2d")
	p, err := a.Authenticate(withKey, authn.Required)
	fmt.Println(p.Subject, p.Method, err)

	anonymous := httptest.NewRequest(http.MethodGet, "/status", nil)
	p, err = a.Authenticate(anonymous, authn.Optional)
	fmt.Println(p.IsAnonymous(), err)

	_, err = a.Authenticate(anonymous, authn.Required)
	fmt.Println(err)

	// Optional does not turn a bad credential into an anonymous user.
	badKey := httptest.NewRequest(http.MethodGet, "/status", nil)
	badKey.Header.Set("X-API-Key", "rk_guess")
	_, err = a.Authenticate(badKey, authn.Optional)
	fmt.Println(errors.Is(err, authn.ErrAPIKey))
	// Output:
	// billing-batch api-key <nil>
	// true <nil>
	// authn: no credentials
	// true
}
