// Package rampartpgx guards pgx's native interface
// (github.com/jackc/pgx/v5): the SQL text of every statement sent through
// a [Pool] or a [Conn] is checked by the SQL guard
// (github.com/rampartsec/rampart/sqlguard, PostgreSQL dialect) against the
// untrusted inputs of its context before it reaches the server, with the
// rule, the events and the read-only handling of the database/sql guard.
// One line wraps the pool a service already has:
//
//	pool := rampartpgx.NewPool(agent, rawPool) // *pgxpool.Pool
//
// What is checked: Query, QueryRow and Exec (the SQL text, before pgx
// rewrites named arguments), each query of SendBatch (the whole batch is
// refused, none of it sent, when one query is), Prepare, and the same
// methods of the transactions that Begin, BeginTx and a batch's
// Batch.BeginTx begin (savepoints included; the BEGIN that Batch.BeginTx
// queues is pgx's own text, and serves a read-only actor as BeginTx does). A statement prepared through Conn.Prepare was checked then;
// Query and Exec by its name are not checked again. CopyFrom is not
// checked: its rows travel as data in the COPY protocol, never as SQL
// text, and pgx quotes the table and column names. A blocked statement
// returns an error wrapping rampart.ErrBlocked, from Query and Exec, from
// Row.Scan for QueryRow, and from every result and Close of a batch.
//
// Pool.Acquire hands out a guarded PoolConn. What is not guarded: the
// *pgx.Conn of Tx.Conn and of a pgxpool.Conn acquired from the unwrapped
// pool, and the pgconn.PgConn below them. Give the code that handles
// requests the guarded values only.
package rampartpgx

import (
	"context"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/sqlguard"
)

// newGuard returns the SQL guard of agent for pgx, whose events name the
// sink "pgx (postgres)". It fails only for a nil agent.
func newGuard(agent *rampart.Agent) *sqlguard.Guard {
	g, err := sqlguard.NewFor(agent, sqlguard.Postgres, "pgx")
	if err != nil {
		panic("rampartpgx: " + err.Error()) // agent is nil: a programming error at start-up
	}
	return g
}

// Pool is a *pgxpool.Pool whose statements are checked. It is safe for
// concurrent use, as the pool is.
type Pool struct {
	p *pgxpool.Pool
	g *sqlguard.Guard
}

// NewPool returns pool guarded by agent's SQL guard. The caller still
// owns pool; Pool.Close closes it. It panics if agent is nil.
func NewPool(agent *rampart.Agent, pool *pgxpool.Pool) *Pool {
	return &Pool{p: pool, g: newGuard(agent)}
}

// Query checks sql, then runs it as pgxpool.Pool.Query does.
func (p *Pool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := p.g.Check(ctx, sql); err != nil {
		return nil, err
	}
	return p.p.Query(ctx, sql, args...)
}

// QueryRow checks sql, then runs it as pgxpool.Pool.QueryRow does. A
// refusal is returned by the row's Scan.
func (p *Pool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := p.g.Check(ctx, sql); err != nil {
		return errRow{err}
	}
	return p.p.QueryRow(ctx, sql, args...)
}

// Exec checks sql, then runs it as pgxpool.Pool.Exec does.
func (p *Pool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := p.g.Check(ctx, sql); err != nil {
		return pgconn.CommandTag{}, err
	}
	return p.p.Exec(ctx, sql, args...)
}

// SendBatch checks every query of b, then sends it as
// pgxpool.Pool.SendBatch does; if one is refused, nothing is sent.
func (p *Pool) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if err := checkBatch(ctx, p.g, nil, b); err != nil {
		return errBatch{err}
	}
	return guardedBatch{p.p.SendBatch(ctx, b), p.g, nil}
}

// CopyFrom runs pgxpool.Pool.CopyFrom unchecked: its rows are data.
func (p *Pool) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error) {
	return p.p.CopyFrom(ctx, table, columns, rows)
}

// Begin starts a transaction whose statements are checked.
func (p *Pool) Begin(ctx context.Context) (pgx.Tx, error) {
	return p.BeginTx(ctx, pgx.TxOptions{})
}

// BeginTx starts a transaction with opts whose statements are checked.
func (p *Pool) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	t, err := p.p.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &tx{Tx: t, g: p.g}, nil
}

