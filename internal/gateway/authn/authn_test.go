package authn_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/rampartsec/rampart/internal/fakeclock"
	"github.com/rampartsec/rampart/internal/gateway/authn"
)

// fixture is one test issuer publishing an RSA, an EC and an Ed25519 key,
// and an authenticator that trusts it with the default configuration.
type fixture struct {
	ti          *testIssuer
	clock       *fakeclock.Clock
	a           *authn.Authenticator
	rsa, ec, ed signingKey
}

func newFixture(t *testing.T, mutate func(*authn.Config)) *fixture {
	t.Helper()
	k := keys(t)
	f := &fixture{
		clock: newClock(),
		rsa:   signingKey{"rsa-1", jose.RS256, k.rsa1},
		ec:    signingKey{"ec-1", jose.ES256, k.ec1},
		ed:    signingKey{"ed-1", jose.EdDSA, k.ed1},
	}
	f.ti = newTestIssuer(t, f.rsa, f.ec, f.ed)
	cfg := authn.Config{Issuers: []authn.IssuerConfig{f.ti.config()}}
	if mutate != nil {
		mutate(&cfg)
	}
	f.a = newAuthenticator(t, f.clock, cfg)
	return f
}

// valid is a valid token of the fixture's issuer for sub, signed with k.
func (f *fixture) valid(t *testing.T, k signingKey, sub string) string {
	return k.sign(t, claims(f.ti.URL, sub, f.clock.Now()))
}

func TestValidTokensAuthenticate(t *testing.T) {
	f := newFixture(t, nil)
	now := f.clock.Now()
	for _, k := range []signingKey{f.rsa, f.ec, f.ed} {
		t.Run(string(k.alg)+" token gives its sub as Subject", func(t *testing.T) {
			token := f.valid(t, k, "user-"+k.kid)
			p, err := f.a.Authenticate(bearer(token), authn.Required)
			if err != nil {
				t.Fatal(err)
			}
			want := authn.Principal{
				Subject:        "user-" + k.kid,
				Issuer:         f.ti.URL,
				Method:         authn.MethodJWT,
				CredentialHash: sha256Hex(token),
				Expires:        now.Add(time.Hour),
			}
			if !p.Expires.Equal(want.Expires) {
				t.Errorf("Expires = %v, want %v", p.Expires, want.Expires)
			}
			p.Expires = want.Expires
			if p != want {
				t.Errorf("got %+v\nwant %+v", p, want)
			}
			if p.IsAnonymous() {
				t.Error("an authenticated principal is anonymous")
			}
		})
	}

	accepted := []struct {
		name   string
		claims func(jwt.Claims) jwt.Claims
		header func(token string) string
	}{
		{name: "the scheme is case-insensitive", header: func(tok string) string { return "bearer " + tok }},
		{name: "several spaces may follow the scheme", header: func(tok string) string { return "Bearer   " + tok }},
		{name: "aud may be a list holding the audience", claims: func(c jwt.Claims) jwt.Claims {
			c.Audience = jwt.Audience{"another-api", audience}
			return c
		}},
		{name: "exp within the clock skew is accepted", claims: func(c jwt.Claims) jwt.Claims {
			c.Expiry = jwt.NewNumericDate(now.Add(-30 * time.Second))
			return c
		}},
		{name: "nbf within the clock skew is accepted", claims: func(c jwt.Claims) jwt.Claims {
			c.NotBefore = jwt.NewNumericDate(now.Add(30 * time.Second))
			c.IssuedAt = c.NotBefore
			return c
		}},
		{name: "nbf and iat are optional", claims: func(c jwt.Claims) jwt.Claims {
			c.NotBefore, c.IssuedAt = nil, nil
			return c
		}},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			c := claims(f.ti.URL, "alice", now)
			if tc.claims != nil {
				c = tc.claims(c)
			}
			token := f.rsa.sign(t, c)
			r := bearer(token)
			if tc.header != nil {
				r.Header.Set("Authorization", tc.header(token))
			}
			p, err := f.a.Authenticate(r, authn.Required)
			if err != nil {
				t.Fatal(err)
			}
			if p.Subject != "alice" {
				t.Errorf("Subject = %q", p.Subject)
			}
		})
	}
}

