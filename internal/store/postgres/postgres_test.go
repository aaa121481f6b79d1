package postgres_test

import (
	"context"
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/postgres"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// These tests need a PostgreSQL server (storetest.PostgresDSN). Each
// database the suite asks for is a fresh schema, dropped at the end.
func newSchema(tb testing.TB) string { return storetest.PostgresSchema(tb, "rampart_test_") }

func opener(dsn string) storetest.OpenFunc {
	return func(tb testing.TB) store.Store {
		s, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn})
		if err != nil {
			tb.Fatalf("postgres.Open: %v", err)
		}
		tb.Cleanup(func() { s.Close() })
		return s
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.OpenFunc { return opener(newSchema(t)) })
}

func BenchmarkHeartbeat(b *testing.B) {
	storetest.BenchmarkHeartbeat(b, opener(newSchema(b)))
}

func BenchmarkAppendEvents(b *testing.B) {
	storetest.BenchmarkAppendEvents(b, opener(newSchema(b)))
}

func TestReplicasStartingTogetherMigrateOnce(t *testing.T) {
	dsn := newSchema(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			s, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn})
			if err != nil {
				t.Error(err)
				return
			}
			s.Close()
		})
	}
	wg.Wait()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	files, _ := filepath.Glob("migrations/*.sql")
	want := len(files)
	if err := conn.QueryRow(t.Context(), "SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil || n != want {
		t.Fatalf("schema_migrations has %d rows, %v; want %d (one per migration)", n, err, want)
	}
	if _, err := conn.Exec(t.Context(), "INSERT INTO schema_migrations VALUES (99, '0099_future.sql', 0)"); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(t.Context(), postgres.Config{DSN: dsn}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open over a newer schema = %v, want a refusal", err)
	}
}

func TestOpenRefusesBadConfig(t *testing.T) {
	if _, err := postgres.Open(t.Context(), postgres.Config{}); err == nil || !strings.Contains(err.Error(), "Config.DSN") {
		t.Errorf("Open without DSN = %v, want an error naming Config.DSN", err)
	}
	if _, err := postgres.Open(t.Context(), postgres.Config{DSN: "postgres://[::1"}); err == nil || !strings.Contains(err.Error(), "Config.DSN") {
		t.Errorf("Open with a malformed DSN = %v, want an error naming Config.DSN", err)
	}
	dsn := newSchema(t) // skips when there is no server
	u, _ := url.Parse(dsn)
	q := u.Query()
	q.Set("search_path", "no_such_schema")
	u.RawQuery = q.Encode()
	if _, err := postgres.Open(t.Context(), postgres.Config{DSN: u.String()}); err == nil || !strings.Contains(err.Error(), "search_path") {
		t.Errorf("Open with a missing schema = %v, want an error about search_path", err)
	}
}

// A replica whose LISTEN connection is cut reconnects and still wakes its
// watchers, with the changes made while it was away.
func TestSubscriptionSurvivesALostConnection(t *testing.T) {
	dsn := newSchema(t)
	open := opener(dsn)
	a, b := open(t), open(t)
	ch, err := b.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), storetest.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	u, _ := url.Parse(dsn)
	listen := `LISTEN "rampart_changes_` + u.Query().Get("search_path") + `"`
	var killed int
	if err := conn.QueryRow(t.Context(), `SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query = $1`,
		listen).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d listeners, %v; want 1", killed, err)
	}
	d, err := a.CreateDecision(t.Context(), store.Decision{Scope: store.ScopeIP, Value: "192.0.2.1", Action: store.ActionBlock})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(time.Minute)
	for {
		select {
		case rev := <-ch:
			if rev >= d.Revision {
				return
			}
		case <-deadline:
			t.Fatal("no wake-up after the listener's connection was cut")
		}
	}
}

func TestPruneWhileAnotherReplicaPrunesIsBusy(t *testing.T) {
	dsn := newSchema(t)
	s := opener(dsn)(t)
	ctx := t.Context()
	other, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	const lock = `hashtextextended('rampart.prune.' || current_schema(), 0)`
	if _, err := other.Exec(ctx, `SELECT pg_advisory_lock(`+lock+`)`); err != nil {
		t.Fatal(err)
	}
	cfg := store.PruneConfig{EventsBefore: time.Now()}
	if _, err := s.Prune(ctx, cfg); !errors.Is(err, store.ErrBusy) {
		t.Fatalf("Prune while another holds the lock: %v, want ErrBusy", err)
	}
	if _, err := other.Exec(ctx, `SELECT pg_advisory_unlock(`+lock+`)`); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the lock is released after each prune
		if _, err := s.Prune(ctx, cfg); err != nil {
			t.Fatalf("Prune once the lock is free: %v", err)
		}
	}
}

func TestActorIPKeysAreFilledInAtOpen(t *testing.T) {
	dsn := newSchema(t)
	storetest.TestActorIPKeyBackfill(t, opener(dsn), func(t *testing.T) {
		conn, err := pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		tag, err := conn.Exec(t.Context(), `UPDATE events SET actor_ip_key = NULL WHERE actor_ip <> ''`)
		if err != nil {
			t.Fatal(err)
		}
		if tag.RowsAffected() < 2000 {
			t.Fatalf("forgot %d keys", tag.RowsAffected())
		}
	})
}
