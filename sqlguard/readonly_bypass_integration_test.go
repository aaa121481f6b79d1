package sqlguard_test

// Statements that an earlier classifier let a read-only actor run and that
// wrote: each runs for real, through the guard, as a read-only actor, and
// what it would have written is read back with a bare connection.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/ramparttest"
	"github.com/rampartsec/rampart/sqlguard"
)

// guardedReadOnly opens rdb through a guard, on one connection (so that a
// statement sees what the previous one did to its session), and returns it
// with a bare connection and a read-only actor's context.
func guardedReadOnly(t *testing.T, rdb roDB) (db, bare *sql.DB, ro context.Context) {
	t.Helper()
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	g, err := sqlguard.New(agent, rdb.dialect)
	if err != nil {
		t.Fatal(err)
	}
	db = g.OpenDB(rdb.conn)
	db.SetMaxOpenConns(1)
	bare = sql.OpenDB(rdb.conn)
	t.Cleanup(func() { db.Close(); bare.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return db, bare, rampart.NewReadOnlyContext(ctx, "dec-read-only-bypass")
}

// runRefused runs stmt for the read-only actor and wants it refused by the
// guard (an error wrapping rampart.ErrBlocked), reading every row if it ran.
func runRefused(t *testing.T, db *sql.DB, ro context.Context, stmt string) {
	t.Helper()
	rows, err := db.QueryContext(ro, stmt)
	if err == nil {
		for rows.Next() {
		}
		err = rows.Err()
		rows.Close()
		t.Errorf("%s: ran for a read-only actor (rows err %v), want it refused", stmt, err)
		return
	}
	if !errors.Is(err, rampart.ErrBlocked) {
		t.Errorf("%s: %v, want the guard's refusal", stmt, err)
	}
}

// A PostgreSQL function returning record, called in FROM with a column
// definition list (f() AS (a int)), looked to the classifier like a WITH
// query's column list, and the application's function ran.
func TestReadOnlyBypassPostgresColumnDefinitionList(t *testing.T) {
	rdb := roDatabase(t, sqlguard.Postgres)
	db, bare, ro := guardedReadOnly(t, rdb)
	suffix := fmt.Sprintf("%08x", rand.Uint32())
	tbl, fn := "ro_cdl_"+suffix, "ro_cdl_bump_"+suffix
	for _, q := range []string{
		"CREATE TABLE " + tbl + " (a int)",
		"CREATE FUNCTION " + fn + "() RETURNS SETOF record LANGUAGE sql AS $$ INSERT INTO " + tbl + " VALUES (1) RETURNING a, a $$",
	} {
		if _, err := bare.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		bare.Exec("DROP FUNCTION IF EXISTS " + fn + "()")
		bare.Exec("DROP TABLE IF EXISTS " + tbl)
	})
	for _, stmt := range []string{
		"SELECT * FROM " + fn + "() AS (a int, b int)",
		"SELECT * FROM ROWS FROM (" + fn + "() AS (a int, b int))",
		"SELECT * FROM (SELECT 1) s, LATERAL " + fn + "() AS (a int, b int)",
		"SELECT * FROM " + tbl + " t, " + fn + "() AS (a int, b int)",
	} {
		runRefused(t, db, ro, stmt)
	}
	var n int
	if err := bare.QueryRow("SELECT count(*) FROM " + tbl).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d rows inserted by the read-only actor's statements, want 0", n)
	}
	// WITH queries with column lists still read.
	var v int
	if err := db.QueryRowContext(ro, "WITH x(a, b) AS (SELECT 1, 2), y(c) AS MATERIALIZED (SELECT a FROM x), z(d) AS NOT MATERIALIZED ((SELECT 3)) SELECT a + b + c + d FROM x, y, z").Scan(&v); err != nil || v != 7 {
		t.Errorf("WITH with column lists: %d, %v; want 7 and no error", v, err)
	}
}

