package postgres

import (
	"cmp"
	"context"
	"slices"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/internal/sqlstore"
)

// appendEvents inserts the batch in one INSERT … SELECT FROM unnest(…) of
// column arrays: one statement, one round trip, atomic.
func (s *Store) appendEvents(ctx context.Context, evs []store.Event) (int, error) {
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
	tag, err := s.pool.Exec(ctx, `INSERT INTO events (`+sqlstore.EventColumns+`)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
			$7::text[], $8::text[], $9::text[], $10::text[], $11::bytea[], $12::boolean[], $13::text[])
		ON CONFLICT (id) DO NOTHING`,
		id, at, kind, action, service, route, ip, user, session, trace, data, verified, claimedBy)
	return int(tag.RowsAffected()), err
}
