package control_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/postgres"
	"github.com/rampartsec/rampart/internal/store/sqlite"
)

// newKeysEnv is newEnv with the actor-token keys kept in the store, and the
// given gateway services.
func newKeysEnv(t *testing.T, gateways ...string) (*env, *control.ActorKeys) {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c, err := ca.Generate(spiffeid.RequireTrustDomainFromString("rampart.test"), ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := control.OpenActorKeys(t.Context(), control.ActorKeysConfig{
		Store: s, KEK: bytes.Repeat([]byte{7}, 32), TrustDomain: "rampart.test",
	})
	if err != nil {
		t.Fatal(err)
	}
	token, hash := control.NewAdminToken()
	h, err := control.New(control.Config{
		Store: s, CA: c, ActorKeys: keys, GatewayServices: gateways, AdminTokenHash: hash,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{url: srv.URL, admin: token, store: s, ca: c, h: h}, keys
}

// joinAs joins service through the TLS API and returns a client that
// presents its SVID.
func (e *env) joinAs(t *testing.T, base, service string) *http.Client {
	t.Helper()
	key, csr := keyAndCSR(t)
	joined := decode[control.SVIDResponse](t, post(t, e.tlsClient(nil), base+"/v1/svid", "",
		control.SVIDRequest{Token: e.joinToken(t, service, ""), Service: service, CSR: csr}), http.StatusCreated)
	return e.tlsClient(&tls.Certificate{Certificate: [][]byte{parsePEMCerts(t, joined.SVIDPEM)[0].Raw}, PrivateKey: key})
}

// verifyWithBundle verifies token against the JWKS of GET /v1/bundle, as a
// service does.
func verifyWithBundle(t *testing.T, b control.Bundle, token string) (jwt.Claims, error) {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b.JWKS, &set); err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		return jwt.Claims{}, err
	}
	keys := set.Key(parsed.Headers[0].KeyID)
	if len(keys) != 1 {
		return jwt.Claims{}, fmt.Errorf("no key %s in the JWKS", parsed.Headers[0].KeyID)
	}
	var claims jwt.Claims
	return claims, parsed.Claims(keys[0].Key, &claims)
}

func signWith(t *testing.T, k control.ActorKeyResponse, claims jwt.Claims) string {
	t.Helper()
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(k.JWK, &jwk); err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Algorithm), Key: jwk},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	token, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func TestOnlyAGatewaySVIDGetsTheActorKey(t *testing.T) {
	e, _ := newKeysEnv(t)
	base := e.serveTLS(t)
	gateway := e.joinAs(t, base, "gateway")
	orders := e.joinAs(t, base, "orders")

	t.Run("a gateway gets the current key, whose tokens verify against the bundle", func(t *testing.T) {
		r := get(t, gateway, base+"/v1/actor-key")
		k := decode[control.ActorKeyResponse](t, r, http.StatusOK)
		if cc := r.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q, want no-store for a private key", cc)
		}
		var jwk jose.JSONWebKey
		if err := json.Unmarshal(k.JWK, &jwk); err != nil || jwk.IsPublic() || jwk.KeyID != k.KeyID || jwk.Algorithm != k.Algorithm || jwk.Use != "sig" {
			t.Fatalf("jwk %s (%v): want the private key with kid %s, alg %s, use sig", k.JWK, err, k.KeyID, k.Algorithm)
		}
		if k.Algorithm != "EdDSA" || k.NotBefore.IsZero() || !k.NotAfter.After(time.Now().Add(23*time.Hour)) || k.Next != nil {
			t.Errorf("key %+v: want EdDSA, signing since it was made and for about a day, and no next key", k.ActorKey)
		}
		if k.MaxTokenLifetimeSeconds != int64(ca.DefaultMaxTokenLifetime/time.Second) {
			t.Errorf("max_token_lifetime_seconds %d", k.MaxTokenLifetimeSeconds)
		}
		now := time.Now()
		token := signWith(t, k, jwt.Claims{Subject: "user-42", IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))})
		b := decode[control.Bundle](t, get(t, e.tlsClient(nil), base+"/v1/bundle"), http.StatusOK)
		claims, err := verifyWithBundle(t, b, token)
		if err != nil || claims.Subject != "user-42" {
			t.Errorf("a token signed with the gateway's key against the bundle: %+v, %v", claims, err)
		}
		if strings.Contains(string(b.JWKS), `"d"`) {
			t.Errorf("the public bundle holds a private key: %s", b.JWKS)
		}
	})
	t.Run("another service's SVID is forbidden", func(t *testing.T) {
		eb := wantError(t, get(t, orders, base+"/v1/actor-key"), http.StatusForbidden, "forbidden")
		if !strings.Contains(eb.Error, "orders is not a gateway") {
			t.Errorf("error %q", eb.Error)
		}
	})
	t.Run("the admin token is forbidden", func(t *testing.T) {
		req, _ := http.NewRequest("GET", base+"/v1/actor-key", nil)
		req.Header.Set("Authorization", "Bearer "+e.admin)
		resp, err := e.tlsClient(nil).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		eb := wantError(t, response{status: resp.StatusCode, header: resp.Header, body: body}, http.StatusForbidden, "forbidden")
		if !strings.Contains(eb.Error, "admin token cannot") {
			t.Errorf("error %q", eb.Error)
		}
		// Over plain HTTP too.
		wantError(t, e.do(t, "GET", "/v1/actor-key", nil), http.StatusForbidden, "forbidden")
	})
	t.Run("no client certificate is unauthorized", func(t *testing.T) {
		wantError(t, get(t, e.tlsClient(nil), base+"/v1/actor-key"), http.StatusUnauthorized, "unauthorized")
		wantError(t, e.doWith(t, "GET", "/v1/actor-key", nil, "Bearer rat_wrong", ""), http.StatusUnauthorized, "unauthorized")
	})
	t.Run("a revoked gateway is refused", func(t *testing.T) {
		if err := e.store.SetServiceRevoked(t.Context(), "gateway", true); err != nil {
			t.Fatal(err)
		}
		defer e.store.SetServiceRevoked(t.Context(), "gateway", false)
		wantError(t, get(t, gateway, base+"/v1/actor-key"), http.StatusForbidden, control.CodeServiceRevoked)
	})
}

