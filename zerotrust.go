package rampart

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"go.opentelemetry.io/otel/trace"

	"github.com/rampartsec/rampart/actor"
	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/internal/controlsync"
	"github.com/rampartsec/rampart/internal/decision"
	"github.com/rampartsec/rampart/internal/policy"
)

// zeroTrust is the agent's mesh membership: identity, policy, decisions and
// the actor-token keys, kept current by the control plane's watch.
type zeroTrust struct {
	agent *Agent
	src   identity.Source
	td    spiffeid.TrustDomain
	cp    *controlsync.Client
	sync  *controlsync.Syncer
	log   *slog.Logger

	authz     atomic.Pointer[policy.Authorizer]
	decisions atomic.Pointer[decision.Set]
	verifier  *actor.Verifier
	revoked   *controlsync.Revocations
	cancel    context.CancelFunc
	done      chan struct{}

	refusedHandshakes atomic.Uint64
	instance          string
	seenMu            sync.RWMutex
	routes, peers     map[string]struct{}
	databases         map[string]struct{}
	calls             map[callKey]struct{} // calls received from other services
	changed           chan struct{}        // something new to report: heartbeat soon
	exposed           atomic.Bool

	readOnlyAtQuery bool // Config.ReadOnlyAtQuery
}

func newZeroTrust(a *Agent, cfg Config) (*zeroTrust, error) {
	hc := cfg.ControlPlaneClient
	if hc == nil {
		c, ok := cfg.Identity.(interface{ ControlPlaneClient() *http.Client })
		if !ok {
			return nil, errors.New("rampart: Config.ControlPlaneClient is required with an identity that is not from identity.Join")
		}
		hc = c.ControlPlaneClient()
	}
	cp, err := controlsync.NewClient(cfg.ControlPlane, hc)
	if err != nil {
		return nil, fmt.Errorf("rampart: Config.ControlPlane: %w (required with Config.Identity)", err)
	}
	svid, err := cfg.Identity.GetX509SVID()
	if err != nil {
		return nil, fmt.Errorf("rampart: Config.Identity: %w", err)
	}
	if svid == nil || len(svid.Certificates) == 0 {
		return nil, fmt.Errorf("rampart: Config.Identity (%T) has no SVID", cfg.Identity)
	}
	if name, ok := identity.ServiceName(svid.ID); !ok || name != cfg.Service {
		return nil, fmt.Errorf("rampart: Config.Identity is %s, not service %q", svid.ID, cfg.Service)
	}
	td := svid.ID.TrustDomain()
	z := &zeroTrust{
		agent: a, src: cfg.Identity, td: td, cp: cp, log: a.logger, done: make(chan struct{}),
		instance: newID(), routes: map[string]struct{}{}, peers: map[string]struct{}{},
		databases: map[string]struct{}{}, calls: map[callKey]struct{}{}, changed: make(chan struct{}, 1),
		revoked: controlsync.NewRevocations(), readOnlyAtQuery: cfg.ReadOnlyAtQuery,
	}
	z.verifier, err = actor.NewVerifier(actor.VerifierConfig{
		Audience:     svid.ID.String(), // a token must name this service
		OnUnknownKey: func(string) { z.sync.Refresh("actor_keys") },
	})
	if err != nil {
		return nil, err
	}
	z.sync = controlsync.New(controlsync.Config{Client: cp, Sources: z.sources(), Logger: a.logger})
	ctx, cancel := context.WithCancel(context.Background())
	z.cancel = cancel
	go func() {
		defer close(z.done)
		var wg sync.WaitGroup
		wg.Go(func() { z.heartbeats(ctx) })
		z.sync.Run(ctx)
		wg.Wait()
	}()
	return z, nil
}

// close stops the watch and the heartbeats and waits until both have
// returned.
func (z *zeroTrust) close() {
	z.cancel()
	<-z.done
}

// sources are what the agent keeps current from the control plane.
func (z *zeroTrust) sources() []controlsync.Source {
	return []controlsync.Source{
		{Name: "actor keys", Kinds: []string{"trust_bundle", "actor_keys"}, Load: z.loadKeys},
		{Name: "policy", Kinds: []string{"policy"}, Load: z.loadPolicy},
		{Name: "decisions", Kinds: []string{"decision"}, Load: z.loadDecisions},
		z.revoked.Source(),
	}
}

