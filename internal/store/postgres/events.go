package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/rampartsec/rampart/internal/store"
)

const eventColumns = `id, time_ns, kind, action, service, route, actor_ip, actor_user, session_hash, trace_id, data, actor_verified, actor_claimed_by`

// AppendEvents implements store.Store. The batch is one INSERT … SELECT
// FROM unnest(…) of column arrays: one statement, one round trip, atomic.
func (s *Store) AppendEvents(ctx context.Context, events []store.Event) (int, error) {
	evs, err := store.ValidateEvents(events)
	if err != nil {
		return 0, err
	}
	if len(evs) == 0 {
		return 0, nil
	}
	// Concurrent batches that share ids (retries racing each other) insert
	// them in the same order, so they wait on each other instead of
	// deadlocking.
	slices.SortFunc(evs, func(a, b store.Event) int { return cmp.Compare(a.ID, b.ID) })
	n := len(evs)
	var (
		id, kind, action, service, route = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		ip, user, session, trace         = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		at                               = make([]int64, n)
		data                             = make([][]byte, n)
		verified                         = make([]bool, n)
		claimedBy                        = make([]string, n)
	)
	for i, e := range evs {
		id[i], at[i], kind[i], action[i], service[i], route[i] = e.ID, e.Time.UnixNano(), e.Kind, e.Action, e.Service, e.Route
		ip[i], user[i], session[i], trace[i] = e.ActorIP, e.ActorUser, e.SessionHash, e.TraceID
		data[i], verified[i], claimedBy[i] = e.Data, e.ActorVerified, e.ActorClaimedBy
		if data[i] == nil {
			data[i] = []byte{} // the column is NOT NULL
		}
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO events (`+eventColumns+`)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
			$7::text[], $8::text[], $9::text[], $10::text[], $11::bytea[], $12::boolean[], $13::text[])
		ON CONFLICT (id) DO NOTHING`,
		id, at, kind, action, service, route, ip, user, session, trace, data, verified, claimedBy)
	if err != nil {
		return 0, fmt.Errorf("postgres: append events: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// QueryEvents implements store.Store.
func (s *Store) QueryEvents(ctx context.Context, f store.EventFilter) ([]store.Event, error) {
	f, err := store.ValidateEventFilter(f)
	if err != nil {
		return nil, err
	}
	var where []string
	var args []any
	arg := func(a any) string {
		args = append(args, a)
		return "$" + strconv.Itoa(len(args))
	}
	if !f.Since.IsZero() {
		where = append(where, `time_ns >= `+arg(f.Since.UnixNano()))
	}
	if !f.Until.IsZero() {
		where = append(where, `time_ns < `+arg(f.Until.UnixNano()))
	}
	for _, eq := range []struct{ column, value string }{
		{"kind", f.Kind}, {"service", f.Service}, {"actor_ip", f.ActorIP},
		{"actor_user", f.ActorUser}, {"session_hash", f.SessionHash}, {"trace_id", f.TraceID},
	} {
		if eq.value != "" {
			where = append(where, eq.column+` = `+arg(eq.value))
		}
	}
	if f.ActorVerified {
		where = append(where, `actor_verified`)
	}
	order := `time_ns, id`
	if f.After != nil {
		cmp := `>`
		if f.Reverse {
			cmp = `<`
		}
		where = append(where, `(time_ns, id) `+cmp+` (`+arg(f.After.Time.UnixNano())+`, `+arg(f.After.ID)+`)`)
	}
	if f.Reverse {
		order = `time_ns DESC, id DESC`
	}
	q := `SELECT ` + eventColumns + ` FROM events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY ` + order + ` LIMIT ` + arg(f.Limit)

	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: query events: %w", err)
	}
	out := []store.Event{}
	var e store.Event
	var t int64
	var data []byte
	_, err = pgx.ForEachRow(rows, []any{&e.ID, &t, &e.Kind, &e.Action, &e.Service, &e.Route,
		&e.ActorIP, &e.ActorUser, &e.SessionHash, &e.TraceID, &data, &e.ActorVerified, &e.ActorClaimedBy}, func() error {
		e.Time = fromNS(t)
		e.Data = nil
		if len(data) > 0 {
			e.Data = slices.Clone(data)
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: query events: %w", err)
	}
	return out, nil
}
