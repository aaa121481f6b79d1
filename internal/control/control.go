// Package control is the control plane's HTTP API over a store.Store and a
// certificate authority: event ingestion and queries, decisions, policy,
// join tokens and SVID issuance, the trust bundle, the watch long poll and
// the service inventory. It also lays out the data directory of
// 'rampart init' (Init, OpenData), and serves the API over TLS (StartServer,
// TLSConfig) for 'rampart server', the demo and the tests.
//
// Endpoints (A: admin token; S: a service's SVID; G: a gateway's SVID; J: a
// join token):
//
//	POST   /v1/events                 A S  a batch of events, idempotent by event id
//	GET    /v1/events                 A    ?since= &until= &kind=… &service=… &action= &attacks= &actor= &actor_cidr= &trace_id= &limit= &cursor= &order= (ParseEventQuery)
//	POST   /v1/decisions              A    create a decision
//	GET    /v1/decisions[/{id}]       A S  ?expired=true to include expired ones; a service: those it enforces
//	DELETE /v1/decisions/{id}         A
//	PUT    /v1/policy                 A    YAML body (application/yaml), ?base=VERSION
//	GET    /v1/policy                 A S  ?version=N, latest by default; a service: its slice (PolicyView)
//	GET    /v1/watch                  A S  ?since=REVISION: changes as soon as there are any (long poll)
//	POST   /v1/tokens                 A    a join token for a service (uses, ttl), shown once
//	GET    /v1/tokens                 A    ?service= &all=true: the join tokens, never their secrets
//	POST   /v1/tokens/{id}/revoke     A    refuse the token's remaining uses
//	POST   /v1/svid                   J    join: the token and a CSR give an SVID and the bundle
//	POST   /v1/svid/renew             S    a new SVID for the same service, refused once revoked
//	GET    /v1/bundle                      X.509 bundle and actor-token JWKS
//	GET    /v1/actor-key                G  the actor-token signing key (private), gateways only
//	GET    /v1/services               A    ?exposed= &module=
//	POST   /v1/services/{name}/revoke A    (and /reinstate)
//	GET    /v1/revocations            A S  the revoked services, refused at every mTLS handshake
//	POST   /v1/heartbeat              A S  an agent's report of its instance
//	GET    /v1/instances              A    ?service= &module= &state=live|gone
//	GET    /v1/quotas                 A    the quotas, and what each service identity holds
//	GET    /v1/alerts[/{id}]          A    ?scenario= &since= &limit=: what detection raised
//	GET    /v1/decisions/{id}/explain A    the decision, its alert and evidence events
//	GET    /v1/scenarios              A    the detection scenarios in force
//	POST   /v1/scenarios/replay       A    what scenarios would raise over stored events
//	GET    /v1/events/{id}            A    the event, with related events of its trace and actor
//	GET    /v1/stats/overview         A    ?range= &buckets= &top=: the dashboard's overview, counted by the store
//	GET    /v1/actors/timeline        A    ?actor=ip:ADDR|cidr:NET|user:ID|session:HASH &cursor= &limit=
//	GET    /v1/graph                  A    ?range=: services, who may call and was seen calling whom, attacks
//	GET    /v1/services/{name}        A    ?range=: a service's inventory gathered from its instances
//	GET    /v1/policy/versions        A    ?before= &limit=: the policy's versions, newest first
//	GET    /v1/policy/diff            A    ?from= &to=: the unified diff between two versions
//	POST   /v1/policy/dryrun          A    YAML body, ?range=: the recent calls a proposed policy would decide otherwise
//
// Endpoints authenticate their callers three ways: the admin token as a
// bearer token (everything but joining and the signing key); a service's SVID as the TLS client
// certificate (renewal, and what agents and gateways need: posting their
// own events and heartbeats, reading decisions and policy, watching); a join
// token (joining). The trust bundle needs no authentication. The
// actor-token signing key goes only to gateways (the services named in
// Config.GatewayServices), by their SVID. Errors are JSON:
// {"error": "...", "request_id": "..."}, with "code" and "field" where a
// client branches on them.
//
// JSON bodies are read strictly: one value, no unknown field, at most
// MaxJSONDepth levels deep, and no object that names a key twice, at any
// depth, comparing keys without regard to case as encoding/json matches
// them to fields (400, code "duplicate_key", the field its path): otherwise
// {"service":"evil","service":"gateway"} would be read as its last
// "service" by this server and as its first by whatever looked at it
// before. A decision on a network wider than MinIPv4Prefix or
// MinIPv6Prefix, 0.0.0.0/0 and ::/0 included, is refused (code
// "too_broad") unless the request says "force": true.
//
// Service identities are held to Quotas (instances, open watches, request
// rate, requests in flight), answered with 429, Retry-After and an event;
// the admin token is not, so that admins can act while a service
// misbehaves.
//
// Key custody (see package ca): the data directory holds the CA key sealed
// under a key-encryption key that is not in it (InitOptions.CAKEK,
// OpenConfig.CAKEK; 'rampart server -ca-kek-file FILE' or RAMPART_CA_KEK), so
// a copy of the directory gives no CA key. A directory that holds the key in
// the clear (made before sealing, or by Init without a KEK, as tests do) is
// sealed in place the first time a server opens it with a KEK, and until
// then each start warns. The key-encryption key of the actor-token keys
// (KEKFile) is still kept in the directory: those keys are in the store,
// so a copy of the directory alone, without the database, does not give
// them; under SQLite, whose database is in the directory, it does.
//
// The actor-token keys live in the store (see ActorKeys), so every replica
// publishes the same JWKS; rotation publishes a key in the JWKS (a change of
// kind actor_keys on GET /v1/watch) before it signs. New keys are EdDSA by
// default (ca.KeySetConfig): the cheapest signature for every service to
// verify on an actor's first request.
//
// # Trust model of actor tokens and events
//
// Gateways authenticate external clients and mint actor tokens (GET
// /v1/actor-key); services verify them against GET /v1/bundle. A token
// names, in its audience, the services a request can reach from the
// gateway's upstream by the policy, and a service accepts it only from the
// gateway or a service the token names (package actor).
//
// Events (POST /v1/events) that name an actor are stored with
// actor_verified true only when the actor is backed: posted by a gateway or
// the admin, or carrying the actor token the posting service received,
// which the control plane verifies (signature by a published key; audience
// naming the poster; valid when the event happened, the event at most
// MaxEventDelay old; the same IP, user and session as the event) and never
// stores. Otherwise the event is stored with actor_verified false and
// actor_claimed_by naming the poster. The check is field by field for the
// user: a token that carries no user (the user logged in at the service,
// which named it with SetUser) backs the IP and session, and the event is
// stored with actor_verified true and actor_user_claimed_by naming the
// poster; a token that carries another user than the event's backs
// nothing. The rule for detectors and every other automation on the event
// stream: only verified actor fields may drive a decision against that
// actor (store.EventFilter.ActorVerified, GET /v1/events?actor_verified=true
// for the IP and session; ActorUserVerified, ?actor_user_verified=true,
// for the user too); a claimed actor or user is evidence about the
// service that claimed it.
//
// Revocation (POST /v1/services/{name}/revoke) is a change of kind service
// on the watch; agents and gateways then read GET /v1/revocations and
// refuse the revoked service's SVIDs at every mTLS handshake and close its
// connections.
//
// # Detection
//
// A Server with ServerConfig.Detect runs a Detector: package detect's
// scenarios over the stored events, one replica at a time, from a cursor
// kept in the store, so that replicas decide what one would (see
// Detector). Its decisions name their origin (the scenario), their alert
// and their evidence events (GET /v1/decisions/{id}/explain); those of a
// scenario in simulate mode are stored with simulated true, shown to the
// admin, and never given to a service or gateway.
package control

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/store"
)

