// Package gateway is Rampart's edge: a reverse proxy that runs the WAF
// (Coraza with the Core Rule Set), authenticates end users, enforces the
// control plane's decisions and rate limits, and sends each request on to its
// upstream service over mTLS with a signed actor token naming the external
// client, so that every service behind it knows who is really calling.
//
// # The client's address
//
// The client is the connection's peer unless the peer is in
// trusted_proxies. Behind trusted proxies, the gateway reads the one header
// they are configured to write (trusted_proxy_header: X-Forwarded-For by
// default, Forwarded, or X-Real-IP) and takes the right-most address that is
// not a trusted proxy; every other forwarding header is the client's text
// and is ignored (and, like all of them, stripped before the request goes
// upstream). If the element the walk reaches holds no usable address
// ("unknown", an obfuscated identifier, garbage, an element beyond 64 hops
// or 8 KiB), the request is refused with 400: the gateway never falls back
// to a trusted proxy's address, which would put every client behind that
// proxy out of reach of IP decisions and into one rate-limit bucket. Every
// trusted proxy must write the configured header; one that does not lets
// its clients choose their address, which no gateway setting can detect.
//
// # Bodies longer than the WAF inspects
//
// The WAF reads at most waf.body_limit bytes of a body (128 KiB by
// default), while the gateway forwards up to limits.max_body_bytes (10 MiB).
// On a route that inspects bodies (inspect_body, true by default), a body
// longer than the WAF reads is refused with 413 and the gateway's JSON error,
// and a body_over_inspection_limit event (action blocked): at once when its
// Content-Length says so, else once the WAF has read body_limit+1 bytes of
// it (a chunked body is counted as it is read; no more than body_limit+1
// bytes are ever buffered), and without running the rules over it. A route
// that must take larger bodies (uploads) opts into partial inspection with
// partial_body_inspection: true: its first body_limit bytes are inspected,
// the rest passes unseen, and every such request has a
// body_over_inspection_limit event (action monitored) saying the body was
// partly inspected; a WAF event about it says so too. In waf.mode detection
// the gateway never refuses, so it inspects partially and reports.
//
// # Path prefixes
//
// Route prefixes and WAF exclusion prefixes match on path-segment
// boundaries: "/products" covers "/products" and "/products/..." but not
// "/productsXYZ" or "/products-old"; a prefix ending in "/" ("/products/",
// "/") covers what is below it. Plain string prefixes let a route's
// settings (auth off, a WAF exclusion) reach paths nobody meant them for.
// Segment boundaries are where net/http sees them; servers that read a path
// differently see others: Java servlet containers drop a segment's ";"
// parameters, IIS reads "\" as "/" and drops a segment's trailing dots,
// and IIS (ASP.NET, Spring, when configured so) ignores case.
// "/api/admin;x/users" is not under the route /api/admin for the gateway,
// but is /api/admin/users to Tomcat; "/API/admin/users" is that to IIS. A
// request whose route such a reading would change is refused with 400, so that no such server behind the
// gateway serves a path from a route whose settings the gateway did not
// apply to it; and a path is a sensitive route (for block-sensitive
// decisions) if it is one either way.
//
// # Refusals from the services
//
// When Rampart in a service refuses a request (a caller the policy does not
// allow, a refused actor token, a decision, a blocked call, not ready yet),
// its answer names the mesh's identities, routes and policy ("spiffe://…/svc/
// gateway may not call POST /users"). The SDK marks every such response with
// the header rampart.RefusalHeader ("Rampart-Refusal: <event kind>"). The
// gateway answers a marked response of status 400 or more with its own body
// instead: the same status, {"error": "request refused by a security
// policy", "request_id": <the gateway's>} (or "service unavailable" for a
// 5xx), and none of the service's headers; the service's answer (its first
// 2 KiB) and the kind go to an upstream_refused event for the request. The
// marker is removed from any response that carries it. Only the marker
// decides: a service's own 401 or 403, in whatever shape, is the
// application's answer to its client and passes unchanged, since guessing
// from the status or a JSON shape would hide legitimate error messages and
// still miss refusals written differently. A service on an SDK without the
// marker has its refusals passed through.
package gateway

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/actor"
	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/internal/controlsync"
	"github.com/rampartsec/rampart/internal/decision"
	"github.com/rampartsec/rampart/internal/gateway/authn"
	"github.com/rampartsec/rampart/internal/gateway/clientip"
	"github.com/rampartsec/rampart/internal/gateway/ratelimit"
	"github.com/rampartsec/rampart/internal/gateway/waf"
	"github.com/rampartsec/rampart/internal/policy"
)