func (z *zeroTrust) loadKeys(ctx context.Context, c *controlsync.Client) error {
	jwks, err := c.ActorKeys(ctx)
	if err != nil {
		return err
	}
	return z.verifier.SetKeys(jwks)
}

func (z *zeroTrust) loadPolicy(ctx context.Context, c *controlsync.Client) error {
	doc, err := c.Policy(ctx)
	if err != nil {
		return err
	}
	z.authz.Store(doc.Compile(z.agent.service)) // a nil policy compiles to an Authorizer that allows nothing
	return nil
}

func (z *zeroTrust) loadDecisions(ctx context.Context, c *controlsync.Client) error {
	set, err := c.Decisions(ctx)
	if err != nil {
		return err
	}
	z.decisions.Store(set)
	return nil
}

// heartbeats registers the instance and reports, every 30 seconds, its
// build, the routes it served, the services it called and whether edge
// traffic reaches it.
func (z *zeroTrust) heartbeats(ctx context.Context) {
	type module struct {
		Path    string `json:"path"`
		Version string `json:"version"`
	}
	hb := struct {
		Service   string   `json:"service"`
		ID        string   `json:"id"`
		Version   string   `json:"version,omitempty"`
		GoVersion string   `json:"go_version"`
		Modules   []module `json:"modules,omitempty"`
		Routes    []string `json:"routes,omitempty"`
		Peers     []string `json:"peers,omitempty"`
		DBDrivers []string `json:"db_drivers,omitempty"`
		Exposed   bool     `json:"exposed,omitempty"`
		Callers   []string `json:"callers,omitempty"`
	}{Service: z.agent.service, ID: z.instance, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		hb.Version = bi.Main.Version
		for _, m := range bi.Deps {
			if m.Replace != nil {
				m = m.Replace
			}
			hb.Modules = append(hb.Modules, module{Path: m.Path, Version: m.Version})
		}
	}
	for {
		z.seenMu.Lock()
		hb.Routes = sortedKeys(z.routes)
		hb.Peers = sortedKeys(z.peers)
		hb.DBDrivers = sortedKeys(z.databases)
		hb.Callers = hb.Callers[:0]
		for k := range z.calls {
			hb.Callers = append(hb.Callers, k.caller+" "+k.method+" "+k.pattern)
		}
		slices.Sort(hb.Callers)
		z.seenMu.Unlock()
		hb.Exposed = z.exposed.Load()
		if err := z.cp.Do(ctx, http.MethodPost, "/v1/heartbeat", hb, nil); err != nil && ctx.Err() == nil {
			z.log.Debug("rampart: heartbeat failed", "err", err)
		}
		// Every 30 seconds, or a second after something new was seen
		// (a route, a peer, a database), so the inventory is current
		// without a heartbeat per request.
		select {
		case <-ctx.Done():
			return
		case <-time.After(30 * time.Second):
		case <-z.changed:
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// maxSeen bounds the routes, peers and calls an instance reports.
const maxSeen = 1000

// callKey is a call an instance received: which service called which
// route (its method, and its pattern's path).
type callKey struct{ caller, method, pattern string }

// served records the route a request was served on and, for a call from
// another service, the call: the heartbeat reports them (the service
// graph's observed edges, and the traffic a policy dry run replays).
func (z *zeroTrust) served(req *request, r *http.Request) {
	z.see(z.routes, r.Pattern)
	if req.callerName == "" || r.Pattern == "" {
		return
	}
	k := callKey{req.callerName, truncate(r.Method, 16), patternPath(r.Pattern)}
	z.seenMu.RLock()
	_, seen := z.calls[k]
	full := len(z.calls) >= maxSeen
	z.seenMu.RUnlock()
	if seen || full {
		return
	}
	z.seenMu.Lock()
	if _, ok := z.calls[k]; !ok && len(z.calls) < maxSeen {
		z.calls[k] = struct{}{}
		select {
		case z.changed <- struct{}{}:
		default:
		}
	}
	z.seenMu.Unlock()
}

// patternPath is the path of a ServeMux pattern, "[METHOD ][HOST]/PATH",
// at most 512 bytes.
func patternPath(p string) string {
	if _, after, ok := strings.Cut(p, " "); ok {
		p = strings.TrimLeft(after, " \t")
	}
	if i := strings.IndexByte(p, '/'); i > 0 {
		p = p[i:]
	}
	return truncate(p, 512)
}

func (z *zeroTrust) see(m map[string]struct{}, s string) {
	// Every request calls it with a route already seen: share the lock.
	z.seenMu.RLock()
	_, seen := m[s]
	full := len(m) >= maxSeen
	z.seenMu.RUnlock()
	if seen || full {
		return
	}
	z.seenMu.Lock()
	if _, ok := m[s]; !ok && len(m) < maxSeen {
		m[s] = struct{}{}
		select {
		case z.changed <- struct{}{}:
		default:
		}
	}
	z.seenMu.Unlock()
}

// Ready returns nil once the agent has the policy, the decisions and the
// actor-token keys from the control plane, or ctx's error. Until then its
// Handler answers 503 to every request: a service that does not know its
// policy refuses rather than guesses. Without Config.Identity it returns nil.
func (a *Agent) Ready(ctx context.Context) error {
	if a.zt == nil {
		return nil
	}
	select {
	case <-a.zt.sync.Ready():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rampart: waiting for the control plane at %s: %w", a.zt.cp.URL(), ctx.Err())
	}
}

// ServerTLSConfig returns the TLS configuration of the service's listener:
// TLS 1.3, the service's SVID, and a client SVID of the trust domain
// required. A handshake refused for want of a valid client certificate, or
// from a service the control plane revoked, is counted and reported as an
// mtls_refused event. The connections of each client service are tracked:
// when the control plane revokes a service (a change the agent learns from
// its watch at once), they are closed. It returns nil without
// Config.Identity.
func (a *Agent) ServerTLSConfig() *tls.Config {
	if a.zt == nil {
		return nil
	}
	base := identity.ServerTLSConfig(a.zt.src)
	// RequestClientCert rather than RequireAnyClientCert, so that a client
	// with no certificate reaches VerifyPeerCertificate and is counted; the
	// verification refuses it all the same.
	base.ClientAuth = tls.RequestClientCert
	verify := base.VerifyPeerCertificate
	base.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		c := base.Clone()
		c.GetConfigForClient = nil
		remote := ""
		if hello.Conn != nil {
			remote = hello.Conn.RemoteAddr().String()
		}
		c.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
			err := verify(raw, chains)
			if len(raw) == 0 {
				err = errors.New("no client certificate")
			}
			if err != nil {
				a.zt.refusedHandshakes.Add(1)
				a.reportRequestEvent(context.Background(), nil, Event{
					Kind: KindMTLSRefused, Action: ActionBlocked, RemoteAddr: remote, Sink: "tls",
					Reason: "mTLS handshake refused: " + err.Error(),
				})
			}
			return err
		}
		// After the SVID is verified: refuse a revoked service, and
		// track the connection of any other.
		notRevoked := a.zt.revoked.VerifyConnection(hello.Conn, nil)
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			err := notRevoked(cs)
			if err != nil {
				a.zt.refusedHandshakes.Add(1)
				a.reportRequestEvent(context.Background(), nil, Event{
					Kind: KindMTLSRefused, Action: ActionBlocked, RemoteAddr: remote, Sink: "tls",
					Reason: "mTLS handshake refused: " + err.Error(),
				})
			}
			return err
		}
		return c, nil
	}
	return base
}

