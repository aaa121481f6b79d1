// Package sqlite is the embedded store: one SQLite database in the control
// plane's data directory, through modernc.org/sqlite (pure Go, no cgo).
//
// The database runs in WAL mode with synchronous=FULL, so a batch that
// AppendEvents accepted survives a crash of the process or the machine.
// Writes go through one connection, reads through a small pool that WAL
// lets run beside it. Subscribers learn of changes made through this Store
// at once, and of changes made by other processes on the same file within
// PollInterval.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers driver "sqlite"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/internal/sqlstore"
)

// FileName is the database file in the data directory.
const FileName = "rampart.db"

// PollInterval is how often a Store with subscribers checks the database
// for changes committed by other processes.
const PollInterval = 200 * time.Millisecond

// Config configures a Store.
type Config struct {
	// Dir is the data directory; it is created (mode 0700) if missing.
	Dir string
	// Logger receives the store's rare operational messages; nil discards
	// them.
	Logger *slog.Logger
}

// Store is a store.Store over a SQLite database. Its methods are written
// once for both engines, in internal/store/internal/sqlstore; this package
// gives them its dialect, what SQLite does its own way.
type Store struct {
	*core
	w   *sql.DB // exactly one connection: SQLite has one writer at a time
	r   *sql.DB // read-only connections
	log *slog.Logger
}

// core implements the methods the SQLite and PostgreSQL stores share.
type core = sqlstore.Store

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database in cfg.Dir and brings its
// schema up to date.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("sqlite: Config.Dir is empty")
	}
	if strings.ContainsAny(cfg.Dir, "?#") {
		return nil, fmt.Errorf("sqlite: Config.Dir %q contains '?' or '#'", cfg.Dir)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: create data directory: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	path := filepath.Join(cfg.Dir, FileName)
	// Create the file private before SQLite opens it: its WAL and shared
	// memory files then get the same mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	f.Close()
	const common = "_busy_timeout=10000&_foreign_keys=1"
	w, err := sql.Open("sqlite", path+"?"+common+"&_journal_mode=WAL&_synchronous=FULL&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", path+"?"+common+"&_query_only=1")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	s := &Store{w: w, r: r, log: logger}
	s.core = sqlstore.New(sqlstore.FromSQL(w), sqlstore.FromSQL(r), sqlstore.Dialect{
		Name:         "sqlite",
		Bump:         bump,
		Watch:        s.watch,
		AppendEvents: s.appendEvents,
		Lead: func(ctx context.Context, name string) (store.Lease, error) {
			return sqlstore.LocalLead(path, name)
		},
		Close: func() error { return errors.Join(r.Close(), w.Close()) },
		// Every write is a transaction begun on the writer: BEGIN
		// IMMEDIATE (_txlock) takes SQLite's write lock before the first
		// statement, so writers, in this process or another, run one at a
		// time, and the version checks of PutPolicy and PutActorKeys and
		// the quota count of a heartbeat need no lock of their own.
		WriteInTx: true,
		UsesModule: func(param string) string {
			return `EXISTS (SELECT 1 FROM json_each(i.modules) m WHERE json_extract(m.value, '$.path') = ` + param + `)`
		},
		AnyExposed: `MAX(i.exposed)`,
		// Each batch is one write transaction, so other writers get the
		// database between batches. Rows are chosen by rowid (or revision)
		// through the tables' indexes.
		Prune: sqlstore.PruneSQL{
			Changes: `DELETE FROM changes WHERE revision IN
				(SELECT revision FROM changes WHERE revision <= $1 ORDER BY revision LIMIT $2)`,
			Events: `DELETE FROM events WHERE rowid IN
				(SELECT rowid FROM events WHERE time_ns < $1 ORDER BY time_ns LIMIT $2)`,
			Decisions: `DELETE FROM decisions WHERE rowid IN
				(SELECT rowid FROM decisions WHERE expires_ns < $1 ORDER BY expires_ns LIMIT $2)`,
			JoinTokens: `DELETE FROM join_tokens WHERE rowid IN
				(SELECT rowid FROM join_tokens WHERE expires_ns < $1 OR used_ns < $1 OR revoked_ns < $1 LIMIT $2)`,
			Instances: `DELETE FROM instances WHERE rowid IN
				(SELECT rowid FROM instances WHERE last_seen_ns < $1 ORDER BY last_seen_ns LIMIT $2)`,
		},
	})
	// Events stored before migration 0006 lack the key that CIDR
	// searches use.
	if _, err := s.core.BackfillActorIPKeys(ctx); err != nil {
		s.core.Close()
		return nil, err
	}
	return s, nil
}

// watch publishes the current revision, the baseline: later polls signal
// only what is newer. Changes made through s are signalled at commit;
// changes made by other processes on the same file within PollInterval.
func (s *Store) watch(ctx context.Context, publish, _ func(int64)) (run func(context.Context), err error) {
	var rev int64
	if err := s.r.QueryRowContext(ctx, `SELECT value FROM revision WHERE id = 1`).Scan(&rev); err != nil {
		return nil, err
	}
	publish(rev)
	return func(ctx context.Context) { s.poll(ctx, publish) }, nil
}

// poll publishes the revision committed by other processes until ctx ends.
func (s *Store) poll(ctx context.Context, publish func(rev int64)) {
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var rev int64
		if err := s.r.QueryRowContext(ctx, `SELECT value FROM revision WHERE id = 1`).Scan(&rev); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("sqlite: poll revision", "err", err)
			}
			continue
		}
		publish(rev)
	}
}

// bump records a change and returns its revision. Within a write
// transaction, so revisions are committed in order.
func bump(ctx context.Context, tx sqlstore.Tx, kind store.ChangeKind, op store.Op, key string, now time.Time) (int64, error) {
	var rev int64
	if err := tx.QueryRow(ctx, `UPDATE revision SET value = value + 1 WHERE id = 1 RETURNING value`).Scan(&rev); err != nil {
		return 0, fmt.Errorf("bump revision: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO changes (revision, kind, op, key, time_ns) VALUES ($1, $2, $3, $4, $5)`,
		rev, string(kind), string(op), key, now.UnixNano()); err != nil {
		return 0, fmt.Errorf("record change: %w", err)
	}
	return rev, nil
}
