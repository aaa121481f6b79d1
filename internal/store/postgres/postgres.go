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
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/internal/sqlstore"
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

// Store is a store.Store over a PostgreSQL database. Its methods are written
// once for both engines, in internal/store/internal/sqlstore; this package
// gives them its dialect, what PostgreSQL does its own way.
type Store struct {
	*core
	pool    *pgxpool.Pool
	channel string // the NOTIFY channel of this schema's changes
	events  string // the NOTIFY channel of this schema's events (their last seq)
	log     *slog.Logger
}

// core implements the methods the SQLite and PostgreSQL stores share.
type core = sqlstore.Store

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
	s := &Store{pool: pool, channel: channelFor("rampart_changes_", *schema), events: channelFor("rampart_events_", *schema), log: logger}
	rw := db{querier{pool}, pool}
	s.core = sqlstore.New(rw, rw, sqlstore.Dialect{
		Name:         "postgres",
		Bump:         s.bump,
		Watch:        s.watch,
		AppendEvents: s.appendEvents,
		Lead:         s.lead,
		Close: func() error {
			pool.Close()
			return nil
		},
		// Writers that read before they write queue on the revision row
		// lock first, so that of two writers from the same version, on any
		// replica, exactly one wins.
		LockRevision: `SELECT value FROM revision WHERE id = 1 FOR UPDATE`,
		// The service's row, locked FOR UPDATE, serializes the heartbeats
		// of new instances of one service across replicas, so that the
		// count and the insert cannot interleave.
		LockService: `SELECT 1 FROM services WHERE name = $1 FOR UPDATE`,
		// The GIN index on modules answers it.
		UsesModule: func(param string) string {
			return `i.modules @> jsonb_build_array(jsonb_build_object('path', ` + param + `::text))`
		},
		AnyExposed: `BOOL_OR(i.exposed)`,
		Prune:      pruneSQL,
		PruneLock:  s.pruneLock,
	})
	// Events stored before migration 0006 lack the key that CIDR
	// searches use.
	if _, err := s.core.BackfillActorIPKeys(ctx); err != nil {
		s.core.Close()
		return nil, err
	}
	return s, nil
}

// channelFor names a NOTIFY channel of a schema. Channel names are per
// database, so the schema is part of it; a long one is hashed to fit
// PostgreSQL's 63 bytes.
func channelFor(prefix, schema string) string {
	c := prefix + schema
	if len(c) > 63 {
		h := sha256.Sum256([]byte(schema))
		c = prefix + hex.EncodeToString(h[:16])
	}
	return c
}

// watch opens the connection that LISTENs (outside the pool) and returns
// once it listens, so no change committed after Subscribe returns goes
// unsignalled; what it returns receives the notifications.
func (s *Store) watch(ctx context.Context, publish, publishEvents func(int64)) (run func(context.Context), err error) {
	conn, err := s.listen(ctx, publish)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) { s.receive(ctx, conn, publish, publishEvents) }, nil
}

// listen opens a connection that LISTENs to the channel, then publishes the
// current revision: a baseline the first time, a catch-up after a
// reconnection.
func (s *Store) listen(ctx context.Context, publish func(rev int64)) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, err
	}
	for _, c := range []string{s.events, s.channel} {
		if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{c}.Sanitize()); err != nil {
			conn.Close(context.Background())
			return nil, err
		}
	}
	var rev int64
	if err := s.pool.QueryRow(ctx, `SELECT value FROM revision WHERE id = 1`).Scan(&rev); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	publish(rev)
	return conn, nil
}

// receive publishes each notification's revision until ctx ends,
// reconnecting with backoff when the connection breaks.
func (s *Store) receive(ctx context.Context, conn *pgx.Conn, publish, publishEvents func(int64)) {
	backoff := 100 * time.Millisecond
	for {
		n, err := conn.WaitForNotification(ctx)
		if err == nil {
			if v, err := strconv.ParseInt(n.Payload, 10, 64); err == nil {
				if n.Channel == s.events {
					publishEvents(v)
				} else {
					publish(v)
				}
			}
			continue
		}
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn.Close(closeCtx)
		cancel()
		for {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("postgres: change notifications interrupted; reconnecting", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			if conn, err = s.listen(ctx, publish); err == nil {
				s.log.Info("postgres: change notifications resumed")
				backoff = 100 * time.Millisecond
				break
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}

// bump records a change and returns its revision; the NOTIFY goes out at
// commit. The row lock on revision, held until commit, orders writers.
func (s *Store) bump(ctx context.Context, tx sqlstore.Tx, kind store.ChangeKind, op store.Op, key string, now time.Time) (int64, error) {
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
