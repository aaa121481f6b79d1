package sqlguard_test

// Read-only actors against the three databases: the statements run for
// real, and the tables are read back. Needs the servers of dbs_test.go
// (PostgreSQL 127.0.0.1:5432 db test, MariaDB 127.0.0.1:3306 root db test;
// SQLite in a temporary file); a server that cannot be reached skips its
// test, or fails it when CI=true.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/ramparttest"
	"github.com/rampartsec/rampart/sqlguard"
)

// roDB is one database of the read-only tests.
type roDB struct {
	dialect sqlguard.Dialect
	conn    driver.Connector
}

func roDatabase(t *testing.T, d sqlguard.Dialect) roDB {
	t.Helper()
	var c driver.Connector
	var err error
	switch d {
	case sqlguard.Postgres:
		dsn := os.Getenv("RAMPART_TEST_POSTGRES_DSN")
		if dsn == "" {
			dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&connect_timeout=3"
		}
		c, err = stdlib.GetDefaultDriver().(driver.DriverContext).OpenConnector(dsn)
	case sqlguard.MySQL:
		dsn := os.Getenv("RAMPART_TEST_MYSQL_DSN")
		if dsn == "" {
			dsn = "root@tcp(127.0.0.1:3306)/test?timeout=3s"
		}
		var cfg *mysql.Config
		if cfg, err = mysql.ParseDSN(dsn); err == nil {
			cfg.MultiStatements = true // so that a batch with a write would run
			c, err = mysql.NewConnector(cfg)
		}
	case sqlguard.SQLite:
		c = sqliteConnector("file:" + filepath.Join(t.TempDir(), "ro.db") + "?_pragma=busy_timeout(5000)")
	}
	if err == nil {
		db := sql.OpenDB(c)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err = db.PingContext(ctx)
		cancel()
		db.Close()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required when CI=true: %v", d, err)
		}
		t.Skipf("%s unavailable, skipping: %v", d, err)
	}
	return roDB{dialect: d, conn: c}
}

type sqliteConnector string

func (c sqliteConnector) Connect(context.Context) (driver.Conn, error) {
	return (&sqlite.Driver{}).Open(string(c))
}
func (c sqliteConnector) Driver() driver.Driver { return &sqlite.Driver{} }

// TestReadOnlyActorAtTheDatabase runs, for an actor under a read-only
// decision and for one under none, reads and writes through the guard, and
// reads the table back with a bare connection after each.
func TestReadOnlyActorAtTheDatabase(t *testing.T) {
	for _, d := range []sqlguard.Dialect{sqlguard.Postgres, sqlguard.MySQL, sqlguard.SQLite} {
		t.Run(d.String(), func(t *testing.T) {
			t.Parallel()
			testReadOnlyActor(t, roDatabase(t, d))
		})
	}
}

