package ca_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/rampartsec/rampart/internal/ca"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// signJWT signs a token with k, as a gateway would.
func signJWT(t *testing.T, k ca.SigningKey, claims jwt.Claims) string {
	t.Helper()
	signer, err := jose.NewSigner(k.JOSE(), (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	token, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// verifyJWT verifies a token against a published JWKS, as a service would:
// find the key by the token's kid, check the signature, then the claims.
func verifyJWT(token string, jwks []byte, now time.Time) (jwt.Claims, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		return jwt.Claims{}, err
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		return jwt.Claims{}, err
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		return jwt.Claims{}, &unknownKidError{tok.Headers[0].KeyID}
	}
	if !keys[0].IsPublic() {
		return jwt.Claims{}, &unknownKidError{"private key published: " + keys[0].KeyID}
	}
	var claims jwt.Claims
	if err := tok.Claims(keys[0].Key, &claims); err != nil {
		return jwt.Claims{}, err
	}
	return claims, claims.ValidateWithLeeway(jwt.Expected{AnyAudience: jwt.Audience{"svc/orders"}, Time: now}, 0)
}

type unknownKidError struct{ kid string }

func (e *unknownKidError) Error() string { return "no published key with kid " + e.kid }

func claimsAt(now time.Time, lifetime time.Duration) jwt.Claims {
	return jwt.Claims{
		Subject:  "user-42",
		Audience: jwt.Audience{"svc/orders"},
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(lifetime)),
	}
}

func jwksKids(t *testing.T, jwks []byte) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatalf("JWKS does not parse: %v", err)
	}
	var kids []string
	for _, k := range set.Keys {
		if !k.IsPublic() {
			t.Errorf("JWKS holds a private key (%s)", k.KeyID)
		}
		if k.Use != "sig" || (k.Algorithm != "ES256" && k.Algorithm != "EdDSA") {
			t.Errorf("key %s: use %q alg %q, want sig with ES256 or EdDSA", k.KeyID, k.Use, k.Algorithm)
		}
		kids = append(kids, k.KeyID)
	}
	return kids
}

func TestKeySetSignsVerifiableTokens(t *testing.T) {
	for _, tc := range []struct {
		alg     jose.SignatureAlgorithm
		keyType string
	}{{"", "ed25519.PrivateKey"}, {jose.ES256, "*ecdsa.PrivateKey"}, {jose.EdDSA, "ed25519.PrivateKey"}} {
		name := string(tc.alg)
		if name == "" {
			name = "default"
		}
		t.Run("a token signed with the "+name+" key verifies against the JWKS", func(t *testing.T) {
			ks, err := ca.NewKeySet(ca.KeySetConfig{Algorithm: tc.alg}, t0)
			if err != nil {
				t.Fatal(err)
			}
			cur := ks.Current()
			want := tc.alg
			if want == "" {
				want = jose.EdDSA
			}
			if cur.Algorithm != want {
				t.Errorf("Algorithm %q, want %q", cur.Algorithm, want)
			}
			if got := fmt.Sprintf("%T", cur.Key); got != tc.keyType {
				t.Errorf("key type %s, want %s", got, tc.keyType)
			}
			token := signJWT(t, cur, claimsAt(t0, time.Minute))
			jwks, err := ks.JWKS(t0)
			if err != nil {
				t.Fatal(err)
			}
			if kids := jwksKids(t, jwks); !slices.Equal(kids, []string{cur.ID}) {
				t.Errorf("JWKS kids %v, want [%s]", kids, cur.ID)
			}
			claims, err := verifyJWT(token, jwks, t0.Add(time.Second))
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if claims.Subject != "user-42" {
				t.Errorf("subject %q", claims.Subject)
			}
		})
	}
	t.Run("a token from a key outside the set does not verify", func(t *testing.T) {
		ks, _ := ca.NewKeySet(ca.KeySetConfig{}, t0)
		stranger, _ := ca.NewKeySet(ca.KeySetConfig{}, t0)
		jwks, _ := ks.JWKS(t0)
		if _, err := verifyJWT(signJWT(t, stranger.Current(), claimsAt(t0, time.Minute)), jwks, t0); err == nil {
			t.Fatal("a stranger's token verified")
		}
	})
	t.Run("a token with a known kid but another key's signature does not verify", func(t *testing.T) {
		ks, _ := ca.NewKeySet(ca.KeySetConfig{}, t0)
		forger, _ := ca.NewKeySet(ca.KeySetConfig{}, t0)
		forged := forger.Current()
		forged.ID = ks.Current().ID // claim the victim's kid
		jwks, _ := ks.JWKS(t0)
		if _, err := verifyJWT(signJWT(t, forged, claimsAt(t0, time.Minute)), jwks, t0); err == nil {
			t.Fatal("a forged token verified")
		}
	})
}

