// Package rampartgorm shows GORM (gorm.io/gorm) on a database guarded by
// Rampart's SQL guard. It holds no code: GORM takes the *sql.DB that
// sqlguard returns as it takes any other, in one line,
//
//	sqlDB, err := guard.Open(stdlib.GetDefaultDriver(), dsn) // sqlguard.New(agent, sqlguard.Postgres)
//	db, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), &gorm.Config{})
//
// and every statement GORM sends is then checked against the untrusted
// inputs of its context (db.WithContext(r.Context())). GORM's own SQL and
// its bound arguments (Where("name = ?", name), First, Create, Updates)
// run; text built from input (Raw or Exec with concatenation,
// Where(fmt.Sprintf(...)), Order(input)) is refused when the input
// changes the statement, with an error wrapping rampart.ErrBlocked.
//
// The guard's dialect must be the driver's: sqlguard refuses to open a
// driver it knows to speak another (pgx's stdlib with a MySQL guard).
// This module's tests run on the real PostgreSQL.
package rampartgorm
