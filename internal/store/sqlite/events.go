package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/rampartsec/rampart/internal/store"
)

const eventColumns = `id, time_ns, kind, action, service, route, actor_ip, actor_user, session_hash, trace_id, data, actor_verified, actor_claimed_by`

// AppendEvents implements store.Store.
func (s *Store) AppendEvents(ctx context.Context, events []store.Event) (int, error) {
	evs, err := store.ValidateEvents(events)
	if err != nil {
		return 0, err
	}
	if len(evs) == 0 {
		return 0, nil
	}
	inserted := 0
	err = s.write(ctx, func(tx *sql.Tx) (int64, error) {
		st, err := tx.PrepareContext(ctx, `INSERT INTO events (`+eventColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`)
		if err != nil {
			return 0, err
		}
		defer st.Close()
		for _, e := range evs {
			data := []byte(e.Data)
			if data == nil {
				data = []byte{} // the column is NOT NULL
			}
			res, err := st.ExecContext(ctx, e.ID, e.Time.UnixNano(), e.Kind, e.Action, e.Service, e.Route,
				e.ActorIP, e.ActorUser, e.SessionHash, e.TraceID, data, e.ActorVerified, e.ActorClaimedBy)
			if err != nil {
				return 0, err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return 0, err
			}
			inserted += int(n)
		}
		return 0, nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: append events: %w", err)
	}
	return inserted, nil
}

// QueryEvents implements store.Store.
func (s *Store) QueryEvents(ctx context.Context, f store.EventFilter) ([]store.Event, error) {
	f, err := store.ValidateEventFilter(f)
	if err != nil {
		return nil, err
	}
	var where []string
	var args []any
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	if !f.Since.IsZero() {
		add(`time_ns >= ?`, f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		add(`time_ns < ?`, f.Until.UnixNano())
	}
	for _, eq := range []struct{ column, value string }{
		{"kind", f.Kind}, {"service", f.Service}, {"actor_ip", f.ActorIP},
		{"actor_user", f.ActorUser}, {"session_hash", f.SessionHash}, {"trace_id", f.TraceID},
	} {
		if eq.value != "" {
			add(eq.column+` = ?`, eq.value)
		}
	}
	if f.ActorVerified {
		add(`actor_verified = 1`)
	}
	order := `time_ns, id`
	if f.After != nil {
		cmp := `>`
		if f.Reverse {
			cmp = `<`
		}
		add(`(time_ns, id) `+cmp+` (?, ?)`, f.After.Time.UnixNano(), f.After.ID)
	}
	if f.Reverse {
		order = `time_ns DESC, id DESC`
	}
	q := `SELECT ` + eventColumns + ` FROM events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY ` + order + ` LIMIT ?`
	args = append(args, f.Limit)

	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: query events: %w", err)
	}
	defer rows.Close()
	out := []store.Event{}
	for rows.Next() {
		var e store.Event
		var t int64
		var data []byte
		if err := rows.Scan(&e.ID, &t, &e.Kind, &e.Action, &e.Service, &e.Route,
			&e.ActorIP, &e.ActorUser, &e.SessionHash, &e.TraceID, &data, &e.ActorVerified, &e.ActorClaimedBy); err != nil {
			return nil, fmt.Errorf("sqlite: query events: %w", err)
		}
		e.Time = fromNS(t)
		if len(data) > 0 {
			e.Data = data
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: query events: %w", err)
	}
	return out, nil
}
