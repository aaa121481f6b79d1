package ssrfguard

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"

	"github.com/rampartsec/rampart"
)

// stdDefaultTransport is http.DefaultTransport as net/http made it, before
// any program could replace it; its dialer is known (a net.Dialer with 30 s
// timeout and keep-alive), so the guard can use its own net.Dialer instead.
var stdDefaultTransport = http.DefaultTransport

// transport guards an *http.Transport. Requests go through one of three
// clones of it, so that a connection dialed under one rule is never reused
// under a stricter one:
//
//   - plain: hosts not from untrusted input; its dials enforce the deny list.
//   - tainted: hosts from untrusted input; its dials also refuse internal
//     addresses, so every idle connection in it leads to an address that any
//     such request may reach.
//   - self: hosts from untrusted input on the port the service itself
//     listens on; its dials also accept the service's own address.
type transport struct {
	g                    *Guard
	plain, tainted, self *http.Transport
	proxy                func(*http.Request) (*url.URL, error)
}

var _ http.RoundTripper = (*transport)(nil)

func (g *Guard) newTransport(base *http.Transport) *transport {
	t := &transport{g: g, proxy: base.Proxy}
	var dial dialFunc
	switch {
	case base == stdDefaultTransport:
	case base.DialContext != nil:
		dial = base.DialContext
	case base.Dial != nil:
		d := base.Dial
		dial = func(_ context.Context, network, addr string) (net.Conn, error) { return d(network, addr) }
	}
	var tlsDial dialFunc
	switch {
	case base.DialTLSContext != nil:
		tlsDial = base.DialTLSContext
	case base.DialTLS != nil:
		d := base.DialTLS
		tlsDial = func(_ context.Context, network, addr string) (net.Conn, error) { return d(network, addr) }
	}
	// net/http turns HTTP/2 on by itself only for a Transport without
	// custom dialers or TLS config; installing the guarded dialer must not
	// turn it off.
	autoHTTP2 := dial == nil && tlsDial == nil && base.TLSClientConfig == nil
	clone := func() *http.Transport {
		c := base.Clone()
		if autoHTTP2 {
			c.ForceAttemptHTTP2 = true
		}
		c.Dial, c.DialTLS = nil, nil
		c.DialContext = g.guardDial(dial)
		if tlsDial != nil {
			c.DialTLSContext = g.guardTLSDial(tlsDial)
		}
		return c
	}
	t.plain, t.tainted, t.self = clone(), clone(), clone()
	return t
}

// CloseIdleConnections closes the idle connections of every clone, for
// http.Client.CloseIdleConnections.
func (t *transport) CloseIdleConnections() {
	t.plain.CloseIdleConnections()
	t.tainted.CloseIdleConnections()
	t.self.CloseIdleConnections()
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		return t.plain.RoundTrip(req) // which reports the missing URL
	}
	g := t.g
	ctx := req.Context()
	p := g.preflight(ctx, req)
	tn, self, port, hv, v := p.taint, p.self, p.port, p.host, p.violation
	if v != nil {
		if err := g.report(ctx, req, tn, v, ""); err != nil {
			closeBody(req)
			return nil, err
		}
	}
	if err := p.complete(ctx); err != nil {
		closeBody(req)
		return nil, err
	}
	monitor := g.agent.Mode() == rampart.ModeMonitor
	proxied := false
	if t.proxy != nil {
		if u, err := t.proxy(req); err == nil && u != nil {
			proxied = true
		}
	}
	if proxied && v == nil && !hv.allowed && tn != nil {
		// The dial goes to the proxy, which resolves the host itself: check
		// what the host resolves to now, the best that can be done.
		if v = g.checkResolved(ctx, req.URL.Hostname(), port, hv, tn, self, true); v != nil {
			if err := g.report(ctx, req, tn, v, ""); err != nil {
				closeBody(req)
				return nil, err
			}
		}
	}

	rt := t.plain
	var st *dialState
	if tn != nil && !hv.allowed {
		rt = t.tainted
		st = &dialState{taint: tn}
		if self.IsValid() && self.Port() == port {
			rt = t.self
			st.self = self
		}
	}
	if monitor || proxied {
		if st == nil {
			st = &dialState{}
		}
		st.proxied = proxied
		st.reported = v != nil
	}
	out := req
	if st != nil {
		out = req.WithContext(context.WithValue(ctx, stateKey{}, st))
		if monitor && st.taint != nil {
			// In monitor mode a connection to a forbidden address is made;
			// it must not be reused by the next such request, whose attempt
			// would then go unreported.
			out.Close = true
		}
	}
	resp, err := rt.RoundTrip(out)
	if st != nil {
		if v, addr := st.found(); v != nil && !st.reported {
			// Monitor mode: the dial let the connection attempt through and
			// left what it found for this goroutine, the application's, to
			// report, whether the connection was then made or not.
			_ = g.report(ctx, req, tn, v, addr)
		}
	}
	if err != nil {
		var de *dialError
		if errors.As(err, &de) {
			if rerr := g.report(ctx, req, tn, de.v, de.addr); rerr != nil {
				return nil, rerr
			}
		}
		return nil, err
	}
	return resp, nil
}

// checkedTransport guards a RoundTripper that is not an *http.Transport. It
// cannot see the dial, so it checks before the call: host rules for every
// request and, for a host from untrusted input, every address the host
// resolves to now. A name that resolves differently a moment later (DNS
// rebinding) is not caught, and neither is an untrusted-free host whose name
// resolves to a metadata address.
type checkedTransport struct {
	g    *Guard
	base http.RoundTripper
}

