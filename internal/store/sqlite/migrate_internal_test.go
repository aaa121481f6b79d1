package sqlite

import (
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/internal/migration"
)

// A database of schema 5 holds join tokens of the old format, single use
// and without an id; after migration 6 they are listed with an id, the
// used one used up, and the unused one still joins once.
func TestMigrationKeepsJoinTokensOfTheOldFormat(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	db, err := sql.Open("sqlite", path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := migration.Load(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ns INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:5] {
		if err := apply(t.Context(), db, m); err != nil {
			t.Fatal(err)
		}
	}
	oldToken := func() (string, []byte) {
		var b [32]byte
		rand.Read(b[:])
		h := sha256.Sum256(b[:])
		return "rjt_" + base64.RawURLEncoding.EncodeToString(b[:]), h[:]
	}
	now := time.Now()
	used, usedHash := oldToken()
	unused, unusedHash := oldToken()
	for _, row := range []struct {
		hash []byte
		used any
	}{{usedHash, now.Add(-time.Minute).UnixNano()}, {unusedHash, nil}} {
		if _, err := db.Exec(`INSERT INTO join_tokens (hash, service, created_ns, expires_ns, used_ns) VALUES (?, 'shop', ?, ?, ?)`,
			row.hash, now.Add(-time.Hour).UnixNano(), now.Add(time.Hour).UnixNano(), row.used); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s, err := Open(t.Context(), Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	toks, err := s.JoinTokens(t.Context(), store.JoinTokenFilter{All: true})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]store.JoinToken{}
	for _, tok := range toks {
		byID[tok.ID] = tok
	}
	u, ok := byID[hex.EncodeToString(usedHash[:8])]
	if !ok || u.Uses != 1 || u.UsesLeft != 0 || u.Used.IsZero() || u.LastUsed.IsZero() {
		t.Fatalf("the used token after migration: %+v (all: %+v)", u, toks)
	}
	n, ok := byID[hex.EncodeToString(unusedHash[:8])]
	if !ok || n.Uses != 1 || n.UsesLeft != 1 || !n.Used.IsZero() {
		t.Fatalf("the unused token after migration: %+v (all: %+v)", n, toks)
	}
	if _, err := s.ConsumeJoinToken(t.Context(), used, "shop"); !errors.Is(err, store.ErrTokenUsed) {
		t.Errorf("the used old token: %v, want ErrTokenUsed", err)
	}
	if _, err := s.ConsumeJoinToken(t.Context(), unused, "shop"); err != nil {
		t.Errorf("the unused old token: %v", err)
	}
	if _, err := s.ConsumeJoinToken(t.Context(), unused, "shop"); !errors.Is(err, store.ErrTokenUsed) {
		t.Errorf("the old token's second use: %v, want ErrTokenUsed", err)
	}
}
