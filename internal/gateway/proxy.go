package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/actor"
	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/internal/decision"
	"github.com/rampartsec/rampart/internal/gateway/authn"
	"github.com/rampartsec/rampart/internal/gateway/clientip"
	"github.com/rampartsec/rampart/internal/gateway/ratelimit"
	"github.com/rampartsec/rampart/internal/gateway/waf"
	"github.com/rampartsec/rampart/internal/policy"
)

// route is a configured route, ready to serve.
type route struct {
	cfg       *Route
	proxy     *httputil.ReverseProxy
	transport *http.Transport
	limiter   *ratelimit.Limiter // nil without rate_limit
	inspect   bool               // the WAF reads the body
	partial   bool               // a body over the WAF's limit passes with its head inspected
	bodyMode  waf.Body           // how the WAF reads a body when it does: whole, or its head
}

// exchange is what the gateway knows of a request in flight, for the
// rewrite, the log and the events.
type exchange struct {
	id       string
	trace    trace.SpanContext
	clientIP netip.Addr
	user     string
	session  string
	device   string
	token    string
	route    *route
	score    int
	in       *http.Request // the client's request, once it is proxied
}

type exchangeKey struct{}

func (g *Gateway) newRoute(cfg *Route) (*route, error) {
	tr := &http.Transport{
		Proxy:                 nil, // upstreams are reached directly, never through an environment proxy
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: time.Duration(g.cfg.Limits.UpstreamTimeout),
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}
	if cfg.Service != "" {
		id, err := identity.ServiceID(g.td, cfg.Service)
		if err != nil {
			return nil, fmt.Errorf("gateway: route %s: %w", cfg.Name, err)
		}
		tr.TLSClientConfig = identity.ClientTLSConfig(g.src, id)
		tr.DialContext = g.revoked.GuardClient(tr.TLSClientConfig, cfg.Service, tr.DialContext)
	}
	rt := &route{cfg: cfg, transport: tr, inspect: cfg.InspectBody == nil || *cfg.InspectBody, partial: cfg.PartialBodyInspection}
	rt.bodyMode = waf.WholeBody
	if rt.partial || g.cfg.WAF.Mode == "detection" {
		rt.bodyMode = waf.BodyPrefix
	}
	if rl := cfg.RateLimit; rl != nil {
		l, err := ratelimit.New(ratelimit.Config{Rate: rl.Rate, Burst: rl.Burst})
		if err != nil {
			return nil, fmt.Errorf("gateway: route %s: rate_limit: %w", cfg.Name, err)
		}
		rt.limiter = l
	}
	target := cfg.upstream
	// The headers no client may send upstream, canonical.
	drop := map[string]bool{}
	for _, name := range strippedHeaders {
		drop[textproto.CanonicalMIMEHeaderKey(name)] = true
	}
	if !cfg.ForwardCredentials {
		drop["Authorization"], drop["Cookie"] = true, true
		if g.cfg.Auth.APIKeyHeader != "" {
			drop[textproto.CanonicalMIMEHeaderKey(g.cfg.Auth.APIKeyHeader)] = true
		} else if len(g.cfg.Auth.APIKeys) > 0 {
			drop["X-Api-Key"] = true
		}
	}
	rt.proxy = &httputil.ReverseProxy{
		Transport:  tr,
		BufferPool: copyBuffers,
		Rewrite: func(pr *httputil.ProxyRequest) {
			x := pr.In.Context().Value(exchangeKey{}).(*exchange)
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // the upstream sees the name the client asked for
			h := pr.Out.Header
			// One pass over the client's headers, which net/http has put
			// in canonical form: cheaper than a Del, which canonicalizes,
			// per name. A name with "_" is dropped too if it would be one of
			// drop with "-": servers that map headers to variables
			// (CGI, WSGI, PHP: HTTP_RAMPART_ACTOR) take one for the other.
			for name := range h {
				if drop[name] || strings.IndexByte(name, '_') >= 0 && drop[textproto.CanonicalMIMEHeaderKey(strings.ReplaceAll(name, "_", "-"))] {
					delete(h, name)
				}
			}
			// Canonical names, set without canonicalizing them again.
			h["X-Forwarded-For"] = []string{x.clientIP.String()}
			h["X-Forwarded-Host"] = []string{pr.In.Host}
			proto := "http"
			if pr.In.TLS != nil {
				proto = "https"
			}
			h["X-Forwarded-Proto"] = []string{proto}
			h["X-Request-Id"] = []string{x.id}
			if x.token != "" {
				h[actor.Header] = []string{x.token}
			}
			traceContext.Inject(trace.ContextWithSpanContext(context.Background(), x.trace), propagation.HeaderCarrier(h))
		},
		ModifyResponse: func(resp *http.Response) error {
			if _, marked := resp.Header[rampart.RefusalHeader]; marked {
				if resp.StatusCode < 400 { // not a refusal: only the marker goes
					delete(resp.Header, rampart.RefusalHeader)
					return nil
				}
				g.upstreamRefused(resp, resp.Request.Context().Value(exchangeKey{}).(*exchange))
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			x := r.Context().Value(exchangeKey{}).(*exchange)
			var mbe *http.MaxBytesError
			switch {
			case errors.As(err, &mbe):
				g.refuse(w, x, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", mbe.Limit))
			case errors.Is(err, context.Canceled):
				w.WriteHeader(499) // the client left; nobody reads this
			default:
				g.log.Warn("rampart gateway: upstream failed", "route", cfg.Name, "request_id", x.id, "err", err)
				status := http.StatusBadGateway
				if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
					status = http.StatusGatewayTimeout
				}
				g.refuse(w, x, status, "upstream "+cfg.Name+" unavailable")
			}
		},
		ErrorLog: slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	return rt, nil
}

// copyBuffers are the buffers the reverse proxies copy response bodies
// with, shared by the routes: without a pool, each response allocates
// 32 KB, a large part of the proxy's garbage.
var copyBuffers = &bufferPool{}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 32<<10)
}

