// Package rampartsqlx shows sqlx (github.com/jmoiron/sqlx) on a database
// guarded by Rampart's SQL guard. It holds no code: sqlx wraps the *sql.DB
// that sqlguard returns as it wraps any other, in one line,
//
//	sqlDB, err := guard.Open(stdlib.GetDefaultDriver(), dsn) // sqlguard.New(agent, sqlguard.Postgres)
//	db := sqlx.NewDb(sqlDB, "pgx")
//
// and every statement sqlx sends is then checked against the untrusted
// inputs of its context (the *Context methods: GetContext, SelectContext,
// NamedExecContext, ...; without a context, the request served by the
// calling goroutine counts). Bound arguments, named parameters and In
// expansions run; SQL text built from input is refused when the input
// changes the statement, with an error wrapping rampart.ErrBlocked.
//
// Give sqlx the driver name of the guard's dialect ("pgx", "mysql",
// "sqlite"), which it uses to rebind placeholders; sqlguard refuses to open
// a driver it knows to speak another dialect than the guard's. This
// module's tests run on SQLite and the real PostgreSQL.
package rampartsqlx