func TestTokensAreRefused(t *testing.T) {
	f := newFixture(t, nil)
	now := f.clock.Now()
	k := keys(t)
	good := f.valid(t, f.rsa, "alice")
	// The good token is now cached: refusals of its variants below also
	// show that the cache is keyed by the whole token.
	if _, err := f.a.Authenticate(bearer(good), authn.Required); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	b64 := base64.RawURLEncoding.EncodeToString

	withClaims := func(mutate func(*jwt.Claims)) string {
		c := claims(f.ti.URL, "alice", now)
		mutate(&c)
		return f.rsa.sign(t, c)
	}
	// unsecured is a token with the header h, the good token's claims, and
	// the signature sig.
	unsecured := func(h, sig string) string { return b64([]byte(h)) + "." + parts[1] + "." + sig }
	// hmacWith signs the good token's claims with HS256 and secret, naming
	// the issuer's RSA key: the algorithm-confusion attack, where a
	// verifier that takes its key type from "alg" uses the public key as
	// the HMAC secret.
	hmacWith := func(secret []byte) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret},
			(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", f.rsa.kid))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(signer).Claims(claims(f.ti.URL, "alice", now)).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	pkix, err := x509.MarshalPKIXPublicKey(&k.rsa1.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PublicKey(&k.rsa1.PublicKey)
	jwkJSON, err := json.Marshal(f.rsa.public())
	if err != nil {
		t.Fatal(err)
	}
	ecPKIX, err := x509.MarshalPKIXPublicKey(&k.ec1.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	// flip changes the character at i of s to another base64url digit.
	flip := func(s string, i int) string {
		c := byte('A')
		if s[i] == 'A' {
			c = 'B'
		}
		return s[:i] + string(c) + s[i+1:]
	}

	cases := []struct {
		name   string
		header string // the Authorization header
		want   error
	}{
		{"an expired token", "Bearer " + withClaims(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-2 * time.Minute)) }), authn.ErrExpired},
		{"a token before its nbf", "Bearer " + withClaims(func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(2 * time.Minute)) }), authn.ErrNotYetValid},
		{"a token issued in the future", "Bearer " + withClaims(func(c *jwt.Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(2 * time.Minute)) }), authn.ErrNotYetValid},
		{"a token of another issuer", "Bearer " + withClaims(func(c *jwt.Claims) { c.Issuer = "https://evil.example" }), authn.ErrIssuer},
		{"an issuer spelled with a trailing slash", "Bearer " + withClaims(func(c *jwt.Claims) { c.Issuer += "/" }), authn.ErrIssuer},
		{"a token without iss", "Bearer " + withClaims(func(c *jwt.Claims) { c.Issuer = "" }), authn.ErrIssuer},
		{"a token for another audience", "Bearer " + withClaims(func(c *jwt.Claims) { c.Audience = jwt.Audience{"billing-api"} }), authn.ErrAudience},
		{"a token without aud", "Bearer " + withClaims(func(c *jwt.Claims) { c.Audience = nil }), authn.ErrAudience},
		{"a token without exp", "Bearer " + withClaims(func(c *jwt.Claims) { c.Expiry = nil }), authn.ErrMalformed},
		{"a token without sub", "Bearer " + withClaims(func(c *jwt.Claims) { c.Subject = "" }), authn.ErrMalformed},
		{"a sub longer than OpenID Connect allows", "Bearer " + withClaims(func(c *jwt.Claims) { c.Subject = strings.Repeat("s", authn.MaxSubject+1) }), authn.ErrMalformed},

		{"alg none without signature", "Bearer " + unsecured(`{"alg":"none","typ":"JWT"}`, ""), authn.ErrAlgorithm},
		{"alg none naming a real kid", "Bearer " + unsecured(`{"alg":"none","kid":"rsa-1"}`, ""), authn.ErrAlgorithm},
		{"alg None", "Bearer " + unsecured(`{"alg":"None"}`, ""), authn.ErrAlgorithm},
		{"alg NONE with the good signature", "Bearer " + unsecured(`{"alg":"NONE"}`, parts[2]), authn.ErrAlgorithm},
		{"no alg at all", "Bearer " + unsecured(`{"kid":"rsa-1"}`, parts[2]), authn.ErrAlgorithm},
		{"HS256 keyed with the public key's PEM (PKIX)", "Bearer " + hmacWith(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})), authn.ErrAlgorithm},
		{"HS256 keyed with the public key's PEM (PKCS #1)", "Bearer " + hmacWith(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1})), authn.ErrAlgorithm},
		{"HS256 keyed with the public key's DER (PKIX)", "Bearer " + hmacWith(pkix), authn.ErrAlgorithm},
		{"HS256 keyed with the public key's DER (PKCS #1)", "Bearer " + hmacWith(pkcs1), authn.ErrAlgorithm},
		{"HS256 keyed with the public key's JWK", "Bearer " + hmacWith(jwkJSON), authn.ErrAlgorithm},
		{"HS256 keyed with the EC public key's DER", "Bearer " + hmacWith(ecPKIX), authn.ErrAlgorithm},
		{"PS256, not configured for the issuer", "Bearer " + signingKey{"rsa-1", jose.PS256, k.rsa1}.sign(t, claims(f.ti.URL, "alice", now)), authn.ErrAlgorithm},
		{"ES256 naming the RSA key", "Bearer " + signingKey{"rsa-1", jose.ES256, k.ec1}.sign(t, claims(f.ti.URL, "alice", now)), authn.ErrAlgorithm},

		{"a tampered signature", "Bearer " + parts[0] + "." + parts[1] + "." + flip(parts[2], len(parts[2])/2), authn.ErrSignature},
		{"tampered claims", "Bearer " + parts[0] + "." + b64([]byte(`{"iss":"`+f.ti.URL+`","sub":"admin","aud":"`+audience+`","exp":`+fmt.Sprint(now.Add(time.Hour).Unix())+`}`)) + "." + parts[2], authn.ErrSignature},
		{"the EC key's kid on an EC token signed by another key", "Bearer " + signingKey{"ec-1", jose.ES256, mustEC(t)}.sign(t, claims(f.ti.URL, "alice", now)), authn.ErrSignature},
		{"a signature with a non-canonical last digit", "Bearer " + parts[0] + "." + parts[1] + "." + nonCanonical(parts[2]), authn.ErrMalformed},
		{"claims with a non-canonical last digit", "Bearer " + withNonCanonicalPart(t, f.rsa, f.ti.URL, now, 1), authn.ErrMalformed},
		{"a header with a non-canonical last digit", "Bearer " + withNonCanonicalPart(t, f.rsa, f.ti.URL, now, 0), authn.ErrMalformed},

		{"the Basic scheme", "Basic YWxpY2U6c2VjcmV0", authn.ErrMalformed},
		{"a scheme without a token", "Bearer", authn.ErrMalformed},
		{"an empty token", "Bearer ", authn.ErrMalformed},
		{"two parts", "Bearer " + parts[0] + "." + parts[1], authn.ErrMalformed},
		{"five parts (an encrypted token)", "Bearer " + good + ".e30.e30", authn.ErrMalformed},
		{"a space inside the token", "Bearer " + parts[0] + ". " + parts[1] + "." + parts[2], authn.ErrMalformed},
		{"standard base64 padding", "Bearer " + good + "==", authn.ErrMalformed},
		{"a header that is not JSON", "Bearer Zm9v.Zm9v.Zm9v", authn.ErrMalformed},
		{"a token over the size bound", "Bearer " + parts[0] + "." + strings.Repeat("A", authn.MaxTokenBytes) + "." + parts[2], authn.ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Authorization", tc.header)
			for _, mode := range []authn.Mode{authn.Required, authn.Optional} {
				p, err := f.a.Authenticate(r, mode)
				if !errors.Is(err, tc.want) {
					t.Fatalf("%v: error %v, want %v", mode, err, tc.want)
				}
				if p != (authn.Principal{}) {
					t.Fatalf("%v: a refusal came with the principal %+v", mode, p)
				}
			}
		})
	}
}