// Event kinds of the gateway.
const (
	KindWAF         = "waf"               // the WAF matched (Action says whether it blocked)
	KindAuthFailed  = "auth_failed"       // a credential was refused
	KindDecision    = "decision_enforced" // a control-plane decision refused the request
	KindRateLimited = "rate_limited"      // a rate limit refused the request
	// KindBodyOverLimit: the body was longer than the WAF inspects; Action
	// says whether it was refused or passed partly inspected.
	KindBodyOverLimit = "body_over_inspection_limit"
	// KindUpstreamRefused: Rampart in the service refused the request; the
	// client got the gateway's neutral answer and the service's is in
	// Detail.
	KindUpstreamRefused = "upstream_refused"
)

// Options are what New needs besides the Config.
type Options struct {
	Config *Config
	// Identity is the gateway's SVID source; its service name must be
	// Config.ControlPlane.Service.
	Identity identity.Source
	// ControlPlaneClient reaches the control plane with the gateway's
	// SVID; nil means Identity's (identity.Join's CASource has one).
	ControlPlaneClient *http.Client
	// Logger receives the access log (one record per request, message
	// "access") and the gateway's own messages; nil discards them.
	Logger *slog.Logger
	// AuthHTTPClient fetches the OIDC issuers' keys; nil means a client
	// with timeouts.
	AuthHTTPClient *http.Client
}

// Gateway is the edge proxy. Handler serves client traffic; AdminHandler
// serves /healthz and /readyz.
type Gateway struct {
	cfg    *Config
	log    *slog.Logger
	src    identity.Source
	td     spiffeid.TrustDomain
	cp     *controlsync.Client
	sync   *controlsync.Syncer
	signer *actor.Signer
	hasKey atomic.Bool

	decisions atomic.Pointer[decision.Set]
	authz     atomic.Pointer[map[string]*policy.Authorizer] // by upstream service
	audience  atomic.Pointer[map[string]actor.Audience]     // of the actor tokens, by upstream service (audience.go)
	revoked   *controlsync.Revocations                      // revoked upstreams are refused, their connections closed

	waf    *waf.Firewall // nil when off
	authn  *authn.Authenticator
	ips    *clientip.Resolver
	routes []*route

	decisionLimitMu sync.Mutex
	decisionLimits  map[int]*ratelimit.Limiter // by requests per minute

	events  chan rampart.Event
	closeMu sync.RWMutex // held to send on events; Close takes it to close events
	closed  bool
	sink    *rampart.ControlSink // ships the events, through its spool
	dropped atomic.Uint64        // events lost before the sink: the queue was full, or the gateway closing

	summaries *summaries // request summaries (summary.go)
	devices   *devices   // device fingerprints (device.go)

	cancel    context.CancelFunc
	done      sync.WaitGroup
	closeOnce sync.Once
}

