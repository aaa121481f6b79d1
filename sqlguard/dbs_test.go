package sqlguard_test

// Connection helpers for the integration tests: the three databases, a
// fixture of uniquely named tables in each, and a driver wrapper that records
// which statements reached the driver.
//
// The tests need:
//   - PostgreSQL at 127.0.0.1:5432, trust auth, user postgres (or root), db test;
//     override with RAMPART_TEST_POSTGRES_DSN.
//   - MariaDB or MySQL at 127.0.0.1:3306, user root without password, db test;
//     override with RAMPART_TEST_MYSQL_DSN (multiStatements=true is added).
//   - SQLite through modernc.org/sqlite, in a temporary file.
//
// A server that cannot be reached skips its tests, except when CI=true, where
// it fails them: CI must never pass by testing nothing.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/rampartsec/rampart/sqlguard"
	"modernc.org/sqlite"
)

// backend is one database the integration tests run against.
type backend struct {
	name    string // "postgres", "mysql" or "sqlite": names the testdata file too
	dialect sqlguard.Dialect
	drv     driver.Driver
	dsn     string
}

var backendNames = []string{"postgres", "mysql", "sqlite"}

// forEachBackend runs fn, in parallel, once per database that is reachable.
func forEachBackend(t *testing.T, fn func(t *testing.T, b *backend)) {
	for _, name := range backendNames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, openBackend(t, name))
		})
	}
}

// unavailable skips the test when a server is missing, or fails it in CI.
func unavailable(t *testing.T, what string, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required when CI=true: %v", what, err)
	}
	t.Skipf("%s unavailable, skipping: %v", what, err)
}

func openBackend(t *testing.T, name string) *backend {
	t.Helper()
	switch name {
	case "postgres":
		dsns := []string{
			"postgres://postgres@127.0.0.1:5432/test?sslmode=disable&connect_timeout=3",
			"postgres://root@127.0.0.1:5432/test?sslmode=disable&connect_timeout=3",
		}
		if d := os.Getenv("RAMPART_TEST_POSTGRES_DSN"); d != "" {
			dsns = []string{d}
		}
		var errs []string
		for _, dsn := range dsns {
			b := &backend{name: name, dialect: sqlguard.Postgres, drv: stdlib.GetDefaultDriver(), dsn: dsn}
			if err := b.ping(); err != nil {
				errs = append(errs, err.Error())
				continue
			}
			return b
		}
		unavailable(t, "PostgreSQL (127.0.0.1:5432 or RAMPART_TEST_POSTGRES_DSN)", errors.New(strings.Join(errs, "; ")))
	case "mysql":
		dsn := os.Getenv("RAMPART_TEST_MYSQL_DSN")
		if dsn == "" {
			dsn = "root@tcp(127.0.0.1:3306)/test?timeout=3s"
		}
		// The vulnerable application allows stacked queries, which makes the
		// exploits worse; the guarded one uses the very same DSN.
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatalf("RAMPART_TEST_MYSQL_DSN: %v", err)
		}
		cfg.MultiStatements = true
		b := &backend{name: name, dialect: sqlguard.MySQL, drv: mysql.MySQLDriver{}, dsn: cfg.FormatDSN()}
		if err := b.ping(); err != nil {
			unavailable(t, "MariaDB/MySQL (127.0.0.1:3306 or RAMPART_TEST_MYSQL_DSN)", err)
		}
		return b
	case "sqlite":
		path := filepath.Join(t.TempDir(), "test.db")
		dsn := "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)"
		b := &backend{name: name, dialect: sqlguard.SQLite, drv: &sqlite.Driver{}, dsn: dsn}
		if err := b.ping(); err != nil {
			t.Fatalf("sqlite: %v", err)
		}
		return b
	}
	t.Fatalf("unknown backend %q", name)
	return nil
}

func (b *backend) ping() error {
	db := sql.OpenDB(b.connector())
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return db.PingContext(ctx)
}

// connector returns the driver's own connector, or one over Open(dsn) for
// drivers without one (modernc.org/sqlite).
func (b *backend) connector() driver.Connector {
	if dc, ok := b.drv.(driver.DriverContext); ok {
		c, err := dc.OpenConnector(b.dsn)
		if err != nil {
			return errConnector{b.drv, err}
		}
		return c
	}
	return dsnConnector{b.drv, b.dsn}
}

type dsnConnector struct {
	drv driver.Driver
	dsn string
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.drv }

type errConnector struct {
	drv driver.Driver
	err error
}

func (c errConnector) Connect(context.Context) (driver.Conn, error) { return nil, c.err }
func (c errConnector) Driver() driver.Driver                        { return c.drv }

