// Package store is the control plane's storage: security events, decisions,
// policy versions, the trust bundle, the actor-token keys, join tokens and
// the service inventory, behind one [Store] interface.
//
// Two implementations satisfy it and pass the same conformance suite
// (package storetest): store/sqlite, the embedded default in a data
// directory, and store/postgres, for several control-plane replicas over one
// database. Neither keeps state that matters in process memory.
//
// Every change to decisions, policy, the trust bundle, the actor-token keys
// or a service's revocation is one numbered [Change]. Revisions are assigned in the database
// in commit order, so a watcher that has seen revision r and asks for
// [Store.Changes] since r never misses one, whichever replica made it.
// [Store.Subscribe] wakes the watcher as soon as a new revision is committed.
//
// Errors callers branch on: [ErrInvalid] (bad input; the [*InvalidError]
// names the field), [ErrNotFound], [ErrConflict] (a write from an outdated
// version: PutPolicy, PutActorKeys), and the join-token errors
// [ErrTokenUnknown], [ErrTokenUsed], [ErrTokenExpired], [ErrTokenRevoked],
// [ErrTokenWrongService].
// A method that fails has written nothing, except Prune, whose batches
// each commit on their own.
//
// Nothing is deleted but by request, or by [Store.Prune], which the control
// plane runs on a schedule so that storage stays bounded: old events and
// changes, expired decisions, used-up, expired or revoked join tokens and
// gone instances.
package store

import (
	"context"
	"encoding/json"
	"time"
)