// RefusedHandshakes returns how many TLS handshakes ServerTLSConfig refused.
func (a *Agent) RefusedHandshakes() uint64 {
	if a.zt == nil {
		return 0
	}
	return a.zt.refusedHandshakes.Load()
}

// Client returns an HTTP client for calls to service, another member of the
// trust domain: it presents this service's SVID, accepts only
// spiffe://<trust domain>/svc/<service>, and forwards the actor token and
// traceparent of each request's context (see Propagate). Give every
// outbound request the incoming request's context.
func (a *Agent) Client(service string) (*http.Client, error) {
	tr, err := a.MeshTransport(service)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: a.Propagate(tr), Timeout: 30 * time.Second}, nil
}

// MeshTransport returns the mTLS transport of Client, for composing with
// other RoundTrippers such as the SSRF guard's:
//
//	tr, _ := agent.MeshTransport("payments")
//	client := &http.Client{Transport: agent.Propagate(guard.Transport(tr))}
func (a *Agent) MeshTransport(service string) (*http.Transport, error) {
	if a.zt == nil {
		return nil, errors.New("rampart: MeshTransport needs Config.Identity")
	}
	id, err := identity.ServiceID(a.zt.td, service)
	if err != nil {
		return nil, fmt.Errorf("rampart: service %q: %w", service, err)
	}
	a.zt.see(a.zt.peers, id.String())
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = identity.ClientTLSConfig(a.zt.src, id)
	// A revoked server is refused at the handshake, and the connections
	// to it are closed when it is revoked.
	tr.DialContext = a.zt.revoked.GuardClient(tr.TLSClientConfig, service, tr.DialContext)
	tr.ForceAttemptHTTP2 = true
	tr.MaxIdleConnsPerHost = 64
	return tr, nil
}