// openBare opens the database without any guard: what the application
// would run without Rampart.
func (b *backend) openBare(t *testing.T) *sql.DB {
	t.Helper()
	db := sql.OpenDB(b.connector())
	t.Cleanup(func() { db.Close() })
	return db
}

// openGuarded opens the database through g, with rec recording what reaches
// the driver underneath the guard.
func (b *backend) openGuarded(t *testing.T, g *sqlguard.Guard, rec *recorder) *sql.DB {
	t.Helper()
	db := g.OpenDB(&recConnector{c: b.connector(), rec: rec})
	t.Cleanup(func() { db.Close() })
	return db
}

// placeholder returns the n-th (1-based) bind parameter of the dialect.
func (b *backend) placeholder(n int) string {
	if b.dialect == sqlguard.Postgres {
		return fmt.Sprintf("$%d", n)
	}
	return "?"
}

// quote escapes s for the inside of a '...' literal the way a careful
// application that concatenates must: quotes doubled everywhere, and for
// MySQL backslashes doubled too, since they are escape characters there.
func (b *backend) quote(s string) string {
	if b.dialect == sqlguard.MySQL {
		s = strings.ReplaceAll(s, `\`, `\\`)
	}
	return strings.ReplaceAll(s, "'", "''")
}

// fixture is a set of tables unique to one test, dropped at its end.
type fixture struct {
	b                                   *backend
	admin                               *sql.DB // bare connection used to set up and inspect
	users, secrets, canary, hits, notes string
	secret                              string            // the value no benign request can return
	work                                map[string]string // SQLite: calibrated {blob} and {loop}
}

func newFixture(t *testing.T, b *backend) *fixture {
	t.Helper()
	suffix := fmt.Sprintf("%08x", rand.Uint32())
	fx := &fixture{
		b:       b,
		admin:   b.openBare(t),
		users:   "sqg_users_" + suffix,
		secrets: "sqg_secrets_" + suffix,
		canary:  "sqg_canary_" + suffix,
		hits:    "sqg_hits_" + suffix,
		notes:   "sqg_notes_" + suffix,
		// Short enough to survive MySQL's 32-character XPATH error messages.
		secret: fmt.Sprintf("s3cr3t-%08x", rand.Uint32()),
	}
	notes := map[sqlguard.Dialect]string{
		sqlguard.Postgres: "CREATE TABLE %s (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL)",
		// nopad_bin: '=' compares bytes, without ignoring trailing spaces or case.
		sqlguard.MySQL:  "CREATE TABLE %s (id BIGINT AUTO_INCREMENT PRIMARY KEY, body TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL)",
		sqlguard.SQLite: "CREATE TABLE %s (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
	}[b.dialect]
	stmts := []string{
		"CREATE TABLE " + fx.users + " (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, email VARCHAR(128) NOT NULL, password VARCHAR(64) NOT NULL, visits INT NOT NULL)",
		"CREATE TABLE " + fx.secrets + " (id INT PRIMARY KEY, owner VARCHAR(64) NOT NULL, secret VARCHAR(64) NOT NULL)",
		"CREATE TABLE " + fx.canary + " (note VARCHAR(200))",
		"CREATE TABLE " + fx.hits + " (ua TEXT)",
		fmt.Sprintf(notes, fx.notes),
		"INSERT INTO " + fx.users + " VALUES (1, 'alice', 'alice@example.com', 'correct horse', 0), (2, 'bob', 'bob@example.com', 'battery staple', 0), (3, 'carol', 'carol@example.com', 'hunter2', 0), (4, 'dave', 'dave@example.com', 'swordfish', 0)",
		"INSERT INTO " + fx.secrets + " VALUES (1, 'root', '" + fx.secret + "')",
	}
	if b.dialect == sqlguard.MySQL {
		for i := range 4 {
			stmts[i] += " CHARACTER SET utf8mb4"
		}
	}
	t.Cleanup(func() {
		for _, tbl := range []string{fx.users, fx.secrets, fx.canary, fx.hits, fx.notes} {
			if _, err := fx.admin.Exec("DROP TABLE IF EXISTS " + tbl); err != nil {
				t.Errorf("cleanup: drop %s: %v", tbl, err)
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, s := range stmts {
		if _, err := fx.admin.ExecContext(ctx, s); err != nil {
			t.Fatalf("fixture: %s: %v", s, err)
		}
	}
	return fx
}

// calibrateWork sets the amounts of work that the time-based SQLite payloads
// use in place of {blob} and {loop}.
func (fx *fixture) calibrateWork(t *testing.T) {
	t.Helper()
	if fx.b.dialect != sqlguard.SQLite || fx.work != nil {
		return
	}
	fx.work = map[string]string{
		"{blob}": strconv.Itoa(fx.calibrate(t, "like('ABCDEFG',upper(hex(randomblob(%d))))", 1e5)),
		"{loop}": strconv.Itoa(fx.calibrate(t, "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<%d) SELECT count(*) FROM c)", 1e4)),
	}
}

// sqliteWork is how much CPU time the time-based SQLite payloads spend
// computing, SQLite having no sleep function: the attacker reads the work
// as a delay of the answer.
const sqliteWork = 450 * time.Millisecond

// calibrate returns the n for which SQLite spends about sqliteWork of CPU
// time computing the expression format(n), so that the time-based payloads
// do as much work on a slow machine, or under the race detector, as on a
// fast one. It measures the CPU time of the computing thread, the least of
// three runs, not the time on the clock: a busy machine makes a computation
// last longer, sometimes during calibration and not afterwards, which once
// made the payloads compute for less than half of what the clock had
// promised. The exploits are then proved by the CPU time their request
// costs (see proveExploit), which the load does not change either. Where a
// thread's CPU time cannot be measured, calibrate goes by the clock, and the
// SQLite time-based exploits are run but not proved.
func (fx *fixture) calibrate(t *testing.T, format string, n int) int {
	t.Helper()
	for {
		took := time.Duration(1<<63 - 1)
		for range 3 {
			var err error
			start := time.Now()
			d, ok := threadCPU(func() { _, err = fx.admin.Exec("SELECT " + fmt.Sprintf(format, n)) })
			if !ok {
				d = time.Since(start)
			}
			if err != nil {
				t.Fatalf("calibrate %s: %v", format, err)
			}
			took = min(took, d)
		}
		if took >= 100*time.Millisecond || n >= 1<<28 {
			return int(float64(n) * float64(sqliteWork) / float64(took))
		}
		n *= 4
	}
}

// expand replaces the placeholders of a testdata payload: {users},
// {secrets}, {canary} and {hits} with this fixture's table names, and for
// SQLite {blob} and {loop} with the calibrated amounts of work.
func (fx *fixture) expand(s string) string {
	pairs := []string{"{users}", fx.users, "{secrets}", fx.secrets, "{canary}", fx.canary, "{hits}", fx.hits}
	for k, v := range fx.work {
		pairs = append(pairs, k, v)
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

func (fx *fixture) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := fx.admin.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func (fx *fixture) exec(t *testing.T, stmt string) {
	t.Helper()
	if _, err := fx.admin.Exec(stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

// recorder remembers every statement that reached the driver under the
// guard, to prove a blocked statement never got that far.
type recorder struct {
	mu    sync.Mutex
	stmts []string
}

func (r *recorder) add(q string) {
	r.mu.Lock()
	r.stmts = append(r.stmts, q)
	r.mu.Unlock()
}

// reached returns the first recorded statement containing s, if any.
func (r *recorder) reached(s string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, q := range r.stmts {
		if strings.Contains(q, s) {
			return q, true
		}
	}
	return "", false
}

type recConnector struct {
	c   driver.Connector
	rec *recorder
}

func (c *recConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.c.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &recConn{Conn: dc, rec: c.rec}, nil
}

func (c *recConnector) Driver() driver.Driver { return c.c.Driver() }

// recConn records statements and forwards everything to the driver's
// connection, answering driver.ErrSkip where the driver lacks an interface so
// that database/sql behaves as with the bare driver.
type recConn struct {
	driver.Conn
	rec *recorder
}

var (
	_ driver.ConnPrepareContext = (*recConn)(nil)
	_ driver.QueryerContext     = (*recConn)(nil)
	_ driver.ExecerContext      = (*recConn)(nil)
	_ driver.ConnBeginTx        = (*recConn)(nil)
	_ driver.NamedValueChecker  = (*recConn)(nil)
	_ driver.SessionResetter    = (*recConn)(nil)
	_ driver.Validator          = (*recConn)(nil)
	_ driver.Pinger             = (*recConn)(nil)
)

func (c *recConn) Prepare(q string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), q)
}

func (c *recConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	c.rec.add(q)
	if p, ok := c.Conn.(driver.ConnPrepareContext); ok {
		return p.PrepareContext(ctx, q)
	}
	return c.Conn.Prepare(q)
}

func (c *recConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	qc, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	c.rec.add(q)
	return qc.QueryContext(ctx, q, args)
}

func (c *recConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	ec, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	c.rec.add(q)
	return ec.ExecContext(ctx, q, args)
}

func (c *recConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if b, ok := c.Conn.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	return c.Conn.Begin() //nolint:staticcheck // the driver offers nothing else
}

func (c *recConn) CheckNamedValue(nv *driver.NamedValue) error {
	if n, ok := c.Conn.(driver.NamedValueChecker); ok {
		return n.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func (c *recConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *recConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *recConn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}