func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (g *Gateway) match(r *http.Request) *route {
	return g.matchPath(hostOnly(r.Host), r.URL.Path)
}

func (g *Gateway) matchPath(host, path string) *route {
	for _, rt := range g.routes {
		if rt.cfg.Host != "" && !strings.EqualFold(rt.cfg.Host, host) {
			continue
		}
		if underPrefix(path, rt.cfg.PathPrefix) {
			return rt
		}
	}
	return nil
}

// underPrefix reports whether path is under prefix on path-segment
// boundaries, as routes and WAF exclusions match: "/products" covers
// "/products" and "/products/1" but not "/productsXYZ"; a prefix ending in
// "/" ("/products/", "/") covers what is below it.
func underPrefix(path, prefix string) bool {
	return strings.HasPrefix(path, prefix) &&
		(len(path) == len(prefix) || strings.HasSuffix(prefix, "/") || path[len(prefix)] == '/')
}

// underPrefixFold is underPrefix without regard to case, as IIS, and
// ASP.NET or Spring when configured so, match paths.
func underPrefixFold(path, prefix string) bool {
	return len(path) >= len(prefix) && strings.EqualFold(path[:len(prefix)], prefix) &&
		(len(path) == len(prefix) || strings.HasSuffix(prefix, "/") || path[len(prefix)] == '/')
}

// matchFold is matchPath with prefixes compared without regard to case.
func (g *Gateway) matchFold(host, path string) *route {
	for _, rt := range g.routes {
		if rt.cfg.Host != "" && !strings.EqualFold(rt.cfg.Host, host) {
			continue
		}
		if underPrefixFold(path, rt.cfg.PathPrefix) {
			return rt
		}
	}
	return nil
}