func TestTheGatewayServicesAreConfigured(t *testing.T) {
	e, _ := newKeysEnv(t, "edge", "edge-eu")
	base := e.serveTLS(t)
	decode[control.ActorKeyResponse](t, get(t, e.joinAs(t, base, "edge-eu"), base+"/v1/actor-key"), http.StatusOK)
	wantError(t, get(t, e.joinAs(t, base, "gateway"), base+"/v1/actor-key"), http.StatusForbidden, "forbidden")

	c, _ := ca.Generate(spiffeid.RequireTrustDomainFromString("rampart.test"), ca.Config{})
	_, hash := control.NewAdminToken()
	if _, err := control.New(control.Config{Store: e.store, CA: c, AdminTokenHash: hash, GatewayServices: []string{"Edge"}}); err == nil ||
		!strings.Contains(err.Error(), "Config.GatewayServices[0]") {
		t.Errorf("an invalid gateway name: %v, want an error naming Config.GatewayServices[0]", err)
	}
}

func TestInitKeepsTheActorKeysSealedInTheStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := control.Init(t.Context(), dir, "example.org"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, control.CADir, control.KEKFile))
	if err != nil || fi.Mode() != 0o600 {
		t.Fatalf("%s: %v, %v; want a 0600 file", control.KEKFile, fi, err)
	}
	if _, err := os.Stat(filepath.Join(dir, control.CADir, ca.KeySetFile)); !os.IsNotExist(err) {
		t.Errorf("%s exists (%v): the keys belong in the store", ca.KeySetFile, err)
	}
	data, err := control.OpenData(t.Context(), control.OpenConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer data.Store.Close()
	sealed, version, err := data.Store.ActorKeys(t.Context())
	if err != nil || version != 1 {
		t.Fatalf("stored actor keys: version %d, %v", version, err)
	}
	if bytes.Contains(sealed, []byte("PRIVATE KEY")) {
		t.Error("the store holds the private keys in clear")
	}
	ks, err := data.ActorKeys.KeySet(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if ks.Current().Algorithm != jose.EdDSA {
		t.Errorf("current key %+v", ks.Current())
	}
}

func TestOpenDataMovesAnOldDataDirectorysKeysIntoTheStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := control.Init(t.Context(), dir, "example.org"); err != nil {
		t.Fatal(err)
	}
	// Make it what Init made before: the keys in actor-keys.pem, none in
	// the store, no KEK.
	caDir := filepath.Join(dir, control.CADir)
	old, err := ca.NewKeySet(ca.KeySetConfig{}, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Save(caDir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{filepath.Join(caDir, control.KEKFile), filepath.Join(dir, sqlite.FileName),
		filepath.Join(dir, sqlite.FileName+"-wal"), filepath.Join(dir, sqlite.FileName+"-shm")} {
		if err := os.Remove(name); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}

	open := func() (*control.Data, error) {
		var logs bytes.Buffer
		data, err := control.OpenData(t.Context(), control.OpenConfig{Dir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		t.Logf("OpenData logged:\n%s", logs.String())
		if err == nil {
			t.Cleanup(func() { data.Store.Close() })
		}
		return data, err
	}
	data, err := open()
	if err != nil {
		t.Fatal(err)
	}
	ks, err := data.ActorKeys.KeySet(t.Context())
	if err != nil || ks.Current().ID != old.Current().ID {
		t.Fatalf("the store's current key after the upgrade: %v; want %s, the old file's", err, old.Current().ID)
	}
	fi, err := os.Stat(filepath.Join(caDir, control.KEKFile))
	if err != nil || fi.Mode() != 0o600 {
		t.Fatalf("KEK made by the upgrade: %v, %v; want a 0600 file", fi, err)
	}
	data.Store.Close()

	// The file is no longer authoritative: a restart reads the store, even
	// if the file changes.
	other, err := ca.NewKeySet(ca.KeySetConfig{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Save(caDir); err != nil {
		t.Fatal(err)
	}
	data, err = open()
	if err != nil {
		t.Fatal(err)
	}
	if ks, err := data.ActorKeys.KeySet(t.Context()); err != nil || ks.Current().ID != old.Current().ID {
		t.Fatalf("after a restart: %v; want the store's key %s", err, old.Current().ID)
	}
	data.Store.Close()

	// Without the KEK the store's keys cannot be opened, and OpenData says
	// what to do rather than make another.
	if err := os.Remove(filepath.Join(caDir, control.KEKFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := open(); err == nil || !strings.Contains(err.Error(), "copy "+control.KEKFile) {
		t.Fatalf("OpenData without the KEK: %v, want advice to copy %s", err, control.KEKFile)
	}
	if _, err := os.Stat(filepath.Join(caDir, control.KEKFile)); !os.IsNotExist(err) {
		t.Errorf("OpenData made a new KEK over a store sealed with another: %v", err)
	}
}

// keysReplica is a control-plane process over the shared database, with its
// actor keys on a schedule.
type keysReplica struct {
	url, admin string
	store      store.Store
	keys       *control.ActorKeys
	stop       func() // stops the schedule
}

func startKeysReplica(t *testing.T, dsn string, c *ca.CA, kek []byte, rotation, ahead time.Duration) *keysReplica {
	t.Helper()
	s, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	keys, err := control.OpenActorKeys(t.Context(), control.ActorKeysConfig{
		Store: s, KEK: kek, TrustDomain: c.TrustDomain().Name(),
		KeySet:   ca.KeySetConfig{Algorithm: jose.EdDSA},
		Rotation: rotation, PublishAhead: ahead, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	admin, hash := control.NewAdminToken()
	h, err := control.New(control.Config{Store: s, CA: c, ActorKeys: keys, AdminTokenHash: hash, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := keys.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	stop := func() {
		cancel()
		<-done
	}
	t.Cleanup(func() {
		stop()
		srv.Close()
		s.Close()
	})
	return &keysReplica{url: srv.URL, admin: admin, store: s, keys: keys, stop: stop}
}

func (r *keysReplica) get(t *testing.T, path string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", r.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+r.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s %v", path, resp.StatusCode, body, err)
	}
	return body
}

func (r *keysReplica) jwks(t *testing.T) []byte {
	t.Helper()
	var b control.Bundle
	if err := json.Unmarshal(r.get(t, "/v1/bundle"), &b); err != nil {
		t.Fatal(err)
	}
	return b.JWKS
}

// keyTimes returns when each key of ks became current, oldest first, and
// whether a next key is published.
func keyTimes(t *testing.T, ks *ca.KeySet) (created []time.Time, next bool) {
	t.Helper()
	data, err := ks.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		h, ok := block.Headers["Created"]
		if !ok {
			next = true
			continue
		}
		c, err := time.Parse(time.RFC3339Nano, h)
		if err != nil {
			t.Fatal(err)
		}
		created = append(created, c)
	}
	slices.SortFunc(created, time.Time.Compare)
	return created, next
}

func TestReplicasOverOneDatabaseRotateOnceAndPublishTheSameKeys(t *testing.T) {
	dsn := postgresDSN(t)
	c, err := ca.Generate(spiffeid.RequireTrustDomainFromString("rampart.test"), ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	kek := bytes.Repeat([]byte{42}, 32)
	const rotation, ahead = 600 * time.Millisecond, 200 * time.Millisecond
	a := startKeysReplica(t, dsn, c, kek, rotation, ahead)
	b := startKeysReplica(t, dsn, c, kek, rotation, ahead)

	var start control.WatchResult
	if err := json.Unmarshal(b.get(t, "/v1/watch?timeout=0s"), &start); err != nil {
		t.Fatal(err)
	}
	// Let both schedules race through a few rotations.
	deadline := time.Now().Add(time.Minute)
	for {
		ks, err := a.keys.KeySet(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if created, _ := keyTimes(t, ks); len(created) >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 3 rotations in a minute with a %v schedule", rotation)
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.stop()
	b.stop()

	t.Run("both replicas publish the same JWKS", func(t *testing.T) {
		ja, jb := a.jwks(t), b.jwks(t)
		if !bytes.Equal(ja, jb) {
			t.Errorf("replicas publish different JWKS:\nA %s\nB %s", ja, jb)
		}
	})
	ks, err := b.keys.KeySet(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	created, next := keyTimes(t, ks)
	t.Run("each step was taken once, on schedule", func(t *testing.T) {
		for i := 1; i < len(created); i++ {
			if gap := created[i].Sub(created[i-1]); gap < rotation+ahead {
				t.Errorf("key %d became current %v after key %d, want at least Rotation+PublishAhead %v", i, gap, i-1, rotation+ahead)
			}
		}
		changes, _, err := b.store.Changes(t.Context(), 0)
		if err != nil {
			t.Fatal(err)
		}
		var writes int
		for _, ch := range changes {
			if ch.Kind == store.ChangeActorKeys {
				writes++
			}
		}
		// One write to seed, one per publication, one per promotion: a
		// replica that overwrote another's step would add a write and lose
		// a key.
		want := 1 + 2*(len(created)-1)
		if next {
			want++
		}
		if writes != want {
			t.Errorf("%d actor_keys writes for %d keys (next published: %v), want %d", writes, len(created), next, want)
		}
	})
	t.Run("a watcher learns of the rotations", func(t *testing.T) {
		var w control.WatchResult
		if err := json.Unmarshal(b.get(t, fmt.Sprintf("/v1/watch?since=%d", start.Revision)), &w); err != nil {
			t.Fatal(err)
		}
		var kinds []store.ChangeKind
		for _, ch := range w.Changes {
			kinds = append(kinds, ch.Kind)
		}
		if len(kinds) == 0 || slices.ContainsFunc(kinds, func(k store.ChangeKind) bool { return k != store.ChangeActorKeys }) {
			t.Errorf("changes seen by the watcher: %v, want actor_keys ones", kinds)
		}
	})
}

// BenchmarkActorKeysKeySet measures what GET /v1/bundle and GET
// /v1/actor-key add to read the key set fresh: one row read from the store
// (SQLite here), no decryption while the version is unchanged.
func BenchmarkActorKeysKeySet(b *testing.B) {
	s, err := sqlite.Open(context.Background(), sqlite.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	keys, err := control.OpenActorKeys(b.Context(), control.ActorKeysConfig{Store: s, KEK: bytes.Repeat([]byte{1}, 32), TrustDomain: "rampart.test"})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := keys.KeySet(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}
