package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rampartsec/rampart/internal/store"
)

// leaseCheck is how often a lease's connection is checked: a lease whose
// connection broke is lost (the server released the lock with the session),
// and its holder learns it within this.
const leaseCheck = time.Second

// lead takes a session-level advisory lock, one per schema and name, on a
// connection of its own (outside the pool), held until Release or until
// the connection breaks, when the server releases it: a replica that dies
// gives the lease up with its connections.
func (s *Store) lead(ctx context.Context, name string) (store.Lease, error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, err
	}
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended('rampart.lead.' || current_schema() || '.' || $1, 0))`,
		name).Scan(&locked); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	if !locked {
		conn.Close(context.Background())
		return nil, fmt.Errorf("another replica leads %s: %w", name, store.ErrBusy)
	}
	l := &pgLease{conn: conn, lost: make(chan struct{}), stop: make(chan struct{})}
	l.wg.Go(l.check)
	return l, nil
}

type pgLease struct {
	conn *pgx.Conn
	lost chan struct{}
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

func (l *pgLease) Lost() <-chan struct{} { return l.lost }

// check pings the lease's connection until Release; a failed ping loses
// the lease.
func (l *pgLease) check() {
	t := time.NewTicker(leaseCheck)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), leaseCheck)
		err := l.conn.Ping(ctx)
		cancel()
		if err != nil {
			close(l.lost)
			return
		}
	}
}

// Release closes the connection, which releases the lock.
func (l *pgLease) Release() {
	l.once.Do(func() {
		close(l.stop)
		l.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l.conn.Close(ctx)
	})
}
