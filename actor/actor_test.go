package actor

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/rampartsec/rampart/internal/fakeclock"
)

const testAudience = "spiffe://example.org"

type testKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

func newTestKey(t testing.TB, alg jose.SignatureAlgorithm) testKey {
	t.Helper()
	var k crypto.Signer
	var err error
	switch alg {
	case jose.ES256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 8)
	rand.Read(id)
	return testKey{id: base64.RawURLEncoding.EncodeToString(id), alg: alg, key: k}
}

func jwks(t testing.TB, keys ...testKey) []byte {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.key.Public(), KeyID: k.id, Algorithm: string(k.alg), Use: "sig"})
	}
	data, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// newClock returns a clock that stands still at a fixed instant until the
// test advances it.
func newClock() *fakeclock.Clock {
	return fakeclock.New(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
}

func newPair(t testing.TB, k testKey, c *fakeclock.Clock) (*Signer, *Verifier) {
	t.Helper()
	s, err := NewSigner(SignerConfig{Issuer: "spiffe://example.org/svc/gateway", Audience: testAudience, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetKey(k.id, k.key); err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(VerifierConfig{Audience: testAudience, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.SetKeys(jwks(t, k)); err != nil {
		t.Fatal(err)
	}
	return s, v
}

var alice = Actor{IP: netip.MustParseAddr("203.0.113.7"), User: "alice", Session: strings.Repeat("ab", 32), Device: "c-0123456789abcdef"}

func TestTokenCarriesTheActorToEveryVerifier(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA} {
		t.Run(string(alg), func(t *testing.T) {
			c := newClock()
			k := newTestKey(t, alg)
			s, v := newPair(t, k, c)
			token, err := s.Token(alice)
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.Verify(token)
			if err != nil {
				t.Fatal(err)
			}
			if got.IP != alice.IP || got.User != "alice" || got.Session != alice.Session || got.Device != alice.Device || got.KeyID != k.id ||
				got.Issuer != "spiffe://example.org/svc/gateway" || !got.Expires.Equal(c.Now().Add(DefaultLifetime)) {
				t.Errorf("verified %+v, want alice's IP, user, session, key %s", got, k.id)
			}
			// A second, independent verifier (another service) agrees.
			v2, _ := NewVerifier(VerifierConfig{Audience: testAudience, Now: c.Now})
			v2.SetKeys(jwks(t, k))
			if got2, err := v2.Verify(token); err != nil || !reflect.DeepEqual(got2, got) {
				t.Errorf("second verifier: %+v, %v", got2, err)
			}
		})
	}
}

func TestSignerReusesATokenUntilHalfItsLifetime(t *testing.T) {
	c := newClock()
	s, _ := newPair(t, newTestKey(t, jose.ES256), c)
	t1, _ := s.Token(alice)
	c.Advance(DefaultLifetime/2 - time.Second)
	t2, _ := s.Token(alice)
	if t1 != t2 {
		t.Error("token not reused within half its lifetime")
	}
	bob := alice
	bob.User = "bob"
	if t3, _ := s.Token(bob); t3 == t1 {
		t.Error("another user got alice's token")
	}
	device := alice
	device.Device = "c-fedcba9876543210"
	if t4, _ := s.Token(device); t4 == t1 {
		t.Error("another device of alice's got the token of the first: a device decision would miss it")
	}
	other := alice
	other.IP = netip.MustParseAddr("203.0.113.8")
	if t4, _ := s.Token(other); t4 == t1 {
		t.Error("another IP got alice's token")
	}
	c.Advance(2 * time.Second)
	if t5, _ := s.Token(alice); t5 == t1 {
		t.Error("token reused past half its lifetime")
	}
}

func TestVerifyRefuses(t *testing.T) {
	c := newClock()
	k := newTestKey(t, jose.ES256)
	s, v := newPair(t, k, c)
	good, _ := s.Token(alice)
	parts := strings.Split(good, ".")
	claimsJSON, _ := base64.RawURLEncoding.DecodeString(parts[1])

	sign := func(alg jose.SignatureAlgorithm, key any, kid string, typ string, cl any) string {
		opts := &jose.SignerOptions{}
		if typ != "" {
			opts = opts.WithType(jose.ContentType(typ))
		}
		sg, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, opts)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(sg).Claims(cl).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	base := func(mod func(*claims)) claims {
		cl := claims{Claims: jwt.Claims{Audience: jwt.Audience{testAudience}, IssuedAt: jwt.NewNumericDate(c.Now()),
			Expiry: jwt.NewNumericDate(c.Now().Add(time.Minute))}, IP: "198.51.100.1"}
		if mod != nil {
			mod(&cl)
		}
		return cl
	}
	forger := newTestKey(t, jose.ES256)
	pubDER, _ := x509.MarshalPKIXPublicKey(k.key.Public())
	hs := func(secret []byte) string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"` + k.id + `","typ":"` + TokenType + `"}`))
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(h + "." + parts[1]))
		return h + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"`+TokenType+`"}`)) + "." + parts[1] + "."
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(claimsJSON), "alice", "admin", 1))) + "." + parts[2]

	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"forged: signed by another key under the real kid", sign(jose.ES256, forger.key, k.id, TokenType, base(nil)), ErrSignature},
		{"tampered claims", tampered, ErrSignature},
		{"alg none", none, ErrAlgorithm},
		{"HS256 keyed with the public key (DER)", hs(pubDER), ErrAlgorithm},
		{"unknown kid", sign(jose.ES256, forger.key, forger.id, TokenType, base(nil)), ErrUnknownKey},
		{"another audience", sign(jose.ES256, k.key, k.id, TokenType, base(func(cl *claims) { cl.Audience = jwt.Audience{"spiffe://other.org"} })), ErrAudience},
		{"expired", sign(jose.ES256, k.key, k.id, TokenType, base(func(cl *claims) {
			cl.IssuedAt = jwt.NewNumericDate(c.Now().Add(-10 * time.Minute))
			cl.Expiry = jwt.NewNumericDate(c.Now().Add(-5 * time.Minute))
		})), ErrExpired},
		{"not valid yet", sign(jose.ES256, k.key, k.id, TokenType, base(func(cl *claims) {
			cl.IssuedAt = jwt.NewNumericDate(c.Now().Add(5 * time.Minute))
			cl.NotBefore = cl.IssuedAt
			cl.Expiry = jwt.NewNumericDate(c.Now().Add(6 * time.Minute))
		})), ErrNotYetValid},
		{"a JWT of another type signed by the same key", sign(jose.ES256, k.key, k.id, "JWT", base(nil)), ErrMalformed},
		{"no typ", sign(jose.ES256, k.key, k.id, "", base(nil)), ErrMalformed},
		{"no expiry", sign(jose.ES256, k.key, k.id, TokenType, base(func(cl *claims) { cl.Expiry = nil })), ErrMalformed},
		{"lifetime of a day", sign(jose.ES256, k.key, k.id, TokenType, base(func(cl *claims) {
			cl.Expiry = jwt.NewNumericDate(c.Now().Add(24 * time.Hour))
		})), ErrMalformed},
		{"no ip", sign(jose.ES256, k.key, k.id, TokenType, base(func(cl *claims) { cl.IP = "" })), ErrMalformed},
		{"garbage", "not.a.token", ErrMalformed},
		{"oversized", strings.Repeat("a", MaxTokenSize+1), ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := v.Verify(tc.token)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %+v, %v; want %v", a, err, tc.want)
			}
		})
	}
	// The good token still passes: the refusals were about the tokens.
	if _, err := v.Verify(good); err != nil {
		t.Fatal(err)
	}
}

func TestReplayedTokenIsRefusedOnceExpiredEvenIfCached(t *testing.T) {
	c := newClock()
	s, v := newPair(t, newTestKey(t, jose.EdDSA), c)
	token, _ := s.Token(alice)
	if _, err := v.Verify(token); err != nil {
		t.Fatal(err)
	}
	c.Advance(DefaultLifetime + DefaultLeeway + time.Second)
	if _, err := v.Verify(token); !errors.Is(err, ErrExpired) {
		t.Fatalf("replayed expired token: %v, want ErrExpired", err)
	}
	v2, _ := NewVerifier(VerifierConfig{Audience: testAudience, Now: c.Now})
	v2.SetKeys(jwks(t, newTestKey(t, jose.EdDSA)))
	if _, err := v2.Verify(token); err == nil {
		t.Fatal("an expired token passed a fresh verifier")
	}
}

func TestRotation(t *testing.T) {
	c := newClock()
	old, next := newTestKey(t, jose.ES256), newTestKey(t, jose.ES256)
	s, v := newPair(t, old, c)
	var unknown atomic.Value
	v.cfg.OnUnknownKey = func(kid string) { unknown.Store(kid) }
	oldToken, _ := s.Token(alice)
	if _, err := v.Verify(oldToken); err != nil {
		t.Fatal(err)
	}
	// The signer moves to the next key before this verifier has it.
	if err := s.SetKey(next.id, next.key); err != nil {
		t.Fatal(err)
	}
	newToken, _ := s.Token(alice)
	if newToken == oldToken {
		t.Fatal("signer kept handing out the old key's token")
	}
	if _, err := v.Verify(newToken); !errors.Is(err, ErrUnknownKey) || unknown.Load() != next.id {
		t.Fatalf("unknown kid: %v, hook got %v", err, unknown.Load())
	}
	// Overlap: both published.
	v.SetKeys(jwks(t, next, old))
	for _, tok := range []string{oldToken, newToken} {
		if _, err := v.Verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	// The old key's overlap ends: its cached token goes with it.
	v.SetKeys(jwks(t, next))
	if _, err := v.Verify(oldToken); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("token of a withdrawn key: %v", err)
	}
	if _, err := v.Verify(newToken); err != nil {
		t.Fatal(err)
	}
}