// Store is the control plane's storage. Implementations are safe for
// concurrent use. Times are kept with nanosecond precision and returned in
// UTC; times the store stamps (Created, Used, LastSeen…) come from the
// control plane's clock, not the database's.
type Store interface {
	// AppendEvents stores a batch of events in one transaction and returns how
	// many were new. Events are identified by ID: one already stored (a
	// retried batch) or repeated in the batch is skipped, and the first copy
	// stored wins. A batch holds at most MaxEventBatch events.
	AppendEvents(ctx context.Context, events []Event) (inserted int, err error)
	// QueryEvents returns the events that match f, ordered by (Time, ID),
	// oldest first unless f.Reverse.
	QueryEvents(ctx context.Context, f EventFilter) ([]Event, error)

	// CreateDecision validates d (see ValidateDecision), stamps its ID,
	// Created and Revision, stores it and returns it.
	CreateDecision(ctx context.Context, d Decision) (Decision, error)
	// Decision returns the decision with that id, expired or not.
	Decision(ctx context.Context, id string) (Decision, error)
	// ListDecisions returns the decisions ordered by (Created, ID); expired
	// ones only when includeExpired.
	ListDecisions(ctx context.Context, includeExpired bool) ([]Decision, error)
	// DeleteDecision removes a decision; ErrNotFound if there is none.
	DeleteDecision(ctx context.Context, id string) error

	// PutPolicy stores a new policy version, numbered latest+1. base is the
	// version the text was derived from: if another version was stored since,
	// PutPolicy fails with ErrConflict and stores nothing. AnyVersion skips
	// that check.
	PutPolicy(ctx context.Context, yaml string, base int64) (Policy, error)
	// Policy returns one policy version, or the latest when version is 0;
	// ErrNotFound if there is none.
	Policy(ctx context.Context, version int64) (Policy, error)

	// PutTrustBundle replaces the trust bundle (the document published to
	// services: CA certificates and actor-token keys).
	PutTrustBundle(ctx context.Context, data []byte) (TrustBundle, error)
	// TrustBundle returns the current trust bundle; ErrNotFound if none.
	TrustBundle(ctx context.Context) (TrustBundle, error)

	// PutActorKeys replaces the actor-token key set (an opaque blob: the
	// control plane encrypts it), if its version is still expectVersion (0:
	// there is none yet), and returns the new version, always
	// expectVersion+1. If another writer got there first it fails with
	// ErrConflict and stores nothing: of concurrent writers with the same
	// expectVersion, exactly one wins. A successful put is a change of kind
	// ChangeActorKeys.
	PutActorKeys(ctx context.Context, data []byte, expectVersion int64) (newVersion int64, err error)
	// ActorKeys returns the actor-token key set and its version (1, 2, …);
	// ErrNotFound if none was ever put.
	ActorKeys(ctx context.Context) (data []byte, version int64, err error)

	// Changes returns the changes after revision since, oldest first, and the
	// revision the caller is then up to date with. At most MaxChanges are
	// returned; current is then the last one's revision, and calling again
	// with it continues. If Prune deleted changes after since, the caller
	// cannot catch up change by change: Changes returns one change of kind
	// ChangeReset at revision current, and the caller must reload all the
	// state it holds, then continue from current.
	Changes(ctx context.Context, since int64) (changes []Change, current int64, err error)
	// Subscribe returns a channel that receives a revision number each time
	// one or more changes are committed, by this process or another one
	// sharing the database. It is a wake-up, not a log: values are
	// coalesced (a slow reader sees only the latest), so read Changes after
	// each. To miss nothing, Subscribe first, then read Changes. The channel
	// is closed when ctx is done or the store is closed.
	Subscribe(ctx context.Context) (<-chan int64, error)

	// CreateJoinToken creates a token for one service that allows
	// spec.Uses joins (0 means 1) until it expires after spec.TTL (0 means
	// DefaultJoinTokenTTL). Only its hash is stored: the plaintext is
	// returned here, once.
	CreateJoinToken(ctx context.Context, spec JoinTokenSpec) (plaintext string, tok JoinToken, err error)
	// ConsumeJoinToken spends one use of a token, atomically: of concurrent
	// callers with a token of n uses, exactly n succeed. It fails with
	// ErrTokenUnknown (never issued, forged, malformed), ErrTokenRevoked,
	// ErrTokenUsed, ErrTokenExpired or ErrTokenWrongService; a token
	// presented for the wrong service stays usable for its own. The secret
	// is compared in constant time.
	ConsumeJoinToken(ctx context.Context, plaintext, service string) (JoinToken, error)
	// JoinTokens lists the join tokens, newest first: those still usable,
	// or with f.All every one not yet pruned. No secret is in the list.
	JoinTokens(ctx context.Context, f JoinTokenFilter) ([]JoinToken, error)
	// RevokeJoinToken refuses every later use of the token with this id
	// (ErrNotFound if there is none) and returns it; revoking a revoked
	// token changes nothing.
	RevokeJoinToken(ctx context.Context, id string) (JoinToken, error)

	// Heartbeat registers an instance or refreshes it: everything it reports
	// replaces what was stored, LastSeen becomes now.
	Heartbeat(ctx context.Context, in Instance) error
	// HeartbeatQuota is Heartbeat for a service held to q: an instance the
	// store does not know yet is registered only if its service has fewer
	// than q.Max instances; else it replaces the service's instance seen
	// longest ago, if that one was last seen before q.LiveAfter (it is
	// gone); else it is refused with ErrQuota and nothing is written.
	// Known instances are always refreshed. A service thus never has more
	// than q.Max instances stored, and churn (instances replaced by new
	// ones) keeps working. The check and the write are atomic: concurrent
	// heartbeats, from any replica, never take a service past q.Max.
	HeartbeatQuota(ctx context.Context, in Instance, q InstanceQuota) error
	// Instances returns the instances that match f, ordered by (Service, ID).
	Instances(ctx context.Context, f InstanceFilter) ([]Instance, error)
	// Services returns the services that match f, ordered by name.
	Services(ctx context.Context, f ServiceFilter) ([]Service, error)
	// Service returns one service; ErrNotFound if it never heartbeated nor
	// was revoked.
	Service(ctx context.Context, name string) (Service, error)
	// SetServiceRevoked revokes a service (the CA must then refuse its
	// renewals) or reinstates it. Revoking a service the store has not seen
	// yet records it.
	SetServiceRevoked(ctx context.Context, name string, revoked bool) error

	// Prune deletes what the control plane no longer needs (see
	// PruneConfig) in batches of at most PruneConfig.Batch rows, each its
	// own transaction, so that a large prune never holds a long lock, and
	// returns how many rows it deleted. It is idempotent: a prune repeated,
	// or interrupted and run again, deletes only what is left. Where several
	// replicas share the database, a Prune that finds another one running
	// returns ErrBusy at once and deletes nothing.
	Prune(ctx context.Context, cfg PruneConfig) (PruneResult, error)

	// Detections is what the control plane's detection engine needs.
	Detections
	// Dashboards is what the dashboard needs.
	Dashboards

	// Close releases the store's connections and ends its subscriptions.
	Close() error
}

// PruneBatch is PruneConfig.Batch when 0: rows deleted by one statement.
const PruneBatch = 10000