// readAlike returns path as the servers that read paths differently from
// net/http route it: Java servlet containers (Tomcat, Jetty, Spring on
// them) drop the ";" parameters of each segment, IIS and other Windows
// servers read "\" as "/" and drop a segment's trailing dots, and both
// then collapse the empty segments that leaves. Routes match on segment
// boundaries, so such a server may serve a path from another route than the
// gateway chose ("/api/admin;x/users" is /api/admin/users to Tomcat): the
// gateway refuses a path whose route this reading changes. It returns path
// itself when there is nothing to read differently, which is the common
// case and costs no allocation.
func readAlike(path string) string {
	if !strings.ContainsAny(path, ";\\") && !strings.Contains(path, "./") && !strings.HasSuffix(path, ".") {
		return path
	}
	segs := strings.Split(strings.ReplaceAll(path, "\\", "/"), "/")
	out := segs[:0]
	for i, seg := range segs {
		if k := strings.IndexByte(seg, ';'); k >= 0 {
			seg = seg[:k]
		}
		if seg != "." && seg != ".." {
			seg = strings.TrimRight(seg, ".")
		}
		if seg == "" && i > 0 && i < len(segs)-1 {
			continue // an empty segment, collapsed; the first and a trailing one stay
		}
		out = append(out, seg)
	}
	return strings.Join(out, "/")
}

// routable reports whether the gateway may choose a route, its auth and
// rate limit by the path of u: whether an upstream can only read the path
// as the gateway does. It refuses what policy.CanonicalPath refuses (the
// services behind the gateway refuse it too): "//", "." and ".." segments
// plain or encoded ("/public/../admin", "/public/%2e%2e/admin"), which an
// upstream that resolves them would serve from another route, and an
// encoded slash. It also refuses "." and ".." segments ended by a
// backslash, which some servers take for a slash, or by a ";" parameter,
// which some Java servers strip ("/public/..;/admin"). Clients resolve dot
// segments before sending; only tools and attacks send them.
func routable(u *url.URL) bool {
	if _, ok := policy.CanonicalPath(u); !ok {
		return false
	}
	p := u.Path
	if !strings.Contains(p, ".") {
		return true
	}
	for i := 0; i < len(p); {
		if p[i] != '/' && p[i] != '\\' {
			i++
			continue
		}
		j := i + 1
		for j < len(p) && p[j] != '/' && p[j] != '\\' {
			j++
		}
		seg := p[i+1 : j]
		if k := strings.IndexByte(seg, ';'); k >= 0 {
			seg = seg[:k]
		}
		if seg == "." || seg == ".." {
			return false
		}
		i = j
	}
	return true
}

// Handler returns the handler of client traffic.
func (g *Gateway) Handler() http.Handler { return http.HandlerFunc(g.serve) }

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	x := &exchange{id: newID(), trace: traceFor(r)}
	sw := &statusWriter{ResponseWriter: w, writeTimeout: time.Duration(g.cfg.Limits.WriteTimeout)}
	defer func() { g.accessLog(r, x, sw, start); g.summaries.summarize(x, r, sw.status) }()

	// Each step answers a request it refuses, and says so.
	rt, alt := g.routeFor(sw, r, x)
	if rt == nil {
		return
	}
	x.device = g.devices.identify(sw.Header(), r, x.clientIP)
	limit := g.cfg.Limits.MaxBodyBytes
	if r.ContentLength > limit {
		g.refuse(sw, x, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", limit))
		return
	}
	// w, not sw: net/http then closes the connection after the 413
	// instead of reading on what the client still sends.
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if g.authenticate(sw, r, x) || g.enforceDecisions(sw, r, x, alt) || g.enforceRouteLimit(sw, r, x) ||
		g.waf != nil && g.inspect(sw, r, x) {
		return
	}

	// The actor token the services will trust.
	var err error
	a := actor.Actor{IP: x.clientIP, User: x.user, Session: x.session, Device: x.device}
	if rt.cfg.Login {
		a.User, a.Session = "", "" // see Route.Login
	}
	x.token, err = g.actorToken(rt, a)
	if err != nil {
		g.log.Error("rampart gateway: cannot mint the actor token", "err", err)
		g.refuse(sw, x, http.StatusServiceUnavailable, "gateway cannot vouch for the request")
		return
	}
	x.in = r
	rt.proxy.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x)))
}

