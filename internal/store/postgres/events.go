package postgres

import (
	"cmp"
	"context"
	"slices"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/internal/sqlstore"
)

// appendEvents inserts the batch in one INSERT … SELECT FROM unnest(…) of
// column arrays: one statement, one round trip, atomic. The same statement
// bumps event_seq, whose row lock it holds until commit, so that seqs are
// committed in order across replicas, and notifies the replicas' event
// subscribers at commit.
func (s *Store) appendEvents(ctx context.Context, evs []store.Event) (int, int64, error) {
	// The log is in (Time, ID) order within a batch: the order the
	// detection engine wants.
	byTime := slices.Clone(evs)
	slices.SortFunc(byTime, func(a, b store.Event) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.ID, b.ID))
	})
	rank := make(map[string]int64, len(evs))
	for i, e := range byTime {
		if _, ok := rank[e.ID]; !ok {
			rank[e.ID] = int64(i) + 1
		}
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
		userClaimedBy                    = make([]string, n)
		offset                           = make([]int64, n)
		ipKey                            = make([]string, n)
	)
	for i, e := range evs {
		id[i], at[i], kind[i], action[i], service[i], route[i] = e.ID, e.Time.UnixNano(), e.Kind, e.Action, e.Service, e.Route
		ip[i], user[i], session[i], trace[i] = e.ActorIP, e.ActorUser, e.SessionHash, e.TraceID
		data[i], verified[i], claimedBy[i], offset[i] = e.Data, e.ActorVerified, e.ActorClaimedBy, rank[e.ID]
		userClaimedBy[i], ipKey[i] = e.ActorUserClaimedBy, store.ActorIPKey(e.ActorIP)
		if data[i] == nil {
			data[i] = []byte{} // the column is NOT NULL
		}
	}
	var last int64
	rows, err := s.pool.Query(ctx, `WITH c AS (UPDATE event_seq SET value = value + $16 WHERE id = 1 RETURNING value - $16 AS base),
		n AS (SELECT pg_notify($17, (base + $16)::text) FROM c),
		i AS (INSERT INTO events (`+sqlstore.EventColumns+`, seq, actor_ip_key)
			SELECT u.id, u.t, u.kind, u.action, u.service, u.route, u.ip, u.usr, u.sess, u.trace, u.data, u.verified, u.claimed, u.uclaimed, c.base + u.off, u.ipkey
			FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
				$7::text[], $8::text[], $9::text[], $10::text[], $11::bytea[], $12::boolean[], $13::text[], $14::text[], $15::bigint[], $18::text[])
				AS u(id, t, kind, action, service, route, ip, usr, sess, trace, data, verified, claimed, uclaimed, off, ipkey), c
			ON CONFLICT (id) DO NOTHING RETURNING 1)
		SELECT (SELECT count(*) FROM i), (SELECT base + $16 FROM c), (SELECT count(*) FROM n)`,
		id, at, kind, action, service, route, ip, user, session, trace, data, verified, claimedBy, userClaimedBy, offset, int64(n), s.events, ipKey)
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	var inserted, notified int64
	for rows.Next() {
		if err := rows.Scan(&inserted, &last, &notified); err != nil {
			return 0, 0, err
		}
	}
	return int(inserted), last, rows.Err()
}
