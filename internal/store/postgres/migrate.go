package postgres

import (
	"context"
	"embed"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rampartsec/rampart/internal/store/internal/migration"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrateLock is the advisory lock that replicas starting together take
// around each migration, one per schema.
const migrateLock = `SELECT pg_advisory_xact_lock(hashtextextended('rampart.migrate.' || current_schema(), 0))`

// migrate applies the migrations the database lacks, one transaction each.
// Each transaction takes the advisory lock first and then looks at
// schema_migrations, so of several replicas starting at once one applies a
// migration and the others find it applied. The lock is released at commit
// or rollback, even if the connection breaks.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := migration.Load(migrations, "migrations")
	if err != nil {
		return err
	}
	for {
		done := false
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, migrateLock); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
				version    integer PRIMARY KEY,
				name       text    NOT NULL,
				applied_ns bigint  NOT NULL)`); err != nil {
				return err
			}
			var newest int
			if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
				return err
			}
			if newest > len(ms) {
				return fmt.Errorf("the database has schema version %d, newer than this program's %d: upgrade rampart", newest, len(ms))
			}
			if newest == len(ms) {
				done = true
				return nil
			}
			m := ms[newest]
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_ns) VALUES ($1, $2, $3)`,
				m.Version, m.Name, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if done {
			return nil
		}
	}
}