// routeFor finds the client's address and the request's route, and
// returns the route with the path as servers that read paths differently
// see it (readAlike). It refuses the request, and returns a nil route, if
// either cannot be trusted, or the gateway is not ready.
func (g *Gateway) routeFor(sw *statusWriter, r *http.Request, x *exchange) (rt *route, alt string) {
	ip, err := g.ips.ClientIP(r)
	if errors.Is(err, clientip.ErrUnusableHeader) {
		// A trusted proxy sent no usable address: refuse rather than take
		// the proxy for the client (see the package documentation).
		g.refuse(sw, x, http.StatusBadRequest, "no usable client address in "+g.ips.Header()+" from a trusted proxy")
		return nil, ""
	}
	if err != nil {
		g.refuse(sw, x, http.StatusBadRequest, "no client address")
		return nil, ""
	}
	x.clientIP = ip
	if !g.ready() {
		g.refuse(sw, x, http.StatusServiceUnavailable, "gateway not ready: waiting for the control plane")
		return nil, ""
	}
	if !routable(r.URL) {
		g.refuse(sw, x, http.StatusBadRequest, `path not canonical: "//", a "." or ".." segment, or an encoded slash`)
		return nil, ""
	}
	rt = g.match(r)
	alt = readAlike(r.URL.Path)
	if g.matchFold(hostOnly(r.Host), alt) != rt {
		g.refuse(sw, x, http.StatusBadRequest, `path routed differently by servers that ignore case, drop ";" parameters, read "\" as "/" or drop trailing dots`)
		return nil, ""
	}
	if rt == nil {
		g.refuse(sw, x, http.StatusNotFound, "no route")
		return nil, ""
	}
	x.route = rt
	return rt, alt
}

// authenticate finds the user behind the request, if its route asks, and
// returns true if it refused the request.
func (g *Gateway) authenticate(sw *statusWriter, r *http.Request, x *exchange) (refused bool) {
	var p authn.Principal
	if mode := x.route.cfg.authMode; g.authn != nil && mode != authn.Off {
		var err error
		p, err = g.authn.Authenticate(r, mode)
		if err != nil {
			g.event(x, r, rampart.Event{Kind: KindAuthFailed, Action: rampart.ActionBlocked, Reason: err.Error()})
			sw.Header().Set("WWW-Authenticate", `Bearer realm="rampart"`)
			g.refuse(sw, x, http.StatusUnauthorized, "authentication required or refused")
			return true
		}
	}
	x.user, x.session = p.Subject, g.sessionHash(r, p)
	return false
}

// enforceDecisions applies the control plane's decisions about the actor
// (alt is the path as routeFor returned it), and returns true if one
// refused the request.
func (g *Gateway) enforceDecisions(sw *statusWriter, r *http.Request, x *exchange, alt string) (refused bool) {
	sub := decision.Subject{IP: x.clientIP, User: x.user, Session: x.session, Device: x.device}
	now := time.Now()
	set := g.decisions.Load()
	sensitive := func() bool { return g.sensitive(x.route, r, alt) }
	var d decision.Decision
	var refuse bool
	if x.route.cfg.Login {
		d, refuse = set.Blocking(sub, sensitive, now) // read-only does not keep a user from signing in again
	} else {
		d, refuse = set.Refusal(sub, r.Method, sensitive, now)
	}
	if refuse {
		g.event(x, r, rampart.Event{Kind: KindDecision, Action: rampart.ActionBlocked, Decision: d.ID,
			Reason: fmt.Sprintf("%s decision %s on %s %s (%s)", d.Action, d.ID, d.Scope, d.Value, d.Reason)})
		g.refuse(sw, x, http.StatusForbidden, "request refused by a security decision")
		return true
	}
	if d, limited := set.RateLimit(sub, g.cfg.RateLimitRate, now); limited {
		if ok, retry := g.decisionLimiter(d.RateLimit).Allow(d.ID + "|" + subjectKey(x.clientIP, x.user)); !ok {
			g.rateLimited(sw, r, x, retry, "rate-limit decision "+d.ID)
			return true
		}
	}
	return false
}

// sensitive reports whether the policy of rt's service marks the request's
// path sensitive: as net/http reads the path, or as a servlet container or
// IIS does (alt, see readAlike, and IIS ignores case), which is how the
// service may.
func (g *Gateway) sensitive(rt *route, r *http.Request, alt string) bool {
	m := g.authz.Load()
	if m == nil || rt.cfg.Service == "" {
		return false
	}
	a := (*m)[rt.cfg.Service]
	if a.Sensitive(r.Method, r.URL.Path) || alt != r.URL.Path && a.Sensitive(r.Method, alt) {
		return true
	}
	lower := strings.ToLower(alt)
	return lower != alt && a.Sensitive(r.Method, lower)
}

