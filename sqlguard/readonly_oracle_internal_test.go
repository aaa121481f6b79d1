package sqlguard

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// TestReadsPassTheDatabasesReadOnlyTransactions takes the database's own
// read-only transaction as the judge: each statement of
// testdata/readonly.txt that the read-only rule lets through runs in a
// read-only transaction (rolled back), and the database must not refuse it
// as a write. Statements that fail otherwise (a table the schema below does
// not have) are counted, not judged; enough must run for the test to mean
// something. Needs PostgreSQL at 127.0.0.1:5432 db test and MariaDB at
// 127.0.0.1:3306 (root, db test), or RAMPART_TEST_POSTGRES_DSN and
// RAMPART_TEST_MYSQL_DSN.
func TestReadsPassTheDatabasesReadOnlyTransactions(t *testing.T) {
	cases := readOnlyCases(t)
	for _, d := range []Dialect{Postgres, MySQL} {
		t.Run(d.String(), func(t *testing.T) {
			t.Parallel()
			conn := oracleConn(t, d)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ran, judged := 0, 0
			for _, c := range cases {
				if c.dialect != d || readOnlyRefusal(d, c.stmt, tokenize(d, c.stmt, nil, false)) != "" {
					continue
				}
				judged++
				tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
				if err != nil {
					t.Fatal(err)
				}
				_, err = tx.ExecContext(ctx, c.stmt)
				tx.Rollback()
				var pgErr *pgconn.PgError
				var myErr *mysql.MySQLError
				switch {
				case err == nil:
					ran++
				case errors.As(err, &pgErr) && pgErr.Code == "25006", // read_only_sql_transaction
					errors.As(err, &myErr) && myErr.Number == 1792: // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
					t.Errorf("testdata/readonly.txt:%d: %q passes the read-only rule, and %s refuses it as a write: %v", c.line, c.stmt, d, err)
				default:
					t.Logf("testdata/readonly.txt:%d: not judged: %v", c.line, err)
				}
			}
			t.Logf("%d of the %d statements the rule lets through ran in a read-only transaction", ran, judged)
			if ran < judged/2 {
				t.Errorf("only %d of %d statements ran: the schema no longer fits testdata/readonly.txt", ran, judged)
			}
		})
	}
}

// oracleConn returns a connection to a schema (PostgreSQL) or database
// (MariaDB) of its own, with the tables testdata/readonly.txt reads.
func oracleConn(t *testing.T, d Dialect) *sql.Conn {
	t.Helper()
	name := fmt.Sprintf("ro_oracle_%08x", rand.Uint32())
	var driverName, dsn string
	switch d {
	case Postgres:
		driverName, dsn = "pgx", os.Getenv("RAMPART_TEST_POSTGRES_DSN")
		if dsn == "" {
			dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&connect_timeout=3"
		}
	case MySQL:
		driverName, dsn = "mysql", os.Getenv("RAMPART_TEST_MYSQL_DSN")
		if dsn == "" {
			dsn = "root@tcp(127.0.0.1:3306)/test?timeout=3s"
		}
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatal(err)
		}
		cfg.MultiStatements = true
		dsn = cfg.FormatDSN()
	}
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skipf("%s unavailable, skipping: %v", d, err)
	}
	t.Cleanup(func() { conn.Close() })
	q := func(s string) string { return "`" + s + "`" }
	create, use, drop := "CREATE DATABASE "+name, "USE "+name, "DROP DATABASE "+name
	if d == Postgres {
		q = func(s string) string { return `"` + s + `"` }
		create, use, drop = "CREATE SCHEMA "+name, "SET search_path TO "+name, "DROP SCHEMA "+name+" CASCADE"
	}
	for _, s := range []string{
		create, use,
		"CREATE TABLE t (id INT PRIMARY KEY, a INT, x INT, y INT, z BOOLEAN, v INT, name VARCHAR(64), created TIMESTAMP, " +
			q("update") + " INT, " + q("delete") + " INT, updated_at TIMESTAMP, inserted_by VARCHAR(64), deleted BOOLEAN)",
		"CREATE INDEX idx_a ON t (a)",
		"CREATE VIEW v AS SELECT * FROM t",
		"CREATE TABLE u (id INT, x INT)",
		"CREATE TABLE users (id INT, name VARCHAR(64), email VARCHAR(64))",
		"CREATE TABLE orders (id INT, owner VARCHAR(64), item VARCHAR(64))",
		"CREATE TABLE items (price DECIMAL(10, 2))",
	} {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	t.Cleanup(func() { db.ExecContext(context.Background(), drop) })
	return conn
}
