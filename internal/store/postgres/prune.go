package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rampartsec/rampart/internal/store"
)

// pruneLock is the advisory lock a replica holds while it prunes, one per
// schema, so that replicas on the same schedule take turns rather than all
// delete at once.
const pruneLock = `hashtextextended('rampart.prune.' || current_schema(), 0)`

// Prune implements store.Store. The replica that prunes holds a
// session-level advisory lock on one connection for the whole prune; the
// others return ErrBusy. Each batch is one statement in its own
// transaction, and the outer condition is repeated so that a row updated
// meanwhile (a heartbeat) is rechecked before it is deleted.
func (s *Store) Prune(ctx context.Context, cfg store.PruneConfig) (res store.PruneResult, err error) {
	cfg, err = store.ValidatePruneConfig(cfg)
	if err != nil {
		return res, err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return res, fmt.Errorf("postgres: prune: %w", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+pruneLock+`)`).Scan(&locked); err != nil {
		return res, fmt.Errorf("postgres: prune: %w", err)
	}
	if !locked {
		return res, fmt.Errorf("postgres: prune: another replica is pruning: %w", store.ErrBusy)
	}
	defer func() {
		unlockCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, uerr := conn.Exec(unlockCtx, `SELECT pg_advisory_unlock(`+pruneLock+`)`); uerr != nil {
			// A pooled connection must not keep the lock: drop it, and
			// the server releases the lock with the session.
			conn.Conn().Close(unlockCtx)
		}
	}()

	now := time.Now()
	if !cfg.ChangesBefore.IsZero() {
		// The changes up to the first one recorded at or after the cutoff
		// (all of them if there is none): a prefix, so that a watcher is
		// either caught up change by change or told to reset.
		var target int64
		if err := conn.QueryRow(ctx, `SELECT COALESCE(
			(SELECT revision FROM changes WHERE time_ns >= $1 ORDER BY revision LIMIT 1) - 1,
			(SELECT value FROM revision WHERE id = 1))`, cfg.ChangesBefore.UnixNano()).Scan(&target); err != nil {
			return res, fmt.Errorf("postgres: prune changes: %w", err)
		}
		if res.Changes, err = deleteBatches(ctx, conn, cfg.Batch, `DELETE FROM changes WHERE revision <= $1 AND revision IN
			(SELECT revision FROM changes WHERE revision <= $1 ORDER BY revision LIMIT $2)`, target); err != nil {
			return res, fmt.Errorf("postgres: prune changes: %w", err)
		}
	}
	if !cfg.EventsBefore.IsZero() {
		if res.Events, err = deleteBatches(ctx, conn, cfg.Batch, `DELETE FROM events WHERE time_ns < $1 AND id IN
			(SELECT id FROM events WHERE time_ns < $1 ORDER BY time_ns LIMIT $2)`, cfg.EventsBefore.UnixNano()); err != nil {
			return res, fmt.Errorf("postgres: prune events: %w", err)
		}
	}
	if !cfg.DecisionsBefore.IsZero() {
		before := minTime(cfg.DecisionsBefore, now) // never a live decision
		if res.Decisions, err = deleteBatches(ctx, conn, cfg.Batch, `DELETE FROM decisions WHERE expires_ns < $1 AND id IN
			(SELECT id FROM decisions WHERE expires_ns < $1 ORDER BY expires_ns LIMIT $2)`, before.UnixNano()); err != nil {
			return res, fmt.Errorf("postgres: prune decisions: %w", err)
		}
	}
	if !cfg.TokensBefore.IsZero() {
		before := minTime(cfg.TokensBefore, now) // never a usable token
		if res.JoinTokens, err = deleteBatches(ctx, conn, cfg.Batch, `DELETE FROM join_tokens WHERE (expires_ns < $1 OR used_ns < $1) AND hash IN
			(SELECT hash FROM join_tokens WHERE expires_ns < $1 OR used_ns < $1 LIMIT $2)`, before.UnixNano()); err != nil {
			return res, fmt.Errorf("postgres: prune join tokens: %w", err)
		}
	}
	if !cfg.InstancesBefore.IsZero() {
		if res.Instances, err = deleteBatches(ctx, conn, cfg.Batch, `DELETE FROM instances WHERE last_seen_ns < $1 AND (service, id) IN
			(SELECT service, id FROM instances WHERE last_seen_ns < $1 ORDER BY last_seen_ns LIMIT $2)`, cfg.InstancesBefore.UnixNano()); err != nil {
			return res, fmt.Errorf("postgres: prune instances: %w", err)
		}
	}
	return res, nil
}

// deleteBatches runs query with $1 = before and $2 = the batch size until a
// batch deletes fewer rows than that.
func deleteBatches(ctx context.Context, conn *pgxpool.Conn, batch int, query string, before int64) (int64, error) {
	var total int64
	for {
		tag, err := conn.Exec(ctx, query, before, batch)
		if err != nil {
			return total, err
		}
		n := tag.RowsAffected()
		total += n
		if n < int64(batch) {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