// enforceRouteLimit applies the route's rate limit, and returns true if it
// refused the request.
func (g *Gateway) enforceRouteLimit(sw *statusWriter, r *http.Request, x *exchange) (refused bool) {
	rt := x.route
	if rt.limiter == nil {
		return false
	}
	key := rt.cfg.Name + "|" + ipKey(x.clientIP)
	if rt.cfg.RateLimit.Per == "user" {
		key = rt.cfg.Name + "|" + subjectKey(x.clientIP, x.user)
	}
	if ok, retry := rt.limiter.Allow(key); !ok {
		g.rateLimited(sw, r, x, retry, "route "+rt.cfg.Name+" rate limit")
		return true
	}
	return false
}

// inspect runs the WAF over the request and reports what it matched, and
// returns true if it refused the request.
func (g *Gateway) inspect(sw *statusWriter, r *http.Request, x *exchange) (refused bool) {
	// A body longer than the WAF reads is refused, unless the route
	// allows partial inspection or the WAF only detects: before anything
	// is read if its length says so, else once the WAF has read one byte
	// more than it inspects.
	body := waf.HeadersOnly
	if x.route.inspect {
		body = x.route.bodyMode
	}
	if body == waf.WholeBody && r.ContentLength > g.waf.BodyLimit() {
		g.overInspectionLimit(sw, r, x)
		return true
	}
	v, err := g.waf.Inspect(r, x.clientIP.String(), body)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		g.refuse(sw, x, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", mbe.Limit))
		return true
	}
	if err != nil {
		g.log.Warn("rampart gateway: WAF error", "request_id", x.id, "err", err)
		g.refuse(sw, x, http.StatusBadRequest, "request could not be inspected")
		return true
	}
	x.score = v.Score
	return g.applyVerdict(sw, r, x, v)
}

// applyVerdict reports what the WAF matched or could not inspect, and
// returns true if it refused the request.
func (g *Gateway) applyVerdict(sw *statusWriter, r *http.Request, x *exchange, v waf.Verdict) (refused bool) {
	if len(v.Matches) > 0 && (v.WouldBlock || v.Blocked) {
		action := rampart.ActionMonitored
		if v.Blocked {
			action = rampart.ActionBlocked
		}
		ev := wafEvent(v, action)
		if v.BodyOverLimit {
			ev.Reason += fmt.Sprintf("; body partly inspected: its first %d bytes only", g.waf.BodyLimit())
		}
		g.event(x, r, ev)
	} else if v.BodyOverLimit && g.overInspectionLimit(sw, r, x) {
		return true
	}
	if v.Blocked {
		status := v.Status
		if status < 400 {
			status = http.StatusForbidden
		}
		g.refuse(sw, x, status, "request blocked by the web application firewall")
		return true
	}
	return false
}

// maxRefusalDetail bounds what the gateway reads of an upstream's refusal
// for its event; the rest is discarded with the connection's next use.
const maxRefusalDetail = 2 << 10

// upstreamRefused replaces a response that Rampart in the service wrote to
// refuse the request (it carries rampart.RefusalHeader) with the gateway's
// own, of the same status: its body names the service's identity, the
// route and the policy that refused, which external clients must not learn.
// The detail goes to the gateway's event for the request instead.
func (g *Gateway) upstreamRefused(resp *http.Response, x *exchange) {
	kind := resp.Header.Get(rampart.RefusalHeader)
	detail, _ := io.ReadAll(io.LimitReader(resp.Body, maxRefusalDetail))
	resp.Body.Close()
	g.event(x, x.in, rampart.Event{Kind: KindUpstreamRefused, Action: rampart.ActionBlocked,
		Reason: fmt.Sprintf("the upstream of route %s refused the request: %d %s", x.route.cfg.Name, resp.StatusCode, truncate(kind, 128)),
		Detail: string(detail)})

	msg := "request refused by a security policy"
	if resp.StatusCode >= 500 {
		msg = "service unavailable"
	}
	var body bytes.Buffer
	json.NewEncoder(&body).Encode(struct {
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}{msg, x.id})
	// Nothing of the service's headers is kept: Rampart wrote them, and the
	// marker must not leave the mesh.
	resp.Header = http.Header{
		"Content-Type":   {"application/json"},
		"X-Request-Id":   {x.id},
		"Cache-Control":  {"no-store"},
		"Content-Length": {strconv.Itoa(body.Len())},
	}
	resp.Body = io.NopCloser(&body)
	resp.ContentLength = int64(body.Len())
	resp.TransferEncoding = nil
	resp.Trailer = nil
}

