package sqlguard_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/benchinputs"
	"github.com/rampartsec/rampart/sqlguard"
	"modernc.org/sqlite"
)

// The benchmarks in this file measure what the guard adds to a query, in
// three cases that differ by where the request's input ends up:
//
//	case=none     no input of the context occurs in the query (the common case)
//	case=literal  one input occurs inside a string literal (benign)
//	case=injected one input is concatenated and breaks out of its literal (blocked)
//
// each at three query sizes, with 20 untrusted inputs in the context. Results
// are in BENCHMARKS.md, with the commands that reproduce them.

// benchInputs are 19 values of the kind one request carries (headers,
// query parameters, JSON fields), none of which occurs in benchQuery's
// statements; newBenchCase checks it.
var benchInputs = benchinputs.Request()

const (
	benchBenignInput   = "red running shoes" // a search term, placed in a literal
	benchInjectedInput = "x' OR '1'='1"      // the classic tautology, concatenated
	benchConstant      = "blue suede shoes"  // a literal written by the programmer
)

var (
	benchCases = []string{"none", "literal", "injected"}
	benchSizes = []int{100, 500, 2000}
)

// benchQuery returns a SELECT of about size bytes (never less) whose WHERE
// clause compares name with the string literal lit, as a vulnerable
// application writes it: "... u.name = '" + lit + "' ...". It is valid
// SQLite over benchSchema.
func benchQuery(size int, lit string) string {
	cols := []string{"u.id", "u.name", "u.email", "u.status", "u.created_at"}
	head := "SELECT u.id, u.name"
	tail := " FROM users u WHERE u.status = 'active' AND u.name = '" + lit + "' ORDER BY u.id LIMIT 20"
	var b strings.Builder
	b.WriteString(head)
	for i := 0; b.Len()+len(tail) < size; i++ {
		fmt.Fprintf(&b, ", %s AS c%03d", cols[i%len(cols)], i)
	}
	b.WriteString(tail)
	return b.String()
}

const benchSchema = `CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT, status TEXT, created_at TEXT);
INSERT INTO users VALUES (1, 'Alice', 'alice@example.org', 'active', '2024-01-01'),
	(2, 'Bob', 'bob@example.org', 'active', '2024-01-02'),
	(3, 'Carol', 'carol@example.org', 'disabled', '2024-01-03');`

// benchCase is one query and the context it runs in.
type benchCase struct {
	ctx     context.Context
	query   string
	blocked bool // the guard must refuse the query
}

func newBenchCase(tb testing.TB, kind string, size int) benchCase {
	tb.Helper()
	lit, extra := benchConstant, ""
	switch kind {
	case "none":
		extra = "winter jacket" // 20th input, occurring nowhere
	case "literal":
		lit, extra = benchBenignInput, benchBenignInput
	case "injected":
		lit, extra = benchInjectedInput, benchInjectedInput
	default:
		tb.Fatalf("unknown case %q", kind)
	}
	q := benchQuery(size, lit)
	if strings.Contains(q, extra) != (kind != "none") {
		tb.Fatalf("case=%s: input %q occurs in the query: %v", kind, extra, strings.Contains(q, extra))
	}
	for _, v := range benchInputs {
		if strings.Contains(q, v) {
			tb.Fatalf("input %q occurs in the %d-byte query; pick another", v, size)
		}
	}
	// The input that occurs comes last, so that the guard looks at the 19
	// others first, as it would if it came from the request body.
	values := append(append([]string(nil), benchInputs...), extra)
	if len(values) != 20 {
		tb.Fatalf("%d inputs, want 20", len(values))
	}
	ctx := rampart.WithUntrusted(context.Background(), rampart.SourceQuery, values...)
	return benchCase{ctx: ctx, query: q, blocked: kind == "injected"}
}

// benchSink drops events: the benchmarks measure the request path, and
// the agent delivers events from its own goroutine anyway.
type benchSink struct{}

func (benchSink) WriteEvents(context.Context, []rampart.Event) error { return nil }

