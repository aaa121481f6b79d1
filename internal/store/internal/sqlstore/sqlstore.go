// Package sqlstore is the store.Store that the SQLite and PostgreSQL stores
// share: the methods' validation, SQL, scanning, error wrapping and change
// signalling, over a Querier either engine provides. What differs between
// the engines (how a change is recorded and announced, how others' changes
// are noticed, how events are inserted, the SQL fragments one of them
// spells its own way, the locks only one of them needs) is a Dialect.
package sqlstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/internal/hub"
)

// Dialect is what an engine does its own way.
type Dialect struct {
	// Name prefixes the errors: "sqlite", "postgres".
	Name string

	// Bump records a change within a write transaction and returns its
	// revision; revisions are committed in order.
	Bump func(ctx context.Context, tx Tx, kind store.ChangeKind, op store.Op, key string, now time.Time) (int64, error)

	// Watch, called by the first Subscribe or SubscribeEvents, publishes
	// the current revision (the baseline) and returns what then publishes
	// the revisions that other processes or replicas commit, and the event
	// seqs if it learns of them, until its ctx ends (Close).
	Watch func(ctx context.Context, publish, publishEvents func(int64)) (run func(ctx context.Context), err error)

	// AppendEvents inserts a validated, non-empty batch of events, skipping
	// the ids already stored, numbering them in the event log in (Time, ID)
	// order, and returns how many it inserted and the last seq it gave.
	AppendEvents func(ctx context.Context, evs []store.Event) (inserted int, lastSeq int64, err error)

	// Lead takes the lease of name (store.Detections.Lead).
	Lead func(ctx context.Context, name string) (store.Lease, error)

	// Close closes the database once the watcher has returned.
	Close func() error

	// WriteInTx runs even the writes of a single statement in a write
	// transaction, rather than straight on the database.
	WriteInTx bool

	// LockRevision, unless empty, starts the transactions that read before
	// they write (PutPolicy, PutActorKeys), so that their writers queue.
	LockRevision string

	// LockService, unless empty, runs with the service's name as $1 before
	// a heartbeat counts the service's instances against a quota.
	LockService string

	// UsesModule is the condition that the build of instance row i
	// includes the module in parameter param ("$1"…).
	UsesModule func(param string) string

	// AnyExposed is the aggregate, over the instance rows i of a service,
	// that is true when one of them is exposed.
	AnyExposed string

	// Prune are the statements that delete one batch of each kind of row.
	Prune PruneSQL

	// PruneLock, unless nil, is taken for the whole of Prune and returns
	// where Prune runs its statements (each on its own); without it Prune
	// reads the reader and writes the writer.
	PruneLock func(ctx context.Context) (q Querier, unlock func(), err error)
}

// PruneSQL are the statements that delete one batch of rows: $1 is the
// cutoff, $2 the batch size.
type PruneSQL struct {
	Changes    string // $1: the newest revision to delete
	Events     string
	Decisions  string
	JoinTokens string
	Instances  string
}

// Store implements store.Store with a Dialect.
type Store struct {
	w, r DB // the writer and the reader; the same database where the engine allows
	d    Dialect
	hub  hub.Hub
	evs  hub.Hub // event seqs, for SubscribeEvents

	ctx    context.Context // canceled by Close; ends the watcher
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	watching bool
	watched  chan struct{} // closed when the watcher has returned
}

// New returns a Store that writes through w and reads through r.
func New(w, r DB, d Dialect) *Store {
	s := &Store{w: w, r: r, d: d}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Close implements store.Store: it ends every subscription, then closes
// the database.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	watched := s.watched
	s.mu.Unlock()
	if watched != nil {
		<-watched
	}
	s.hub.Close()
	s.evs.Close()
	return s.d.Close()
}

// Subscribe implements store.Store. Changes made through s are signalled at
// commit; changes made elsewhere as the Dialect's watcher learns of them.
func (s *Store) Subscribe(ctx context.Context) (<-chan int64, error) {
	return s.subscribe(ctx, &s.hub)
}

// SubscribeEvents implements store.Store.
func (s *Store) SubscribeEvents(ctx context.Context) (<-chan int64, error) {
	return s.subscribe(ctx, &s.evs)
}

// subscribe starts the watcher if it is not running, then subscribes to h.
func (s *Store) subscribe(ctx context.Context, h *hub.Hub) (<-chan int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	if !s.watching {
		run, err := s.d.Watch(ctx, s.hub.Publish, s.evs.Publish)
		if err != nil {
			return nil, fmt.Errorf("%s: subscribe: %w", s.d.Name, err)
		}
		s.watching = true
		watched := make(chan struct{})
		s.watched = watched
		go func() {
			defer close(watched)
			run(s.ctx)
		}()
	}
	ch, ok := h.Subscribe(ctx)
	if !ok {
		return nil, store.ErrClosed
	}
	return ch, nil
}

// write runs fn in a write transaction and publishes the revision it
// returns (0: none) after the commit. Other processes or replicas learn of
// it through the Dialect's watcher; this one need not wait for it.
func (s *Store) write(ctx context.Context, fn func(tx Tx) (rev int64, err error)) error {
	tx, err := s.w.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) // after a failure, or a panic in fn
	rev, err := fn(tx)
	if err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	if rev > 0 {
		s.hub.Publish(rev)
	}
	return nil
}

// writeAlone runs fn, whose statements write but record no change, in a
// write transaction if the Dialect wants one, else straight on q.
func (s *Store) writeAlone(ctx context.Context, q Querier, fn func(q Querier) error) error {
	if !s.d.WriteInTx {
		return fn(q)
	}
	return s.write(ctx, func(tx Tx) (int64, error) { return 0, fn(tx) })
}

// lock runs the Dialect's lock statement, if it has one.
func lock(ctx context.Context, tx Tx, stmt string, args ...any) error {
	if stmt == "" {
		return nil
	}
	_, err := tx.Exec(ctx, stmt, args...)
	return err
}

// Changes implements store.Store.
func (s *Store) Changes(ctx context.Context, since int64) ([]store.Change, int64, error) {
	if since < 0 {
		return nil, 0, &store.InvalidError{Field: "since", Reason: "negative"}
	}
	// Every revision up to current is committed (see Dialect.Bump), so
	// reading it first and the changes after never skips one.
	var current int64
	if err := s.r.QueryRow(ctx, `SELECT value FROM revision WHERE id = 1`).Scan(&current); err != nil {
		return nil, 0, fmt.Errorf("%s: changes: %w", s.d.Name, err)
	}
	rows, err := s.r.Query(ctx, `SELECT revision, kind, op, key, time_ns FROM changes
		WHERE revision > $1 AND revision <= $2 ORDER BY revision LIMIT $3`, since, current, store.MaxChanges)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: changes: %w", s.d.Name, err)
	}
	defer rows.Close()
	var out []store.Change
	for rows.Next() {
		var c store.Change
		var t int64
		if err := rows.Scan(&c.Revision, &c.Kind, &c.Op, &c.Key, &t); err != nil {
			return nil, 0, fmt.Errorf("%s: changes: %w", s.d.Name, err)
		}
		c.Time = fromNS(t)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("%s: changes: %w", s.d.Name, err)
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

// nullNS is t in nanoseconds, or NULL for the zero time.
func nullNS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}