// SQLite's pragma_optimize table-valued function, named as a table
// without parentheses, runs PRAGMA optimize, which can ANALYZE and write
// sqlite_stat1.
func TestReadOnlyBypassSQLitePragmaTable(t *testing.T) {
	rdb := roDatabase(t, sqlguard.SQLite)
	db, bare, ro := guardedReadOnly(t, rdb)
	for _, q := range []string{
		"CREATE TABLE t (a, b)",
		"CREATE INDEX ti ON t (a)",
		"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) INSERT INTO t SELECT x % 10, x FROM c",
	} {
		if _, err := bare.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	bare.Close() // leave the one connection to the guarded pool
	var n int
	if err := db.QueryRowContext(ro, "SELECT count(*) FROM t WHERE a = 3").Scan(&n); err != nil || n != 100 {
		t.Fatalf("read: %d, %v", n, err)
	}
	for _, stmt := range []string{
		"SELECT * FROM pragma_optimize",
		"SELECT * FROM main.pragma_optimize",
		`SELECT * FROM "pragma_optimize"`,
		"SELECT * FROM [PRAGMA_OPTIMIZE]",
		"SELECT * FROM `pragma_optimize`",
	} {
		runRefused(t, db, ro, stmt)
	}
	if err := db.QueryRowContext(context.Background(), "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("sqlite_stat1 created by the read-only actor's statements")
	}
	// The pragmas that read still do, as tables.
	for _, stmt := range []string{
		"SELECT count(*) FROM pragma_table_info('t')",
		"SELECT count(*) FROM pragma_index_list('t')",
		"SELECT count(*) FROM pragma_database_list",
		`SELECT count(*) FROM "pragma_table_list"`,
	} {
		if err := db.QueryRowContext(ro, stmt).Scan(&n); err != nil {
			t.Errorf("%s: %v", stmt, err)
		}
	}
}

// MySQL's LAST_INSERT_ID(x) sets the value LAST_INSERT_ID() returns next
// on the connection, which the pool hands to other requests: a write to
// the session, as := is.
func TestReadOnlyBypassMySQLLastInsertID(t *testing.T) {
	rdb := roDatabase(t, sqlguard.MySQL)
	db, _, ro := guardedReadOnly(t, rdb)
	runRefused(t, db, ro, "SELECT LAST_INSERT_ID(424242)")
	runRefused(t, db, ro, "SELECT last_insert_id (424242 + 0)")
	var id int64
	if err := db.QueryRowContext(ro, "SELECT LAST_INSERT_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	if id == 424242 {
		t.Errorf("LAST_INSERT_ID() = %d: set by the read-only actor", id)
	}
}

// A call aliased MATERIALIZED or NOT (f() AS materialized; both are
// labels PostgreSQL accepts after AS, MariaDB takes the first) looked to
// the classifier like a WITH query's column list before AS MATERIALIZED.
func TestReadOnlyBypassAliasMaterialized(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		rdb := roDatabase(t, sqlguard.Postgres)
		db, bare, ro := guardedReadOnly(t, rdb)
		seq := fmt.Sprintf("ro_mat_%08x", rand.Uint32())
		if _, err := bare.Exec("CREATE SEQUENCE " + seq); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { bare.Exec("DROP SEQUENCE IF EXISTS " + seq) })
		for _, stmt := range []string{
			"SELECT nextval('" + seq + "') AS materialized",
			"SELECT nextval('" + seq + "') AS not",
			"SELECT 1 AS a, nextval('" + seq + "') AS MATERIALIZED",
		} {
			runRefused(t, db, ro, stmt)
		}
		var called bool
		if err := bare.QueryRow("SELECT is_called FROM " + seq).Scan(&called); err != nil {
			t.Fatal(err)
		}
		if called {
			t.Errorf("sequence %s advanced by the read-only actor's statements", seq)
		}
	})
	t.Run("mysql", func(t *testing.T) {
		rdb := roDatabase(t, sqlguard.MySQL)
		db, bare, ro := guardedReadOnly(t, rdb)
		lock := fmt.Sprintf("ro_mat_%08x", rand.Uint32())
		runRefused(t, db, ro, "SELECT GET_LOCK('"+lock+"', 1) AS materialized")
		// The guarded pool's one connection would hold the lock: the
		// bare connection asks who does.
		var holder sql.NullInt64
		if err := bare.QueryRow("SELECT IS_USED_LOCK(?)", lock).Scan(&holder); err != nil {
			t.Fatal(err)
		}
		if holder.Valid {
			t.Errorf("named lock %s held by connection %d after the read-only actor's statement", lock, holder.Int64)
		}
	})
}