// overInspectionLimit deals with a request whose body is longer than the WAF
// inspects (see the package documentation): it reports it and, unless the
// route allows partial inspection or the WAF only detects, refuses it with
// 413 and returns true.
func (g *Gateway) overInspectionLimit(w http.ResponseWriter, r *http.Request, x *exchange) bool {
	limit := g.waf.BodyLimit()
	var why string
	switch {
	case x.route.partial:
		why = "the route allows partial inspection"
	case g.cfg.WAF.Mode == "detection":
		why = "the WAF is in detection mode"
	default:
		g.event(x, r, rampart.Event{Kind: KindBodyOverLimit, Action: rampart.ActionBlocked, Sink: "coraza",
			Reason: fmt.Sprintf("request body over the WAF's inspection limit of %d bytes: refused, the route does not allow partial inspection", limit)})
		g.refuse(w, x, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over the %d bytes the firewall inspects", limit))
		return true
	}
	g.event(x, r, rampart.Event{Kind: KindBodyOverLimit, Action: rampart.ActionMonitored, Sink: "coraza",
		Reason: fmt.Sprintf("request body over the WAF's inspection limit of %d bytes: body partly inspected, its first %d bytes only (%s)", limit, limit, why)})
	return false
}

func wafEvent(v waf.Verdict, action rampart.Action) rampart.Event {
	ids := make([]string, 0, len(v.Matches))
	var detail strings.Builder
	for _, m := range v.Matches {
		ids = append(ids, strconv.Itoa(m.RuleID))
		if detail.Len() < rampart.MaxEventDetail {
			fmt.Fprintf(&detail, "%d %s: %s\n", m.RuleID, m.Message, m.Data)
		}
	}
	return rampart.Event{Kind: KindWAF, Action: action, Sink: "coraza",
		Reason: fmt.Sprintf("CRS anomaly score %d; rules %s", v.Score, strings.Join(ids, ",")),
		Detail: detail.String()}
}

func (g *Gateway) rateLimited(w http.ResponseWriter, r *http.Request, x *exchange, retry time.Duration, why string) {
	g.event(x, r, rampart.Event{Kind: KindRateLimited, Action: rampart.ActionBlocked, Reason: why})
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int((retry+time.Second-1)/time.Second))))
	g.refuse(w, x, http.StatusTooManyRequests, "rate limit exceeded")
}

// event fills in the request and actor and queues ev.
func (g *Gateway) event(x *exchange, r *http.Request, ev rampart.Event) {
	ev.RequestID, ev.Method, ev.Path, ev.RemoteAddr = x.id, r.Method, truncate(r.URL.Path, rampart.MaxEventInput), r.RemoteAddr
	ev.ActorIP, ev.ActorUser, ev.SessionHash, ev.TraceID = x.clientIP.String(), x.user, x.session, x.trace.TraceID().String()
	ev.Device = x.device
	if x.route != nil {
		ev.Route = x.route.cfg.Name
	}
	ev.Reason = truncate(ev.Reason, rampart.MaxEventDetail)
	ev.Detail = truncate(ev.Detail, rampart.MaxEventDetail)
	g.report(ev)
}

// refuse answers with a JSON error naming the request id.
func (g *Gateway) refuse(w http.ResponseWriter, x *exchange, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Request-Id", x.id)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}{msg, x.id})
}