// nonCanonical spells the same bytes as s (whose length is 2 or 3 modulo
// 4) with a nonzero unused bit in its last digit.
func nonCanonical(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[last^1])
}

// withNonCanonicalPart is a valid token of iss, signed with k, whose
// part i (0 the header, 1 the claims) is respelled by nonCanonical. Padding
// in the subject and in an extra header gives that part digits to spare.
func withNonCanonicalPart(t *testing.T, k signingKey, iss string, now time.Time, i int) string {
	t.Helper()
	for n := range 4 {
		pad := strings.Repeat("x", n)
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}},
			(&jose.SignerOptions{}).WithType("JWT").WithHeader("pad", pad))
		if err != nil {
			t.Fatal(err)
		}
		token, err := jwt.Signed(signer).Claims(claims(iss, "alice"+pad, now)).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(token, ".")
		if len(parts[i])%4 >= 2 {
			parts[i] = nonCanonical(parts[i])
			return strings.Join(parts, ".")
		}
	}
	t.Fatal("no padding gave spare digits")
	return ""
}

func TestNonCanonicalSpellingDecodesToTheSameToken(t *testing.T) {
	// Without this, the non-canonical case above would test nothing: the
	// lenient decoder go-jose uses must see the same signature bytes.
	token := signingKey{"rsa-1", jose.RS256, keys(t).rsa1}.sign(t, claims("https://id.example", "alice", time.Now()))
	sig := strings.Split(token, ".")[2]
	a, errA := base64.RawURLEncoding.DecodeString(sig)
	b, errB := base64.RawURLEncoding.DecodeString(nonCanonical(sig))
	if errA != nil || errB != nil || string(a) != string(b) {
		t.Fatalf("the spellings decode differently (%v, %v)", errA, errB)
	}
}

func mustEC(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSeveralCredentialsAreRefused(t *testing.T) {
	f := newFixture(t, func(c *authn.Config) {
		c.APIKeys = []authn.APIKey{{Name: "batch", SHA256: sha256Hex("k-0123456789abcdef")}}
	})
	token := f.valid(t, f.rsa, "alice")

	twoBearers := bearer(token)
	twoBearers.Header.Add("Authorization", "Bearer "+token)
	bearerAndKey := bearer(token)
	bearerAndKey.Header.Set("X-API-Key", "k-0123456789abcdef")
	twoKeys := httptest.NewRequest(http.MethodGet, "/", nil)
	twoKeys.Header.Add("X-API-Key", "k-0123456789abcdef")
	twoKeys.Header.Add("X-API-Key", "k-0123456789abcdef")

	for name, r := range map[string]*http.Request{
		"two Authorization headers":     twoBearers,
		"a bearer token and an API key": bearerAndKey,
		"the API key header twice":      twoKeys,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := f.a.Authenticate(r, authn.Optional); !errors.Is(err, authn.ErrMalformed) {
				t.Fatalf("error %v, want ErrMalformed", err)
			}
		})
	}
}

func TestModes(t *testing.T) {
	f := newFixture(t, nil)
	none := httptest.NewRequest(http.MethodGet, "/", nil)
	good := bearer(f.valid(t, f.rsa, "alice"))
	bad := bearer("e30.e30.e30")

	cases := []struct {
		name    string
		r       *http.Request
		mode    authn.Mode
		want    error
		subject string
	}{
		{"Required with no credentials is ErrNoCredentials", none, authn.Required, authn.ErrNoCredentials, ""},
		{"Required with a valid token authenticates", good, authn.Required, nil, "alice"},
		{"Required with a bad token is refused", bad, authn.Required, authn.ErrAlgorithm, ""},
		{"Optional with no credentials is anonymous", none, authn.Optional, nil, ""},
		{"Optional with a valid token authenticates", good, authn.Optional, nil, "alice"},
		{"Optional with a bad token is refused, not anonymous", bad, authn.Optional, authn.ErrAlgorithm, ""},
		{"Off with a bad token is anonymous", bad, authn.Off, nil, ""},
		{"Off with a valid token is anonymous", good, authn.Off, nil, ""},
		{"an unknown mode with no credentials is treated as Required", none, authn.Mode(42), authn.ErrNoCredentials, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := f.a.Authenticate(tc.r, tc.mode)
			if tc.want == nil && err != nil || !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if p.Subject != tc.subject {
				t.Fatalf("Subject %q, want %q", p.Subject, tc.subject)
			}
			if tc.subject == "" && !p.IsAnonymous() {
				t.Fatalf("principal %+v, want anonymous", p)
			}
		})
	}
	if got := authn.Mode(0); got != authn.Required {
		t.Errorf("the zero Mode is %v, want Required", got)
	}
}

