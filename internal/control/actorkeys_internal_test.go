package control

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/fakeclock"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/sqlite"
)

func testKEK(t *testing.T) []byte {
	t.Helper()
	kek := make([]byte, kekSize)
	rand.Read(kek)
	return kek
}

func openTestKeys(t *testing.T, s store.Store, kek []byte, now func() time.Time) *ActorKeys {
	t.Helper()
	a, err := OpenActorKeys(t.Context(), ActorKeysConfig{
		Store: s, KEK: kek, TrustDomain: "rampart.test",
		Rotation: time.Hour, PublishAhead: time.Minute, Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func openSQLite(t *testing.T, dir string) store.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSealedKeySetsOpenOnlyWhereTheyBelong(t *testing.T) {
	s := openSQLite(t, t.TempDir())
	kek := testKEK(t)
	a := openTestKeys(t, s, kek, time.Now)
	plain := []byte("-----BEGIN PRIVATE KEY-----\n…")
	sealed := a.seal(plain, 7)
	if bytes.Contains(sealed, plain[:20]) {
		t.Fatal("the sealed form holds the plaintext")
	}
	if got, err := a.open(sealed, 7); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open = %q, %v", got, err)
	}
	if again := a.seal(plain, 7); bytes.Equal(again, sealed) {
		t.Error("two seals of the same key set are identical: the nonce is not fresh")
	}

	otherDomain, err := OpenActorKeys(t.Context(), ActorKeysConfig{Store: openSQLite(t, t.TempDir()), KEK: kek, TrustDomain: "elsewhere.test"})
	if err != nil {
		t.Fatal(err)
	}
	otherKEK := openTestKeys(t, openSQLite(t, t.TempDir()), testKEK(t), time.Now)
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-20] ^= 1
	newFormat := bytes.Clone(sealed)
	newFormat[0] = 2
	for _, tc := range []struct {
		name    string
		keys    *ActorKeys
		sealed  []byte
		version int64
		want    string
	}{
		{"an altered byte", a, flipped, 7, "does not open"},
		{"another version", a, sealed, 6, "does not open"},
		{"another trust domain", otherDomain, sealed, 7, "does not open"},
		{"another KEK", otherKEK, sealed, 7, "give every replica the same copy of " + KEKFile},
		{"a later format", a, newFormat, 7, "format 2"},
		{"a truncated blob", a, sealed[:20], 7, "too short"},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			if _, err := tc.keys.open(tc.sealed, tc.version); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("open = %v, want an error saying %q", err, tc.want)
			}
		})
	}

	// What the store holds is the sealed form: no private key in clear.
	stored, _, err := s.ActorKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored, []byte("PRIVATE KEY")) || stored[0] != sealedFormat {
		t.Errorf("the store holds %q…, want a sealed key set", stored[:min(40, len(stored))])
	}
}