func testReadOnlyActor(t *testing.T, rdb roDB) {
	d := rdb.dialect
	suffix := fmt.Sprintf("%08x", rand.Uint32())
	tbl, seq, copyTbl := "ro_items_"+suffix, "ro_seq_"+suffix, "ro_copy_"+suffix
	bare := sql.OpenDB(rdb.conn)
	t.Cleanup(func() { bare.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mustExec := func(db *sql.DB, q string) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mustExec(bare, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, v VARCHAR(32) NOT NULL)")
	mustExec(bare, "INSERT INTO "+tbl+" VALUES (1, 'one'), (2, 'two')")
	t.Cleanup(func() {
		for _, q := range []string{"DROP TABLE IF EXISTS " + tbl, "DROP TABLE IF EXISTS " + copyTbl} {
			bare.Exec(q)
		}
		if d == sqlguard.Postgres {
			bare.Exec("DROP SEQUENCE IF EXISTS " + seq)
		}
	})
	if d == sqlguard.Postgres {
		mustExec(bare, "CREATE SEQUENCE "+seq)
	}

	agent, events := ramparttest.NewAgent(t, rampart.Config{})
	g, err := sqlguard.New(agent, d)
	if err != nil {
		t.Fatal(err)
	}
	db := g.OpenDB(rdb.conn)
	t.Cleanup(func() { db.Close() })

	// contents is the table as a bare connection reads it.
	contents := func() string {
		t.Helper()
		rows, err := bare.QueryContext(ctx, "SELECT id, v FROM "+tbl+" ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var id int
			var v string
			if err := rows.Scan(&id, &v); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(id, "=", v))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return strings.Join(out, ",")
	}
	const decision = "dec-read-only-1"
	roCtx := rampart.NewReadOnlyContext(ctx, decision)

	t.Run("a read-only actor's SELECT runs", func(t *testing.T) {
		var n int
		if err := db.QueryRowContext(roCtx, "SELECT count(*) FROM "+tbl+" WHERE v <> 'none'").Scan(&n); err != nil || n != 2 {
			t.Fatalf("count %d, err %v; want 2", n, err)
		}
		var v string
		if err := db.QueryRowContext(roCtx, "WITH x AS (SELECT v FROM "+tbl+" WHERE id = 1) SELECT upper(v) FROM x").Scan(&v); err != nil || v != "ONE" {
			t.Fatalf("WITH query: %q, err %v", v, err)
		}
		// A transaction that only reads runs too.
		tx, err := db.BeginTx(roCtx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.QueryRowContext(roCtx, "SELECT v FROM "+tbl+" WHERE id = 2").Scan(&v); err != nil || v != "two" {
			t.Fatalf("in a transaction: %q, err %v", v, err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	})

	// Statements refused to the read-only actor, with what proves that
	// they did not run, besides the table left as it was.
	type refused struct {
		name, stmt string
		exec       bool               // ExecContext (a batch) rather than QueryContext
		ranNot     func(t *testing.T) // checks the side effect did not happen
		undo       string             // run after the statement, in the normal actor's transaction
		dbRefuses  bool               // the database refuses it to a normal actor too
	}
	cases := []refused{
		{name: "INSERT", stmt: "INSERT INTO " + tbl + " VALUES (3, 'three')", exec: true},
		{name: "UPDATE", stmt: "UPDATE " + tbl + " SET v = 'changed' WHERE id = 1", exec: true},
		{name: "DELETE", stmt: "DELETE FROM " + tbl + " WHERE id = 2", exec: true},
		{name: "a batch of a read and a write", stmt: "SELECT 1; DELETE FROM " + tbl, exec: true},
	}
	tableAbsent := func(t *testing.T) {
		var n int
		q := map[sqlguard.Dialect]string{
			sqlguard.Postgres: "SELECT count(*) FROM pg_class WHERE relname = '" + copyTbl + "'",
			sqlguard.MySQL:    "SELECT count(*) FROM information_schema.tables WHERE table_name = '" + copyTbl + "'",
			sqlguard.SQLite:   "SELECT count(*) FROM sqlite_master WHERE name = '" + copyTbl + "'",
		}[d]
		if err := bare.QueryRowContext(ctx, q).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s exists (%d), err %v", copyTbl, n, err)
		}
	}
	switch d {
	case sqlguard.Postgres:
		cases = append(cases,
			refused{name: "a DELETE hidden in WITH", stmt: "WITH gone AS (DELETE FROM " + tbl + " RETURNING id) SELECT count(*) FROM gone"},
			refused{name: "an UPDATE hidden in WITH", stmt: "WITH c AS (UPDATE " + tbl + " SET v = 'x' RETURNING id) SELECT id FROM c"},
			refused{name: "SELECT INTO", stmt: "SELECT * INTO " + copyTbl + " FROM " + tbl, ranNot: tableAbsent},
			refused{name: "nextval", stmt: "SELECT nextval('" + seq + "')", ranNot: func(t *testing.T) {
				var called bool
				if err := bare.QueryRowContext(ctx, "SELECT is_called FROM "+seq).Scan(&called); err != nil || called {
					t.Errorf("sequence advanced (is_called %v, err %v)", called, err)
				}
			}},
			refused{name: "an advisory lock", stmt: "SELECT pg_advisory_lock(424242)", undo: "SELECT pg_advisory_unlock(424242)", ranNot: func(t *testing.T) {
				var n int
				if err := bare.QueryRowContext(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 424242").Scan(&n); err != nil || n != 0 {
					t.Errorf("%d advisory locks held, err %v", n, err)
				}
			}},
			refused{name: "SELECT FOR UPDATE", stmt: "SELECT * FROM " + tbl + " FOR UPDATE"},
		)
	case sqlguard.MySQL:
		cases = append(cases,
			refused{name: "INSERT ... SELECT", stmt: "INSERT INTO " + tbl + " SELECT id + 10, v FROM " + tbl, exec: true},
			refused{name: "CREATE TABLE AS SELECT", stmt: "CREATE TABLE " + copyTbl + " AS SELECT * FROM " + tbl, exec: true, ranNot: tableAbsent},
			refused{name: "GET_LOCK", stmt: "SELECT GET_LOCK('ro_" + suffix + "', 0)", undo: "SELECT RELEASE_LOCK('ro_" + suffix + "')", ranNot: func(t *testing.T) {
				var free int
				if err := bare.QueryRowContext(ctx, "SELECT IS_FREE_LOCK('ro_"+suffix+"')").Scan(&free); err != nil || free != 1 {
					t.Errorf("lock taken (IS_FREE_LOCK %d, err %v)", free, err)
				}
			}},
			refused{name: "SELECT INTO a variable", stmt: "SELECT v INTO @ro_v FROM " + tbl + " WHERE id = 1"},
			refused{name: "a write in an executable comment", stmt: "SELECT 1; /*!40000 DELETE FROM " + tbl + " */", exec: true},
		)
	case sqlguard.SQLite:
		cases = append(cases,
			refused{name: "a write after WITH", stmt: "WITH x AS (SELECT 9, 'nine') INSERT INTO " + tbl + " SELECT * FROM x", exec: true},
			refused{name: "INSERT ... RETURNING", stmt: "INSERT INTO " + tbl + " VALUES (4, 'four') RETURNING id"},
			refused{name: "a PRAGMA that writes", stmt: "PRAGMA user_version = 7", exec: true, ranNot: func(t *testing.T) {
				var v int
				if err := bare.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil || v != 0 {
					t.Errorf("user_version %d, err %v", v, err)
				}
			}},
			// No such library: the point is that the call never reaches
			// SQLite, which would try to load it.
			refused{name: "load_extension", stmt: "SELECT load_extension('/nonexistent/ro.so')", dbRefuses: true},
		)
	}
	before := contents()
	for _, c := range cases {
		t.Run("refuses "+c.name, func(t *testing.T) {
			var err error
			if c.exec {
				_, err = db.ExecContext(roCtx, c.stmt)
			} else {
				var rows *sql.Rows
				if rows, err = db.QueryContext(roCtx, c.stmt); err == nil {
					rows.Close()
				}
			}
			if !errors.Is(err, rampart.ErrBlocked) {
				t.Fatalf("%s: err %v, want ErrBlocked", c.stmt, err)
			}
			if got := contents(); got != before {
				t.Fatalf("table changed: %s, was %s", got, before)
			}
			if c.ranNot != nil {
				c.ranNot(t)
			}
			// The statement is one the database runs: for a normal
			// actor, in a transaction rolled back.
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			_, err = tx.ExecContext(ctx, c.stmt)
			if (err != nil) != c.dbRefuses {
				t.Fatalf("for a normal actor, %s: err %v", c.stmt, err)
			}
			if c.undo != "" {
				if _, err := tx.ExecContext(ctx, c.undo); err != nil {
					t.Fatalf("%s: %v", c.undo, err)
				}
			}
			ev := events.Wait(t, func(ev rampart.Event) bool {
				return ev.Kind == rampart.KindReadOnlyWrite && ev.Detail == c.stmt
			})
			if ev.Action != rampart.ActionBlocked || ev.Decision != decision || !strings.Contains(ev.Reason, decision) {
				t.Errorf("event %+v: want blocked, naming decision %s", ev, decision)
			}
		})
	}

	t.Run("a normal actor's writes run", func(t *testing.T) {
		for _, q := range []string{
			"INSERT INTO " + tbl + " VALUES (3, 'three')",
			"UPDATE " + tbl + " SET v = 'uno' WHERE id = 1",
			"SELECT 1; DELETE FROM " + tbl + " WHERE id = 2",
		} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if got, want := contents(), "1=uno,3=three"; got != want {
			t.Fatalf("table %s, want %s", got, want)
		}
	})
}

// TestReadOnlyRefusesInMonitorMode: a decision refuses, not the guard, so
// monitor mode, which lets an injection through, does not let a read-only
// actor write.
func TestReadOnlyRefusesInMonitorMode(t *testing.T) {
	rdb := roDatabase(t, sqlguard.SQLite)
	agent, events := ramparttest.NewAgent(t, rampart.Config{Mode: rampart.ModeMonitor})
	g, err := sqlguard.New(agent, sqlguard.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	db := g.OpenDB(rdb.conn)
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE t (a INT)"); err != nil {
		t.Fatal(err)
	}
	ctx := rampart.NewReadOnlyContext(context.Background(), "dec-2")
	if _, err := db.ExecContext(ctx, "INSERT INTO t VALUES (1)"); !errors.Is(err, rampart.ErrBlocked) {
		t.Fatalf("err %v, want ErrBlocked", err)
	}
	ev := events.Wait(t, ramparttest.Want{Kind: rampart.KindReadOnlyWrite}.Match)
	if ev.Action != rampart.ActionBlocked || ev.Decision != "dec-2" {
		t.Errorf("event %+v, want blocked by dec-2", ev)
	}
	// An injection by the same actor that only reads is reported and,
	// in monitor mode, runs.
	inj := rampart.WithUntrusted(ctx, rampart.SourceQuery, "x' OR 'a'='a")
	var n int
	if err := db.QueryRowContext(inj, "SELECT count(*) FROM t WHERE a = 'x' OR 'a'='a'").Scan(&n); err != nil {
		t.Fatalf("monitored injection: %v", err)
	}
	events.Wait(t, ramparttest.Want{Kind: rampart.KindSQLInjection, Action: rampart.ActionMonitored}.Match)
	if _, err := db.ExecContext(inj, "DELETE FROM t WHERE a = 'x' OR 'a'='a'"); !errors.Is(err, rampart.ErrBlocked) {
		t.Fatalf("an injected write in monitor mode: err %v, want ErrBlocked", err)
	}
	var left int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d rows, err %v", left, err)
	}
}