func (g *Gateway) accessLog(r *http.Request, x *exchange, sw *statusWriter, start time.Time) {
	// The attributes cost allocations: none when nobody reads them.
	if !g.log.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	route := ""
	if x.route != nil {
		route = x.route.cfg.Name
	}
	g.log.LogAttrs(r.Context(), slog.LevelInfo, "access",
		slog.String("request_id", x.id),
		slog.String("trace_id", x.trace.TraceID().String()),
		slog.String("client_ip", x.clientIP.String()),
		slog.String("user", x.user),
		slog.String("method", r.Method),
		slog.String("host", truncate(r.Host, 256)),
		slog.String("path", truncate(r.URL.Path, 1024)),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Int64("bytes", sw.bytes),
		slog.Int("waf_score", x.score),
		slog.Duration("duration", time.Since(start)),
	)
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// statusWriter records the status and size of a response. It passes
// Flush through for streaming, and Unwrap lets http.ResponseController
// (which the reverse proxy uses for WebSocket upgrades) reach the
// connection.
//
// The server's WriteTimeout bounds the whole response from the end of the
// request headers, which would cut a stream (Server-Sent Events, a long
// poll, a download of unknown length) after that time however well it
// flows. A stream — a response without Content-Length, or one flushed —
// gets writeTimeout for each write and flush instead: it may last as long
// as the upstream keeps it open, but a client that stops reading is still
// cut.
type statusWriter struct {
	http.ResponseWriter
	status       int
	bytes        int64
	writeTimeout time.Duration
	streaming    bool
	rc           *http.ResponseController
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		if w.Header().Get("Content-Length") == "" {
			w.streaming = true
		}
	}
	if code == http.StatusSwitchingProtocols {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.streaming {
		w.extendDeadline()
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	w.streaming = true
	w.extendDeadline()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) extendDeadline() {
	if w.writeTimeout <= 0 {
		return
	}
	if w.rc == nil {
		w.rc = http.NewResponseController(w.ResponseWriter)
	}
	// ErrNotSupported (a writer that cannot) leaves the server's deadline.
	w.rc.SetWriteDeadline(time.Now().Add(w.writeTimeout))
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack is for WebSocket upgrades through servers whose writer has no
// Unwrap path. The reverse proxy hijacks to write the upstream's 101
// itself: the access log records it here.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return conn, brw, err
}

// health is the answer of /healthz: DroppedEvents counts every event that
// will never reach the control plane; Events says why, and what waits.
type health struct {
	Status        string      `json:"status"`
	DroppedEvents uint64      `json:"dropped_events"`
	Events        eventHealth `json:"events"`
}

type eventHealth struct {
	Spooled      int    `json:"spooled"`     // waiting for the control plane
	SpoolBytes   int64  `json:"spool_bytes"` //
	Delivered    uint64 `json:"delivered"`
	QueueFull    uint64 `json:"dropped_queue_full"` // the queue before the spool was full (or the gateway closing)
	SpoolFull    uint64 `json:"dropped_spool_full"` // the oldest, dropped from a full spool
	Expired      uint64 `json:"expired"`            // older than events.spool_max_age, undelivered
	Rejected     uint64 `json:"rejected"`           // refused by the control plane as invalid
	Lost         uint64 `json:"lost"`               // the spool could not take them
	CorruptBytes int64  `json:"spool_corrupt_bytes"`
	Failures     uint64 `json:"delivery_failures"` // attempts that failed and were retried
}

func (g *Gateway) health() health {
	st := g.sink.Stats()
	queue := g.dropped.Load()
	return health{Status: "ok", DroppedEvents: queue + st.Undelivered(), Events: eventHealth{
		Spooled: st.Spooled, SpoolBytes: st.SpoolBytes, Delivered: st.Delivered, QueueFull: queue,
		SpoolFull: st.Dropped, Expired: st.Expired, Rejected: st.Rejected, Lost: st.Lost,
		CorruptBytes: st.CorruptBytes, Failures: st.Failures,
	}}
}

// AdminHandler serves /healthz (the process is up) and /readyz (it has
// what it needs from the control plane and can serve).
func (g *Gateway) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(g.health())
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if !g.ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, `{"status":"waiting for the control plane"}`)
			return
		}
		fmt.Fprintln(w, `{"status":"ready"}`)
	})
	return mux
}