func TestAPIKeys(t *testing.T) {
	const (
		alice1 = "rk_5b1f0e6c2d8a4b3f9e7c1a2d"
		alice2 = "rk_0c9d8e7f6a5b4c3d2e1f0a9b"
		bob    = "rk_7e6d5c4b3a2f1e0d9c8b7a6f"
	)
	cfg := authn.Config{APIKeys: []authn.APIKey{
		{Name: "alice", SHA256: sha256Hex(alice1)},
		{Name: "alice", SHA256: strings.ToUpper(sha256Hex(alice2))}, // rotation: two keys, one holder
		{Name: "bob", SHA256: sha256Hex(bob)},
	}}
	a := newAuthenticator(t, newClock(), cfg)

	withKey := func(header, key string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set(header, key)
		return r
	}
	cases := []struct {
		name    string
		r       *http.Request
		want    error
		subject string
	}{
		{"a configured key gives its name", withKey("X-API-Key", bob), nil, "bob"},
		{"either key of a holder works", withKey("X-API-Key", alice1), nil, "alice"},
		{"the second key, configured in upper-case hex", withKey("x-api-key", alice2), nil, "alice"},
		{"an unknown key is refused", withKey("X-API-Key", "rk_guess"), authn.ErrAPIKey, ""},
		{"a key differing in its last byte is refused", withKey("X-API-Key", bob[:len(bob)-1]+"0"), authn.ErrAPIKey, ""},
		{"the hash itself is not the key", withKey("X-API-Key", sha256Hex(bob)), authn.ErrAPIKey, ""},
		{"an empty key is malformed", withKey("X-API-Key", ""), authn.ErrMalformed, ""},
		{"an oversized key is malformed", withKey("X-API-Key", strings.Repeat("k", 2000)), authn.ErrMalformed, ""},
		{"a key in another header is no credential", withKey("X-Api-Token", bob), authn.ErrNoCredentials, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := a.Authenticate(tc.r, authn.Required)
			if tc.want == nil && err != nil || !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if p.Subject != tc.subject {
				t.Fatalf("Subject %q, want %q", p.Subject, tc.subject)
			}
			if tc.subject != "" {
				key := tc.r.Header.Get("X-API-Key")
				if p.Method != authn.MethodAPIKey || p.CredentialHash != sha256Hex(key) || p.Issuer != "" || !p.Expires.IsZero() {
					t.Fatalf("principal %+v", p)
				}
			}
		})
	}

	t.Run("a configured header replaces X-API-Key", func(t *testing.T) {
		cfg := cfg
		cfg.APIKeyHeader = "X-Rampart-Key"
		a := newAuthenticator(t, newClock(), cfg)
		if p, err := a.Authenticate(withKey("X-Rampart-Key", bob), authn.Required); err != nil || p.Subject != "bob" {
			t.Fatalf("got %+v, %v", p, err)
		}
		if _, err := a.Authenticate(withKey("X-API-Key", bob), authn.Required); !errors.Is(err, authn.ErrNoCredentials) {
			t.Fatalf("X-API-Key still read: %v", err)
		}
	})

	t.Run("without configured keys the header is not examined", func(t *testing.T) {
		a := newAuthenticator(t, newClock(), authn.Config{})
		r := withKey("X-API-Key", bob)
		if p, err := a.Authenticate(r, authn.Optional); err != nil || !p.IsAnonymous() {
			t.Fatalf("Optional: %+v, %v", p, err)
		}
		if _, err := a.Authenticate(r, authn.Required); !errors.Is(err, authn.ErrNoCredentials) {
			t.Fatalf("Required: %v", err)
		}
	})
}

func TestKeyRotation(t *testing.T) {
	k := keys(t)
	old := signingKey{"2024-a", jose.RS256, k.rsa1}
	next := signingKey{"2024-b", jose.RS256, k.rsa2}
	ti := newTestIssuer(t, old)
	clock := newClock()
	a := newAuthenticator(t, clock, authn.Config{Issuers: []authn.IssuerConfig{ti.config()}})
	mint := func(key signingKey) string { return key.sign(t, claims(ti.URL, "alice", clock.Now())) }

	cachedOld := mint(old)
	if _, err := a.Authenticate(bearer(cachedOld), authn.Required); err != nil {
		t.Fatal(err)
	}

	// The issuer starts signing with a new key, published beside the old.
	ti.publish(t, old, next)
	newToken := mint(next)
	_, err := a.Authenticate(bearer(newToken), authn.Required)
	if !errors.Is(err, authn.ErrUnknownKey) {
		t.Fatalf("within 30s of the last fetch: error %v, want ErrUnknownKey (rate-limited)", err)
	}
	if n := ti.jwksFetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches, want 1: the refresh was not rate-limited", n)
	}

	clock.Advance(31 * time.Second)
	if p, err := a.Authenticate(bearer(newToken), authn.Required); err != nil || p.Subject != "alice" {
		t.Fatalf("the new key after the refresh: %+v, %v", p, err)
	}
	if n := ti.jwksFetches.Load(); n != 2 {
		t.Fatalf("%d JWKS fetches, want 2", n)
	}
	if _, err := a.Authenticate(bearer(mint(old)), authn.Required); err != nil {
		t.Fatalf("the old key while still published: %v", err)
	}

	// The old key is withdrawn. A token naming an unknown key makes the
	// gateway look again, and learn of it.
	ti.publish(t, next)
	clock.Advance(31 * time.Second)
	if _, err := a.Authenticate(bearer(signingKey{"nobody", jose.RS256, k.rsaOther}.sign(t, claims(ti.URL, "mallory", clock.Now()))), authn.Required); !errors.Is(err, authn.ErrUnknownKey) {
		t.Fatalf("unknown kid: %v", err)
	}
	if n := ti.jwksFetches.Load(); n != 3 {
		t.Fatalf("%d JWKS fetches, want 3", n)
	}
	before := authn.Verifications(a)
	for name, token := range map[string]string{"a fresh token": mint(old), "a cached token": cachedOld} {
		if _, err := a.Authenticate(bearer(token), authn.Required); !errors.Is(err, authn.ErrUnknownKey) {
			t.Errorf("%s of the withdrawn key: error %v, want ErrUnknownKey", name, err)
		}
	}
	if n := authn.Verifications(a); n != before {
		t.Errorf("%d signature checks with a withdrawn key", n-before)
	}
	if _, err := a.Authenticate(bearer(newToken), authn.Required); err != nil {
		t.Fatalf("the new key: %v", err)
	}
}

