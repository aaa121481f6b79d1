package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/internal/sqlstore"
)

// pruneLock is the advisory lock a replica holds while it prunes, one per
// schema, so that replicas on the same schedule take turns rather than all
// delete at once.
const pruneLock = `hashtextextended('rampart.prune.' || current_schema(), 0)`

// pruneSQL deletes one batch each: a statement in its own transaction, and
// the outer condition is repeated so that a row updated meanwhile (a
// heartbeat) is rechecked before it is deleted.
var pruneSQL = sqlstore.PruneSQL{
	Changes: `DELETE FROM changes WHERE revision <= $1 AND revision IN
		(SELECT revision FROM changes WHERE revision <= $1 ORDER BY revision LIMIT $2)`,
	Events: `DELETE FROM events WHERE time_ns < $1 AND id IN
		(SELECT id FROM events WHERE time_ns < $1 ORDER BY time_ns LIMIT $2)`,
	Decisions: `DELETE FROM decisions WHERE expires_ns < $1 AND id IN
		(SELECT id FROM decisions WHERE expires_ns < $1 ORDER BY expires_ns LIMIT $2)`,
	JoinTokens: `DELETE FROM join_tokens WHERE (expires_ns < $1 OR used_ns < $1 OR revoked_ns < $1) AND hash IN
		(SELECT hash FROM join_tokens WHERE expires_ns < $1 OR used_ns < $1 OR revoked_ns < $1 LIMIT $2)`,
	Instances: `DELETE FROM instances WHERE last_seen_ns < $1 AND (service, id) IN
		(SELECT service, id FROM instances WHERE last_seen_ns < $1 ORDER BY last_seen_ns LIMIT $2)`,
}

// pruneLock takes, for the whole prune, a session-level advisory lock on
// one connection, where Prune then runs its statements; while another
// replica holds it, it fails with store.ErrBusy.
func (s *Store) pruneLock(ctx context.Context) (q sqlstore.Querier, unlock func(), err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+pruneLock+`)`).Scan(&locked); err != nil {
		conn.Release()
		return nil, nil, err
	}
	if !locked {
		conn.Release()
		return nil, nil, fmt.Errorf("another replica is pruning: %w", store.ErrBusy)
	}
	return querier{conn}, func() {
		unlockCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, uerr := conn.Exec(unlockCtx, `SELECT pg_advisory_unlock(`+pruneLock+`)`); uerr != nil {
			// A pooled connection must not keep the lock: drop it, and
			// the server releases the lock with the session.
			conn.Conn().Close(unlockCtx)
		}
		conn.Release()
	}, nil
}