// Propagate wraps rt so that each request carries the actor token and the
// W3C trace context of its context, unchanged; an actor header set by the
// caller is replaced, so that code cannot speak for another actor.
func (a *Agent) Propagate(rt http.RoundTripper) http.RoundTripper {
	return propagator{rt}
}

type propagator struct{ rt http.RoundTripper }

func (p propagator) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	token, hasToken := actor.TokenFromContext(ctx)
	sc := trace.SpanContextFromContext(ctx)
	if !hasToken && !sc.IsValid() && req.Header.Get(actor.Header) == "" {
		return p.rt.RoundTrip(req)
	}
	// A RoundTripper must not modify the request it is given.
	r2 := req.Clone(ctx)
	r2.Header.Del(actor.Header)
	if hasToken {
		r2.Header.Set(actor.Header, token)
	}
	injectTrace(ctx, r2.Header)
	return p.rt.RoundTrip(r2)
}

func (p propagator) CloseIdleConnections() {
	if c, ok := p.rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// admit applies zero trust to an incoming request: the caller's SVID
// against the policy, the actor token, and the decisions. It returns ctx
// with the actor and the trace added, or false after answering the request.
func (z *zeroTrust) admit(ctx context.Context, w http.ResponseWriter, r *http.Request, req *request) (context.Context, bool) {
	select {
	case <-z.sync.Ready():
	default:
		w.Header().Set(RefusalHeader, "not_ready")
		writeRefusal(w, req, http.StatusServiceUnavailable, "service not ready: waiting for its policy from the control plane")
		return nil, false
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		z.refuse(w, r, req, http.StatusUnauthorized, KindMTLSRefused, "", "a client SVID is required (mTLS)")
		return nil, false
	}
	id, err := x509svid.IDFromCert(r.TLS.PeerCertificates[0])
	if err != nil || id.TrustDomain() != z.td {
		z.refuse(w, r, req, http.StatusUnauthorized, KindMTLSRefused, "", "client certificate is not an SVID of this trust domain")
		return nil, false
	}
	req.caller = id.String()
	caller, _ := identity.ServiceName(id)
	req.callerName = caller
	if z.revoked.Revoked(caller) {
		// Its connections are closed as the revocation arrives; a request
		// that raced it is refused all the same.
		z.refuse(w, r, req, http.StatusUnauthorized, KindMTLSRefused, "", "service "+caller+" is revoked")
		return nil, false
	}
	path, ok := policy.CanonicalPath(r.URL)
	authz := z.authz.Load()
	if !ok || caller == "" || !authz.Allow(caller, r.Method, path) {
		// Name the actor in the event if the token is good: a refused
		// call is still an actor's attempt.
		// Only a token already verified counts: a refused call must
		// not cost a signature check.
		if token := r.Header.Get(actor.Header); token != "" {
			if act, ok := z.verifier.Cached(token); ok && act.HeldBy(req.caller) {
				req.actor, req.actorToken = &act, token
			}
		}
		z.refuse(w, r, req, http.StatusForbidden, KindAuthzDenied, "",
			fmt.Sprintf("%s may not call %s %s", id, r.Method, truncate(r.URL.EscapedPath(), 256)))
		return nil, false
	}
	if sc, ok := extractTrace(r.Header); ok {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
		req.traceID = sc.TraceID().String()
	}
	token := r.Header.Get(actor.Header)
	if token == "" && authz.ActorRequired(r.Method, path) {
		z.refuse(w, r, req, http.StatusUnauthorized, KindActorMissing, "",
			fmt.Sprintf("an actor token is required on %s %s", r.Method, truncate(r.URL.EscapedPath(), 256)))
		return nil, false
	}
	if token != "" {
		act, err := z.verifier.Verify(token)
		if err == nil && !act.HeldBy(req.caller) {
			err = fmt.Errorf("%w: %s", actor.ErrHolder, req.caller)
		}
		if err != nil {
			z.refuse(w, r, req, http.StatusUnauthorized, KindActorInvalid, "", "actor token refused: "+err.Error())
			return nil, false
		}
		req.actor, req.actorToken = &act, token
		if !z.exposed.Load() { // a store on every request would bounce the cache line between cores
			z.exposed.Store(true)
		}
		ctx = actor.NewTokenContext(actor.NewContext(ctx, act), token)
		sub := decision.Subject{IP: act.IP, User: act.User, Session: act.Session}
		sensitive := func() bool { return authz.Sensitive(r.Method, path) }
		set, now := z.decisions.Load(), time.Now()
		var d decision.Decision
		var refused bool
		if z.readOnlyAtQuery {
			d, refused = set.Blocking(sub, sensitive, now)
		} else {
			d, refused = set.Refusal(sub, r.Method, sensitive, now)
		}
		if refused {
			z.refuse(w, r, req, http.StatusForbidden, KindDecisionEnforced, d.ID,
				fmt.Sprintf("%s decision %s on %s %s (%s)", d.Action, d.ID, d.Scope, d.Value, d.Reason))
			return nil, false
		}
		// A read-only actor's request that may run (a safe method, or
		// any with ReadOnlyAtQuery) carries its decision, so that the
		// SQL guard refuses the statements that would write: a GET
		// handler may write too.
		if set.Len() > 0 {
			if d, ok := set.ReadOnly(sub, now); ok {
				req.readOnly = d.ID
			}
		}
	}
	return ctx, true
}

// NewReadOnlyContext returns a context in which the guards refuse what
// would write, as they do for a request whose actor is under the read-only
// decision decisionID (see Config.ReadOnlyAtQuery). The Handler marks such
// requests itself; use NewReadOnlyContext where no request carries the
// actor, such as a queue worker acting for one. decisionID names the
// decision in the events ("" is recorded as "local"). It can only take
// rights away: nothing undoes it in a derived context.
func NewReadOnlyContext(ctx context.Context, decisionID string) context.Context {
	if decisionID == "" {
		decisionID = "local"
	}
	parent := inputSetFrom(ctx)
	s := &inputSet{parent: parent, readOnly: decisionID}
	if parent != nil {
		s.req = parent.req
	}
	return context.WithValue(ctx, inputSetKey{}, s)
}

// ReadOnlyFromContext returns the id of the read-only decision under which
// ctx's work runs, and whether there is one: a guard that sees one refuses
// the calls that could write (the SQL guard refuses every statement it
// cannot tell is a read) and reports them as KindReadOnlyWrite events
// naming the decision. It is set by the Handler for a request whose
// verified actor a read-only decision matches, and by NewReadOnlyContext.
// When ctx carries nothing, the request served by the calling goroutine
// counts, as for Inputs.
func ReadOnlyFromContext(ctx context.Context) (decisionID string, ok bool) {
	s := inputSetFrom(ctx)
	var req *request
	if s != nil {
		req = s.req
		for n := s; n != nil; n = n.parent {
			if n.readOnly != "" {
				return n.readOnly, true
			}
		}
	} else {
		req = requestOfGoroutine()
	}
	if req != nil && req.readOnly != "" {
		return req.readOnly, true
	}
	return "", false
}

func (z *zeroTrust) refuse(w http.ResponseWriter, r *http.Request, req *request, status int, kind Kind, decisionID, reason string) {
	z.agent.reportRequestEvent(r.Context(), req, Event{Kind: kind, Action: ActionBlocked, Reason: reason, Sink: "rampart.Handler", Decision: decisionID})
	w.Header().Set(RefusalHeader, string(kind))
	writeRefusal(w, req, status, reason)
}

// writeRefusal answers a refused request with JSON naming the reason and
// the request id.
func writeRefusal(w http.ResponseWriter, req *request, status int, reason string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Request-Id", req.requestID())
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}{reason, req.requestID()})
}

// actorAddr is the actor's IP for an event, "" if unknown.
func actorAddr(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	return ip.String()
}

// NoteDatabase records, for the control plane's inventory, that the service
// uses a database of the given kind ("postgres", "mysql", "sqlite"). The SQL
// guard calls it; other code rarely needs to. Without Config.Identity it
// does nothing.
func (a *Agent) NoteDatabase(kind string) {
	if a.zt == nil || kind == "" {
		return
	}
	a.zt.see(a.zt.databases, truncate(kind, 64))
}
