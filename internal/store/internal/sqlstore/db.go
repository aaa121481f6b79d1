package sqlstore

import (
	"context"
	"database/sql"
)

// Querier runs statements on a database, a connection or a transaction.
// Parameters are written $1, $2…, which PostgreSQL numbers and
// modernc.org/sqlite binds by the same numbers, so one text serves both
// and a parameter may appear twice.
type Querier interface {
	// Exec runs a statement and returns the number of rows it changed.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	// QueryRow's Scan fails with an error that errors.Is sql.ErrNoRows when
	// there is no row (pgx.ErrNoRows is one).
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// DB is a database that begins transactions.
type DB interface {
	Querier
	Begin(ctx context.Context) (Tx, error)
}

// Tx is a transaction. Rollback after Commit does nothing.
type Tx interface {
	Querier
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// Rows is the result of a query, read as database/sql's.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Row is the result of a query for one row.
type Row interface {
	Scan(dest ...any) error
}

// FromSQL adapts a database/sql handle.
func FromSQL(db *sql.DB) DB { return sqlDB{sqlQuerier{db}, db} }

type sqlRunner interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type sqlQuerier struct{ q sqlRunner }

func (q sqlQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := q.q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q sqlQuerier) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	rows, err := q.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

func (q sqlQuerier) QueryRow(ctx context.Context, query string, args ...any) Row {
	return q.q.QueryRowContext(ctx, query, args...)
}

type sqlDB struct {
	sqlQuerier
	db *sql.DB
}

func (d sqlDB) Begin(ctx context.Context) (Tx, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return sqlTx{sqlQuerier{tx}, tx}, nil
}

type sqlTx struct {
	sqlQuerier
	tx *sql.Tx
}

func (t sqlTx) Commit(context.Context) error   { return t.tx.Commit() }
func (t sqlTx) Rollback(context.Context) error { return t.tx.Rollback() }

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }
