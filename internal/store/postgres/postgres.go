// Package postgres is the store for control planes beyond one machine:
// several replicas over one PostgreSQL database, through pgx and its pool.
//
// Nothing that matters lives in a replica's memory: revisions are numbered
// by the database, and each commit that bumps one sends NOTIFY on a channel
// that every replica's Subscribe listens to, so a change made through one
// replica wakes the watchers of all of them at once. A replica whose
// listening connection breaks reconnects and then signals the current
// revision, so that its watchers catch up on whatever they missed.
//
// The Store uses the schema first in the connection's search_path; several
// deployments, or test runs, can share a database in separate schemas.
package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/internal/hub"
)

// Config configures a Store.
type Config struct {
	// DSN is a PostgreSQL connection string, URL or key=value form, e.g.
	// "postgres://rampart@db.internal:5432/rampart?sslmode=verify-full".
	// pgxpool parameters (pool_max_conns…) and runtime parameters
	// (search_path…) may be given in it.
	DSN string
	// Logger receives the store's rare operational messages; nil discards
	// them.
	Logger *slog.Logger
}

// Store is a store.Store over a PostgreSQL database.
type Store struct {
	pool    *pgxpool.Pool
	channel string // the NOTIFY channel of this schema's changes
	log     *slog.Logger
	hub     hub.Hub

	ctx    context.Context // canceled by Close; ends the listener
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	listening bool
	listened  chan struct{} // closed when the listener has returned
}

var _ store.Store = (*Store)(nil)

// Open connects to the database and brings its schema up to date.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.DSN == "" {
		return nil, errors.New("postgres: Config.DSN is empty")
	}
	pcfg, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres: Config.DSN: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	var schema *string
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if schema == nil {
		pool.Close()
		return nil, errors.New("postgres: no schema of the search_path exists: create it or fix search_path")
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{pool: pool, channel: channelFor(*schema), log: logger}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// channelFor names the NOTIFY channel of a schema's changes. Channel names
// are per database, so the schema is part of it; a long one is hashed to fit
// PostgreSQL's 63 bytes.
func channelFor(schema string) string {
	c := "rampart_changes_" + schema
	if len(c) > 63 {
		h := sha256.Sum256([]byte(schema))
		c = "rampart_changes_" + hex.EncodeToString(h[:16])
	}
	return c
}

// Close closes the pool and ends every subscription.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	listened := s.listened
	s.mu.Unlock()
	if listened != nil {
		<-listened
	}
	s.hub.Close()
	s.pool.Close()
	return nil
}

// Subscribe implements store.Store. The first call opens the connection
// that LISTENs (outside the pool) and returns once it listens, so no change
// committed after Subscribe returns goes unsignalled.
func (s *Store) Subscribe(ctx context.Context) (<-chan int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	if !s.listening {
		conn, err := s.listen(ctx)
		if err != nil {
			return nil, fmt.Errorf("postgres: subscribe: %w", err)
		}
		s.listening = true
		s.listened = make(chan struct{})
		go s.receive(conn)
	}
	ch, ok := s.hub.Subscribe(ctx)
	if !ok {
		return nil, store.ErrClosed
	}
	return ch, nil
}

// listen opens a connection that LISTENs to the channel, then publishes the
// current revision: a baseline the first time, a catch-up after a
// reconnection.
func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	var rev int64
	if err := s.pool.QueryRow(ctx, `SELECT value FROM revision WHERE id = 1`).Scan(&rev); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	s.hub.Publish(rev)
	return conn, nil
}

// receive publishes each notification's revision until Close, reconnecting
// with backoff when the connection breaks.
func (s *Store) receive(conn *pgx.Conn) {
	defer close(s.listened)
	backoff := 100 * time.Millisecond
	for {
		n, err := conn.WaitForNotification(s.ctx)
		if err == nil {
			if rev, err := strconv.ParseInt(n.Payload, 10, 64); err == nil {
				s.hub.Publish(rev)
			}
			continue
		}
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn.Close(closeCtx)
		cancel()
		for {
			if s.ctx.Err() != nil {
				return
			}
			s.log.Warn("postgres: change notifications interrupted; reconnecting", "err", err, "retry_in", backoff)
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(backoff):
			}
			if conn, err = s.listen(s.ctx); err == nil {
				s.log.Info("postgres: change notifications resumed")
				backoff = 100 * time.Millisecond
				break
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}

// write runs fn in a transaction and publishes the revision it returns (0:
// none) after the commit. Other replicas learn of it by NOTIFY; this one
// need not wait for its own.
func (s *Store) write(ctx context.Context, fn func(tx pgx.Tx) (rev int64, err error)) error {
	var rev int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		rev, err = fn(tx)
		return err
	})
	if err != nil {
		return err
	}
	if rev > 0 {
		s.hub.Publish(rev)
	}
	return nil
}

// bump records a change and returns its revision; the NOTIFY goes out at
// commit. The row lock on revision, held until commit, orders writers.
func (s *Store) bump(ctx context.Context, tx pgx.Tx, kind store.ChangeKind, op store.Op, key string, now time.Time) (int64, error) {
	var rev int64
	if err := tx.QueryRow(ctx, `WITH r AS (UPDATE revision SET value = value + 1 WHERE id = 1 RETURNING value)
		INSERT INTO changes (revision, kind, op, key, time_ns) SELECT value, $1, $2, $3, $4 FROM r RETURNING revision`,
		string(kind), string(op), key, now.UnixNano()).Scan(&rev); err != nil {
		return 0, fmt.Errorf("bump revision: %w", err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, s.channel, strconv.FormatInt(rev, 10)); err != nil {
		return 0, fmt.Errorf("notify: %w", err)
	}
	return rev, nil
}

// lockRevision takes the revision row lock at the start of a transaction
// that must read before it writes (PutPolicy).
func lockRevision(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT value FROM revision WHERE id = 1 FOR UPDATE`)
	return err
}

// Changes implements store.Store.
func (s *Store) Changes(ctx context.Context, since int64) ([]store.Change, int64, error) {
	if since < 0 {
		return nil, 0, &store.InvalidError{Field: "since", Reason: "negative"}
	}
	// Every revision up to current is committed (see bump), so reading it
	// first and the changes after never skips one.
	var current int64
	if err := s.pool.QueryRow(ctx, `SELECT value FROM revision WHERE id = 1`).Scan(&current); err != nil {
		return nil, 0, fmt.Errorf("postgres: changes: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT revision, kind, op, key, time_ns FROM changes
		WHERE revision > $1 AND revision <= $2 ORDER BY revision LIMIT $3`, since, current, store.MaxChanges)
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: changes: %w", err)
	}
	var out []store.Change
	var c store.Change
	var t int64
	_, err = pgx.ForEachRow(rows, []any{&c.Revision, &c.Kind, &c.Op, &c.Key, &t}, func() error {
		c.Time = fromNS(t)
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: changes: %w", err)
	}
	if since < current && (len(out) == 0 || out[0].Revision != since+1) {
		// Revisions have no gaps and Prune deletes the oldest first: the
		// change after since is gone, and so is any way to catch up
		// change by change.
		return []store.Change{{Revision: current, Kind: store.ChangeReset, Time: time.Now().UTC()}}, current, nil
	}
	if len(out) == store.MaxChanges {
		current = out[len(out)-1].Revision
	}
	return out, current, nil
}

func fromNS(ns int64) time.Time { return time.Unix(0, ns).UTC() }

func fromNullNS(ns *int64) time.Time {
	if ns == nil {
		return time.Time{}
	}
	return fromNS(*ns)
}

func nullNS(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	ns := t.UnixNano()
	return &ns
}