func TestUnknownKeyRefreshIsRateLimited(t *testing.T) {
	k := keys(t)
	ti := newTestIssuer(t, signingKey{"rsa-1", jose.RS256, k.rsa1})
	clock := newClock()
	a := newAuthenticator(t, clock, authn.Config{Issuers: []authn.IssuerConfig{ti.config()}})
	c := claims(ti.URL, "mallory", clock.Now())
	// The attacker's tokens: one signature, random kids.
	attack := func(n int, concurrent bool) {
		t.Helper()
		var wg sync.WaitGroup
		for i := range n {
			token := signingKey{fmt.Sprintf("random-%d-%d", time.Now().UnixNano(), i), jose.RS256, k.rsaOther}.sign(t, c)
			try := func() {
				defer wg.Done()
				if _, err := a.Authenticate(bearer(token), authn.Required); !errors.Is(err, authn.ErrUnknownKey) {
					t.Errorf("error %v, want ErrUnknownKey", err)
				}
			}
			wg.Add(1)
			if concurrent {
				go try()
			} else {
				try()
			}
		}
		wg.Wait()
	}

	attack(100, false)
	if n := ti.jwksFetches.Load(); n != 1 {
		t.Fatalf("100 random kids right after start: %d JWKS fetches, want 1 (the one at start)", n)
	}
	clock.Advance(31 * time.Second)
	attack(100, false)
	if n := ti.jwksFetches.Load(); n != 2 {
		t.Fatalf("100 random kids, one after another, 31s later: %d JWKS fetches, want 2", n)
	}
	clock.Advance(31 * time.Second)
	attack(100, true)
	if n := ti.jwksFetches.Load(); n != 3 {
		t.Fatalf("100 random kids at once, 31s later: %d JWKS fetches, want 3", n)
	}
}

func TestConcurrentRequestsShareOneRefresh(t *testing.T) {
	k := keys(t)
	old := signingKey{"old", jose.RS256, k.rsa1}
	next := signingKey{"next", jose.ES256, k.ec1}
	ti := newTestIssuer(t, old)
	clock := newClock()
	a := newAuthenticator(t, clock, authn.Config{Issuers: []authn.IssuerConfig{ti.config()}})

	ti.publish(t, old, next)
	clock.Advance(time.Minute)
	release := ti.hold()
	defer release()
	token := next.sign(t, claims(ti.URL, "alice", clock.Now()))

	const n = 20
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := a.Authenticate(bearer(token), authn.Required)
			errs <- err
		}()
	}
	// Let the fetch reach the issuer and the other requests pile up
	// behind it; a request that came after it would also find the key.
	waitFor(t, "the refresh to reach the issuer", func() bool { return ti.jwksFetches.Load() >= 2 })
	time.Sleep(50 * time.Millisecond)
	release()
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("a request waiting on the shared refresh: %v", err)
		}
	}
	if got := ti.jwksFetches.Load(); got != 2 {
		t.Fatalf("%d JWKS fetches, want 2 (start, and one shared refresh)", got)
	}
}