// New builds a gateway and starts following the control plane. Call Close
// when done.
func New(ctx context.Context, opts Options) (*Gateway, error) {
	cfg := opts.Config
	if cfg == nil || opts.Identity == nil {
		return nil, errors.New("gateway: Options.Config and Options.Identity are required")
	}
	svid, err := opts.Identity.GetX509SVID()
	if err != nil {
		return nil, fmt.Errorf("gateway: identity: %w", err)
	}
	if name, _ := identity.ServiceName(svid.ID); name != cfg.ControlPlane.Service {
		return nil, fmt.Errorf("gateway: identity is %s, not service %q", svid.ID, cfg.ControlPlane.Service)
	}
	hc, err := controlPlaneClient(opts)
	if err != nil {
		return nil, err
	}
	cp, err := controlsync.NewClient(cfg.ControlPlane.URL, hc)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g := &Gateway{cfg: cfg, log: opts.Logger, src: opts.Identity, td: svid.ID.TrustDomain(), cp: cp,
		decisionLimits: map[int]*ratelimit.Limiter{}, events: make(chan rampart.Event, 4096),
		revoked: controlsync.NewRevocations()}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.ips, err = clientip.New(clientip.Config{TrustedProxies: cfg.TrustedProxies, Header: cfg.TrustedProxyHeader}); err != nil {
		return nil, fmt.Errorf("gateway: trusted_proxies: %w", err)
	}
	g.signer, err = actor.NewSigner(actor.SignerConfig{
		Issuer: svid.ID.String(), Audience: g.td.IDString(), Lifetime: time.Duration(cfg.ActorToken.Lifetime),
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if g.devices, err = newDevices(cfg.Device); err != nil {
		return nil, err
	}
	if cfg.Device.KeyFile == "" {
		g.log.Info("rampart gateway: device cookies are signed with a key of this process; devices change when it restarts (set device.key_file to keep them)")
	}
	if g.waf, err = newWAF(cfg); err != nil {
		return nil, err
	}
	if g.authn, err = newAuthenticator(ctx, cfg, opts.AuthHTTPClient, g.log); err != nil {
		return nil, err
	}
	for i := range cfg.Routes {
		rt, err := g.newRoute(&cfg.Routes[i])
		if err != nil {
			g.closeAuth()
			return nil, err
		}
		g.routes = append(g.routes, rt)
	}
	// Longest prefix first; a route with a host before one without.
	slices.SortStableFunc(g.routes, func(a, b *route) int {
		if (a.cfg.Host != "") != (b.cfg.Host != "") {
			if a.cfg.Host != "" {
				return -1
			}
			return 1
		}
		return len(b.cfg.PathPrefix) - len(a.cfg.PathPrefix)
	})
	if g.sink, err = rampart.NewControlSink(rampart.ControlPlaneConfig{URL: cfg.ControlPlane.URL, Client: hc,
		SpoolDir: cfg.Events.spoolDir(cfg.ControlPlane.IdentityDir), SpoolMaxBytes: cfg.Events.SpoolMaxBytes, SpoolMaxAge: time.Duration(cfg.Events.SpoolMaxAge),
		Service: cfg.ControlPlane.Service, Logger: g.log}); err != nil {
		g.closeAuth()
		return nil, err
	}
	g.start()
	return g, nil
}

// controlPlaneClient is the client that reaches the control plane with the
// gateway's SVID: Options.ControlPlaneClient, else the identity source's.
func controlPlaneClient(opts Options) (*http.Client, error) {
	if opts.ControlPlaneClient != nil {
		return opts.ControlPlaneClient, nil
	}
	c, ok := opts.Identity.(interface{ ControlPlaneClient() *http.Client })
	if !ok {
		return nil, errors.New("gateway: Options.ControlPlaneClient is required with this identity source")
	}
	return c.ControlPlaneClient(), nil
}

// newWAF builds the firewall of cfg, with every route's exclusions; nil if
// waf.mode is off.
func newWAF(cfg *Config) (*waf.Firewall, error) {
	if cfg.WAF.Mode == "off" {
		return nil, nil
	}
	wc := waf.Config{ParanoiaLevel: cfg.WAF.ParanoiaLevel, InboundThreshold: cfg.WAF.InboundThreshold,
		DetectionOnly: cfg.WAF.Mode == "detection", BodyLimit: cfg.WAF.BodyLimit}
	for _, r := range cfg.Routes {
		for _, ex := range r.WAFExclusions {
			wc.Exclusions = append(wc.Exclusions, waf.Exclusion{PathPrefix: ex.PathPrefix, RuleIDs: ex.RuleIDs})
		}
	}
	fw, err := waf.New(wc)
	if err != nil {
		return nil, fmt.Errorf("gateway: waf: %w", err)
	}
	return fw, nil
}

// newAuthenticator builds the authenticator of cfg, which fetches the
// issuers' keys with client; nil if auth has no issuers and no API keys.
func newAuthenticator(ctx context.Context, cfg *Config, client *http.Client, log *slog.Logger) (*authn.Authenticator, error) {
	if len(cfg.Auth.Issuers) == 0 && len(cfg.Auth.APIKeys) == 0 {
		return nil, nil
	}
	ac := authn.Config{APIKeyHeader: cfg.Auth.APIKeyHeader, HTTPClient: client, Logger: log}
	for _, is := range cfg.Auth.Issuers {
		ac.Issuers = append(ac.Issuers, authn.IssuerConfig{Issuer: is.Issuer, Audience: is.Audience, JWKSURL: is.JWKSURL,
			Algorithms: is.Algorithms, AllowInsecureHTTP: cfg.Auth.AllowInsecureHTTP})
	}
	for _, k := range cfg.Auth.APIKeys {
		ac.APIKeys = append(ac.APIKeys, authn.APIKey{Name: k.Name, SHA256: k.SHA256})
	}
	a, err := authn.New(ctx, ac)
	if err != nil {
		return nil, fmt.Errorf("gateway: auth: %w", err)
	}
	return a, nil
}

// start follows the control plane, delivers the events and refreshes the
// signing key, until Close.
func (g *Gateway) start() {
	g.sync = controlsync.New(controlsync.Config{Client: g.cp, Logger: g.log, Sources: []controlsync.Source{
		{Name: "actor key", Kinds: []string{"actor_keys"}, Load: g.loadKey},
		{Name: "policy", Kinds: []string{"policy"}, Load: g.loadPolicy},
		{Name: "decisions", Kinds: []string{"decision"}, Load: g.loadDecisions},
		g.revoked.Source(),
	}})
	g.summaries = newSummaries(defaultSummaryWindow, defaultSummaryMaxKeys, defaultSummaryMaxPaths, g.reportWaiting)
	rctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	g.done.Add(3)
	go func() { defer g.done.Done(); g.sync.Run(rctx) }()
	go func() { defer g.done.Done(); g.deliver() }()
	go func() { defer g.done.Done(); g.keyTimer(rctx) }()
}

func (g *Gateway) closeAuth() {
	if g.authn != nil {
		g.authn.Close()
	}
}

// closeDelivery is how long Close tries to deliver the spooled events;
// what is left stays in events.spool_dir for the next start (or, in
// memory, is lost and counted).
const closeDelivery = 5 * time.Second

// Close stops following the control plane and delivers the queued events
// (trying for closeDelivery). Calling it again does nothing.
func (g *Gateway) Close() { g.closeOnce.Do(g.close) }

func (g *Gateway) close() {
	g.cancel()
	g.summaries.close() // reports the last window while events are open
	g.closeMu.Lock()
	g.closed = true
	close(g.events)
	g.closeMu.Unlock()
	g.done.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), closeDelivery)
	g.sink.Close(ctx)
	cancel()
	g.closeAuth()
	for _, r := range g.routes {
		r.transport.CloseIdleConnections()
	}
}

