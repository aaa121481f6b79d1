package authn_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/rampartsec/rampart/internal/fakeclock"
	"github.com/rampartsec/rampart/internal/gateway/authn"
)

// audience is what the test gateway's tokens are minted for.
const audience = "rampart-gateway"

// Key generation is slow under -race: the keys are made once per binary.
var (
	keysOnce sync.Once
	testKeys keyring
)

type keyring struct {
	rsa1, rsa2, rsaOther *rsa.PrivateKey
	ec1                  *ecdsa.PrivateKey
	ed1                  ed25519.PrivateKey
}

func keys(tb testing.TB) *keyring {
	tb.Helper()
	keysOnce.Do(func() {
		var err error
		for _, k := range []**rsa.PrivateKey{&testKeys.rsa1, &testKeys.rsa2, &testKeys.rsaOther} {
			if *k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				panic(err)
			}
		}
		if testKeys.ec1, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if _, testKeys.ed1, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
	return &testKeys
}

// signingKey is a key the test issuer signs with.
type signingKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func (k signingKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// sign mints a JWT of claims (any JSON-able value) with k.
func (k signingKey) sign(tb testing.TB, claims any) string {
	tb.Helper()
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		tb.Fatal(err)
	}
	token, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		tb.Fatal(err)
	}
	return token
}

// testIssuer is an OIDC provider on 127.0.0.1: a discovery document and a
// JWKS, which tests replace to rotate keys, counting the fetches.
type testIssuer struct {
	srv *httptest.Server
	URL string

	mu              sync.Mutex
	jwks            []byte
	discoveryIssuer string        // the issuer the discovery document names
	jwksURI         string        // the jwks_uri it names
	gate            chan struct{} // when set, JWKS responses wait for it to close

	jwksFetches      atomic.Int64
	discoveryFetches atomic.Int64
}

func newTestIssuer(tb testing.TB, keys ...signingKey) *testIssuer {
	tb.Helper()
	ti := &testIssuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		ti.discoveryFetches.Add(1)
		ti.mu.Lock()
		doc := map[string]string{"issuer": ti.discoveryIssuer, "jwks_uri": ti.jwksURI}
		ti.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(doc)
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		ti.jwksFetches.Add(1)
		ti.mu.Lock()
		gate, body := ti.gate, ti.jwks
		ti.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
			ti.mu.Lock()
			body = ti.jwks
			ti.mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	ti.srv = httptest.NewServer(mux)
	tb.Cleanup(ti.srv.Close)
	ti.URL = ti.srv.URL
	ti.discoveryIssuer = ti.URL
	ti.jwksURI = ti.URL + "/jwks"
	ti.publish(tb, keys...)
	return ti
}

// publish replaces the JWKS with the public halves of keys.
func (ti *testIssuer) publish(tb testing.TB, keys ...signingKey) {
	tb.Helper()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.public())
	}
	body, err := json.Marshal(set)
	if err != nil {
		tb.Fatal(err)
	}
	ti.setJWKS(body)
}

func (ti *testIssuer) setJWKS(body []byte) {
	ti.mu.Lock()
	ti.jwks = body
	ti.mu.Unlock()
}

// hold makes JWKS responses wait until the returned function is called.
func (ti *testIssuer) hold() (release func()) {
	gate := make(chan struct{})
	ti.mu.Lock()
	ti.gate = gate
	ti.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			ti.mu.Lock()
			ti.gate = nil
			ti.mu.Unlock()
			close(gate)
		})
	}
}

// config is the issuer's configuration at the gateway: discovery, defaults.
func (ti *testIssuer) config() authn.IssuerConfig {
	return authn.IssuerConfig{Issuer: ti.URL, Audience: audience, AllowInsecureHTTP: true}
}

// claims are valid claims of iss for the test audience, for an hour from now.
func claims(iss, sub string, now time.Time) jwt.Claims {
	return jwt.Claims{
		Issuer:    iss,
		Subject:   sub,
		Audience:  jwt.Audience{audience},
		Expiry:    jwt.NewNumericDate(now.Add(time.Hour)),
		NotBefore: jwt.NewNumericDate(now),
		IssuedAt:  jwt.NewNumericDate(now),
	}
}

// newClock returns the authenticator's clock, which tests move.
func newClock() *fakeclock.Clock { return fakeclock.New(time.Now().Truncate(time.Second)) }

// newAuthenticator builds an Authenticator on clock, closed at cleanup.
func newAuthenticator(tb testing.TB, clock *fakeclock.Clock, cfg authn.Config) *authn.Authenticator {
	tb.Helper()
	cfg.Now = clock.Now
	a, err := authn.New(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(a.Close)
	return a
}

// bearer is a request carrying token.
func bearer(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/orders", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// sentinels are the errors every refusal must wrap one of.
var sentinels = []error{
	authn.ErrNoCredentials, authn.ErrMalformed, authn.ErrAlgorithm, authn.ErrUnknownKey,
	authn.ErrSignature, authn.ErrIssuer, authn.ErrAudience, authn.ErrExpired,
	authn.ErrNotYetValid, authn.ErrAPIKey,
}

// waitFor polls cond until it holds, failing t after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
