package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

func limitOf(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, &store.InvalidError{Field: "limit", Reason: "negative"}
	case limit == 0:
		return store.DefaultQueryLimit, nil
	case limit > store.MaxQueryLimit:
		return 0, &store.InvalidError{Field: "limit", Reason: fmt.Sprintf("%d, at most %d", limit, store.MaxQueryLimit)}
	}
	return limit, nil
}

// ReadEventLog implements store.Store.
func (s *Store) ReadEventLog(ctx context.Context, f store.EventLogFilter) ([]store.LoggedEvent, error) {
	limit, err := limitOf(f.Limit)
	if err != nil {
		return nil, err
	}
	var a args
	where := []string{`seq > ` + a.add(f.After)}
	if f.Through > 0 {
		where = append(where, `seq <= `+a.add(f.Through))
	}
	if !f.Since.IsZero() {
		where = append(where, `time_ns >= `+a.add(f.Since.UnixNano()))
	}
	rows, err := s.r.Query(ctx, `SELECT seq, `+EventColumns+` FROM events WHERE `+strings.Join(where, ` AND `)+
		` ORDER BY seq LIMIT `+a.add(limit), a...)
	if err != nil {
		return nil, fmt.Errorf("%s: read event log: %w", s.d.Name, err)
	}
	defer rows.Close()
	out := []store.LoggedEvent{}
	for rows.Next() {
		var e store.LoggedEvent
		if err := scanEvent(rows, &e.Event, &e.Seq); err != nil {
			return nil, fmt.Errorf("%s: read event log: %w", s.d.Name, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: read event log: %w", s.d.Name, err)
	}
	return out, nil
}

// scanEvent scans a row of EventColumns, after the columns in pre.
func scanEvent(rows Rows, e *store.Event, pre ...any) error {
	var t int64
	var data []byte
	dest := append(pre, &e.ID, &t, &e.Kind, &e.Action, &e.Service, &e.Route,
		&e.ActorIP, &e.ActorUser, &e.SessionHash, &e.TraceID, &data, &e.ActorVerified, &e.ActorClaimedBy, &e.ActorUserClaimedBy)
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	e.Time = fromNS(t)
	if len(data) > 0 {
		e.Data = data
	}
	return nil
}

// EventsByID implements store.Store.
func (s *Store) EventsByID(ctx context.Context, ids []string) ([]store.Event, error) {
	if len(ids) > store.MaxQueryLimit {
		return nil, &store.InvalidError{Field: "ids", Reason: fmt.Sprintf("%d, at most %d", len(ids), store.MaxQueryLimit)}
	}
	out := []store.Event{}
	if len(ids) == 0 {
		return out, nil
	}
	var a args
	marks := make([]string, len(ids))
	for i, id := range ids {
		marks[i] = a.add(id)
	}
	rows, err := s.r.Query(ctx, `SELECT `+EventColumns+` FROM events WHERE id IN (`+strings.Join(marks, `, `)+`) ORDER BY time_ns, id`, a...)
	if err != nil {
		return nil, fmt.Errorf("%s: events by id: %w", s.d.Name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var e store.Event
		if err := scanEvent(rows, &e); err != nil {
			return nil, fmt.Errorf("%s: events by id: %w", s.d.Name, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: events by id: %w", s.d.Name, err)
	}
	return out, nil
}

// Cursor implements store.Store.
func (s *Store) Cursor(ctx context.Context, name string) (int64, error) {
	if err := store.ValidateID("name", name); err != nil {
		return 0, err
	}
	var seq int64
	err := s.r.QueryRow(ctx, `SELECT seq FROM cursors WHERE name = $1`, name).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%s: cursor %s: %w", s.d.Name, name, err)
	}
	return seq, nil
}

// AdvanceCursor implements store.Store.
func (s *Store) AdvanceCursor(ctx context.Context, name string, from, to int64) error {
	if err := store.ValidateID("name", name); err != nil {
		return err
	}
	if from < 0 || to < from {
		return &store.InvalidError{Field: "to", Reason: fmt.Sprintf("from %d to %d", from, to)}
	}
	now := time.Now().UnixNano()
	err := s.write(ctx, func(tx Tx) (int64, error) {
		var n int64
		var err error
		if from == 0 {
			// The first move creates the row; a concurrent first mover
			// finds it there and fails below.
			n, err = tx.Exec(ctx, `INSERT INTO cursors (name, seq, updated_ns) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`, name, to, now)
			if err != nil || n == 1 {
				return 0, err
			}
		}
		n, err = tx.Exec(ctx, `UPDATE cursors SET seq = $1, updated_ns = $2 WHERE name = $3 AND seq = $4`, to, now, name, from)
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, fmt.Errorf("%w: cursor %s is no longer at %d", store.ErrConflict, name, from)
		}
		return 0, nil
	})
	if err != nil {
		return fmt.Errorf("%s: advance cursor: %w", s.d.Name, err)
	}
	return nil
}

const alertColumns = `id, scenario, key, count, distinct_count, first_ns, last_ns, evidence, decisions, simulated, created_ns`

// PutAlert implements store.Store.
func (s *Store) PutAlert(ctx context.Context, a store.Alert, decisions []store.Decision) (bool, error) {
	if err := store.ValidateID("id", a.ID); err != nil {
		return false, err
	}
	now := time.Now().UTC()
	a.Created = now
	for i := range decisions {
		if err := store.ValidateID(fmt.Sprintf("decisions[%d].id", i), decisions[i].ID); err != nil {
			return false, err
		}
		d, err := store.ValidateDecision(decisions[i], now)
		if err != nil {
			return false, err
		}
		d.Created = now
		decisions[i] = d
	}
	if a.Evidence == nil {
		a.Evidence = []string{}
	}
	if a.Decisions == nil {
		a.Decisions = []store.AlertDecision{}
	}
	evidence, err := json.Marshal(a.Evidence)
	if err != nil {
		return false, err
	}
	ds, err := json.Marshal(a.Decisions)
	if err != nil {
		return false, err
	}
	created := false
	err = s.write(ctx, func(tx Tx) (int64, error) {
		n, err := tx.Exec(ctx, `INSERT INTO alerts (`+alertColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (id) DO NOTHING`, a.ID, a.Scenario, a.Key, a.Count, a.Distinct, a.First.UnixNano(), a.Last.UnixNano(),
			string(evidence), string(ds), a.Simulated, now.UnixNano())
		if err != nil || n == 0 {
			return 0, err
		}
		created = true
		var last int64
		for _, d := range decisions {
			if !d.Simulated {
				if d.Revision, err = s.d.Bump(ctx, tx, store.ChangeDecision, store.OpCreate, d.ID, now); err != nil {
					return 0, err
				}
				last = d.Revision
			}
			if _, err := insertDecision(ctx, tx, d); err != nil {
				return 0, err
			}
		}
		return last, nil
	})
	if err != nil {
		return false, fmt.Errorf("%s: put alert: %w", s.d.Name, err)
	}
	return created, nil
}

// Alert implements store.Store.
func (s *Store) Alert(ctx context.Context, id string) (store.Alert, error) {
	if err := store.ValidateID("id", id); err != nil {
		return store.Alert{}, err
	}
	rows, err := s.r.Query(ctx, `SELECT `+alertColumns+` FROM alerts WHERE id = $1`, id)
	if err != nil {
		return store.Alert{}, fmt.Errorf("%s: alert: %w", s.d.Name, err)
	}
	as, err := scanAlerts(rows)
	if err != nil {
		return store.Alert{}, fmt.Errorf("%s: alert: %w", s.d.Name, err)
	}
	if len(as) == 0 {
		return store.Alert{}, fmt.Errorf("%s: alert %q: %w", s.d.Name, id, store.ErrNotFound)
	}
	return as[0], nil
}

// Alerts implements store.Store.
func (s *Store) Alerts(ctx context.Context, f store.AlertFilter) ([]store.Alert, error) {
	limit, err := limitOf(f.Limit)
	if err != nil {
		return nil, err
	}
	var a args
	where := []string{`1 = 1`}
	if f.Scenario != "" {
		where = append(where, `scenario = `+a.add(f.Scenario))
	}
	if !f.Since.IsZero() {
		where = append(where, `created_ns >= `+a.add(f.Since.UnixNano()))
	}
	rows, err := s.r.Query(ctx, `SELECT `+alertColumns+` FROM alerts WHERE `+strings.Join(where, ` AND `)+
		` ORDER BY created_ns DESC, id DESC LIMIT `+a.add(limit), a...)
	if err != nil {
		return nil, fmt.Errorf("%s: alerts: %w", s.d.Name, err)
	}
	as, err := scanAlerts(rows)
	if err != nil {
		return nil, fmt.Errorf("%s: alerts: %w", s.d.Name, err)
	}
	return as, nil
}

func scanAlerts(rows Rows) ([]store.Alert, error) {
	defer rows.Close()
	out := []store.Alert{}
	for rows.Next() {
		var a store.Alert
		var first, last, created int64
		var evidence, ds string
		if err := rows.Scan(&a.ID, &a.Scenario, &a.Key, &a.Count, &a.Distinct, &first, &last, &evidence, &ds,
			&a.Simulated, &created); err != nil {
			return nil, err
		}
		a.First, a.Last, a.Created = fromNS(first), fromNS(last), fromNS(created)
		if err := json.Unmarshal([]byte(evidence), &a.Evidence); err != nil {
			return nil, fmt.Errorf("alert %s: evidence: %w", a.ID, err)
		}
		if err := json.Unmarshal([]byte(ds), &a.Decisions); err != nil {
			return nil, fmt.Errorf("alert %s: decisions: %w", a.ID, err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Lead implements store.Store.
func (s *Store) Lead(ctx context.Context, name string) (store.Lease, error) {
	if err := store.ValidateID("name", name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, store.ErrClosed
	}
	l, err := s.d.Lead(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("%s: lead %s: %w", s.d.Name, name, err)
	}
	return l, nil
}
