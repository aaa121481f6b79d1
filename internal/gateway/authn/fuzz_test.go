package authn_test

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/rampartsec/rampart/internal/gateway/authn"
)

// FuzzAuthenticate feeds arbitrary Authorization header values to
// Authenticate, against a real test issuer. It must never panic; a refusal
// must wrap one of the package's sentinel errors and come with the
// anonymous principal; and an acceptance must be of a token whose claims
// the issuer signed (anything else is a forgery), with the principal those
// claims and the token's hash give. The clock stands still, so unknown
// kids never cause a fetch after the first: fuzzing makes no network
// traffic. Seeds are in testdata/fuzz/FuzzAuthenticate (alg none, HS256,
// random signatures, crit and b64 headers, embedded JWK, five parts,
// non-canonical base64, wrong claim types, oversized, control bytes…), plus
// the valid and subtly invalid tokens added below.
func FuzzAuthenticate(f *testing.F) {
	k := keys(f)
	rsaKey := signingKey{"rsa-1", jose.RS256, k.rsa1}
	ecKey := signingKey{"ec-1", jose.ES256, k.ec1}
	ti := newTestIssuer(f, rsaKey, ecKey)
	clock := newClock()
	a := newAuthenticator(f, clock, authn.Config{Issuers: []authn.IssuerConfig{ti.config()}})
	now := clock.Now()

	// signed holds the payloads the issuer signed and the subject of each.
	signed := map[string]string{}
	mint := func(key signingKey, c jwt.Claims) string {
		token := key.sign(f, c)
		payload, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
		if err != nil {
			f.Fatal(err)
		}
		signed[string(payload)] = c.Subject
		return token
	}
	f.Add("Bearer " + mint(rsaKey, claims(ti.URL, "alice", now)))
	f.Add("Bearer " + mint(ecKey, claims(ti.URL, "bob", now)))
	expired := claims(ti.URL, "carol", now)
	expired.Expiry = jwt.NewNumericDate(now.Add(-time.Hour))
	f.Add("Bearer " + mint(rsaKey, expired))
	otherAudience := claims(ti.URL, "dave", now)
	otherAudience.Audience = jwt.Audience{"billing-api"}
	f.Add("Bearer " + mint(ecKey, otherAudience))
	f.Add("Bearer " + signingKey{"ghost", jose.RS256, k.rsaOther}.sign(f, claims(ti.URL, "mallory", now)))

	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", header)
		p, err := a.Authenticate(r, authn.Required)
		if err != nil {
			if p != (authn.Principal{}) {
				t.Fatalf("refused (%v) with the principal %+v", err, p)
			}
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error %v wraps no sentinel", err)
		}

		scheme, token, _ := strings.Cut(header, " ")
		token = strings.TrimLeft(token, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			t.Fatalf("accepted the scheme %q", scheme)
		}
		parts := strings.Split(token, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted a token of %d parts", len(parts))
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatalf("accepted a payload that is not base64url: %v", err)
		}
		sub, ok := signed[string(payload)]
		if !ok {
			t.Fatalf("accepted claims the issuer never signed: %s", payload)
		}
		want := authn.Principal{Subject: sub, Issuer: ti.URL, Method: authn.MethodJWT, CredentialHash: sha256Hex(token), Expires: p.Expires}
		if p != want {
			t.Fatalf("principal %+v, want %+v", p, want)
		}
		if got := ti.jwksFetches.Load(); got != 1 {
			t.Fatalf("%d JWKS fetches", got)
		}
	})
}
