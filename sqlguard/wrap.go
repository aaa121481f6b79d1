package sqlguard

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
)

// OpenDB returns a *sql.DB over c whose every statement is checked by g:
// Query, Exec, Prepare and QueryRow, with or without a context, on the DB, a
// Conn or a Tx. Statements run in the request's goroutine without a context
// are matched with that request's inputs by the middleware.
func (g *Guard) OpenDB(c driver.Connector) *sql.DB { return sql.OpenDB(g.Connector(c)) }

// Open is OpenDB for a driver and a data source name, for drivers that offer
// no connector of their own.
func (g *Guard) Open(drv driver.Driver, dsn string) (*sql.DB, error) {
	if drv == nil {
		return nil, errors.New("sqlguard: Open: driver is nil")
	}
	if err := g.checkDriver(drv); err != nil {
		return nil, err
	}
	if dc, ok := drv.(driver.DriverContext); ok {
		c, err := dc.OpenConnector(dsn)
		if err != nil {
			return nil, fmt.Errorf("sqlguard: open connector: %w", err)
		}
		return g.OpenDB(c), nil
	}
	return g.OpenDB(dsnConnector{drv: drv, dsn: dsn}), nil
}

// Connector wraps c so that every connection it makes is guarded. When
// c's driver is known to speak another dialect than the guard's, every
// connection fails with an error that says so, and Open fails at once.
func (g *Guard) Connector(c driver.Connector) driver.Connector {
	return &connector{c: c, g: g, mismatch: g.checkDriver(c.Driver())}
}

type dsnConnector struct {
	drv driver.Driver
	dsn string
}

func (d dsnConnector) Connect(context.Context) (driver.Conn, error) { return d.drv.Open(d.dsn) }
func (d dsnConnector) Driver() driver.Driver                        { return d.drv }

type connector struct {
	c        driver.Connector
	g        *Guard
	mismatch error // the driver speaks another dialect (checkDriver)
}

var _ io.Closer = (*connector)(nil)

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	if c.mismatch != nil {
		return nil, c.mismatch
	}
	dc, err := c.c.Connect(ctx)
	if err != nil {
		return nil, err
	}
	if c.g.dialect == Postgres {
		// An error keeps what was learnt before (see shadowQuery); the
		// connection itself is fine.
		_ = c.g.learnShadowed(ctx, dc)
	}
	return &conn{Conn: dc, g: c.g}, nil
}

func (c *connector) Driver() driver.Driver { return c.c.Driver() }

// Close closes the wrapped connector if it has resources (sql.DB.Close calls it).
func (c *connector) Close() error {
	if cl, ok := c.c.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// conn checks statements and hands everything else to the driver's
// connection. Optional interfaces the driver lacks answer driver.ErrSkip or
// their documented neutral value, so database/sql behaves as it would with
// the bare driver.
type conn struct {
	driver.Conn
	g *Guard

	// checked is the statement QueryContext or ExecContext just checked
	// before the driver answered driver.ErrSkip; database/sql then prepares
	// the same statement on this connection (which it holds exclusively),
	// and checking it twice would only cost time and, in monitor mode,
	// report the event twice.
	checked string
}

var (
	_ driver.Conn               = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
)

// Unwrap returns the driver's connection, e.g. for sql.Conn.Raw callers that
// need the driver's own type.
func (c *conn) Unwrap() driver.Conn { return c.Conn }

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if c.checked != "" && c.checked == query {
		c.checked = ""
	} else if err := c.g.Check(ctx, query); err != nil {
		return nil, err
	}
	if p, ok := c.Conn.(driver.ConnPrepareContext); ok {
		return p.PrepareContext(ctx, query)
	}
	return c.Conn.Prepare(query)
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		// database/sql falls back to PrepareContext, which checks.
		return nil, driver.ErrSkip
	}
	if err := c.g.Check(ctx, query); err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, query, args)
	if err == driver.ErrSkip {
		c.checked = query
	}
	return rows, err
}

func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	if err := c.g.Check(ctx, query); err != nil {
		return nil, err
	}
	res, err := e.ExecContext(ctx, query, args)
	if err == driver.ErrSkip {
		c.checked = query
	}
	return res, err
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if b, ok := c.Conn.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	if opts.Isolation != driver.IsolationLevel(sql.LevelDefault) {
		return nil, errors.New("sqlguard: driver does not support non-default isolation level")
	}
	if opts.ReadOnly {
		return nil, errors.New("sqlguard: driver does not support read-only transactions")
	}
	return c.Conn.Begin() //nolint:staticcheck // the driver offers nothing else
}

func (c *conn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *conn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *conn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	if n, ok := c.Conn.(driver.NamedValueChecker); ok {
		return n.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}