// PruneConfig says what Prune deletes. A zero time deletes nothing of its
// kind.
type PruneConfig struct {
	// EventsBefore: events whose Time is before it, and alerts (of the
	// detection engine) stored before it.
	EventsBefore time.Time
	// ChangesBefore: changes recorded before it, oldest first, up to the
	// first one recorded at or after it, which is kept with every later
	// one. Watchers behind what was deleted get a ChangeReset.
	ChangesBefore time.Time
	// DecisionsBefore: decisions that expired before it (and before now:
	// a live decision is never pruned).
	DecisionsBefore time.Time
	// TokensBefore: join tokens used up, expired or revoked before it.
	TokensBefore time.Time
	// InstancesBefore: instances last seen before it. Their services stay
	// known (and revoked ones revoked).
	InstancesBefore time.Time
	// Batch is the most rows one statement deletes; 0 means PruneBatch.
	Batch int
}

// PruneResult counts the rows Prune deleted.
type PruneResult struct {
	Events     int64 `json:"events"`
	Alerts     int64 `json:"alerts"`
	Changes    int64 `json:"changes"`
	Decisions  int64 `json:"decisions"`
	JoinTokens int64 `json:"join_tokens"`
	Instances  int64 `json:"instances"`
}

// Total is the number of rows deleted, all kinds together.
func (r PruneResult) Total() int64 {
	return r.Events + r.Alerts + r.Changes + r.Decisions + r.JoinTokens + r.Instances
}

// ValidatePruneConfig checks cfg and returns it with Batch defaulted.
func ValidatePruneConfig(cfg PruneConfig) (PruneConfig, error) {
	switch {
	case cfg.Batch < 0:
		return cfg, invalid("batch", "negative")
	case cfg.Batch == 0:
		cfg.Batch = PruneBatch
	}
	return cfg, nil
}

// Limits on what a store accepts.
const (
	MaxEventBatch       = 1000      // events in one AppendEvents call
	MaxEventData        = 64 << 10  // bytes of Event.Data
	DefaultQueryLimit   = 100       // EventFilter.Limit when 0
	MaxQueryLimit       = 1000      // largest EventFilter.Limit
	MaxChanges          = 1000      // changes returned by one Changes call
	MaxPolicySize       = 1 << 20   // bytes of a policy document
	MaxTrustBundleSize  = 1 << 20   // bytes of a trust bundle
	MaxActorKeysSize    = 1 << 20   // bytes of the actor-token key set
	DefaultJoinTokenTTL = time.Hour // join token lifetime when none is given
	MaxJoinTokenTTL     = 7 * 24 * time.Hour
	MaxJoinTokenUses    = 1000 // joins one token may allow
)

// AnyVersion, as the base of PutPolicy, stores the policy whatever the latest
// version is.
const AnyVersion int64 = -1

