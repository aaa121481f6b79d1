package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// Prune implements store.Store. Each batch is one statement in a
// transaction of its own, so other writers get the database between
// batches.
func (s *Store) Prune(ctx context.Context, cfg store.PruneConfig) (res store.PruneResult, err error) {
	cfg, err = store.ValidatePruneConfig(cfg)
	if err != nil {
		return res, err
	}
	var read, write Querier = s.r, s.w
	if s.d.PruneLock != nil {
		q, unlock, err := s.d.PruneLock(ctx)
		if err != nil {
			return res, fmt.Errorf("%s: prune: %w", s.d.Name, err)
		}
		defer unlock()
		read, write = q, q
	}
	now := time.Now()
	if !cfg.ChangesBefore.IsZero() {
		// The changes up to the first one recorded at or after the cutoff
		// (all of them if there is none): a prefix, so that a watcher is
		// either caught up change by change or told to reset.
		var target int64
		if err := read.QueryRow(ctx, `SELECT COALESCE(
			(SELECT revision FROM changes WHERE time_ns >= $1 ORDER BY revision LIMIT 1) - 1,
			(SELECT value FROM revision WHERE id = 1))`, cfg.ChangesBefore.UnixNano()).Scan(&target); err != nil {
			return res, fmt.Errorf("%s: prune changes: %w", s.d.Name, err)
		}
		if res.Changes, err = s.deleteBatches(ctx, write, cfg.Batch, s.d.Prune.Changes, target); err != nil {
			return res, fmt.Errorf("%s: prune changes: %w", s.d.Name, err)
		}
	}
	if !cfg.EventsBefore.IsZero() {
		if res.Events, err = s.deleteBatches(ctx, write, cfg.Batch, s.d.Prune.Events, cfg.EventsBefore.UnixNano()); err != nil {
			return res, fmt.Errorf("%s: prune events: %w", s.d.Name, err)
		}
		// Alerts go with the events they cite. The one statement serves
		// both engines: the primary key index finds the rows.
		if res.Alerts, err = s.deleteBatches(ctx, write, cfg.Batch, `DELETE FROM alerts WHERE id IN
			(SELECT id FROM alerts WHERE created_ns < $1 ORDER BY created_ns LIMIT $2)`, cfg.EventsBefore.UnixNano()); err != nil {
			return res, fmt.Errorf("%s: prune alerts: %w", s.d.Name, err)
		}
	}
	if !cfg.DecisionsBefore.IsZero() {
		before := minTime(cfg.DecisionsBefore, now) // never a live decision
		if res.Decisions, err = s.deleteBatches(ctx, write, cfg.Batch, s.d.Prune.Decisions, before.UnixNano()); err != nil {
			return res, fmt.Errorf("%s: prune decisions: %w", s.d.Name, err)
		}
	}
	if !cfg.TokensBefore.IsZero() {
		before := minTime(cfg.TokensBefore, now) // never a usable token
		if res.JoinTokens, err = s.deleteBatches(ctx, write, cfg.Batch, s.d.Prune.JoinTokens, before.UnixNano()); err != nil {
			return res, fmt.Errorf("%s: prune join tokens: %w", s.d.Name, err)
		}
	}
	if !cfg.InstancesBefore.IsZero() {
		if res.Instances, err = s.deleteBatches(ctx, write, cfg.Batch, s.d.Prune.Instances, cfg.InstancesBefore.UnixNano()); err != nil {
			return res, fmt.Errorf("%s: prune instances: %w", s.d.Name, err)
		}
	}
	return res, nil
}

// deleteBatches runs query with $1 = before and $2 = the batch size until a
// batch deletes fewer rows than that.
func (s *Store) deleteBatches(ctx context.Context, q Querier, batch int, query string, before int64) (int64, error) {
	var total int64
	for {
		var n int64
		err := s.writeAlone(ctx, q, func(q Querier) error {
			var err error
			n, err = q.Exec(ctx, query, before, batch)
			return err
		})
		if err != nil {
			return total, err
		}
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