func TestPeriodicRefresh(t *testing.T) {
	k := keys(t)
	old := signingKey{"old", jose.RS256, k.rsa1}
	next := signingKey{"next", jose.RS256, k.rsa2}
	ti := newTestIssuer(t, old)
	clock := newClock()
	cfg := ti.config()
	cfg.RefreshInterval = time.Second
	a := newAuthenticator(t, clock, authn.Config{Issuers: []authn.IssuerConfig{cfg}})
	ti.publish(t, next)

	// The clock stands still, so no early refresh is allowed: only the
	// background one can bring the new key.
	token := next.sign(t, claims(ti.URL, "alice", clock.Now()))
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := a.Authenticate(bearer(token), authn.Required)
		if err == nil {
			break
		}
		if !errors.Is(err, authn.ErrUnknownKey) || time.Now().After(deadline) {
			t.Fatalf("the key published after start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := a.Authenticate(bearer(old.sign(t, claims(ti.URL, "alice", clock.Now()))), authn.Required); !errors.Is(err, authn.ErrUnknownKey) {
		t.Fatalf("the withdrawn key: %v", err)
	}
}

func TestVerifiedTokenCache(t *testing.T) {
	f := newFixture(t, nil)

	t.Run("a returning token costs no signature check", func(t *testing.T) {
		token := f.valid(t, f.ec, "alice")
		before := authn.Verifications(f.a)
		first, err := f.a.Authenticate(bearer(token), authn.Required)
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			again, err := f.a.Authenticate(bearer(token), authn.Required)
			if err != nil || again != first {
				t.Fatalf("from the cache: %+v, %v; first %+v", again, err, first)
			}
		}
		if n := authn.Verifications(f.a) - before; n != 1 {
			t.Fatalf("%d signature checks for 6 presentations, want 1", n)
		}
	})

	t.Run("a cached token expires with its exp", func(t *testing.T) {
		token := f.ed.sign(t, jwt.Claims{
			Issuer: f.ti.URL, Subject: "bob", Audience: jwt.Audience{audience},
			Expiry: jwt.NewNumericDate(f.clock.Now().Add(time.Minute)),
		})
		if _, err := f.a.Authenticate(bearer(token), authn.Required); err != nil {
			t.Fatal(err)
		}
		before, cached := authn.Verifications(f.a), authn.CachedTokens(f.a)
		f.clock.Advance(time.Minute + time.Minute) // exp, and the skew
		if _, err := f.a.Authenticate(bearer(token), authn.Required); err != nil {
			t.Fatalf("within the skew: %v", err)
		}
		f.clock.Advance(time.Second)
		if _, err := f.a.Authenticate(bearer(token), authn.Required); !errors.Is(err, authn.ErrExpired) {
			t.Fatalf("past exp and skew: error %v, want ErrExpired", err)
		}
		if authn.Verifications(f.a) != before {
			t.Error("the cached token was verified again")
		}
		if authn.CachedTokens(f.a) != cached-1 {
			t.Error("the expired token stayed in the cache")
		}
	})

	t.Run("the cache is bounded", func(t *testing.T) {
		f := newFixture(t, nil)
		authn.SetTokenCacheCapacity(f.a, 8)
		var tokens []string
		for i := range 30 {
			tokens = append(tokens, f.valid(t, f.ec, fmt.Sprint("user-", i)))
		}
		for _, token := range tokens {
			for range 2 {
				if _, err := f.a.Authenticate(bearer(token), authn.Required); err != nil {
					t.Fatal(err)
				}
			}
			if n := authn.CachedTokens(f.a); n > 8 {
				t.Fatalf("%d cached tokens, capacity 8", n)
			}
		}
		// Each token was verified once and then found in the cache.
		if n := authn.Verifications(f.a); n != 30 {
			t.Fatalf("%d signature checks, want 30", n)
		}
		// Evicted tokens are verified again, and are still valid.
		for _, token := range tokens {
			if _, err := f.a.Authenticate(bearer(token), authn.Required); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestIssuersDoNotShareKeys(t *testing.T) {
	k := keys(t)
	// Both issuers call their key "main": the token of B signed with A's
	// key must not verify with A's key.
	tiA := newTestIssuer(t, signingKey{"main", jose.RS256, k.rsa1})
	tiB := newTestIssuer(t, signingKey{"main", jose.RS256, k.rsa2})
	cfgB := tiB.config()
	cfgB.Audience = "other-audience"
	a := newAuthenticator(t, newClock(), authn.Config{Issuers: []authn.IssuerConfig{tiA.config(), cfgB}})
	now := time.Now()

	c := claims(tiB.URL, "alice", now)
	c.Audience = jwt.Audience{"other-audience"}
	forged := signingKey{"main", jose.RS256, k.rsa1}.sign(t, c)
	if _, err := a.Authenticate(bearer(forged), authn.Required); !errors.Is(err, authn.ErrSignature) {
		t.Fatalf("B's claims signed with A's key: error %v, want ErrSignature", err)
	}
	genuine := signingKey{"main", jose.RS256, k.rsa2}.sign(t, c)
	if p, err := a.Authenticate(bearer(genuine), authn.Required); err != nil || p.Issuer != tiB.URL {
		t.Fatalf("B's token: %+v, %v", p, err)
	}
	// Each issuer has its own audience.
	if _, err := a.Authenticate(bearer(signingKey{"main", jose.RS256, k.rsa1}.sign(t, claims(tiA.URL, "alice", now))), authn.Required); err != nil {
		t.Fatalf("A's token for A's audience: %v", err)
	}
	if _, err := a.Authenticate(bearer(signingKey{"main", jose.RS256, k.rsa2}.sign(t, claims(tiB.URL, "alice", now))), authn.Required); !errors.Is(err, authn.ErrAudience) {
		t.Fatalf("B's token for A's audience: %v", err)
	}
}

func TestConfiguredAlgorithms(t *testing.T) {
	k := keys(t)
	ps := signingKey{"rsa-pss", jose.PS256, k.rsa1}
	ti := newTestIssuer(t, ps)
	cfg := ti.config()
	cfg.Algorithms = []string{"PS256"}
	a := newAuthenticator(t, newClock(), authn.Config{Issuers: []authn.IssuerConfig{cfg}})
	now := time.Now()
	if _, err := a.Authenticate(bearer(ps.sign(t, claims(ti.URL, "alice", now))), authn.Required); err != nil {
		t.Fatalf("PS256 when configured: %v", err)
	}
	// The JWK says PS256: an RS256 signature by the same key is refused.
	rs := signingKey{"rsa-pss", jose.RS256, k.rsa1}.sign(t, claims(ti.URL, "alice", now))
	if _, err := a.Authenticate(bearer(rs), authn.Required); !errors.Is(err, authn.ErrAlgorithm) {
		t.Fatalf("RS256 when only PS256 is configured: %v", err)
	}
}

func TestJWKSKeysAreUsedOnlyAsTheyMayBe(t *testing.T) {
	k := keys(t)
	good := signingKey{"good", jose.RS256, k.rsa1}
	weakKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weak := signingKey{"weak", jose.RS256, weakKey}
	leaked := signingKey{"leaked", jose.RS256, k.rsa2}
	secret := []byte("0123456789abcdef0123456789abcdef")
	encryption := jose.JSONWebKey{Key: &k.rsaOther.PublicKey, KeyID: "enc", Use: "enc"}

	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		good.public(),
		{Key: &k.rsa2.PublicKey, KeyID: "rsa-without-alg"},
		{Key: &k.ec1.PublicKey, KeyID: "ec-without-alg"},
		weak.public(),
		{Key: k.rsa2, KeyID: "leaked", Algorithm: "RS256"}, // a private key
		{Key: secret, KeyID: "shared", Algorithm: "HS256"}, // a symmetric key
		encryption,
	}}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	ti := newTestIssuer(t)
	ti.setJWKS(body)
	a := newAuthenticator(t, newClock(), authn.Config{Issuers: []authn.IssuerConfig{ti.config()}})
	now := time.Now()

	hmac, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, (&jose.SignerOptions{}).WithHeader("kid", "shared"))
	if err != nil {
		t.Fatal(err)
	}
	hmacToken, err := jwt.Signed(hmac).Claims(claims(ti.URL, "mallory", now)).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"an RSA key under 2048 bits", weak.sign(t, claims(ti.URL, "mallory", now)), authn.ErrUnknownKey},
		{"a published private key", leaked.sign(t, claims(ti.URL, "mallory", now)), authn.ErrUnknownKey},
		{"an encryption key", signingKey{"enc", jose.RS256, k.rsaOther}.sign(t, claims(ti.URL, "mallory", now)), authn.ErrUnknownKey},
		{"a published symmetric key", hmacToken, authn.ErrAlgorithm},
		{"ES256 naming an RSA key without alg", signingKey{"rsa-without-alg", jose.ES256, k.ec1}.sign(t, claims(ti.URL, "mallory", now)), authn.ErrAlgorithm},
		{"EdDSA naming an EC key without alg", signingKey{"ec-without-alg", jose.EdDSA, k.ed1}.sign(t, claims(ti.URL, "mallory", now)), authn.ErrAlgorithm},
		{"the good key", good.sign(t, claims(ti.URL, "alice", now)), nil},
		{"an RSA key without alg, with RS256", signingKey{"rsa-without-alg", jose.RS256, k.rsa2}.sign(t, claims(ti.URL, "alice", now)), nil},
		{"an EC key without alg, with ES256", signingKey{"ec-without-alg", jose.ES256, k.ec1}.sign(t, claims(ti.URL, "alice", now)), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Authenticate(bearer(tc.token), authn.Required)
			if tc.want == nil && err != nil || !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

func TestTokenWithoutKidIsTriedAgainstFittingKeys(t *testing.T) {
	k := keys(t)
	ti := newTestIssuer(t, signingKey{"a", jose.RS256, k.rsa2}, signingKey{"b", jose.RS256, k.rsa1})
	a := newAuthenticator(t, newClock(), authn.Config{Issuers: []authn.IssuerConfig{ti.config()}})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k.rsa1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	token, err := jwt.Signed(signer).Claims(claims(ti.URL, "alice", time.Now())).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	if p, err := a.Authenticate(bearer(token), authn.Required); err != nil || p.Subject != "alice" {
		t.Fatalf("%+v, %v", p, err)
	}
	signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k.rsaOther}, nil)
	if err != nil {
		t.Fatal(err)
	}
	token, err = jwt.Signed(signer).Claims(claims(ti.URL, "alice", time.Now())).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(bearer(token), authn.Required); !errors.Is(err, authn.ErrSignature) {
		t.Fatalf("signed by no published key: %v", err)
	}
}