// Ready is closed once the gateway has its signing key, the policy and the
// decisions; until then Handler answers 503.
func (g *Gateway) Ready() <-chan struct{} { return g.sync.Ready() }

func (g *Gateway) ready() bool {
	select {
	case <-g.sync.Ready():
		return g.hasKey.Load()
	default:
		return false
	}
}

// actorKey is the answer of GET /v1/actor-key.
type actorKey struct {
	KeyID     string          `json:"kid"`
	JWK       json.RawMessage `json:"jwk"`
	NotBefore time.Time       `json:"not_before"`
	NotAfter  time.Time       `json:"not_after"`
	Next      *struct {
		KeyID     string          `json:"kid"`
		JWK       json.RawMessage `json:"jwk"`
		NotBefore time.Time       `json:"not_before"`
	} `json:"next"`
}

var errNoKey = errors.New("no signing key in the answer")

func (g *Gateway) loadKey(ctx context.Context, c *controlsync.Client) error {
	var k actorKey
	if err := c.Get(ctx, "/v1/actor-key", &k); err != nil {
		return err
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(k.JWK); err != nil {
		return fmt.Errorf("actor key: %w", err)
	}
	signer, ok := jwk.Key.(crypto.Signer)
	if !ok || jwk.KeyID == "" {
		return errNoKey
	}
	if err := g.signer.SetKey(jwk.KeyID, signer); err != nil {
		return err
	}
	g.hasKey.Store(true)
	return nil
}

// keyTimer fetches the signing key again every minute, so that a scheduled
// switch to the next key (announced by the control plane ahead) is not
// missed even if its change notice is.
func (g *Gateway) keyTimer(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.sync.Refresh("actor_keys")
		}
	}
}

func (g *Gateway) loadPolicy(ctx context.Context, c *controlsync.Client) error {
	doc, err := c.Policy(ctx)
	if err != nil {
		return err
	}
	authz := map[string]*policy.Authorizer{} // no policy: every route's service has none
	for _, r := range g.routes {
		if s := r.cfg.Service; s != "" && doc != nil {
			authz[s] = doc.Compile(s)
		}
	}
	aud := g.audiences(doc)
	g.audience.Store(&aud)
	g.authz.Store(&authz)
	return nil
}

func (g *Gateway) loadDecisions(ctx context.Context, c *controlsync.Client) error {
	set, err := c.Decisions(ctx)
	if err != nil {
		return err
	}
	g.decisions.Store(set)
	return nil
}

