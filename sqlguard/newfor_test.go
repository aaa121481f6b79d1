package sqlguard_test

import (
	"context"
	"errors"
	"testing"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/ramparttest"
	"github.com/rampartsec/rampart/sqlguard"
)

func TestNewForNamesTheDatabaseAPIInEvents(t *testing.T) {
	a, rec := ramparttest.NewAgent(t, rampart.Config{})
	g, err := sqlguard.NewFor(a, sqlguard.Postgres, "pgx")
	if err != nil {
		t.Fatal(err)
	}
	ctx := rampart.WithUntrusted(context.Background(), "job", "x' OR '1'='1")
	if err := g.Check(ctx, "SELECT 1 FROM t WHERE a = 'x' OR '1'='1'"); !errors.Is(err, rampart.ErrBlocked) {
		t.Fatalf("Check = %v, want ErrBlocked", err)
	}
	if ev := rec.Next(t); ev.Sink != "pgx (postgres)" {
		t.Errorf("sink %q, want %q", ev.Sink, "pgx (postgres)")
	}
	if _, err := sqlguard.NewFor(a, sqlguard.Postgres, ""); err == nil {
		t.Error("NewFor accepted an empty api name")
	}
}
