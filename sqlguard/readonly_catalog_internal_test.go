package sqlguard

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
	_ "modernc.org/sqlite"             // the "sqlite" driver
)

// The lists of pure functions, checked against the databases' own
// catalogues: a name the read-only rule lets a query call must be a
// function built into the dialect (or the database would call an
// application's function of that name), and in PostgreSQL not one it
// marks volatile, unless reviewed here. Needs PostgreSQL at 127.0.0.1:5432
// db test (RAMPART_TEST_POSTGRES_DSN); SQLite is built in. MySQL has no
// catalogue of its built-in functions.

// reviewedVolatile are PostgreSQL functions marked volatile that write
// nothing: they read a clock, a random source or sleep.
var reviewedVolatile = set(`random now clock_timestamp timeofday pg_sleep gen_random_uuid
	statement_timestamp transaction_timestamp current_setting lastval`)

func pureNames(d Dialect) []string {
	var out []string
	for _, m := range []map[string]struct{}{pureAll, pure[d]} {
		for name := range m {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestPureFunctionsArePostgresBuiltIns(t *testing.T) {
	dsn := os.Getenv("RAMPART_TEST_POSTGRES_DSN")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&connect_timeout=3"
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skipf("PostgreSQL unavailable, skipping: %v", err)
	}
	rows, err := db.QueryContext(ctx, `SELECT p.proname, bool_or(p.provolatile = 'v')
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = 'pg_catalog' GROUP BY p.proname`)
	if err != nil {
		t.Fatal(err)
	}
	volatile := map[string]bool{}
	for rows.Next() {
		var name string
		var v bool
		if err := rows.Scan(&name, &v); err != nil {
			t.Fatal(err)
		}
		volatile[name] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// Functions the grammar spells as keywords are not in pg_proc under
	// their own names.
	grammar := set(`coalesce greatest least nullif extract position substring trim overlay
		current_date current_time current_timestamp localtime localtimestamp xmlelement
		xmlforest xmlparse xmlserialize`)
	for _, name := range pureNames(Postgres) {
		v, ok := volatile[name]
		_, kw := grammar[name]
		switch {
		case !ok && !kw:
			t.Errorf("%s is not a PostgreSQL built-in: list it only for the dialects that have it", name)
		case v:
			if _, reviewed := reviewedVolatile[name]; !reviewed {
				t.Errorf("%s is volatile in PostgreSQL: review it, or refuse it", name)
			}
		}
	}
}

func TestPureFunctionsAreSQLiteBuiltIns(t *testing.T) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	known := map[string]bool{}
	for _, q := range []string{"SELECT name FROM pragma_function_list", "SELECT name FROM pragma_module_list"} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				t.Fatal(err)
			}
			known[name] = true
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Table-valued functions are in neither list: they must run.
	for _, name := range []string{"json_each", "json_tree"} {
		var n int
		if err := db.QueryRow("SELECT count(*) FROM " + name + "('[1]')").Scan(&n); err != nil || n == 0 {
			t.Errorf("%s: %d rows, err %v", name, n, err)
		}
		known[name] = true
	}
	for _, name := range pureNames(SQLite) {
		if !known[name] {
			t.Errorf("%s is not a SQLite built-in: list it only for the dialects that have it", name)
		}
	}
}