// Defaults of a Config.
const (
	DefaultMaxBodyBytes = 1 << 20          // request body limit when Config.MaxBodyBytes is 0
	DefaultWatchTimeout = 25 * time.Second // long poll duration when Config.WatchTimeout is 0
	MaxWatchTimeout     = time.Minute      // longest ?timeout= a watcher may ask for
	DefaultStaleAfter   = 2 * time.Minute  // Config.StaleAfter when 0
)

// Config configures a Handler.
type Config struct {
	Store store.Store // required
	CA    *ca.CA      // required
	// ActorKeys, if set, are the actor-token keys kept in the store: GET
	// /v1/bundle publishes their JWKS and GET /v1/actor-key gives gateways
	// the current key, both as the store has them at the time of the
	// request.
	ActorKeys *ActorKeys
	// KeySet, if set instead of ActorKeys, is a key set held in memory
	// (one process, no rotation schedule), served the same way.
	KeySet *ca.KeySet
	// GatewayServices names the services whose SVIDs may read the
	// actor-token signing key (GET /v1/actor-key); empty means
	// DefaultGatewayService ("gateway").
	GatewayServices []string
	// AdminTokenHash is the SHA-256 of the admin token (see NewAdminToken);
	// required.
	AdminTokenHash []byte
	// SVIDTTL is the lifetime of issued SVIDs; 0 means ca.DefaultSVIDTTL.
	SVIDTTL time.Duration
	// MaxBodyBytes limits request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// WatchTimeout is how long GET /v1/watch waits for a change before it
	// returns an empty list; 0 means DefaultWatchTimeout.
	WatchTimeout time.Duration
	// StaleAfter is how long after its last heartbeat an instance counts
	// as gone; 0 means DefaultStaleAfter.
	StaleAfter time.Duration
	// Quotas bound what one service identity may cost the control plane;
	// the zero value is the defaults (see Quotas).
	Quotas Quotas
	// Detector, if set, is the detection this control plane runs: GET
	// /v1/scenarios shows its scenarios and counters, and replays use its
	// scenarios and allowlist. Without it those use the built-ins.
	Detector *Detector
	// Logger receives one record per failed request; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Handler serves the control-plane API. It is safe for concurrent use.
type Handler struct {
	cfg Config
	mux *http.ServeMux
	log *slog.Logger

	gateways []string     // Config.GatewayServices, or the default
	limits   *limiter     // Config.Quotas, per service identity
	watchers changesGroup // one store query per revision for the watches waiting on it

	stopping   chan struct{} // closed by EndWatches
	endWatches sync.Once
}

// EndWatches makes the watches in progress, and any that start later,
// return at once with what they have (usually no changes), so that a
// server shutting down (http.Server.RegisterOnShutdown) is not held by long
// polls; watchers then poll again, at another replica.
func (h *Handler) EndWatches() { h.endWatches.Do(func() { close(h.stopping) }) }

// New returns the API handler for cfg.
func New(cfg Config) (*Handler, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("control: Config.Store is nil")
	case cfg.CA == nil:
		return nil, errors.New("control: Config.CA is nil")
	case len(cfg.AdminTokenHash) != sha256.Size:
		return nil, errors.New("control: Config.AdminTokenHash is not a SHA-256 hash")
	case cfg.SVIDTTL < 0:
		return nil, errors.New("control: Config.SVIDTTL is negative")
	case cfg.MaxBodyBytes < 0:
		return nil, errors.New("control: Config.MaxBodyBytes is negative")
	case cfg.WatchTimeout < 0:
		return nil, errors.New("control: Config.WatchTimeout is negative")
	case cfg.ActorKeys != nil && cfg.KeySet != nil:
		return nil, errors.New("control: Config.ActorKeys and Config.KeySet are both set; choose one")
	}
	gateways := slices.Clone(cfg.GatewayServices)
	if len(gateways) == 0 {
		gateways = []string{DefaultGatewayService}
	}
	for i, name := range gateways {
		if err := ca.ValidateServiceName(name); err != nil {
			return nil, fmt.Errorf("control: Config.GatewayServices[%d]: %w", i, err)
		}
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.WatchTimeout == 0 {
		cfg.WatchTimeout = DefaultWatchTimeout
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Quotas = cfg.Quotas.withDefaults()
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger, gateways: gateways, stopping: make(chan struct{}),
		limits: newLimiter(cfg.Quotas, cfg.Now)}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	admin := h.admin
	h.mux.Handle("POST /v1/events", h.agent(h.postEvents))
	h.mux.Handle("GET /v1/events", admin(h.getEvents))
	h.mux.Handle("POST /v1/decisions", admin(h.postDecision))
	h.mux.Handle("GET /v1/decisions", h.agent(h.getDecisions))
	h.mux.Handle("GET /v1/decisions/{id}", h.agent(h.getDecision))
	h.mux.Handle("DELETE /v1/decisions/{id}", admin(h.deleteDecision))
	h.mux.Handle("POST /v1/tokens", admin(h.postToken))
	h.mux.Handle("GET /v1/tokens", admin(h.getTokens))
	h.mux.Handle("POST /v1/tokens/{id}/revoke", admin(h.revokeToken))
	h.mux.Handle("PUT /v1/policy", admin(h.putPolicy))
	h.mux.Handle("GET /v1/policy", h.agent(h.getPolicy))
	h.mux.Handle("GET /v1/watch", h.agent(anyCaller(h.watch)))
	h.mux.Handle("GET /v1/services", admin(h.getServices))
	h.mux.Handle("POST /v1/heartbeat", h.agent(h.postHeartbeat))
	h.mux.Handle("GET /v1/instances", admin(h.getInstances))
	h.mux.Handle("GET /v1/quotas", admin(h.getQuotas))
	h.mux.Handle("POST /v1/services/{name}/revoke", admin(h.revokeService(true)))
	h.mux.Handle("POST /v1/services/{name}/reinstate", admin(h.revokeService(false)))
	h.mux.Handle("GET /v1/revocations", h.agent(anyCaller(h.getRevocations)))
	h.mux.Handle("POST /v1/svid", h.handle(h.postSVID))
	h.mux.Handle("POST /v1/svid/renew", h.handle(h.renewSVID))
	h.mux.Handle("GET /v1/bundle", h.handle(h.getBundle))
	h.mux.Handle("GET /v1/actor-key", h.handle(h.getActorKey))
	h.mux.Handle("GET /v1/alerts", admin(h.getAlerts))
	h.mux.Handle("GET /v1/alerts/{id}", admin(h.getAlert))
	h.mux.Handle("GET /v1/decisions/{id}/explain", admin(h.explainDecision))
	h.mux.Handle("GET /v1/scenarios", admin(h.getScenarios))
	h.mux.Handle("POST /v1/scenarios/replay", admin(h.replay))
	h.routeDashboard(admin)
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	handler, pattern := h.mux.Handler(r)
	if pattern != "" {
		h.mux.ServeHTTP(w, r) // which sets the path values
		return
	}
	// No endpoint: learn from the mux whether it is 404 or 405 (and what
	// Allow says), and answer in JSON like every other error.
	rec := &statusRecorder{header: http.Header{}}
	handler.ServeHTTP(rec, r)
	if rec.status >= 300 && rec.status < 400 { // the mux's redirect to a clean path
		handler.ServeHTTP(w, r)
		return
	}
	h.handle(func(w http.ResponseWriter, r *http.Request) error {
		if rec.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", rec.header.Get("Allow"))
			return &apiError{status: rec.status, code: "method_not_allowed",
				msg: r.Method + " not allowed on " + r.URL.Path + "; allowed: " + rec.header.Get("Allow")}
		}
		return &apiError{status: http.StatusNotFound, code: "not_found", msg: "no such endpoint: " + r.Method + " " + r.URL.Path}
	}).ServeHTTP(w, r)
}

// statusRecorder keeps the status and headers a handler writes.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header { return s.header }
func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return len(b), nil
}
func (s *statusRecorder) WriteHeader(code int) { s.status = code }

// handle adapts a handler that returns an error: the error becomes the JSON
// response, logged once.
func (h *Handler) handle(fn func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := newRequestID()
		w.Header().Set("X-Request-Id", id)
		if err := fn(w, r); err != nil {
			h.writeError(w, r, id, err)
		}
	})
}

// admin is handle for endpoints that require the admin token.
func (h *Handler) admin(fn func(http.ResponseWriter, *http.Request) error) http.Handler {
	return h.handle(func(w http.ResponseWriter, r *http.Request) error {
		if !h.isAdmin(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rampart"`)
			return &apiError{status: http.StatusUnauthorized, code: "unauthorized", msg: "missing or wrong admin token (Authorization: Bearer <token>)"}
		}
		return fn(w, r)
	})
}

func (h *Handler) isAdmin(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(sum[:], h.cfg.AdminTokenHash) == 1
}