// Event is a security event as stored: the fields it is searched by, and the
// whole event as the agent or gateway sent it, so that nothing is lost when
// the event format grows.
type Event struct {
	ID      string    `json:"id"` // unique; a retried batch carries the same ids
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`   // e.g. "sql_injection", "authz_denied"
	Action  string    `json:"action"` // e.g. "blocked", "monitored"
	Service string    `json:"service"`
	Route   string    `json:"route,omitempty"`

	// The external actor behind the request, from the signed actor context.
	ActorIP     string `json:"actor_ip,omitempty"`
	ActorUser   string `json:"actor_user,omitempty"`
	SessionHash string `json:"session_hash,omitempty"`
	TraceID     string `json:"trace_id,omitempty"`
	// ActorVerified is true when the actor fields above are backed: the
	// control plane verified the actor token the posting service received
	// and it names this actor, or the event comes from the edge that
	// mints the tokens. ActorClaimedBy names the service that posted actor
	// fields it could not back. Both are set by the control plane, never
	// taken from the poster; only verified actors may drive automatic
	// decisions (see package control).
	ActorVerified  bool   `json:"actor_verified"`
	ActorClaimedBy string `json:"actor_claimed_by,omitempty"`
	// ActorUserClaimedBy names the service that posted ActorUser when the
	// actor token it posted backs the actor's address and session but
	// carries no user (the user logged in at the service): the actor is
	// verified but for its user, which is that service's claim and, like
	// a claimed actor, may drive no automatic decision. Set by the
	// control plane, never taken from the poster.
	ActorUserClaimedBy string `json:"actor_user_claimed_by,omitempty"`

	// Data is the event as received (a JSON value, typically a
	// rampart.Event), returned unchanged.
	Data json.RawMessage `json:"data,omitempty"`
}

// Cursor returns the position of e in the (Time, ID) order, to continue a
// query after it.
func (e Event) Cursor() Cursor { return Cursor{Time: e.Time, ID: e.ID} }

// EventFilter selects events. Zero fields match everything.
type EventFilter struct {
	Since, Until time.Time // Since <= Time < Until
	Kind         string
	Service      string
	ActorIP      string
	ActorUser    string
	SessionHash  string
	TraceID      string
	// ActorVerified, if true, selects only events whose actor is verified:
	// what a detector that decides automatically must read (its user
	// only if ActorUserClaimedBy is empty).
	ActorVerified bool
	// ActorUserVerified, if true, selects only events whose actor is
	// verified, its user included: what may drive a decision about the
	// user.
	ActorUserVerified bool

	// Kinds and Services, if not empty, select the events of any of them
	// (at most MaxFilterValues each), besides Kind and Service.
	Kinds    []string
	Services []string
	Action   string
	// Attacks selects the events whose Action is not ActionObserved.
	Attacks bool
	// ActorCIDR selects the events whose ActorIP is in that network.
	ActorCIDR string

	// After continues a query: only events strictly after it in the order
	// of the query (before it when Reverse).
	After   *Cursor
	Reverse bool // newest first
	Limit   int  // 0 means DefaultQueryLimit; at most MaxQueryLimit
}

// Scope is what a decision applies to.
type Scope string

// Scopes of a decision.
const (
	ScopeIP      Scope = "ip"      // Value is an IP address
	ScopeCIDR    Scope = "cidr"    // Value is a network, e.g. 203.0.113.0/24
	ScopeUser    Scope = "user"    // Value is a user id from the actor context
	ScopeSession Scope = "session" // Value is a session hash from the actor context
)

// DecisionAction is what enforcers do to requests in a decision's scope.
type DecisionAction string

// Actions of a decision.
const (
	ActionBlock          DecisionAction = "block"           // refuse everything
	ActionBlockSensitive DecisionAction = "block-sensitive" // refuse sensitive routes
	ActionReadOnly       DecisionAction = "read-only"       // allow only GET and HEAD
	ActionRateLimit      DecisionAction = "rate-limit"      // a tighter budget
)

// OriginManual is the origin of decisions made by people (CLI, dashboard,
// API); detectors use their own name.
const OriginManual = "manual"

// Decision is a response to an actor: what enforcers do to requests in its
// scope, until it expires.
type Decision struct {
	ID        string         `json:"id"` // assigned by the store
	Scope     Scope          `json:"scope"`
	Value     string         `json:"value"` // canonical: "10.0.0.0/8", not "10.1.2.3/8"
	Action    DecisionAction `json:"action"`
	RateLimit int            `json:"rate_limit,omitempty"` // rate-limit only: requests per minute; 0 means the enforcer's default
	Reason    string         `json:"reason,omitempty"`
	Origin    string         `json:"origin"`           // OriginManual or a detector's name; "" means OriginManual
	Created   time.Time      `json:"created"`          // set by the store
	Expires   time.Time      `json:"expires,omitzero"` // zero means never
	Revision  int64          `json:"revision"`         // the revision that created it; 0 for a simulated one

	// AlertID and Evidence say why a decision the detection engine made
	// was made (Origin is then the scenario): the alert, and the ids of
	// the events that raised it. Simulated: the scenario runs in simulate
	// mode, so the decision is recorded and shown, never enforced.
	AlertID   string   `json:"alert_id,omitempty"`
	Evidence  []string `json:"evidence,omitempty"`
	Simulated bool     `json:"simulated,omitempty"`
}

// Expired reports whether d has expired at now.
func (d Decision) Expired(now time.Time) bool {
	return !d.Expires.IsZero() && !now.Before(d.Expires)
}

// Policy is one version of the service authorization policy. The store keeps
// the text; parsing and validation are the control plane's.
type Policy struct {
	Version  int64     `json:"version"` // 1, 2, …
	YAML     string    `json:"yaml"`
	Created  time.Time `json:"created"`
	Revision int64     `json:"revision"`
}

// TrustBundle is the document that tells services whom to trust.
type TrustBundle struct {
	Data     []byte    `json:"data"`
	Updated  time.Time `json:"updated"`
	Revision int64     `json:"revision"`
}

// ChangeKind says what a change changed.
type ChangeKind string

// Kinds of change.
const (
	ChangeDecision    ChangeKind = "decision"     // Key is the decision id
	ChangePolicy      ChangeKind = "policy"       // Key is the version number
	ChangeTrustBundle ChangeKind = "trust_bundle" // Key is ""
	ChangeService     ChangeKind = "service"      // Key is the service name (revoked or reinstated)
	ChangeActorKeys   ChangeKind = "actor_keys"   // Key is the new version: a key was published, promoted or retired
	// ChangeReset is no change made but the answer of Changes to a caller
	// behind the changes Prune deleted: reload all state. Op and Key are
	// empty.
	ChangeReset ChangeKind = "reset"
)

// Op says how a change changed it.
type Op string

// Operations of a change.
const (
	OpCreate Op = "create"
	OpUpdate Op = "update"
	OpDelete Op = "delete"
)

// Change is one numbered change, as seen by watchers. A decision that
// expires is no change: watchers hold its Expires; nor is its deletion by
// Prune, after it expired. Revisions have no gaps: every revision up to
// the current one is a change, until Prune deletes the oldest.
type Change struct {
	Revision int64      `json:"revision"`
	Kind     ChangeKind `json:"kind"`
	Op       Op         `json:"op"`
	Key      string     `json:"key"`
	Time     time.Time  `json:"time"`
}

// JoinToken describes a join token; its plaintext is never stored, and
// nothing here is secret.
type JoinToken struct {
	ID       string    `json:"id"` // public: it names the token in lists and revocations
	Service  string    `json:"service"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires"`
	Uses     int       `json:"uses"`      // how many joins it allows
	UsesLeft int       `json:"uses_left"` // how many are left; 0 once used up
	LastUsed time.Time `json:"last_used,omitzero"`
	Used     time.Time `json:"used,omitzero"`    // when its last use was spent; zero while uses are left
	Revoked  time.Time `json:"revoked,omitzero"` // zero unless revoked
}

