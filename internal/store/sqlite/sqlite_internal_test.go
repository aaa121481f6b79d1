package sqlite

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

func TestOpenConfiguresTheDatabase(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(t.Context(), Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for pragma, want := range map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "busy_timeout": "10000"} {
		var got string
		if err := s.w.QueryRowContext(t.Context(), "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("writer PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
	var readOnly int
	if err := s.r.QueryRowContext(t.Context(), "PRAGMA query_only").Scan(&readOnly); err != nil || readOnly != 1 {
		t.Errorf("reader PRAGMA query_only = %d, %v; want 1", readOnly, err)
	}
	for path, want := range map[string]os.FileMode{
		dir:                                 0o700 | os.ModeDir,
		filepath.Join(dir, FileName):        0o600,
		filepath.Join(dir, FileName+"-wal"): 0o600, // holds recent writes too
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode(), want)
		}
	}
}

func TestOpenRefusesBadConfig(t *testing.T) {
	for _, dir := range []string{"", "/tmp/what?"} {
		if _, err := Open(t.Context(), Config{Dir: dir}); err == nil || !strings.Contains(err.Error(), "Config.Dir") {
			t.Errorf("Open(Dir %q) = %v, want an error naming Config.Dir", dir, err)
		}
	}
}

func TestProcessesStartingTogetherMigrateOnce(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			s, err := Open(context.Background(), Config{Dir: dir})
			if err != nil {
				t.Error(err)
				return
			}
			s.Close()
		})
	}
	wg.Wait()
	s, err := Open(t.Context(), Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int
	files, _ := filepath.Glob("migrations/*.sql")
	want := len(files)
	if err := s.r.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil || n != want {
		t.Fatalf("schema_migrations has %d rows, %v; want %d (one per migration)", n, err, want)
	}
}

func TestOpenRefusesANewerSchema(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(t.Context(), Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(t.Context(), "INSERT INTO schema_migrations VALUES (99, '0099_future.sql', 0)"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(t.Context(), Config{Dir: dir}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open over a newer schema = %v, want a refusal", err)
	}
}

func TestActorIPKeysAreFilledInAtOpen(t *testing.T) {
	dir := t.TempDir()
	open := func(tb testing.TB) store.Store {
		s, err := Open(context.Background(), Config{Dir: dir})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { s.Close() })
		return s
	}
	storetest.TestActorIPKeyBackfill(t, open, func(t *testing.T) {
		db, err := sql.Open("sqlite", filepath.Join(dir, FileName))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		n, err := db.ExecContext(t.Context(), `UPDATE events SET actor_ip_key = NULL WHERE actor_ip <> ''`)
		if err != nil {
			t.Fatal(err)
		}
		if rows, _ := n.RowsAffected(); rows < 2000 {
			t.Fatalf("forgot %d keys", rows)
		}
	})
}
