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
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers driver "sqlite"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/internal/hub"
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

// Store is a store.Store over a SQLite database.
type Store struct {
	w   *sql.DB // exactly one connection: SQLite has one writer at a time
	r   *sql.DB // read-only connections
	log *slog.Logger
	hub hub.Hub

	ctx    context.Context // canceled by Close; ends the poller
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	polling bool
	polled  chan struct{} // closed when the poller has returned
}

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
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Close closes the database and ends every subscription.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	polled := s.polled
	s.mu.Unlock()
	if polled != nil {
		<-polled
	}
	s.hub.Close()
	return errors.Join(s.r.Close(), s.w.Close())
}

// Subscribe implements store.Store. Changes made through s are signalled at
// commit; changes made by other processes within PollInterval.
func (s *Store) Subscribe(ctx context.Context) (<-chan int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	if !s.polling {
		var rev int64
		if err := s.r.QueryRowContext(ctx, `SELECT value FROM revision WHERE id = 1`).Scan(&rev); err != nil {
			return nil, fmt.Errorf("sqlite: subscribe: %w", err)
		}
		s.hub.Publish(rev) // the baseline: later polls signal only what is newer
		s.polling = true
		s.polled = make(chan struct{})
		go s.poll()
	}
	ch, ok := s.hub.Subscribe(ctx)
	if !ok {
		return nil, store.ErrClosed
	}
	return ch, nil
}

// poll publishes the revision committed by other processes; it runs from
// the first Subscribe until Close.
func (s *Store) poll() {
	defer close(s.polled)
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		var rev int64
		if err := s.r.QueryRowContext(s.ctx, `SELECT value FROM revision WHERE id = 1`).Scan(&rev); err != nil {
			if s.ctx.Err() == nil {
				s.log.Warn("sqlite: poll revision", "err", err)
			}
			continue
		}
		s.hub.Publish(rev)
	}
}

// write runs fn in a write transaction and publishes the revision it
// returns (0: none) after the commit.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) (rev int64, err error)) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	rev, err := fn(tx)
	if err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if rev > 0 {
		s.hub.Publish(rev)
	}
	return nil
}

// bump records a change and returns its revision. Within a write
// transaction, so revisions are committed in order.
func bump(ctx context.Context, tx *sql.Tx, kind store.ChangeKind, op store.Op, key string, now time.Time) (int64, error) {
	var rev int64
	if err := tx.QueryRowContext(ctx, `UPDATE revision SET value = value + 1 WHERE id = 1 RETURNING value`).Scan(&rev); err != nil {
		return 0, fmt.Errorf("bump revision: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO changes (revision, kind, op, key, time_ns) VALUES (?, ?, ?, ?, ?)`,
		rev, string(kind), string(op), key, now.UnixNano()); err != nil {
		return 0, fmt.Errorf("record change: %w", err)
	}
	return rev, nil
}

// Changes implements store.Store.
func (s *Store) Changes(ctx context.Context, since int64) ([]store.Change, int64, error) {
	if since < 0 {
		return nil, 0, &store.InvalidError{Field: "since", Reason: "negative"}
	}
	// Every revision up to current is committed (see bump), so reading it
	// first and the changes after never skips one.
	var current int64
	if err := s.r.QueryRowContext(ctx, `SELECT value FROM revision WHERE id = 1`).Scan(&current); err != nil {
		return nil, 0, fmt.Errorf("sqlite: changes: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT revision, kind, op, key, time_ns FROM changes
		WHERE revision > ? AND revision <= ? ORDER BY revision LIMIT ?`, since, current, store.MaxChanges)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: changes: %w", err)
	}
	defer rows.Close()
	var out []store.Change
	for rows.Next() {
		var c store.Change
		var t int64
		if err := rows.Scan(&c.Revision, &c.Kind, &c.Op, &c.Key, &t); err != nil {
			return nil, 0, fmt.Errorf("sqlite: changes: %w", err)
		}
		c.Time = fromNS(t)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("sqlite: changes: %w", err)
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

func fromNullNS(ns sql.NullInt64) time.Time {
	if !ns.Valid {
		return time.Time{}
	}
	return fromNS(ns.Int64)
}

func nullNS(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}
