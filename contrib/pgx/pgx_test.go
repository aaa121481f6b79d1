package rampartpgx_test

// These tests need PostgreSQL at 127.0.0.1:5432 (trust auth, user postgres,
// db test; RAMPART_TEST_POSTGRES_DSN overrides). Without it they skip,
// except with CI=true, where they fail.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/rampartsec/rampart"
	rampartpgx "github.com/rampartsec/rampart/contrib/pgx"
	"github.com/rampartsec/rampart/internal/contribtest"
	"github.com/rampartsec/rampart/ramparttest"
	"github.com/rampartsec/rampart/sqlguard"
)

// querier is what Pool, Conn and their transactions share.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

type fixture struct {
	raw   *pgxpool.Pool // unguarded, to look at what reached the database
	table string
	agent *rampart.Agent
	rec   *ramparttest.Recorder
	// guarded are the four ways to reach the database through the guard.
	guarded map[string]querier
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	contribtest.RequirePostgres(t)
	ctx := context.Background()
	a, rec := ramparttest.NewAgent(t, rampart.Config{})
	raw, err := pgxpool.New(ctx, contribtest.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{raw: raw, table: fmt.Sprintf("pgx_users_%d", rand.Uint64()>>1), agent: a, rec: rec}
	t.Cleanup(func() {
		raw.Exec(context.Background(), "DROP TABLE IF EXISTS "+f.table)
		raw.Close()
	})
	if _, err := raw.Exec(ctx, "CREATE TABLE "+f.table+" (name TEXT PRIMARY KEY, role TEXT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	for _, u := range contribtest.Users {
		if _, err := raw.Exec(ctx, "INSERT INTO "+f.table+" VALUES ($1, 'user')", u); err != nil {
			t.Fatal(err)
		}
	}
	pool := rampartpgx.NewPool(a, raw)
	c, err := pgx.Connect(ctx, contribtest.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	conn := rampartpgx.NewConn(a, c)
	ptx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ptx.Rollback(context.Background()) })
	ctx2 := context.Background()
	ctxTx, err := conn.Begin(ctx2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctxTx.Rollback(context.Background()) })
	acquired, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(acquired.Release)
	f.guarded = map[string]querier{"Pool": pool, "Conn": conn, "Pool.Begin": ptx, "Conn.Begin": ctxTx, "Pool.Acquire": acquired}
	return f
}

