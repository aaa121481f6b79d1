package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// PutActorKeys implements store.Store. The write transaction holds the
// write lock (SQLite's, or PostgreSQL's revision row lock taken first,
// Dialect.LockRevision) from the version check to the commit, so of
// concurrent writers with the same expected version, in any process or
// replica, exactly one wins.
func (s *Store) PutActorKeys(ctx context.Context, data []byte, expectVersion int64) (int64, error) {
	if err := store.ValidateActorKeys(data, expectVersion); err != nil {
		return 0, err
	}
	now := time.Now().UTC()
	version := expectVersion + 1
	err := s.write(ctx, func(tx Tx) (int64, error) {
		if err := lock(ctx, tx, s.d.LockRevision); err != nil {
			return 0, err
		}
		var current int64
		err := tx.QueryRow(ctx, `SELECT version FROM actor_keys WHERE id = 1`).Scan(&current)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, err
		}
		if current != expectVersion {
			return 0, fmt.Errorf("%w: the actor keys were changed from version %d, the latest is %d", store.ErrConflict, expectVersion, current)
		}
		op := store.OpUpdate
		if expectVersion == 0 {
			op = store.OpCreate
		}
		rev, err := s.d.Bump(ctx, tx, store.ChangeActorKeys, op, strconv.FormatInt(version, 10), now)
		if err != nil {
			return 0, err
		}
		_, err = tx.Exec(ctx, `INSERT INTO actor_keys (id, data, version, updated_ns, revision) VALUES (1, $1, $2, $3, $4)
			ON CONFLICT (id) DO UPDATE SET data = excluded.data, version = excluded.version,
				updated_ns = excluded.updated_ns, revision = excluded.revision`,
			data, version, now.UnixNano(), rev)
		return rev, err
	})
	if err != nil {
		return 0, fmt.Errorf("%s: put actor keys: %w", s.d.Name, err)
	}
	return version, nil
}

// ActorKeys implements store.Store.
func (s *Store) ActorKeys(ctx context.Context) ([]byte, int64, error) {
	var data []byte
	var version int64
	err := s.r.QueryRow(ctx, `SELECT data, version FROM actor_keys WHERE id = 1`).Scan(&data, &version)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, fmt.Errorf("%s: actor keys: %w", s.d.Name, store.ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%s: actor keys: %w", s.d.Name, err)
	}
	return data, version, nil
}