// PostgreSQL's EXPLAIN ANALYZE runs what it explains, and it explains
// more than queries: CREATE TABLE AS, CREATE MATERIALIZED VIEW and
// EXECUTE (a statement the connection prepared, perhaps a write).
func TestReadOnlyBypassPostgresExplainAnalyze(t *testing.T) {
	rdb := roDatabase(t, sqlguard.Postgres)
	db, bare, ro := guardedReadOnly(t, rdb)
	suffix := fmt.Sprintf("%08x", rand.Uint32())
	tbl, ctas, mv, prep := "ro_ea_"+suffix, "ro_ea_ctas_"+suffix, "ro_ea_mv_"+suffix, "ro_ea_p_"+suffix
	if _, err := bare.Exec("CREATE TABLE " + tbl + " (a int)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		bare.Exec("DROP TABLE IF EXISTS " + ctas)
		bare.Exec("DROP MATERIALIZED VIEW IF EXISTS " + mv)
		bare.Exec("DROP TABLE IF EXISTS " + tbl)
	})
	// The application prepared a write on the pool's one connection.
	normal := context.Background()
	if _, err := db.ExecContext(normal, "PREPARE "+prep+" AS INSERT INTO "+tbl+" VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		"EXPLAIN ANALYZE CREATE TABLE " + ctas + " AS SELECT 1 AS a",
		"EXPLAIN (ANALYZE) CREATE MATERIALIZED VIEW " + mv + " AS SELECT 1 AS a",
		"EXPLAIN ANALYZE EXECUTE " + prep,
		"EXPLAIN (ANALYZE, COSTS OFF) EXECUTE " + prep,
	} {
		runRefused(t, db, ro, stmt)
	}
	var n int
	if err := bare.QueryRow("SELECT count(*) FROM pg_class WHERE relname IN ($1, $2)", ctas, mv).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d relations created by the read-only actor's EXPLAIN ANALYZE", n)
	}
	if err := bare.QueryRow("SELECT count(*) FROM " + tbl).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d rows inserted by the read-only actor's EXPLAIN ANALYZE EXECUTE", n)
	}
	// Explaining a query still runs, analysed or not.
	for _, stmt := range []string{
		"EXPLAIN SELECT * FROM " + tbl,
		"EXPLAIN ANALYZE SELECT count(*) FROM " + tbl,
		"EXPLAIN (ANALYZE, FORMAT JSON) WITH x AS (SELECT a FROM " + tbl + ") SELECT * FROM x",
		"EXPLAIN VERBOSE VALUES (1)",
		"EXPLAIN TABLE " + tbl,
	} {
		rows, err := db.QueryContext(ro, stmt)
		if err != nil {
			t.Errorf("%s: %v", stmt, err)
			continue
		}
		for rows.Next() {
		}
		rows.Close()
	}
}