func newBenchGuard(tb testing.TB, d sqlguard.Dialect) *sqlguard.Guard {
	tb.Helper()
	a, err := rampart.New(rampart.Config{
		Service: "bench",
		Sinks:   []rampart.Sink{benchSink{}},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = a.Close(context.Background()) })
	g, err := sqlguard.New(a, d)
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

func TestBenchCasesAreWhatTheySay(t *testing.T) {
	g := newBenchGuard(t, sqlguard.SQLite)
	for _, kind := range benchCases {
		for _, size := range benchSizes {
			c := newBenchCase(t, kind, size)
			err := g.Check(c.ctx, c.query)
			if got := errors.Is(err, rampart.ErrBlocked); got != c.blocked {
				t.Errorf("case=%s size=%d (%d bytes): blocked=%v, want %v (err %v)", kind, size, len(c.query), got, c.blocked, err)
			}
			t.Logf("case=%s size=%d: %d bytes", kind, size, len(c.query))
		}
	}
}

// BenchmarkCheck measures Guard.Check alone: the whole cost the guard adds
// to a statement, without database/sql or a driver.
func BenchmarkCheck(b *testing.B) {
	g := newBenchGuard(b, sqlguard.SQLite)
	for _, kind := range benchCases {
		for _, size := range benchSizes {
			c := newBenchCase(b, kind, size)
			b.Run(fmt.Sprintf("case=%s/size=%d", kind, size), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					err := g.Check(c.ctx, c.query)
					if (err != nil) != c.blocked {
						b.Fatalf("Check: %v", err)
					}
				}
			})
		}
	}
}

// BenchmarkQuery measures db.QueryContext with and without the guard over
// the same driver: guard=off is a plain *sql.DB, guard=on one opened with
// Guard.OpenDB. driver=fake is an in-memory driver that answers every query
// with no rows, so the difference is the guard's cost and nothing else;
// driver=sqlite is modernc.org/sqlite in memory, for scale.
//
// Compare with: benchstat -col /guard
func BenchmarkQuery(b *testing.B) {
	b.Run("driver=fake", func(b *testing.B) {
		g := newBenchGuard(b, sqlguard.SQLite)
		dbs := map[string]*sql.DB{
			"off": sql.OpenDB(benchConnector{}),
			"on":  g.OpenDB(benchConnector{}),
		}
		benchQueries(b, dbs)
	})
	b.Run("driver=sqlite", func(b *testing.B) {
		g := newBenchGuard(b, sqlguard.SQLite)
		off, err := sql.Open("sqlite", ":memory:")
		if err != nil {
			b.Fatal(err)
		}
		on, err := g.Open(&sqlite.Driver{}, ":memory:")
		if err != nil {
			b.Fatal(err)
		}
		for _, db := range []*sql.DB{off, on} {
			// Each connection to :memory: is its own database: keep one.
			db.SetMaxOpenConns(1)
			db.SetMaxIdleConns(1)
			if _, err := db.Exec(benchSchema); err != nil {
				b.Fatal(err)
			}
		}
		benchQueries(b, map[string]*sql.DB{"off": off, "on": on})
	})
}

func benchQueries(b *testing.B, dbs map[string]*sql.DB) {
	b.Cleanup(func() {
		for _, db := range dbs {
			db.Close()
		}
	})
	for _, kind := range benchCases {
		for _, size := range benchSizes {
			c := newBenchCase(b, kind, size)
			for _, guard := range []string{"off", "on"} {
				db := dbs[guard]
				wantBlocked := c.blocked && guard == "on"
				b.Run(fmt.Sprintf("case=%s/size=%d/guard=%s", kind, size, guard), func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						rows, err := db.QueryContext(c.ctx, c.query)
						if err != nil {
							if wantBlocked && errors.Is(err, rampart.ErrBlocked) {
								continue
							}
							b.Fatalf("Query: %v", err)
						}
						if wantBlocked {
							b.Fatal("Query was not blocked")
						}
						for rows.Next() {
						}
						if err := rows.Close(); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// benchConnector makes connections that answer every query with no rows and
// every statement with no effect, at the least cost a driver can have.
type benchConnector struct{}

func (benchConnector) Connect(context.Context) (driver.Conn, error) { return benchConn{}, nil }
func (benchConnector) Driver() driver.Driver                        { return benchDriver{} }

type benchDriver struct{}

func (benchDriver) Open(string) (driver.Conn, error) { return benchConn{}, nil }

type benchConn struct{}

var (
	_ driver.Conn           = benchConn{}
	_ driver.QueryerContext = benchConn{}
	_ driver.ExecerContext  = benchConn{}
)

var errBenchPrepare = errors.New("fake driver: prepared statements are not supported")

func (benchConn) Prepare(string) (driver.Stmt, error) { return nil, errBenchPrepare }
func (benchConn) Close() error                        { return nil }
func (benchConn) Begin() (driver.Tx, error)           { return nil, errBenchPrepare }

func (benchConn) QueryContext(context.Context, string, []driver.NamedValue) (driver.Rows, error) {
	return benchRows{}, nil
}

func (benchConn) ExecContext(context.Context, string, []driver.NamedValue) (driver.Result, error) {
	return driver.RowsAffected(0), nil
}

type benchRows struct{}

var benchColumns = []string{"id"}

func (benchRows) Columns() []string         { return benchColumns }
func (benchRows) Close() error              { return nil }
func (benchRows) Next([]driver.Value) error { return io.EOF }