// admins counts the rows an injected UPDATE would have changed.
func (f *fixture) admins(t *testing.T) int {
	t.Helper()
	var n int
	if err := f.raw.QueryRow(context.Background(), "SELECT count(*) FROM "+f.table+" WHERE role = 'admin'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// calls are the entry points that send SQL text, each given the text.
var calls = []struct {
	name string
	call func(ctx context.Context, q querier, sql string) error
}{
	{"Query", func(ctx context.Context, q querier, sql string) error {
		rows, err := q.Query(ctx, sql)
		if err != nil {
			return err
		}
		rows.Close()
		return rows.Err()
	}},
	{"QueryRow", func(ctx context.Context, q querier, sql string) error {
		var s string
		err := q.QueryRow(ctx, sql).Scan(&s)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	}},
	{"Exec", func(ctx context.Context, q querier, sql string) error {
		_, err := q.Exec(ctx, sql)
		return err
	}},
	{"SendBatch", func(ctx context.Context, q querier, sql string) error {
		b := &pgx.Batch{}
		b.Queue("SELECT 1")
		b.Queue(sql)
		return q.SendBatch(ctx, b).Close()
	}},
}

func TestInjectionIsRefusedAtEveryEntryPointAndNothingReachesTheDatabase(t *testing.T) {
	f := newFixture(t)
	for name, q := range f.guarded {
		for _, c := range calls {
			t.Run(name+"."+c.name, func(t *testing.T) {
				f.rec.Reset()
				ctx := rampart.WithUntrusted(context.Background(), "job", contribtest.Injection)
				sql := "UPDATE " + f.table + " SET role = 'admin' WHERE name = '" + contribtest.Injection + "' RETURNING name"
				err := c.call(ctx, q, sql)
				if !errors.Is(err, rampart.ErrBlocked) {
					t.Fatalf("%s with an injection = %v, want an error wrapping ErrBlocked", c.name, err)
				}
				if n := f.admins(t); n != 0 {
					t.Fatalf("%d rows became admin: the statement reached the database", n)
				}
				want := ramparttest.Want{Kind: rampart.KindSQLInjection, Action: rampart.ActionBlocked, Sink: "pgx (postgres)",
					Input: rampart.Input{Source: "job", Value: contribtest.Injection}}
				if d := want.Diff(f.rec.Next(t)); d != "" {
					t.Error(d)
				}
				// The same code with a benign input runs, and so does the
				// injection as an argument.
				benign := rampart.WithUntrusted(context.Background(), "job", "nobody")
				if err := c.call(benign, q, "SELECT name FROM "+f.table+" WHERE name = 'nobody'"); err != nil {
					t.Errorf("benign %s = %v", c.name, err)
				}
				if _, err := q.Exec(ctx, "UPDATE "+f.table+" SET role = 'admin' WHERE name = $1", contribtest.Injection); err != nil {
					t.Errorf("parameterized Exec with the injection as its argument = %v", err)
				}
				if n := f.admins(t); n != 0 {
					t.Fatalf("%d rows became admin through the argument", n)
				}
			})
		}
	}
}

func TestPrepareChecksTheTextAndItsNameRunsUnchecked(t *testing.T) {
	f := newFixture(t)
	conn := f.guarded["Conn"].(*rampartpgx.Conn)
	ctx := rampart.WithUntrusted(context.Background(), "job", contribtest.Injection)
	_, err := conn.Prepare(ctx, "dump", "SELECT name FROM "+f.table+" WHERE name = '"+contribtest.Injection+"'")
	if !errors.Is(err, rampart.ErrBlocked) {
		t.Fatalf("Prepare of an injected statement = %v, want ErrBlocked", err)
	}
	if _, err := conn.Prepare(context.Background(), "by_name", "SELECT role FROM "+f.table+" WHERE name = $1"); err != nil {
		t.Fatal(err)
	}
	var role string
	if err := conn.QueryRow(rampart.WithUntrusted(context.Background(), "job", "by_name"), "by_name", "alice").Scan(&role); err != nil || role != "user" {
		t.Errorf("QueryRow by a prepared name = %q, %v; want user", role, err)
	}
}

func TestCopyFromDataIsNotSQL(t *testing.T) {
	f := newFixture(t)
	pool := f.guarded["Pool"].(*rampartpgx.Pool)
	ctx := rampart.WithUntrusted(context.Background(), "job", contribtest.Injection)
	n, err := pool.CopyFrom(ctx, pgx.Identifier{f.table}, []string{"name", "role"}, pgx.CopyFromRows([][]any{{contribtest.Injection, "user"}}))
	if err != nil || n != 1 {
		t.Fatalf("CopyFrom = %d, %v; want 1 row copied", n, err)
	}
	var role string
	if err := f.raw.QueryRow(context.Background(), "SELECT role FROM "+f.table+" WHERE name = $1", contribtest.Injection).Scan(&role); err != nil {
		t.Fatal(err)
	}
}

// A read-only actor gets the same answers through pgx as through the
// database/sql guard, statement by statement.
func TestReadOnlyActorIsTreatedAsByTheDatabaseSQLGuard(t *testing.T) {
	f := newFixture(t)
	g, err := sqlguard.New(f.agent, sqlguard.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := g.Open(stdlib.GetDefaultDriver(), contribtest.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer sqlDB.Close()
	ctx := rampart.NewReadOnlyContext(context.Background(), "d-ro")
	stmts := []string{
		"SELECT name FROM " + f.table,
		"SELECT count(*) FROM " + f.table + " LIMIT 1 OFFSET 0",
		"WITH x AS (SELECT name FROM " + f.table + ") SELECT * FROM x",
		"UPDATE " + f.table + " SET role = 'admin'",
		"DELETE FROM " + f.table,
		"INSERT INTO " + f.table + " VALUES ('eve', 'user')",
		"SELECT nextval('no_such_seq')",
		"SELECT name FROM " + f.table + " FOR UPDATE",
		"BEGIN",
	}
	pool := f.guarded["Pool"]
	for _, s := range stmts {
		_, dbErr := sqlDB.ExecContext(ctx, s)
		_, pgxErr := pool.Exec(ctx, s)
		if db, px := errors.Is(dbErr, rampart.ErrBlocked), errors.Is(pgxErr, rampart.ErrBlocked); db != px {
			t.Errorf("%q: database/sql refused=%v (%v), pgx refused=%v (%v)", s, db, dbErr, px, pgxErr)
		}
	}
	if n := f.admins(t); n != 0 {
		t.Fatalf("a read-only actor's UPDATE reached the database")
	}
	// Transactions the application opens serve the actor, as BeginTx
	// does with database/sql; a write inside them is refused.
	for name, begin := range map[string]func() (pgx.Tx, error){
		"Pool.BeginTx": func() (pgx.Tx, error) {
			return pool.(*rampartpgx.Pool).BeginTx(ctx, pgx.TxOptions{})
		},
		"Batch.BeginTx": func() (pgx.Tx, error) {
			b := &pgx.Batch{}
			b.BeginTx(pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
			b.Queue("SELECT 1")
			br := pool.SendBatch(ctx, b)
			tx := br.Tx()
			return tx, br.Close()
		},
	} {
		t.Run(name, func(t *testing.T) {
			tx, err := begin()
			if err != nil {
				t.Fatalf("a read-only actor's transaction: %v", err)
			}
			defer tx.Rollback(context.Background())
			var n int
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+f.table).Scan(&n); err != nil || n != len(contribtest.Users) {
				t.Errorf("read in the transaction = %d, %v", n, err)
			}
			if _, err := tx.Exec(ctx, "UPDATE "+f.table+" SET role = 'admin'"); !errors.Is(err, rampart.ErrBlocked) {
				t.Errorf("write in the transaction = %v, want ErrBlocked", err)
			}
		})
	}
}