func TestNewRefusesBadConfiguration(t *testing.T) {
	iss := func(mutate func(*authn.IssuerConfig)) authn.Config {
		ic := authn.IssuerConfig{Issuer: "https://id.example", Audience: audience, JWKSURL: "https://id.example/jwks"}
		mutate(&ic)
		return authn.Config{Issuers: []authn.IssuerConfig{ic}}
	}
	key := func(name, hash string) authn.Config {
		return authn.Config{APIKeys: []authn.APIKey{{Name: name, SHA256: hash}}}
	}
	cases := []struct {
		name  string
		cfg   authn.Config
		field string // the error must name it
	}{
		{"an issuer without identifier", iss(func(c *authn.IssuerConfig) { c.Issuer = "" }), "Issuers[0].Issuer"},
		{"an http issuer", iss(func(c *authn.IssuerConfig) { c.Issuer = "http://id.example" }), "Issuers[0].Issuer"},
		{"AllowInsecureHTTP to a host that is not loopback", iss(func(c *authn.IssuerConfig) {
			c.Issuer, c.JWKSURL, c.AllowInsecureHTTP = "http://id.example", "", true
		}), "Issuers[0].Issuer"},
		{"AllowInsecureHTTP to localhost by name", iss(func(c *authn.IssuerConfig) {
			c.Issuer, c.JWKSURL, c.AllowInsecureHTTP = "http://localhost:8080", "", true
		}), "Issuers[0].Issuer"},
		{"an issuer with a query", iss(func(c *authn.IssuerConfig) { c.Issuer = "https://id.example/?tenant=1" }), "Issuers[0].Issuer"},
		{"an issuer with credentials", iss(func(c *authn.IssuerConfig) { c.Issuer = "https://u:p@id.example" }), "Issuers[0].Issuer"},
		{"a relative issuer", iss(func(c *authn.IssuerConfig) { c.Issuer = "id.example" }), "Issuers[0].Issuer"},
		{"no audience", iss(func(c *authn.IssuerConfig) { c.Audience = "" }), "Issuers[0].Audience"},
		{"an http JWKS URL", iss(func(c *authn.IssuerConfig) { c.JWKSURL = "http://id.example/jwks" }), "Issuers[0].JWKSURL"},
		{"HS256", iss(func(c *authn.IssuerConfig) { c.Algorithms = []string{"RS256", "HS256"} }), "Issuers[0].Algorithms"},
		{"none", iss(func(c *authn.IssuerConfig) { c.Algorithms = []string{"none"} }), "Issuers[0].Algorithms"},
		{"an unknown algorithm", iss(func(c *authn.IssuerConfig) { c.Algorithms = []string{"rs256"} }), "Issuers[0].Algorithms"},
		{"a negative skew", iss(func(c *authn.IssuerConfig) { c.ClockSkew = -time.Second }), "Issuers[0].ClockSkew"},
		{"a skew of an hour", iss(func(c *authn.IssuerConfig) { c.ClockSkew = time.Hour }), "Issuers[0].ClockSkew"},
		{"a refresh interval without unit", iss(func(c *authn.IssuerConfig) { c.RefreshInterval = 10 }), "Issuers[0].RefreshInterval"},
		{"the same issuer twice", authn.Config{Issuers: []authn.IssuerConfig{
			{Issuer: "https://id.example", Audience: "a", JWKSURL: "https://id.example/jwks"},
			{Issuer: "https://id.example", Audience: "b", JWKSURL: "https://id.example/jwks"},
		}}, "Issuers[1].Issuer"},
		{"an API key without name", key("", sha256Hex("k")), "APIKeys[0].Name"},
		{"an API key hash that is not hex", key("batch", strings.Repeat("z", 64)), "APIKeys[0].SHA256"},
		{"an API key hash of the wrong length", key("batch", sha256Hex("k")[:40]), "APIKeys[0].SHA256"},
		{"a plaintext API key", key("batch", "rk_5b1f0e6c2d8a4b3f9e7c1a2d"), "APIKeys[0].SHA256"},
		{"the same API key twice", authn.Config{APIKeys: []authn.APIKey{{"a", sha256Hex("k")}, {"b", sha256Hex("k")}}}, "APIKeys[1].SHA256"},
		{"Authorization as the API key header", authn.Config{APIKeyHeader: "authorization"}, "APIKeyHeader"},
		{"an API key header that is not a header name", authn.Config{APIKeyHeader: "X API Key"}, "APIKeyHeader"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := authn.New(context.Background(), tc.cfg)
			if err == nil {
				a.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %q does not name %s", err, tc.field)
			}
		})
	}
}