// report queues an event for the control plane; a full queue drops it.
func (g *Gateway) report(ev rampart.Event) {
	ev.ID = newID()
	ev.Time = time.Now().UTC()
	ev.Service = g.cfg.ControlPlane.Service
	g.closeMu.RLock()
	defer g.closeMu.RUnlock()
	if g.closed { // the gateway is stopping
		g.dropped.Add(1)
		return
	}
	select {
	case g.events <- ev:
	default:
		g.dropped.Add(1)
	}
}

func (g *Gateway) deliver() {
	batch := make([]rampart.Event, 0, 100)
	for ev := range g.events {
		batch = append(batch[:0], ev)
	fill:
		for len(batch) < cap(batch) {
			select {
			case ev, ok := <-g.events:
				if !ok {
					break fill
				}
				batch = append(batch, ev)
			default:
				break fill
			}
		}
		// The sink spools them (and counts those it cannot take).
		if err := g.sink.WriteEvents(context.Background(), batch); err != nil {
			g.log.Error("rampart gateway: events not delivered", "events", len(batch), "err", err)
		}
	}
}

// DroppedEvents returns how many events will never reach the control
// plane: dropped from a full queue, or by the sink (EventStats).
func (g *Gateway) DroppedEvents() uint64 { return g.dropped.Load() + g.sink.Stats().Undelivered() }

// EventStats returns the counters of the sink that ships the events and
// the state of its spool.
func (g *Gateway) EventStats() rampart.ControlSinkStats { return g.sink.Stats() }

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// strippedHeaders never pass from a client to an upstream: the actor token
// and the identity headers other meshes use, which only the gateway or a
// sidecar may write.
var strippedHeaders = append([]string{
	actor.Header, "X-Forwarded-Client-Cert", "X-Spiffe-Id", "X-Rampart-User", "X-Rampart-Actor", "X-Request-Id",
	"Traceparent", "Tracestate", "Baggage",
}, clientip.ForwardingHeaders()...)

var traceContext = propagation.TraceContext{}

// traceFor continues the client's W3C trace if it sent a valid one, as a
// new span of it, or starts one.
func traceFor(r *http.Request) trace.SpanContext {
	in := trace.SpanContextFromContext(traceContext.Extract(context.Background(), propagation.HeaderCarrier(r.Header)))
	var cfg trace.SpanContextConfig
	if in.IsValid() {
		cfg.TraceID, cfg.TraceFlags, cfg.TraceState = in.TraceID(), in.TraceFlags(), in.TraceState()
	} else {
		rand.Read(cfg.TraceID[:])
	}
	rand.Read(cfg.SpanID[:])
	return trace.NewSpanContext(cfg)
}

// sessionHash is the hash of what identifies the actor's session: the
// bearer token or API key if there is one, else the session cookie.
func (g *Gateway) sessionHash(r *http.Request, p authn.Principal) string {
	if p.CredentialHash != "" {
		return p.CredentialHash
	}
	if name := g.cfg.Auth.SessionCookie; name != "" {
		if c, err := r.Cookie(name); err == nil && c.Value != "" {
			sum := sha256.Sum256([]byte(c.Value))
			return hex.EncodeToString(sum[:])
		}
	}
	return ""
}

func (g *Gateway) decisionLimiter(perMinute int) *ratelimit.Limiter {
	g.decisionLimitMu.Lock()
	defer g.decisionLimitMu.Unlock()
	// The control plane bounds the rate; clamp anyway, so that a value
	// from a newer or misbehaving control plane cannot leave a nil limiter.
	perMinute = min(max(perMinute, 1), 1_000_000)
	l := g.decisionLimits[perMinute]
	if l == nil {
		var err error
		if l, err = ratelimit.New(ratelimit.Config{Rate: float64(perMinute) / 60, Burst: max(1, perMinute/6)}); err != nil {
			panic(fmt.Sprintf("gateway: rate limiter for %d/min: %v", perMinute, err)) // unreachable within the clamp
		}
		g.decisionLimits[perMinute] = l
	}
	return l
}

// subjectKey is the rate-limit key of an actor: the user if known, else
// the IP; an IPv6 client is keyed by its /64, since one host commonly owns a
// whole /64 and could otherwise take a fresh bucket per request.
func subjectKey(ip netip.Addr, user string) string {
	if user != "" {
		return "u:" + user
	}
	return "ip:" + ipKey(ip)
}

func ipKey(ip netip.Addr) string {
	if ip.Is6() && !ip.Is4In6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.Unmap().String()
}

func hostOnly(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}
