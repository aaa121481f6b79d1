package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/rampartsec/rampart/internal/store"
)

// EventColumns are the events table's columns in the order the stores
// insert and read them.
const EventColumns = `id, time_ns, kind, action, service, route, actor_ip, actor_user, session_hash, trace_id, data, actor_verified, actor_claimed_by, actor_user_claimed_by`

// AppendEvents implements store.Store with Dialect.AppendEvents.
func (s *Store) AppendEvents(ctx context.Context, events []store.Event) (int, error) {
	evs, err := store.ValidateEvents(events)
	if err != nil {
		return 0, err
	}
	if len(evs) == 0 {
		return 0, nil
	}
	n, seq, err := s.d.AppendEvents(ctx, evs)
	if err != nil {
		return 0, fmt.Errorf("%s: append events: %w", s.d.Name, err)
	}
	if n > 0 {
		s.evs.Publish(seq)
	}
	return n, nil
}

// QueryEvents implements store.Store.
func (s *Store) QueryEvents(ctx context.Context, f store.EventFilter) ([]store.Event, error) {
	f, err := store.ValidateEventFilter(f)
	if err != nil {
		return nil, err
	}
	var a args
	where := eventWhere(f, &a)
	order := `time_ns, id`
	if f.After != nil {
		cmp := `>`
		if f.Reverse {
			cmp = `<`
		}
		where = append(where, `(time_ns, id) `+cmp+` (`+a.add(f.After.Time.UnixNano())+`, `+a.add(f.After.ID)+`)`)
	}
	if f.Reverse {
		order = `time_ns DESC, id DESC`
	}
	q := `SELECT ` + EventColumns + ` FROM events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY ` + order + ` LIMIT ` + a.add(f.Limit)

	rows, err := s.r.Query(ctx, q, a...)
	if err != nil {
		return nil, fmt.Errorf("%s: query events: %w", s.d.Name, err)
	}
	defer rows.Close()
	out := []store.Event{}
	for rows.Next() {
		var e store.Event
		var t int64
		var data []byte // a copy: both drivers allocate what they scan into a []byte
		if err := rows.Scan(&e.ID, &t, &e.Kind, &e.Action, &e.Service, &e.Route,
			&e.ActorIP, &e.ActorUser, &e.SessionHash, &e.TraceID, &data, &e.ActorVerified, &e.ActorClaimedBy, &e.ActorUserClaimedBy); err != nil {
			return nil, fmt.Errorf("%s: query events: %w", s.d.Name, err)
		}
		e.Time = fromNS(t)
		if len(data) > 0 {
			e.Data = data
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: query events: %w", s.d.Name, err)
	}
	return out, nil
}

// eventWhere returns the conditions that select the events of f, a
// validated filter, with their parameters added to a. Its After, Reverse
// and Limit are the caller's.
func eventWhere(f store.EventFilter, a *args) []string {
	var where []string
	if !f.Since.IsZero() {
		where = append(where, `time_ns >= `+a.add(f.Since.UnixNano()))
	}
	if !f.Until.IsZero() {
		where = append(where, `time_ns < `+a.add(f.Until.UnixNano()))
	}
	for _, eq := range []struct{ column, value string }{
		{"kind", f.Kind}, {"service", f.Service}, {"actor_ip", f.ActorIP}, {"action", f.Action},
		{"actor_user", f.ActorUser}, {"session_hash", f.SessionHash}, {"trace_id", f.TraceID},
	} {
		if eq.value != "" {
			where = append(where, eq.column+` = `+a.add(eq.value))
		}
	}
	for _, in := range []struct {
		column string
		values []string
	}{{"kind", f.Kinds}, {"service", f.Services}} {
		if len(in.values) == 0 {
			continue
		}
		marks := make([]string, len(in.values))
		for i, v := range in.values {
			marks[i] = a.add(v)
		}
		where = append(where, in.column+` IN (`+strings.Join(marks, `, `)+`)`)
	}
	if f.Attacks {
		where = append(where, `action <> `+a.add(store.ActionObserved))
	}
	if f.ActorCIDR != "" {
		// Validated: the range cannot fail.
		lo, hi, _ := store.ActorIPKeyRange(f.ActorCIDR)
		where = append(where, `actor_ip_key BETWEEN `+a.add(lo)+` AND `+a.add(hi))
	}
	if f.ActorVerified || f.ActorUserVerified {
		where = append(where, `actor_verified = true`)
	}
	if f.ActorUserVerified {
		where = append(where, `actor_user_claimed_by = ''`)
	}
	return where
}