func TestNewFetchesKeys(t *testing.T) {
	k := keys(t)
	key := signingKey{"rsa-1", jose.RS256, k.rsa1}

	t.Run("discovery gives the JWKS URL", func(t *testing.T) {
		ti := newTestIssuer(t, key)
		a := newAuthenticator(t, newClock(), authn.Config{Issuers: []authn.IssuerConfig{ti.config()}})
		if ti.discoveryFetches.Load() != 1 || ti.jwksFetches.Load() != 1 {
			t.Fatalf("%d discovery and %d JWKS fetches, want 1 and 1", ti.discoveryFetches.Load(), ti.jwksFetches.Load())
		}
		if _, err := a.Authenticate(bearer(key.sign(t, claims(ti.URL, "alice", time.Now()))), authn.Required); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a configured JWKS URL skips discovery", func(t *testing.T) {
		ti := newTestIssuer(t, key)
		cfg := ti.config()
		cfg.JWKSURL = ti.URL + "/jwks"
		newAuthenticator(t, newClock(), authn.Config{Issuers: []authn.IssuerConfig{cfg}})
		if n := ti.discoveryFetches.Load(); n != 0 {
			t.Fatalf("%d discovery fetches", n)
		}
	})

	failures := []struct {
		name    string
		setup   func(ti *testIssuer, cfg *authn.IssuerConfig)
		mention string
	}{
		{"discovery naming another issuer", func(ti *testIssuer, _ *authn.IssuerConfig) {
			ti.discoveryIssuer = "https://evil.example"
		}, "discovery document names issuer"},
		{"a jwks_uri over http to another host", func(ti *testIssuer, _ *authn.IssuerConfig) {
			ti.jwksURI = "http://192.0.2.1/jwks"
		}, "jwks_uri"},
		{"a JWKS over 1 MiB", func(ti *testIssuer, _ *authn.IssuerConfig) {
			ti.setJWKS([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", 1<<20) + `"}`))
		}, "exceeds"},
		{"a JWKS that is not JSON", func(ti *testIssuer, _ *authn.IssuerConfig) {
			ti.setJWKS([]byte(`<html>`))
		}, "JWKS"},
		{"a JWKS without usable keys", func(ti *testIssuer, _ *authn.IssuerConfig) {
			ti.setJWKS([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"x"}]}`))
		}, "no usable signing key"},
		{"a JWKS of too many keys", func(ti *testIssuer, _ *authn.IssuerConfig) {
			ti.publish(t, manyKeys(key, 65)...)
		}, "more than 64"},
		{"a JWKS URL that fails", func(ti *testIssuer, cfg *authn.IssuerConfig) {
			cfg.JWKSURL = ti.URL + "/missing"
		}, "404"},
		{"a redirect to http on another host", func(ti *testIssuer, cfg *authn.IssuerConfig) {
			cfg.JWKSURL = ti.URL + "/redirect"
		}, "redirect to http://192.0.2.1/jwks"},
	}
	for _, tc := range failures {
		t.Run(tc.name+" fails New", func(t *testing.T) {
			ti := newTestIssuer(t, key)
			ti.srv.Config.Handler.(*http.ServeMux).HandleFunc("GET /redirect", func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "http://192.0.2.1/jwks", http.StatusFound)
			})
			cfg := ti.config()
			tc.setup(ti, &cfg)
			a, err := authn.New(context.Background(), authn.Config{Issuers: []authn.IssuerConfig{cfg}})
			if err == nil {
				a.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.mention) || !strings.Contains(err.Error(), "Issuers[0]") {
				t.Fatalf("error %q does not name Issuers[0] and mention %q", err, tc.mention)
			}
		})
	}

	t.Run("the configured client is used and not modified", func(t *testing.T) {
		ti := newTestIssuer(t, key)
		var used bool
		client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			used = true
			return http.DefaultTransport.RoundTrip(r)
		})}
		newAuthenticator(t, newClock(), authn.Config{Issuers: []authn.IssuerConfig{ti.config()}, HTTPClient: client})
		if !used {
			t.Error("the configured client was not used")
		}
		if client.CheckRedirect != nil {
			t.Error("the configured client's redirect policy was changed")
		}
	})

	t.Run("a cancelled context fails New", func(t *testing.T) {
		ti := newTestIssuer(t, key)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := authn.New(ctx, authn.Config{Issuers: []authn.IssuerConfig{ti.config()}}); !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func manyKeys(k signingKey, n int) []signingKey {
	out := make([]signingKey, n)
	for i := range out {
		out[i] = k
		out[i].kid = fmt.Sprint("k", i)
	}
	return out
}

func TestClose(t *testing.T) {
	k := keys(t)
	ti := newTestIssuer(t, signingKey{"rsa-1", jose.RS256, k.rsa1})
	clock := newClock()
	a, err := authn.New(context.Background(), authn.Config{Issuers: []authn.IssuerConfig{ti.config()}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	release := ti.hold()
	defer release()

	// A request waits on a refresh that the issuer does not answer.
	clock.Advance(time.Minute)
	token := signingKey{"unknown", jose.RS256, k.rsaOther}.sign(t, claims(ti.URL, "alice", clock.Now()))
	waiting := make(chan error, 1)
	go func() {
		_, err := a.Authenticate(bearer(token), authn.Required)
		waiting <- err
	}()
	waitFor(t, "the refresh to reach the issuer", func() bool { return ti.jwksFetches.Load() >= 2 })

	closed := make(chan struct{})
	go func() {
		a.Close()
		a.Close() // idempotent
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(time.Minute):
		t.Fatal("Close did not return while a refresh was under way")
	}
	if err := <-waiting; !errors.Is(err, authn.ErrUnknownKey) {
		t.Fatalf("the waiting request: %v", err)
	}

	// Afterwards, known keys still verify, and unknown ones fail at once.
	if _, err := a.Authenticate(bearer(signingKey{"rsa-1", jose.RS256, k.rsa1}.sign(t, claims(ti.URL, "alice", clock.Now()))), authn.Required); err != nil {
		t.Fatalf("a known key after Close: %v", err)
	}
	clock.Advance(time.Minute)
	if _, err := a.Authenticate(bearer(token), authn.Required); !errors.Is(err, authn.ErrUnknownKey) {
		t.Fatalf("an unknown key after Close: %v", err)
	}
}

func TestModeString(t *testing.T) {
	for mode, want := range map[authn.Mode]string{authn.Required: "required", authn.Optional: "optional", authn.Off: "off", authn.Mode(7): "Mode(7)"} {
		if got := mode.String(); got != want {
			t.Errorf("%d: %q, want %q", int(mode), got, want)
		}
	}
}