func TestKeySetRotation(t *testing.T) {
	const lifetime = 5 * time.Minute
	ks, err := ca.NewKeySet(ca.KeySetConfig{MaxTokenLifetime: lifetime}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ks.Overlap(), lifetime+ca.Backdate; got != want {
		t.Fatalf("Overlap %v, want %v", got, want)
	}
	first := ks.Current()
	t1 := t0.Add(time.Hour)
	// The last token the first key signs, just before rotation, with the
	// longest lifetime.
	lastOld := signJWT(t, first, claimsAt(t1, lifetime))

	second, err := ks.Rotate(t1)
	if err != nil {
		t.Fatal(err)
	}
	if second.ID == first.ID || ks.Current().ID != second.ID || !second.Created.Equal(t1) {
		t.Fatalf("after Rotate: current %s (created %v), first %s; want a new current key created at t1", ks.Current().ID, second.Created, first.ID)
	}
	newTok := signJWT(t, second, claimsAt(t1, lifetime))

	t.Run("during the overlap both keys are published, newest first", func(t *testing.T) {
		for _, at := range []time.Time{t1, t1.Add(lifetime), t1.Add(ks.Overlap() - time.Nanosecond)} {
			jwks, err := ks.JWKS(at)
			if err != nil {
				t.Fatal(err)
			}
			if kids := jwksKids(t, jwks); !slices.Equal(kids, []string{second.ID, first.ID}) {
				t.Errorf("at t1+%v: kids %v, want [new old]", at.Sub(t1), kids)
			}
		}
		jwks, _ := ks.JWKS(t1.Add(lifetime - time.Second))
		if _, err := verifyJWT(lastOld, jwks, t1.Add(lifetime-time.Second)); err != nil {
			t.Errorf("the old key's last token, still unexpired, does not verify: %v", err)
		}
		if _, err := verifyJWT(newTok, jwks, t1.Add(time.Second)); err != nil {
			t.Errorf("the new key's token does not verify: %v", err)
		}
	})
	t.Run("after the overlap the old key is dropped", func(t *testing.T) {
		after := t1.Add(ks.Overlap())
		jwks, err := ks.JWKS(after)
		if err != nil {
			t.Fatal(err)
		}
		if kids := jwksKids(t, jwks); !slices.Equal(kids, []string{second.ID}) {
			t.Errorf("kids %v, want only the current key", kids)
		}
		_, err = verifyJWT(lastOld, jwks, t1.Add(time.Second)) // even with a lenient clock
		if _, ok := err.(*unknownKidError); !ok {
			t.Errorf("old token against the later JWKS: %v, want unknown kid", err)
		}
	})
	t.Run("Rotate forgets keys whose overlap has ended", func(t *testing.T) {
		t2 := t1.Add(24 * time.Hour)
		third, err := ks.Rotate(t2)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "keys")
		if err := ks.Save(dir); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(filepath.Join(dir, ca.KeySetFile))
		if n := bytes.Count(data, []byte("BEGIN PRIVATE KEY")); n != 2 {
			t.Errorf("saved %d keys, want 2 (the first one forgotten)", n)
		}
		jwks, _ := ks.JWKS(t2)
		if kids := jwksKids(t, jwks); !slices.Equal(kids, []string{third.ID, second.ID}) {
			t.Errorf("kids %v, want [third second]", kids)
		}
	})
	t.Run("Rotate refuses a time before the current key", func(t *testing.T) {
		if _, err := ks.Rotate(t0); err == nil || !strings.Contains(err.Error(), "before the current key") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestKeySetAlgorithmChange(t *testing.T) {
	ks, err := ca.NewKeySet(ca.KeySetConfig{Algorithm: jose.ES256}, t0)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "keys")
	if err := ks.Save(dir); err != nil {
		t.Fatal(err)
	}
	ed, err := ca.LoadKeySet(dir, ca.KeySetConfig{Algorithm: jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	if ed.Current().Algorithm != jose.ES256 {
		t.Fatalf("loaded current key is %s, want the saved ES256 key", ed.Current().Algorithm)
	}
	oldTok := signJWT(t, ed.Current(), claimsAt(t0, time.Minute))
	k, err := ed.Rotate(t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if k.Algorithm != jose.EdDSA {
		t.Fatalf("new key %s, want EdDSA", k.Algorithm)
	}
	jwks, _ := ed.JWKS(t0.Add(2 * time.Second))
	if _, err := verifyJWT(oldTok, jwks, t0.Add(2*time.Second)); err != nil {
		t.Errorf("ES256 token after the switch to EdDSA: %v", err)
	}
	if _, err := verifyJWT(signJWT(t, k, claimsAt(t0, time.Minute)), jwks, t0.Add(2*time.Second)); err != nil {
		t.Errorf("EdDSA token: %v", err)
	}
}

func TestKeySetSaveLoad(t *testing.T) {
	ks, err := ca.NewKeySet(ca.KeySetConfig{Algorithm: jose.EdDSA}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Rotate(t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "data", "keys")
	if err := ks.Save(dir); err != nil {
		t.Fatalf("Save: %v", err)
	}
	path := filepath.Join(dir, ca.KeySetFile)
	for p, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode(), want)
		}
	}
	t.Run("Load gives back the same keys", func(t *testing.T) {
		loaded, err := ca.LoadKeySet(dir, ca.KeySetConfig{Algorithm: jose.EdDSA})
		if err != nil {
			t.Fatalf("LoadKeySet: %v", err)
		}
		at := t0.Add(2 * time.Minute)
		a, _ := ks.JWKS(at)
		b, _ := loaded.JWKS(at)
		if !bytes.Equal(a, b) {
			t.Errorf("JWKS after load differs:\n%s\n%s", a, b)
		}
		cur := loaded.Current()
		if cur.ID != ks.Current().ID || !cur.Created.Equal(ks.Current().Created) {
			t.Errorf("current key after load %s@%v, want %s@%v", cur.ID, cur.Created, ks.Current().ID, ks.Current().Created)
		}
		if _, err := verifyJWT(signJWT(t, cur, claimsAt(at, time.Minute)), a, at); err != nil {
			t.Errorf("loaded key's token against the saved set's JWKS: %v", err)
		}
	})
	t.Run("Save replaces the file", func(t *testing.T) {
		if _, err := ks.Rotate(t0.Add(2 * time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := ks.Save(dir); err != nil {
			t.Fatal(err)
		}
		loaded, err := ca.LoadKeySet(dir, ca.KeySetConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if loaded.Current().ID != ks.Current().ID {
			t.Error("Save did not replace the file")
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("%d entries in the directory, want 1 (no temporary files)", len(entries))
		}
	})

	saved, _ := os.ReadFile(path)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	for _, tc := range []struct {
		name string
		data []byte
		perm os.FileMode
		want string
	}{
		{"a file readable by others", saved, 0o644, "want 0600"},
		{"a Kid header that is not the key's", bytes.Replace(saved, []byte("Kid: "), []byte("Kid: x"), 1), 0o600, "not the key's thumbprint"},
		{"an RSA key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"Kid": "k", "Created": t0.Format(time.RFC3339)}, Bytes: rsaDER}), 0o600, "never RSA"},
		{"an empty file", nil, 0o600, "no keys"},
		{"trailing garbage", append(bytes.Clone(saved), "junk"...), 0o600, "after the last PEM block"},
		{"a key with neither Created nor Published header", bytes.Replace(bytes.Replace(saved, []byte("Created: "), []byte("Made: "), 1),
			[]byte("Published: "), []byte("Shown: "), 1), 0o600, "no Created nor Published header"},
		{"a malformed Created header", bytes.Replace(saved, []byte("Created: "), []byte("Created: x"), 1), 0o600, "Created header"},
		{"two next keys", bytes.ReplaceAll(saved, []byte("Created: "), []byte("Made: ")), 0o600, "both next"},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "keys")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(dir, ca.KeySetFile), tc.data, tc.perm)
			os.Chmod(filepath.Join(dir, ca.KeySetFile), tc.perm)
			ks, err := ca.LoadKeySet(dir, ca.KeySetConfig{})
			if err == nil || ks != nil {
				t.Fatalf("LoadKeySet = %v, %v; want an error", ks, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestKeySetConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  ca.KeySetConfig
		want string
	}{
		{ca.KeySetConfig{Algorithm: jose.RS256}, "KeySetConfig.Algorithm"},
		{ca.KeySetConfig{Algorithm: jose.HS256}, "KeySetConfig.Algorithm"},
		{ca.KeySetConfig{MaxTokenLifetime: -time.Second}, "KeySetConfig.MaxTokenLifetime"},
	} {
		if _, err := ca.NewKeySet(tc.cfg, t0); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewKeySet(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
}

func TestKeySetConcurrentUse(t *testing.T) {
	ks, err := ca.NewKeySet(ca.KeySetConfig{Algorithm: jose.EdDSA}, t0)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "keys")
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 20 {
				now := t0.Add(time.Duration(i) * time.Minute)
				switch g {
				case 0:
					if _, err := ks.Rotate(now); err != nil {
						t.Error(err)
					}
				case 1:
					if err := ks.Save(dir); err != nil {
						t.Error(err)
					}
				default:
					_ = ks.Current()
					if _, err := ks.JWKS(now); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
}

func TestKeySetPublishesTheNextKeyAhead(t *testing.T) {
	const lifetime = 5 * time.Minute
	ks, err := ca.NewKeySet(ca.KeySetConfig{MaxTokenLifetime: lifetime}, t0)
	if err != nil {
		t.Fatal(err)
	}
	first := ks.Current()
	if _, ok := ks.Next(); ok {
		t.Fatal("a new key set has a next key")
	}
	if _, err := ks.Promote(t0); err == nil || !strings.Contains(err.Error(), "no next key") {
		t.Fatalf("Promote without a next key: %v", err)
	}

	t1 := t0.Add(time.Hour)
	next, err := ks.PublishNext(t1)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("the next key is published but does not sign", func(t *testing.T) {
		if got, ok := ks.Next(); !ok || got.ID != next.ID || !got.Published.Equal(t1) || !got.Created.IsZero() {
			t.Fatalf("Next = %+v, %v; want the published key, not yet created", got, ok)
		}
		if ks.Current().ID != first.ID {
			t.Fatalf("current key changed to %s at PublishNext", ks.Current().ID)
		}
		jwks, _ := ks.JWKS(t1)
		if kids := jwksKids(t, jwks); !slices.Equal(kids, []string{next.ID, first.ID}) {
			t.Errorf("kids %v, want [next current]", kids)
		}
		// A verifier that fetched the JWKS now accepts the next key's
		// tokens before any is signed.
		if _, err := verifyJWT(signJWT(t, next, claimsAt(t1, time.Minute)), jwks, t1); err != nil {
			t.Errorf("a token of the next key against the JWKS published ahead: %v", err)
		}
	})
	t.Run("a second next key is refused", func(t *testing.T) {
		if _, err := ks.PublishNext(t1.Add(time.Second)); err == nil || !strings.Contains(err.Error(), "already next") {
			t.Errorf("second PublishNext: %v", err)
		}
	})
	t.Run("the next key survives Marshal and ParseKeySet", func(t *testing.T) {
		data, err := ks.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := ca.ParseKeySet(data, ca.KeySetConfig{MaxTokenLifetime: lifetime})
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := parsed.Next(); !ok || got.ID != next.ID || !got.Published.Equal(t1) {
			t.Errorf("parsed next key %+v, %v", got, ok)
		}
		a, _ := ks.JWKS(t1)
		b, _ := parsed.JWKS(t1)
		if !bytes.Equal(a, b) || parsed.Current().ID != first.ID {
			t.Errorf("parsed set differs:\n%s\n%s", a, b)
		}
	})

	t2 := t1.Add(time.Minute)
	promoted, err := ks.Promote(t2)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("Promote makes it current and keeps the old key for the overlap", func(t *testing.T) {
		if promoted.ID != next.ID || !promoted.Created.Equal(t2) || !promoted.Published.Equal(t1) || ks.Current().ID != next.ID {
			t.Fatalf("promoted %+v, current %s", promoted, ks.Current().ID)
		}
		if _, ok := ks.Next(); ok {
			t.Error("a next key remains after Promote")
		}
		jwks, _ := ks.JWKS(t2.Add(ks.Overlap() - time.Nanosecond))
		if kids := jwksKids(t, jwks); !slices.Equal(kids, []string{next.ID, first.ID}) {
			t.Errorf("kids %v during the overlap, want [new old]", kids)
		}
		jwks, _ = ks.JWKS(t2.Add(ks.Overlap()))
		if kids := jwksKids(t, jwks); !slices.Equal(kids, []string{next.ID}) {
			t.Errorf("kids %v after the overlap, want [new]", kids)
		}
	})
	t.Run("Rotate promotes a published next key rather than make another", func(t *testing.T) {
		n, err := ks.PublishNext(t2.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		k, err := ks.Rotate(t2.Add(time.Hour))
		if err != nil || k.ID != n.ID {
			t.Errorf("Rotate = %s, %v; want the published next key %s", k.ID, err, n.ID)
		}
	})
	t.Run("Promote refuses a time before the current key", func(t *testing.T) {
		if _, err := ks.PublishNext(t2.Add(2 * time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := ks.Promote(t0); err == nil || !strings.Contains(err.Error(), "before the current key") {
			t.Errorf("Promote in the past: %v", err)
		}
		if _, ok := ks.Next(); !ok {
			t.Error("a refused Promote dropped the next key")
		}
	})
}

func TestParseKeySetRefusesASetWithOnlyANextKey(t *testing.T) {
	ks, err := ca.NewKeySet(ca.KeySetConfig{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := ks.Marshal()
	only := bytes.Replace(data, []byte("Created: "), []byte("Made: "), 1)
	if _, err := ca.ParseKeySet(only, ca.KeySetConfig{}); err == nil || !strings.Contains(err.Error(), "no current key") {
		t.Errorf("ParseKeySet of a lone next key: %v", err)
	}
	// A file written before keys were published ahead has no Published
	// header: its keys count as published when created.
	old := bytes.Replace(data, []byte("Published: "), []byte("X-Old: "), 1)
	parsed, err := ca.ParseKeySet(old, ca.KeySetConfig{})
	if err != nil || !parsed.Current().Published.Equal(t0) {
		t.Errorf("ParseKeySet without Published = %v; published %v, want %v", err, parsed.Current().Published, t0)
	}
}

func FuzzParseKeySet(f *testing.F) {
	ks, err := ca.NewKeySet(ca.KeySetConfig{Algorithm: jose.EdDSA}, t0)
	if err != nil {
		f.Fatal(err)
	}
	ks.Rotate(t0.Add(time.Minute))
	ks.PublishNext(t0.Add(2 * time.Minute))
	data, _ := ks.Marshal()
	f.Add(data)
	f.Add([]byte{})
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nKid: x\n\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := ca.ParseKeySet(data, ca.KeySetConfig{})
		if err != nil {
			return
		}
		// What parses marshals back to a set that parses the same.
		again, err := ks.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		ks2, err := ca.ParseKeySet(again, ca.KeySetConfig{})
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if ks2.Current().ID != ks.Current().ID {
			t.Fatalf("current key %s, then %s", ks.Current().ID, ks2.Current().ID)
		}
	})
}