// Usable reports whether the token can still be used to join at now.
func (t JoinToken) Usable(now time.Time) bool {
	return t.UsesLeft > 0 && t.Revoked.IsZero() && now.Before(t.Expires)
}

// JoinTokenSpec is what CreateJoinToken creates.
type JoinTokenSpec struct {
	Service string
	TTL     time.Duration // 0 means DefaultJoinTokenTTL, at most MaxJoinTokenTTL
	Uses    int           // 0 means 1, at most MaxJoinTokenUses: one per replica that joins with it
}

// JoinTokenFilter selects join tokens.
type JoinTokenFilter struct {
	Service string // "" means every service
	All     bool   // include used-up, expired and revoked tokens (until pruned)
}

// Instance is one running process of a service, as its agent reports it.
type Instance struct {
	Service   string   `json:"service"`
	ID        string   `json:"id"`                   // unique within the service, chosen by the agent
	Version   string   `json:"version,omitempty"`    // the service's build version
	GoVersion string   `json:"go_version,omitempty"` // e.g. "go1.26.0"
	Modules   []Module `json:"modules"`              // dependencies from the build info
	Routes    []string `json:"routes"`               // route patterns seen, e.g. "GET /users/{id}"
	Peers     []string `json:"peers"`                // outbound peers seen (SPIFFE IDs or hosts)
	// Callers are the calls it received from other services, each
	// "CALLER METHOD /pattern": the caller's service name from its SVID,
	// the method, and the route's path pattern.
	Callers   []string `json:"callers"`
	DBDrivers []string `json:"db_drivers"` // e.g. "postgres", "sqlite"
	Exposed   bool     `json:"exposed"`    // traffic reaches it from the edge

	FirstSeen time.Time `json:"first_seen"` // set by the store
	LastSeen  time.Time `json:"last_seen"`  // set by the store at each heartbeat
}

// InstanceQuota bounds the instances of one service (HeartbeatQuota).
type InstanceQuota struct {
	Max       int       // most instances stored per service; 0 or less means no limit
	LiveAfter time.Time // instances last seen before it are gone, and may be replaced
}

// Module is one Go module in a build.
type Module struct {
	Path    string `json:"path"`
	Version string `json:"version"`
}

// InstanceFilter selects instances. Zero fields match everything. Live
// instances are those seen after now minus a staleness threshold
// (SeenAfter); gone ones, those seen before it (SeenBefore).
type InstanceFilter struct {
	Service    string
	Module     string    // instances whose build includes this module path
	SeenAfter  time.Time // LastSeen >= SeenAfter
	SeenBefore time.Time // LastSeen < SeenBefore
}

// ServiceFilter selects services. Zero fields match everything.
type ServiceFilter struct {
	Module  string // services with an instance whose build includes this module path
	Exposed bool   // only services with an instance reached from the edge
}

// Service is the inventory's summary of one service.
type Service struct {
	Name      string    `json:"name"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen,omitzero"` // latest heartbeat of any instance
	Instances int       `json:"instances"`          // known instances, live or gone
	Exposed   bool      `json:"exposed"`            // an instance is reached from the edge
	Revoked   time.Time `json:"revoked,omitzero"`   // zero unless revoked
}
