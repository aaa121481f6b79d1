package rampartpgx_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rampartsec/rampart"
	rampartpgx "github.com/rampartsec/rampart/contrib/pgx"
	"github.com/rampartsec/rampart/internal/contribtest"
)

// BenchmarkQueryRow runs the same parameterized lookup through bare pgx and
// through the guard, on the real PostgreSQL, in a context carrying the
// inputs of a typical request (eight values). The difference is the guard's
// cost per statement; compare with benchstat:
//
//	go test -run - -bench QueryRow -count 10 | tee new.txt; benchstat -col /via new.txt
func BenchmarkQueryRow(b *testing.B) {
	contribtest.RequirePostgres(b)
	a, err := rampart.New(rampart.Config{Service: "bench", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close(context.Background())
	raw, err := pgxpool.New(context.Background(), contribtest.PostgresDSN())
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	guarded := rampartpgx.NewPool(a, raw)
	ctx := rampart.WithUntrusted(context.Background(), "request",
		"alice", "42", "name", "asc", "Mozilla/5.0 (X11; Linux x86_64)", "https://shop.example/items?page=2", "en-US,en;q=0.9", "gzip, deflate, br")
	const sql = "SELECT typname FROM pg_type WHERE typname = $1 LIMIT 1"
	for _, via := range []struct {
		name string
		row  func() error
	}{
		{"pgx", func() error { var s string; return raw.QueryRow(ctx, sql, "int4").Scan(&s) }},
		{"rampartpgx", func() error { var s string; return guarded.QueryRow(ctx, sql, "int4").Scan(&s) }},
	} {
		b.Run("via="+via.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := via.row(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCheck is the guard's own work per statement, without the round
// trip: what QueryRow adds to pgx.
func BenchmarkCheck(b *testing.B) {
	a, err := rampart.New(rampart.Config{Service: "bench", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close(context.Background())
	db := contribtest.SQLite(b, a) // for its guard; the statement is not run
	ctx := rampart.WithUntrusted(context.Background(), "request",
		"alice", "42", "name", "asc", "Mozilla/5.0 (X11; Linux x86_64)", "https://shop.example/items?page=2", "en-US,en;q=0.9", "gzip, deflate, br")
	b.ReportAllocs()
	for b.Loop() {
		if err := db.Guard.Check(ctx, "SELECT typname FROM pg_type WHERE typname = $1 LIMIT 1"); err != nil {
			b.Fatal(err)
		}
	}
}
