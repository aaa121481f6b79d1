package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// What the detection engine of the control plane needs of a store: the
// events in the order they were committed (the event log), a cursor in it,
// the alerts it raised with their decisions stored at once and only once,
// and a lease so that one replica at a time runs it.
//
// Leading and idempotence together make replicas decide what one would:
// the leader reads the log from the cursor, stores each alert with its
// decisions (PutAlert, which stores nothing for an alert id already
// stored), then advances the cursor from where it read (AdvanceCursor,
// which fails if another leader moved it). A leader killed between the
// two leaves the cursor behind; its successor processes those events
// again, raises the same alerts, with the same ids, and stores nothing new.
type Detections interface {
	// ReadEventLog returns the events committed after seq f.After (and
	// at most f.Through, if set), in commit order, at most f.Limit
	// (0: DefaultQueryLimit; at most MaxQueryLimit). Events stored before
	// the event log existed are not in it.
	ReadEventLog(ctx context.Context, f EventLogFilter) ([]LoggedEvent, error)
	// SubscribeEvents returns a channel that receives the latest seq each
	// time events are committed, through this store at once, and, under
	// PostgreSQL, by other replicas as their notification arrives. Like
	// Subscribe, a wake-up, not a log: read the log after each. The
	// channel is closed when ctx is done or the store is closed.
	SubscribeEvents(ctx context.Context) (<-chan int64, error)
	// Cursor returns the seq the reader name has processed, 0 if none.
	Cursor(ctx context.Context, name string) (int64, error)
	// AdvanceCursor moves the cursor name from seq from to seq to, if it
	// is still at from; otherwise it fails with ErrConflict and changes
	// nothing: another leader moved it.
	AdvanceCursor(ctx context.Context, name string, from, to int64) error
	// PutAlert stores a (its ID given by the caller, see AlertID) with its
	// decisions (their IDs given, see AlertDecisionID) in one transaction,
	// and reports whether it was new. An alert already stored is left as
	// it is, and so are its decisions: nothing is written. Decisions are
	// validated as by CreateDecision; a simulated one is stored without a
	// change (watchers never see it) and with Revision 0.
	PutAlert(ctx context.Context, a Alert, decisions []Decision) (created bool, err error)
	// Alert returns one alert; ErrNotFound if there is none.
	Alert(ctx context.Context, id string) (Alert, error)
	// Alerts returns the alerts that match f, newest first.
	Alerts(ctx context.Context, f AlertFilter) ([]Alert, error)
	// EventsByID returns the stored events among ids (at most
	// MaxQueryLimit), ordered by (Time, ID); ids not stored (pruned) are
	// left out.
	EventsByID(ctx context.Context, ids []string) ([]Event, error)
	// Lead makes this process the leader of name (one per database
	// schema) until the Lease is released or lost, or fails with ErrBusy
	// at once while another holds it. Under PostgreSQL the lease is an
	// advisory lock of a connection of its own, which the server releases
	// if the process dies; under SQLite it is held within the process.
	Lead(ctx context.Context, name string) (Lease, error)
}

// Lease is the leadership Lead gives.
type Lease interface {
	// Lost is closed when the lease is lost (its connection broke): the
	// holder must stop acting as leader, another may be one already.
	Lost() <-chan struct{}
	// Release gives the lease up; it may be called more than once.
	Release()
}

// EventLogFilter selects a stretch of the event log.
type EventLogFilter struct {
	After   int64     // only seqs after it
	Through int64     // only seqs up to it; 0: no bound
	Since   time.Time // only events whose Time is at or after it
	Limit   int       // 0: DefaultQueryLimit; at most MaxQueryLimit
}

// LoggedEvent is an event with its place in the event log.
type LoggedEvent struct {
	Seq int64 `json:"seq"`
	Event
}

// Alert is what the detection engine raised: which scenario, about which
// key, on which evidence, and the decisions it made.
type Alert struct {
	ID        string          `json:"id"`
	Scenario  string          `json:"scenario"`
	Key       string          `json:"key"`
	Count     int64           `json:"count"`
	Distinct  int64           `json:"distinct,omitempty"`
	First     time.Time       `json:"first"`
	Last      time.Time       `json:"last"`
	Evidence  []string        `json:"evidence"` // event ids, the first and last of the bucket
	Decisions []AlertDecision `json:"decisions"`
	Simulated bool            `json:"simulated,omitempty"` // the scenario runs in simulate mode
	Created   time.Time       `json:"created"`             // set by the store
}

// AlertDecision is a decision an alert asked for: the decision made (ID),
// or why none was (Skipped, for example a scope enforcers do not know).
type AlertDecision struct {
	ID        string         `json:"id,omitempty"`
	Scope     string         `json:"scope"` // the scenario's scope: ip, range, user, session, device
	Value     string         `json:"value"`
	Action    DecisionAction `json:"action"`
	TTL       string         `json:"ttl"`
	Simulated bool           `json:"simulated,omitempty"`
	Skipped   string         `json:"skipped,omitempty"`
}

// AlertFilter selects alerts. Zero fields match everything.
type AlertFilter struct {
	Scenario string
	Since    time.Time // stored at or after it
	Limit    int       // 0: DefaultQueryLimit; at most MaxQueryLimit
}

// AlertID is the id of the alert of scenario about key whose first
// evidence event is first: the same alert raised again (by a new leader
// processing events again) has the same id.
func AlertID(scenario, key, first string) string {
	return "a-" + digest("alert", scenario, key, first)
}

// AlertDecisionID is the id of the i-th decision of alert alertID.
func AlertDecisionID(alertID string, i int) string {
	return digest("decision", alertID, strconv.Itoa(i))
}

func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
