package sqlguard_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/ramparttest"
	"github.com/rampartsec/rampart/sqlguard"
)

// A function of the application named like a pure built-in (here
// public.initcap(integer)) is what PostgreSQL calls for an unqualified
// initcap(1): it wrote for a read-only actor, the guard taking the name
// for the built-in's. The guard now learns such names from the catalogue
// and refuses their unqualified calls; pg_catalog.initcap passes. It runs
// in a database of its own, so that no other test's guard learns the name.
func TestReadOnlyBypassPostgresShadowedBuiltin(t *testing.T) {
	rdb := roDatabase(t, sqlguard.Postgres)
	admin := sql.OpenDB(rdb.conn)
	t.Cleanup(func() { admin.Close() })
	name := fmt.Sprintf("ro_shadow_%08x", rand.Uint32())
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })

	dsn := os.Getenv("RAMPART_TEST_POSTGRES_DSN")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&connect_timeout=3"
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	conn, err := stdlib.GetDefaultDriver().(driver.DriverContext).OpenConnector(u.String())
	if err != nil {
		t.Fatal(err)
	}
	bare := sql.OpenDB(conn)
	t.Cleanup(func() { bare.Close() })
	for _, q := range []string{
		"CREATE TABLE hits (a int)",
		"CREATE FUNCTION public.initcap(integer) RETURNS text LANGUAGE sql AS $$ INSERT INTO hits VALUES ($1) RETURNING 'x' $$",
	} {
		if _, err := bare.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	hits := func() int {
		var n int
		if err := bare.QueryRow("SELECT count(*) FROM hits").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	g, err := sqlguard.New(agent, sqlguard.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	db := g.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	ro := rampart.NewReadOnlyContext(context.Background(), "dec-shadow")

	runRefused(t, db, ro, "SELECT initcap(1)")
	runRefused(t, db, ro, `SELECT "initcap"(2)`)
	if n := hits(); n != 0 {
		t.Fatalf("the application's initcap ran %d times for the read-only actor", n)
	}
	for _, q := range []string{"SELECT pg_catalog.initcap('abc')", "SELECT upper('a') || lower('B')"} {
		var a string
		if err := db.QueryRowContext(ro, q).Scan(&a); err != nil {
			t.Errorf("%s for the read-only actor: %v, want it to run", q, err)
		}
	}
	// What the guard refused is what PostgreSQL would have called.
	if _, err := bare.Exec("SELECT initcap(3)"); err != nil || hits() != 1 {
		t.Fatalf("unguarded, initcap(3): %v, %d hits; want the application's function to write once", err, hits())
	}
	// Other actors are not concerned.
	var s string
	if err := db.QueryRowContext(context.Background(), "SELECT initcap('abc')").Scan(&s); err != nil || s != "Abc" {
		t.Errorf("another actor's initcap('abc'): %q, %v", s, err)
	}
}