// Ping pings a connection of the pool.
func (p *Pool) Ping(ctx context.Context) error { return p.p.Ping(ctx) }

// Stat returns the pool's statistics.
func (p *Pool) Stat() *pgxpool.Stat { return p.p.Stat() }

// Close closes the pool.
func (p *Pool) Close() { p.p.Close() }

// Acquire takes a connection from the pool, as pgxpool.Pool.Acquire does,
// and returns it guarded: its statements are checked like the pool's.
// Release it when done.
func (p *Pool) Acquire(ctx context.Context) (*PoolConn, error) {
	res, err := p.p.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &PoolConn{Conn: &Conn{c: res.Conn(), g: p.g, prepared: new(sync.Map)}, res: res}, nil
}

// PoolConn is a connection acquired from a Pool: a Conn whose statements
// are checked, which goes back to the pool with Release. Its Close is not
// to be called: Release returns it.
type PoolConn struct {
	*Conn
	res *pgxpool.Conn
}

// Release returns the connection to its pool. The PoolConn must not be
// used after.
func (pc *PoolConn) Release() { pc.res.Release() }

// Conn is a *pgx.Conn whose statements are checked. Like a pgx.Conn, it is
// not safe for concurrent use.
type Conn struct {
	c *pgx.Conn
	g *sqlguard.Guard
	// prepared holds the names of the statements prepared through this
	// Conn, whose SQL was checked by Prepare.
	prepared *sync.Map
}

// NewConn returns conn guarded by agent's SQL guard. It panics if agent is
// nil.
func NewConn(agent *rampart.Agent, conn *pgx.Conn) *Conn {
	return &Conn{c: conn, g: newGuard(agent), prepared: new(sync.Map)}
}

// check checks sql unless it names a statement prepared through c.
func (c *Conn) check(ctx context.Context, sql string) error {
	if _, ok := c.prepared.Load(sql); ok {
		return nil
	}
	return c.g.Check(ctx, sql)
}

// Query checks sql, then runs it as pgx.Conn.Query does.
func (c *Conn) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := c.check(ctx, sql); err != nil {
		return nil, err
	}
	return c.c.Query(ctx, sql, args...)
}

// QueryRow checks sql, then runs it as pgx.Conn.QueryRow does. A refusal
// is returned by the row's Scan.
func (c *Conn) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := c.check(ctx, sql); err != nil {
		return errRow{err}
	}
	return c.c.QueryRow(ctx, sql, args...)
}

// Exec checks sql, then runs it as pgx.Conn.Exec does.
func (c *Conn) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := c.check(ctx, sql); err != nil {
		return pgconn.CommandTag{}, err
	}
	return c.c.Exec(ctx, sql, args...)
}

// SendBatch checks every query of b, then sends it as pgx.Conn.SendBatch
// does; if one is refused, nothing is sent.
func (c *Conn) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if err := checkBatch(ctx, c.g, c.prepared, b); err != nil {
		return errBatch{err}
	}
	return guardedBatch{c.c.SendBatch(ctx, b), c.g, c.prepared}
}

// Prepare checks sql, then prepares it as pgx.Conn.Prepare does. Query and
// Exec by name run it without checking it again.
func (c *Conn) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	if err := c.g.Check(ctx, sql); err != nil {
		return nil, err
	}
	sd, err := c.c.Prepare(ctx, name, sql)
	if err == nil && name != "" {
		c.prepared.Store(name, struct{}{})
	}
	return sd, err
}

// Deallocate releases a prepared statement, which Query and Exec by its
// name then check as SQL text again.
func (c *Conn) Deallocate(ctx context.Context, name string) error {
	c.prepared.Delete(name)
	return c.c.Deallocate(ctx, name)
}

// CopyFrom runs pgx.Conn.CopyFrom unchecked: its rows are data.
func (c *Conn) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error) {
	return c.c.CopyFrom(ctx, table, columns, rows)
}

// Begin starts a transaction whose statements are checked.
func (c *Conn) Begin(ctx context.Context) (pgx.Tx, error) {
	return c.BeginTx(ctx, pgx.TxOptions{})
}

// BeginTx starts a transaction with opts whose statements are checked.
func (c *Conn) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	t, err := c.c.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &tx{Tx: t, g: c.g, prepared: c.prepared}, nil
}

