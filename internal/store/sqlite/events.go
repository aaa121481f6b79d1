package sqlite

import (
	"context"
	"database/sql"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/internal/sqlstore"
)

// appendEvents inserts the batch in one write transaction, through one
// prepared statement.
func (s *Store) appendEvents(ctx context.Context, evs []store.Event) (int, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() // after a failure; a no-op after Commit
	inserted, err := insertEvents(ctx, tx, evs)
	if err != nil {
		return 0, err
	}
	return inserted, tx.Commit()
}

func insertEvents(ctx context.Context, tx *sql.Tx, evs []store.Event) (int, error) {
	st, err := tx.PrepareContext(ctx, `INSERT INTO events (`+sqlstore.EventColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	inserted := 0
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
	return inserted, nil
}