func TestOpenActorKeysRefusesBadConfig(t *testing.T) {
	s := openSQLite(t, t.TempDir())
	kek := testKEK(t)
	for _, tc := range []struct {
		cfg  ActorKeysConfig
		want string
	}{
		{ActorKeysConfig{KEK: kek, TrustDomain: "td"}, "ActorKeysConfig.Store"},
		{ActorKeysConfig{Store: s, KEK: kek[:16], TrustDomain: "td"}, "ActorKeysConfig.KEK"},
		{ActorKeysConfig{Store: s, KEK: kek}, "ActorKeysConfig.TrustDomain"},
		{ActorKeysConfig{Store: s, KEK: kek, TrustDomain: "td", PublishAhead: -time.Second}, "ActorKeysConfig.PublishAhead"},
		{ActorKeysConfig{Store: s, KEK: kek, TrustDomain: "td", Rotation: time.Minute, PublishAhead: time.Minute}, "not shorter than Rotation"},
		{ActorKeysConfig{Store: s, KEK: kek, TrustDomain: "td", KeySet: ca.KeySetConfig{Algorithm: jose.RS256}}, "ActorKeysConfig.KeySet"},
	} {
		if _, err := OpenActorKeys(t.Context(), tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("OpenActorKeys(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
	if _, _, err := s.ActorKeys(t.Context()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused configuration stored keys: %v", err)
	}
}

// gatewayRequest is a GET /v1/actor-key as if over TLS with the SVID of
// service.
func gatewayRequest(t *testing.T, c *ca.CA, service string) *http.Request {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := c.SignCSR(csr, service, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/v1/actor-key", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: chain}
	return r
}

func serve[T any](t *testing.T, h http.Handler, r *http.Request) T {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("%s %s: %d %s", r.Method, r.URL, w.Code, w.Body)
	}
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func kids(t *testing.T, jwks []byte) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

// The schedule, step by step on a fake clock, with two replicas over one
// store taking every step at the same moment.
func TestRotationPublishesTheNextKeyBeforeItSigns(t *testing.T) {
	dir := t.TempDir()
	sa, sb := openSQLite(t, dir), openSQLite(t, dir)
	kek := testKEK(t)
	clk := fakeclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	a := openTestKeys(t, sa, kek, clk.Now)
	b := openTestKeys(t, sb, kek, clk.Now)
	c, err := ca.Generate(spiffeid.RequireTrustDomainFromString("rampart.test"), ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hash := sha256.Sum256([]byte("admin"))
	h, err := New(Config{Store: sb, CA: c, ActorKeys: b, AdminTokenHash: hash[:], Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	bundle := func() Bundle { return serve[Bundle](t, h, httptest.NewRequest("GET", "/v1/bundle", nil)) }
	actorKey := func() ActorKeyResponse { return serve[ActorKeyResponse](t, h, gatewayRequest(t, c, "gateway")) }
	version := func() int64 {
		t.Helper()
		_, v, err := sa.ActorKeys(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// both takes a step on each replica at once, as replicas whose timers
	// fire together do.
	both := func() {
		t.Helper()
		var wg sync.WaitGroup
		for _, k := range []*ActorKeys{a, b} {
			wg.Go(func() {
				if _, err := k.step(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}

	first := actorKey()
	if first.Next != nil || version() != 1 {
		t.Fatalf("a new key set: next %+v, version %d", first.Next, version())
	}
	if want := clk.Now().Add(time.Hour + time.Minute); !first.NotAfter.Equal(want) {
		t.Errorf("not_after %v, want the scheduled promotion of its successor, %v", first.NotAfter, want)
	}
	both()
	if v := version(); v != 1 {
		t.Fatalf("a step before the rotation is due wrote version %d", v)
	}

	clk.Advance(time.Hour)
	both()
	if v := version(); v != 2 {
		t.Fatalf("after the publish step on two replicas, version %d; want 2 (one write)", v)
	}
	published := bundle()
	got := actorKey()
	if got.KeyID != first.KeyID || got.Next == nil {
		t.Fatalf("after publishing: current %s, next %+v; want %s still current and a next key", got.KeyID, got.Next, first.KeyID)
	}
	next := got.Next
	if k := kids(t, published.JWKS); !slices.Equal(k, []string{next.KeyID, first.KeyID}) {
		t.Fatalf("JWKS after publishing: %v, want [next current]", k)
	}
	if want := clk.Now().Add(time.Minute); !next.NotBefore.Equal(want) || !got.NotAfter.Equal(want) {
		t.Errorf("next signs from %v and the current key until %v, want both %v", next.NotBefore, got.NotAfter, want)
	}

	clk.Advance(59 * time.Second)
	both()
	if v := version(); v != 2 {
		t.Fatalf("promoted before PublishAhead had passed (version %d)", v)
	}
	clk.Advance(time.Second)
	both()
	if v := version(); v != 3 {
		t.Fatalf("after the promote step on two replicas, version %d; want 3 (one write)", v)
	}
	promoted := actorKey()
	if promoted.KeyID != next.KeyID || promoted.Next != nil || !promoted.NotBefore.Equal(clk.Now()) {
		t.Fatalf("after promotion: %+v; want %s current since now", promoted.ActorKey, next.KeyID)
	}

	// A verifier that fetched the JWKS when the key was published verifies
	// the first token the gateway signs with it.
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(promoted.JWK, &jwk); err != nil || jwk.IsPublic() || jwk.KeyID != next.KeyID {
		t.Fatalf("JWK %s: %v", promoted.JWK, err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(promoted.Algorithm), Key: jwk}, nil)
	if err != nil {
		t.Fatal(err)
	}
	token, err := jwt.Signed(signer).Claims(jwt.Claims{Subject: "user-1", Expiry: jwt.NewNumericDate(clk.Now().Add(time.Minute))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	json.Unmarshal(published.JWKS, &set)
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(parsed.Headers[0].KeyID)
	var claims jwt.Claims
	if len(keys) != 1 || parsed.Claims(keys[0].Key, &claims) != nil || claims.Subject != "user-1" {
		t.Errorf("the new key's first token does not verify against the JWKS published ahead (%d keys for kid %s)", len(keys), parsed.Headers[0].KeyID)
	}

	// Both writes were changes that watchers see.
	changes, _, err := sb.Changes(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var keyChanges []string
	for _, ch := range changes {
		if ch.Kind == store.ChangeActorKeys {
			keyChanges = append(keyChanges, ch.Key)
		}
	}
	if !slices.Equal(keyChanges, []string{"1", "2", "3"}) {
		t.Errorf("actor_keys changes %v, want versions [1 2 3]", keyChanges)
	}
}

func TestNotAfterCoversAnOverdueRotation(t *testing.T) {
	s := openSQLite(t, t.TempDir())
	clk := fakeclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	a := openTestKeys(t, s, testKEK(t), clk.Now)
	ks, err := a.KeySet(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(3 * time.Hour) // no replica ran the schedule meanwhile
	if got, want := a.notAfter(ks, clk.Now()), clk.Now().Add(time.Minute); !got.Equal(want) {
		t.Errorf("not_after of an overdue key %v, want now+PublishAhead %v: the next key cannot sign before", got, want)
	}
}