// A transaction a read-only actor opens with the statement BEGIN (or
// START TRANSACTION) stays open on the connection when it goes back to the
// pool, and the next actor's writes on that connection join it: the read-
// only actor's ROLLBACK then undoes them. MySQL's driver hands such a
// connection on as it is (pgx discards it; SQLite's driver as MySQL's).
func TestReadOnlyBypassOpenTransactionInThePool(t *testing.T) {
	for _, d := range []sqlguard.Dialect{sqlguard.MySQL, sqlguard.SQLite} {
		t.Run(d.String(), func(t *testing.T) {
			rdb := roDatabase(t, d)
			db, bare, ro := guardedReadOnly(t, rdb)
			tbl := fmt.Sprintf("ro_tx_%08x", rand.Uint32())
			if _, err := bare.Exec("CREATE TABLE " + tbl + " (a INT)"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { bare.Exec("DROP TABLE IF EXISTS " + tbl) })
			if d == sqlguard.SQLite {
				bare.Close() // leave the one connection to the guarded pool
			}
			// The read-only actor opens a transaction, another actor
			// writes on the connection, the read-only actor rolls back.
			runBlocked := func(stmt string) {
				t.Helper()
				if _, err := db.ExecContext(ro, stmt); err == nil {
					t.Errorf("%s ran for a read-only actor, want it refused", stmt)
				} else if !errors.Is(err, rampart.ErrBlocked) {
					t.Errorf("%s: %v, want the guard's refusal", stmt, err)
				}
			}
			// COMMIT AND CHAIN opens one too (MySQL), as SQLite's
			// SAVEPOINT does outside a transaction.
			openers := []string{"BEGIN", "COMMIT AND CHAIN", "ROLLBACK WORK AND CHAIN"}
			if d == sqlguard.SQLite {
				openers = []string{"BEGIN", "SAVEPOINT sp"}
			}
			for i, open := range openers {
				runBlocked(open)
				if _, err := db.ExecContext(context.Background(), "INSERT INTO "+tbl+" VALUES (1)"); err != nil {
					t.Fatal(err)
				}
				db.ExecContext(ro, "ROLLBACK") // may run: no transaction is open
				var n int
				if err := db.QueryRowContext(context.Background(), "SELECT count(*) FROM "+tbl).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != i+1 {
					t.Errorf("after %s, another actor's INSERT undone by the read-only actor: %d rows, want %d", open, n, i+1)
					db.ExecContext(context.Background(), "INSERT INTO "+tbl+" VALUES (1)")
				}
			}
			other := []string{"START TRANSACTION", "BEGIN WORK", "START TRANSACTION WITH CONSISTENT SNAPSHOT"}
			if d == sqlguard.SQLite {
				other = []string{"BEGIN DEFERRED TRANSACTION", "BEGIN TRANSACTION"}
			}
			for _, stmt := range other {
				runBlocked(stmt)
				db.ExecContext(context.Background(), "ROLLBACK")
			}
			// A transaction the application opens (BeginTx) still
			// serves the read-only actor, savepoints and all (not in
			// SQLite, where the guard cannot tell SAVEPOINT in a
			// transaction from SAVEPOINT opening one).
			if d == sqlguard.SQLite {
				return
			}
			tx, err := db.BeginTx(ro, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, stmt := range []string{"SAVEPOINT sp1", "SELECT count(*) FROM " + tbl, "ROLLBACK TO SAVEPOINT sp1", "RELEASE SAVEPOINT sp1"} {
				if _, err := tx.ExecContext(ro, stmt); err != nil {
					t.Errorf("in the application's transaction, %s: %v", stmt, err)
				}
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// MySQL's SET TRANSACTION (without SESSION) sets how the session's next
// transaction runs: a read-only actor's, outside a transaction, set the
// next actor's on the pooled connection (READ ONLY: its writes failed).
func TestReadOnlyBypassMySQLSetTransaction(t *testing.T) {
	rdb := roDatabase(t, sqlguard.MySQL)
	db, bare, ro := guardedReadOnly(t, rdb)
	tbl := fmt.Sprintf("ro_st_%08x", rand.Uint32())
	if _, err := bare.Exec("CREATE TABLE " + tbl + " (a INT)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bare.Exec("DROP TABLE IF EXISTS " + tbl) })
	runRefused(t, db, ro, "SET TRANSACTION READ ONLY")
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+tbl+" VALUES (1)"); err != nil {
		t.Errorf("another actor's INSERT in its transaction: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{"SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED", "set transaction read write"} {
		if _, err := db.ExecContext(ro, stmt); !errors.Is(err, rampart.ErrBlocked) {
			t.Errorf("%s: %v, want the guard's refusal", stmt, err)
		}
	}
}

// The reads applications and their ORMs send still run for a read-only
// actor, on the real databases.
func TestReadOnlyCommonReadsRun(t *testing.T) {
	for _, d := range []sqlguard.Dialect{sqlguard.Postgres, sqlguard.MySQL, sqlguard.SQLite} {
		t.Run(d.String(), func(t *testing.T) {
			rdb := roDatabase(t, d)
			db, bare, ro := guardedReadOnly(t, rdb)
			tbl := fmt.Sprintf("ro_reads_%08x", rand.Uint32())
			jsonType := map[sqlguard.Dialect]string{sqlguard.Postgres: "JSONB", sqlguard.MySQL: "JSON", sqlguard.SQLite: "TEXT"}[d]
			for _, q := range []string{
				"CREATE TABLE " + tbl + " (id INT PRIMARY KEY, owner VARCHAR(32) NOT NULL, price DECIMAL(10, 2), data " + jsonType + ")",
				"INSERT INTO " + tbl + ` VALUES (1, 'alice', 9.50, '{"a": {"b": 1}}'), (2, 'bob', 3.25, '{"a": {"b": 2}}'), (3, 'alice', 1.00, '{"a": {"b": 3}}')`,
			} {
				if _, err := bare.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			t.Cleanup(func() { bare.Exec("DROP TABLE IF EXISTS " + tbl) })
			p := "?"
			if d == sqlguard.Postgres {
				p = "$1"
			}
			reads := []string{
				"SELECT id, owner, price FROM " + tbl + " WHERE owner = " + p + " ORDER BY id LIMIT 10 OFFSET 0",
				"SELECT count(*) AS count FROM " + tbl + " WHERE owner = " + p,
				"SELECT COUNT(*) FROM (SELECT id FROM " + tbl + " WHERE owner = " + p + ") AS sub",
				"SELECT owner, sum(price) AS total, row_number() OVER (ORDER BY sum(price) DESC) AS rnk FROM " + tbl + " WHERE owner <> " + p + " GROUP BY owner HAVING count(*) > 0",
				"SELECT id, lag(price) OVER (PARTITION BY owner ORDER BY id) FROM " + tbl + " WHERE owner <> " + p,
				"WITH mine AS (SELECT id, price FROM " + tbl + " WHERE owner = " + p + ") SELECT coalesce(max(price), 0) FROM mine",
				"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) SELECT count(*) FROM n, " + tbl + " WHERE owner <> " + p,
				"SELECT EXISTS (SELECT 1 FROM " + tbl + " WHERE owner = " + p + ")",
				"SELECT t1.id FROM " + tbl + " t1 LEFT JOIN " + tbl + " t2 ON t2.id = t1.id + 1 WHERE t1.owner = " + p + " ORDER BY t1.id DESC",
			}
			switch d {
			case sqlguard.Postgres:
				reads = append(reads,
					"SELECT data->'a'->>'b', data #>> '{a,b}' FROM "+tbl+" WHERE data @> '{\"a\": {\"b\": 1}}' AND owner = $1",
					"SELECT id FROM "+tbl+" WHERE owner = $1 ORDER BY id FETCH FIRST 2 ROWS ONLY",
					"SELECT jsonb_agg(jsonb_build_object('id', id)) FROM "+tbl+" WHERE owner = $1",
					"SELECT \"id\", \"owner\" FROM \"public\".\""+tbl+"\" WHERE \"owner\" = $1 LIMIT 1",
				)
			case sqlguard.MySQL:
				reads = append(reads,
					"SELECT JSON_UNQUOTE(JSON_EXTRACT(data, '$.a.b')), JSON_VALUE(data, '$.a.b') FROM "+tbl+" WHERE owner = ?",
					"SELECT `id`, `owner` FROM `"+tbl+"` WHERE `owner` = ? LIMIT 0, 10",
				)
			case sqlguard.SQLite:
				reads = append(reads,
					"SELECT json_extract(data, '$.a.b'), data ->> '$.a.b' FROM "+tbl+" WHERE owner = ?",
					"SELECT \"id\" FROM `"+tbl+"` WHERE [owner] = ? LIMIT 10 OFFSET 1",
				)
			}
			for _, q := range reads {
				rows, err := db.QueryContext(ro, q, "alice")
				if err != nil {
					t.Errorf("%s: %v", q, err)
					continue
				}
				n := 0
				for rows.Next() {
					n++
				}
				if err := rows.Err(); err != nil {
					t.Errorf("%s: %v", q, err)
				}
				rows.Close()
				if n == 0 {
					t.Errorf("%s: no rows", q)
				}
			}
		})
	}
}
