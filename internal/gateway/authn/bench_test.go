package authn_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/rampartsec/rampart/internal/gateway/authn"
)

// BenchmarkAuthenticate measures Authenticate on a valid credential, as a
// gateway route calls it: a returning token found in the verified-token
// cache (cache=hit), the same token with the cache disabled, so that every
// call parses the JWS, checks its signature and claims (cache=miss, the
// cost of a token's first presentation), and an API key. The JWKS is
// already held: no fetch is measured.
func BenchmarkAuthenticate(b *testing.B) {
	k := keys(b)
	for _, key := range []signingKey{
		{"rsa-1", jose.RS256, k.rsa1}, // RSA 2048
		{"ec-1", jose.ES256, k.ec1},   // P-256
	} {
		ti := newTestIssuer(b, key)
		clock := newClock()
		r := bearer(key.sign(b, claims(ti.URL, "alice", clock.Now())))
		for _, cache := range []string{"hit", "miss"} {
			b.Run("method=jwt/alg="+string(key.alg)+"/cache="+cache, func(b *testing.B) {
				a := newAuthenticator(b, clock, authn.Config{Issuers: []authn.IssuerConfig{ti.config()}})
				if cache == "miss" {
					authn.SetTokenCacheCapacity(a, 0)
				}
				if _, err := a.Authenticate(r, authn.Required); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := a.Authenticate(r, authn.Required); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}

	b.Run("method=api-key", func(b *testing.B) {
		const key = "rk_5b1f0e6c2d8a4b3f9e7c1a2d"
		apiKeys := []authn.APIKey{{Name: "billing-batch", SHA256: sha256Hex(key)}}
		for i := range 100 { // the lookup costs the same with many keys
			apiKeys = append(apiKeys, authn.APIKey{Name: "other", SHA256: sha256Hex(key + string(rune('a'+i%26)) + string(rune('a'+i/26)))})
		}
		a := newAuthenticator(b, newClock(), authn.Config{APIKeys: apiKeys})
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("X-API-Key", key)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Authenticate(r, authn.Required); err != nil {
				b.Fatal(err)
			}
		}
	})
}