func TestSetKeysRefusesUnsafeKeys(t *testing.T) {
	v, _ := NewVerifier(VerifierConfig{Audience: testAudience})
	k := newTestKey(t, jose.ES256)
	priv, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.key, KeyID: "x", Algorithm: "ES256"}}})
	hmacKey, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: []byte("secret"), KeyID: "x", Algorithm: "HS256"}}})
	for name, data := range map[string][]byte{"private key": priv, "HMAC key": hmacKey, "not JSON": []byte("{")} {
		if err := v.SetKeys(data); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestVerifierCacheIsBounded(t *testing.T) {
	c := newClock()
	k := newTestKey(t, jose.EdDSA)
	s, _ := newPair(t, k, c)
	v, _ := NewVerifier(VerifierConfig{Audience: testAudience, Now: c.Now, MaxCached: 64})
	v.SetKeys(jwks(t, k))
	for i := range 1000 {
		a := alice
		a.IP = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		tok, _ := s.Token(a)
		if _, err := v.Verify(tok); err != nil {
			t.Fatal(err)
		}
		if n := len(v.cache) + len(v.old); n > 64 {
			t.Fatalf("cache holds %d tokens, bound 64", n)
		}
	}
}

func TestContext(t *testing.T) {
	ctx := NewContext(t.Context(), alice)
	if got, ok := FromContext(ctx); !ok || !reflect.DeepEqual(got, alice) {
		t.Fatalf("FromContext = %+v, %v", got, ok)
	}
	if _, ok := FromContext(t.Context()); ok {
		t.Fatal("actor in an empty context")
	}
	if tok, ok := TokenFromContext(NewTokenContext(t.Context(), "t")); !ok || tok != "t" {
		t.Fatal("token lost")
	}
	if _, ok := TokenFromContext(NewTokenContext(t.Context(), "")); ok {
		t.Fatal("an empty token counts as a token")
	}
	if _, ok := TokenFromContext(t.Context()); ok {
		t.Fatal("token in an empty context")
	}
	if tok, ok := TokenFromContext(WithToken(t.Context(), "old")); !ok || tok != "old" {
		t.Fatal("the deprecated WithToken lost the token")
	}
}

var freshActors atomic.Uint32

func BenchmarkSign(b *testing.B) {
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA} {
		c := newClock()
		s, _ := newPair(b, newTestKey(b, alg), c)
		b.Run(string(alg)+"/fresh", func(b *testing.B) {
			for b.Loop() {
				// A new actor each time, across -count runs too: the
				// signer's cache must miss.
				i := freshActors.Add(1)
				a := alice
				a.IP = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
				if _, err := s.Token(a); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(string(alg)+"/reused", func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Token(alice); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA} {
		c := newClock()
		s, v := newPair(b, newTestKey(b, alg), c)
		token, _ := s.Token(alice)
		b.Run(string(alg)+"/cold", func(b *testing.B) {
			for b.Loop() {
				if _, err := v.verify(token, c.Now()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(string(alg)+"/cached", func(b *testing.B) {
			for b.Loop() {
				if _, err := v.Verify(token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestCachedNamesOnlyTokensVerifiedBefore(t *testing.T) {
	c := newClock()
	s, v := newPair(t, newTestKey(t, jose.ES256), c)
	token, _ := s.Token(alice)
	if _, ok := v.Cached(token); ok {
		t.Fatal("Cached accepted a token never verified")
	}
	if _, err := v.Verify(token); err != nil {
		t.Fatal(err)
	}
	if a, ok := v.Cached(token); !ok || a.User != "alice" {
		t.Fatalf("Cached after Verify: %+v %v", a, ok)
	}
	c.Advance(DefaultLifetime + DefaultLeeway + time.Second)
	if _, ok := v.Cached(token); ok {
		t.Fatal("Cached accepted an expired token")
	}
}