var _ http.RoundTripper = (*checkedTransport)(nil)

// RoundTrip implements http.RoundTripper.
func (t *checkedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		return t.base.RoundTrip(req)
	}
	g := t.g
	ctx := req.Context()
	p := g.preflight(ctx, req)
	tn, v := p.taint, p.violation
	if err := p.complete(ctx); err != nil {
		closeBody(req)
		return nil, err
	}
	if v == nil && !p.host.allowed && tn != nil {
		v = g.checkResolved(ctx, req.URL.Hostname(), p.port, p.host, tn, p.self, true)
	}
	if v != nil {
		if err := g.report(ctx, req, tn, v, ""); err != nil {
			closeBody(req)
			return nil, err
		}
	}
	return t.base.RoundTrip(req)
}

// CloseIdleConnections forwards to the wrapped RoundTripper if it has idle
// connections to close.
func (t *checkedTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// preflight is what is decided about a request before it is sent: whether
// its host is from untrusted input, what the host rules say, and where the
// service itself listens if that matters.
type preflight struct {
	taint     *taint
	self      netip.AddrPort // valid only for a tainted request served by this process
	port      uint16
	host      hostVerdict
	violation *violation
}

func (g *Guard) preflight(ctx context.Context, req *http.Request) preflight {
	p := preflight{taint: taintOf(ctx, req), port: urlPort(req.URL)}
	if p.taint != nil {
		p.self = localAddr(ctx)
	}
	p.host, p.violation = g.checkHost(req.URL.Hostname(), p.port, p.taint, p.self)
	return p
}

// complete fails closed, for a host from no recorded input, when the
// request's inputs could not all be recorded: the host may come from one
// that was not (see rampart.CheckInputsComplete).
func (p preflight) complete(ctx context.Context) error {
	if p.taint != nil || p.violation != nil {
		return nil
	}
	return rampart.CheckInputsComplete(ctx, "net/http")
}

// checkResolved resolves host with the guard's resolver and checks every
// address; one forbidden address is enough, since the caller may dial any
// of them. A name that does not resolve is let through: the request will
// fail, or go to a resolver the guard cannot see. When the host is resolved
// elsewhere (otherResolver: by a proxy, or by whatever a RoundTripper other
// than *http.Transport dials with), commonly by the C library, a host that
// the C library reads as an address is judged as that address.
func (g *Guard) checkResolved(ctx context.Context, host string, port uint16, hv hostVerdict, tn *taint, self netip.AddrPort, otherResolver bool) *violation {
	if _, ok := g.hostIP(host); ok {
		return nil // checkHost judged it already
	}
	if ip, ok := parseIP(host, true); ok && otherResolver {
		return g.checkIP(ip, port, hv, tn, self)
	}
	ips, err := g.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, ip := range ips {
		if v := g.checkIP(ip, port, hv, tn, self); v != nil {
			return v
		}
	}
	return nil
}

// dialState travels in the context of a request whose dial must know more
// than the address: that the host came from input, where the service itself
// listens, that the dial goes to a proxy. In monitor mode it also brings back
// what the dial found, for RoundTrip to report from the application's
// goroutine (the dial runs on one of net/http's).
type dialState struct {
	taint    *taint
	self     netip.AddrPort
	proxied  bool
	reported bool // RoundTrip reported the request already

	mu        sync.Mutex
	violation *violation
	addr      string
}

type stateKey struct{}

func stateFrom(ctx context.Context) *dialState {
	st, _ := ctx.Value(stateKey{}).(*dialState)
	return st
}

func (st *dialState) record(v *violation, addr string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.violation == nil {
		st.violation, st.addr = v, addr
	}
}

func (st *dialState) found() (*violation, string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.violation, st.addr
}

// localAddr returns the address on which the server received the request
// being served, when ctx descends from its context.
func localAddr(ctx context.Context) netip.AddrPort {
	if a, ok := ctx.Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		return a.AddrPort()
	}
	return netip.AddrPort{}
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// report hands a finding to the agent from the application's goroutine, so
// that the event's Location is the line that made the request.
func (g *Guard) report(ctx context.Context, req *http.Request, tn *taint, v *violation, dialed string) error {
	f := rampart.Finding{
		Kind:   rampart.KindSSRF,
		Sink:   "net/http",
		Detail: detail(req, tn, v, dialed),
		Reason: v.reason,
	}
	if tn != nil {
		f.Input = tn.input
	}
	return g.agent.Report(ctx, f)
}

// detail is the request line with the input marked, followed by the address
// that was about to be dialed: "GET http://⟦127.0.0.1⟧:8080/ → 127.0.0.1:8080".
func detail(req *http.Request, tn *taint, v *violation, dialed string) string {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	s := method + " "
	if tn != nil && tn.from != nil {
		s += req.URL.Redacted() + " redirected from " + markURL(tn.from, tn.input.Value)
	} else if tn != nil {
		s += markURL(req.URL, tn.input.Value)
	} else {
		s += req.URL.Redacted()
	}
	switch {
	case dialed != "":
		s += " → " + dialed
	case v.ip.IsValid():
		s += " → " + v.ip.String()
	}
	return s
}

// markURL returns u (password redacted) with the input between ⟦ and ⟧, or
// the host if the input does not appear in it as such.
func markURL(u *url.URL, input string) string {
	s := u.Redacted()
	for _, m := range []string{input, u.Hostname()} {
		if m == "" {
			continue
		}
		if i := indexFold(s, m); i >= 0 {
			return s[:i] + "⟦" + s[i:i+len(m)] + "⟧" + s[i+len(m):]
		}
	}
	return s
}