// Ping checks that the connection is alive.
func (c *Conn) Ping(ctx context.Context) error { return c.c.Ping(ctx) }

// Close closes the connection.
func (c *Conn) Close(ctx context.Context) error { return c.c.Close(ctx) }

// tx is a pgx.Tx whose statements are checked. Commit, Rollback, CopyFrom,
// LargeObjects and Conn are the embedded transaction's.
type tx struct {
	pgx.Tx
	g        *sqlguard.Guard
	prepared *sync.Map // a Conn's prepared names; nil for a Pool's transaction
}

var _ pgx.Tx = (*tx)(nil)

func (t *tx) check(ctx context.Context, sql string) error {
	if t.prepared != nil {
		if _, ok := t.prepared.Load(sql); ok {
			return nil
		}
	}
	return t.g.Check(ctx, sql)
}

func (t *tx) Begin(ctx context.Context) (pgx.Tx, error) {
	n, err := t.Tx.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &tx{Tx: n, g: t.g, prepared: t.prepared}, nil
}

func (t *tx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := t.check(ctx, sql); err != nil {
		return nil, err
	}
	return t.Tx.Query(ctx, sql, args...)
}

func (t *tx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := t.check(ctx, sql); err != nil {
		return errRow{err}
	}
	return t.Tx.QueryRow(ctx, sql, args...)
}

func (t *tx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := t.check(ctx, sql); err != nil {
		return pgconn.CommandTag{}, err
	}
	return t.Tx.Exec(ctx, sql, args...)
}

func (t *tx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if err := checkBatch(ctx, t.g, t.prepared, b); err != nil {
		return errBatch{err}
	}
	return guardedBatch{t.Tx.SendBatch(ctx, b), t.g, t.prepared}
}

// Prepare checks sql; the name is then known to the transaction's Conn
// only if the transaction came from a Conn.
func (t *tx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	if err := t.g.Check(ctx, sql); err != nil {
		return nil, err
	}
	sd, err := t.Tx.Prepare(ctx, name, sql)
	if err == nil && name != "" && t.prepared != nil {
		t.prepared.Store(name, struct{}{})
	}
	return sd, err
}

func checkBatch(ctx context.Context, g *sqlguard.Guard, prepared *sync.Map, b *pgx.Batch) error {
	if b == nil {
		return nil
	}
	for i, q := range b.QueuedQueries {
		if i == 0 && len(q.Arguments) == 0 && batchBegin(q.SQL) {
			// Batch.BeginTx's BEGIN: pgx writes it, as BeginTx does, and
			// a read-only actor's transaction serves as BeginTx's does.
			continue
		}
		if prepared != nil {
			if _, ok := prepared.Load(q.SQL); ok {
				continue
			}
		}
		if err := g.Check(ctx, q.SQL); err != nil {
			return err
		}
	}
	return nil
}

// batchBegin reports whether sql is a BEGIN such as Batch.BeginTx queues:
// "begin" and transaction-mode keywords only, which no input can turn into
// anything but the start of a transaction.
func batchBegin(sql string) bool {
	words := strings.Fields(strings.ToLower(sql))
	if len(words) == 0 || words[0] != "begin" {
		return false
	}
	for _, w := range words[1:] {
		switch w {
		case "isolation", "level", "serializable", "repeatable", "read", "committed", "uncommitted",
			"write", "only", "deferrable", "not":
		default:
			return false
		}
	}
	return true
}

// guardedBatch is the result of a batch sent: the transaction that
// Batch.BeginTx began is checked as Begin's is.
type guardedBatch struct {
	pgx.BatchResults
	g        *sqlguard.Guard
	prepared *sync.Map
}

func (b guardedBatch) Tx() pgx.Tx {
	t := b.BatchResults.Tx()
	if t == nil {
		return nil
	}
	return &tx{Tx: t, g: b.g, prepared: b.prepared}
}

// errRow is the row of a refused QueryRow.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// errBatch is the result of a refused batch: nothing was sent.
type errBatch struct{ err error }

func (b errBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, b.err }
func (b errBatch) Query() (pgx.Rows, error)         { return nil, b.err }
func (b errBatch) QueryRow() pgx.Row                { return errRow(b) }
func (b errBatch) Close() error                     { return b.err }
func (b errBatch) Tx() pgx.Tx                       { return nil }
