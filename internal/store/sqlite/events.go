package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"slices"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/internal/sqlstore"
)

// appendEvents inserts the batch in one write transaction, through one
// prepared statement.
// The transaction (BEGIN IMMEDIATE) holds SQLite's write lock, so the
// seqs it gives are committed in order.
func (s *Store) appendEvents(ctx context.Context, evs []store.Event) (int, int64, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback() // after a failure; a no-op after Commit
	var base int64
	if err := tx.QueryRowContext(ctx, `UPDATE event_seq SET value = value + ? WHERE id = 1 RETURNING value - ?`,
		len(evs), len(evs)).Scan(&base); err != nil {
		return 0, 0, err
	}
	inserted, err := insertEvents(ctx, tx, evs, base)
	if err != nil {
		return 0, 0, err
	}
	return inserted, base + int64(len(evs)), tx.Commit()
}

func insertEvents(ctx context.Context, tx *sql.Tx, evs []store.Event, base int64) (int, error) {
	st, err := tx.PrepareContext(ctx, `INSERT INTO events (`+sqlstore.EventColumns+`, seq, actor_ip_key)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	inserted := 0
	// The log is in (Time, ID) order within a batch: the order the engine
	// wants its events in.
	evs = slices.Clone(evs)
	slices.SortStableFunc(evs, func(a, b store.Event) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.ID, b.ID))
	})
	for i, e := range evs {
		data := []byte(e.Data)
		if data == nil {
			data = []byte{} // the column is NOT NULL
		}
		res, err := st.ExecContext(ctx, e.ID, e.Time.UnixNano(), e.Kind, e.Action, e.Service, e.Route,
			e.ActorIP, e.ActorUser, e.SessionHash, e.TraceID, data, e.ActorVerified, e.ActorClaimedBy, e.ActorUserClaimedBy, base+int64(i)+1,
			store.ActorIPKey(e.ActorIP))
		if err != nil {
			return 0, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		inserted += int(n)
	}
	return inserted, nil
}
