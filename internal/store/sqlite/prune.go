package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// Prune implements store.Store. Each batch is one write transaction, so
// other writers get the database between batches. Rows are chosen by rowid
// (or revision) through the tables' indexes.
func (s *Store) Prune(ctx context.Context, cfg store.PruneConfig) (store.PruneResult, error) {
	cfg, err := store.ValidatePruneConfig(cfg)
	if err != nil {
		return store.PruneResult{}, err
	}
	now := time.Now()
	var res store.PruneResult
	if !cfg.ChangesBefore.IsZero() {
		// The changes up to the first one recorded at or after the cutoff
		// (all of them if there is none): a prefix, so that a watcher is
		// either caught up change by change or told to reset.
		var target int64
		if err := s.r.QueryRowContext(ctx, `SELECT COALESCE(
			(SELECT revision FROM changes WHERE time_ns >= ? ORDER BY revision LIMIT 1) - 1,
			(SELECT value FROM revision WHERE id = 1))`, cfg.ChangesBefore.UnixNano()).Scan(&target); err != nil {
			return res, fmt.Errorf("sqlite: prune changes: %w", err)
		}
		if res.Changes, err = s.deleteBatches(ctx, cfg.Batch, `DELETE FROM changes WHERE revision IN
			(SELECT revision FROM changes WHERE revision <= ? ORDER BY revision LIMIT ?)`, target); err != nil {
			return res, fmt.Errorf("sqlite: prune changes: %w", err)
		}
	}
	if !cfg.EventsBefore.IsZero() {
		if res.Events, err = s.deleteBatches(ctx, cfg.Batch, `DELETE FROM events WHERE rowid IN
			(SELECT rowid FROM events WHERE time_ns < ? ORDER BY time_ns LIMIT ?)`, cfg.EventsBefore.UnixNano()); err != nil {
			return res, fmt.Errorf("sqlite: prune events: %w", err)
		}
	}
	if !cfg.DecisionsBefore.IsZero() {
		before := minTime(cfg.DecisionsBefore, now) // never a live decision
		if res.Decisions, err = s.deleteBatches(ctx, cfg.Batch, `DELETE FROM decisions WHERE rowid IN
			(SELECT rowid FROM decisions WHERE expires_ns < ? ORDER BY expires_ns LIMIT ?)`, before.UnixNano()); err != nil {
			return res, fmt.Errorf("sqlite: prune decisions: %w", err)
		}
	}
	if !cfg.TokensBefore.IsZero() {
		before := minTime(cfg.TokensBefore, now) // never a usable token
		if res.JoinTokens, err = s.deleteBatches(ctx, cfg.Batch, `DELETE FROM join_tokens WHERE rowid IN
			(SELECT rowid FROM join_tokens WHERE expires_ns < ?1 OR used_ns < ?1 LIMIT ?2)`, before.UnixNano()); err != nil {
			return res, fmt.Errorf("sqlite: prune join tokens: %w", err)
		}
	}
	if !cfg.InstancesBefore.IsZero() {
		if res.Instances, err = s.deleteBatches(ctx, cfg.Batch, `DELETE FROM instances WHERE rowid IN
			(SELECT rowid FROM instances WHERE last_seen_ns < ? ORDER BY last_seen_ns LIMIT ?)`, cfg.InstancesBefore.UnixNano()); err != nil {
			return res, fmt.Errorf("sqlite: prune instances: %w", err)
		}
	}
	return res, nil
}

// deleteBatches runs query, whose last parameter is the batch size, one
// transaction at a time until a batch deletes fewer rows than that.
func (s *Store) deleteBatches(ctx context.Context, batch int, query string, args ...any) (int64, error) {
	args = append(args, batch)
	var total int64
	for {
		var n int64
		err := s.write(ctx, func(tx *sql.Tx) (int64, error) {
			r, err := tx.ExecContext(ctx, query, args...)
			if err != nil {
				return 0, err
			}
			n, err = r.RowsAffected()
			return 0, err
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < int64(batch) {
			return total, nil
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
