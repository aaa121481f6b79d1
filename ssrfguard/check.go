package ssrfguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart"
)

// sinkNet names the guarded call in the events of Check and DialContext,
// which serve every client that is not net/http's.
const sinkNet = "net"

// Check applies the guard's rules to a connection to address over network,
// made for the work that ctx carries, without making it: it is the guard for
// a client that dials by itself (gRPC, a database or cache driver, a raw
// net.Dial) and cannot take the guard's dialer. network and address are what
// net.Dialer.DialContext takes: "tcp", "tcp4", "tcp6", "udp", "udp4" or
// "udp6", and "host:port" ("api.example.com:443", "10.0.0.1:6379",
// "[::1]:80"). A caller that holds a URL should send the request with the
// guarded Transport instead, which checks the connection it makes and every
// redirect; to vet a URL ahead, at a webhook's registration for example,
// check net.JoinHostPort(u.Hostname(), port).
//
// The rules are the transport's (see the package documentation): a host that
// an input of ctx contains, as a token of its own, may not be an internal
// address in any spelling, a localhost name, or a name that Config.Resolver
// resolves to an internal address; Config.Deny, Config.Allow and the cloud
// metadata endpoints apply to every host, from input or not. Names are
// resolved with Config.Resolver, every address checked, and a name that does
// not resolve is let through (the dial will fail, or it uses a resolver the
// guard does not see); Config.Resolver should be the resolver the client
// dials with. As the guard cannot know that, a host that the C library reads
// as an address (0x7f.1, 2130706433: see Spellings in the package
// documentation) is judged as that address whatever Config.Resolver reads
// it as. The check of a name not from input costs a DNS query,
// as the metadata endpoints and Config.Deny apply to what it resolves to; a
// host that is an address costs none.
//
// A refusal is reported, with the location of the caller, and in block mode
// returned as an error wrapping rampart.ErrBlocked; in monitor mode Check
// reports it and returns nil. When no input chose the host, Check ends with
// rampart.CheckInputsComplete: a request whose inputs could not all be
// recorded fails closed in block mode. An address net.Dial would not accept
// (no port, an unknown network, a network that is not TCP or UDP) is an error
// that does not wrap ErrBlocked, and so is an empty host, which net.Dial
// reads as this machine: name it ("localhost:8080") if that is meant.
//
// Checking, then dialing, leaves a window: the name is resolved twice, and
// DNS may answer a public address to Check and 127.0.0.1 to the dial (DNS
// rebinding). Where the caller can hand over its dial, use DialContext,
// which checks each address it connects to and leaves no such window.
func (g *Guard) Check(ctx context.Context, network, address string) error {
	t, err := g.target(ctx, network, address)
	if err != nil {
		return err
	}
	v := t.violation
	if v == nil {
		v = g.checkSpelled(&t)
	}
	if v == nil {
		v = g.checkNames(ctx, network, &t)
	}
	if v != nil {
		return g.reportDial(ctx, network, &t, v, "")
	}
	if t.taint != nil {
		return nil
	}
	return rampart.CheckInputsComplete(ctx, sinkNet)
}

// DialContext connects to address over network as net.Dialer.DialContext
// does, for the work that ctx carries, after applying the rules of Check to
// the host and to each address the dial connects to: the address checked is
// the address connected to, after resolution with Config.Resolver and for
// every address that Happy Eyeballs tries, so DNS rebinding cannot get
// through. It has net.Dialer.DialContext's shape, for wherever a dial
// function is taken: a client's own dial, or gRPC's:
//
//	conn, err := grpc.NewClient("passthrough:///"+target, grpc.WithContextDialer(
//		func(ctx context.Context, addr string) (net.Conn, error) {
//			ctx = rampart.WithUntrusted(ctx, "query", target) // target came from input
//			return guard.DialContext(ctx, "tcp", addr)
//		}), ...)
//
// gRPC resolves a target itself unless it is a "passthrough:" one, and then
// hands the dialer an address in place of the name; and it dials in the
// background, with a context of its own that does not carry the inputs of
// the request that built the client. So a target from input is marked in
// the dial function, as above; unmarked, the dial sees only the rules that
// apply to every host (the metadata endpoints, Config.Deny).
//
// It is not for an http.Transport's DialContext. There it sees the host
// after net/http is done with it: the host of a redirect (the attacker's
// server answering 302 with http://127.0.0.1/), or a Unicode host that
// net/http maps with IDNA (ⓛⓞⓒⓐⓛⓗⓞⓢⓣ becomes localhost), which no input
// names, so that the dial passes as the service's own call. Hand the
// *http.Transport, its custom DialContext included, to Guard.Transport,
// which sees each request's URL and each redirect and still checks every
// address dialed. Likewise, a client that resolves a name from input itself
// and dials the address it found hands over an address that the guard
// cannot tie to the input: give DialContext (or Check) the host as the
// input named it, and let the dial resolve it.
//
// A refusal is reported with the location of the caller. In block mode no
// connection is attempted to a refused address and the error wraps
// rampart.ErrBlocked; in monitor mode the connection is made and reported.
// The dial is net.Dialer's zero value with Config.Resolver: no timeout but
// the context's deadline, TCP keep-alive at net's default. A client that
// needs other dialer settings (socket options, a local address) uses Check,
// with the window it leaves.
func (g *Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	t, err := g.target(ctx, network, address)
	if err != nil {
		return nil, err
	}
	if t.violation != nil {
		if err := g.reportDial(ctx, network, &t, t.violation, ""); err != nil {
			return nil, err
		}
	} else if t.taint == nil {
		if err := rampart.CheckInputsComplete(ctx, sinkNet); err != nil {
			return nil, err
		}
	}
	st := &dialState{taint: t.taint, self: t.self, reported: t.violation != nil}
	c := &dialCheck{g: g, st: st, host: t.host, port: t.port, hv: t.hv, tn: t.taint, self: t.self}
	d := &net.Dialer{Resolver: g.resolver, ControlContext: c.control}
	conn, err := d.DialContext(ctx, network, address)
	if v, addr := st.found(); v != nil && !st.reported {
		// Monitor mode: the control function let the connection attempt
		// through and left what it found for this goroutine, the caller's,
		// to report, whether the connection was then made or not.
		_ = g.reportDial(ctx, network, &t, v, addr)
	}
	if err != nil {
		var de *dialError
		if errors.As(err, &de) {
			if rerr := g.reportDial(ctx, network, &t, de.v, de.addr); rerr != nil {
				return nil, rerr
			}
		}
		return nil, err
	}
	return conn, nil
}

// dialTarget is what the host and port of an address decide, before any
// name is resolved.
type dialTarget struct {
	host      string
	port      uint16
	taint     *taint
	self      netip.AddrPort // valid only for a host from input, over TCP, in a request served here
	hv        hostVerdict
	violation *violation
}

// target parses address as net.Dial does and applies the host rules.
func (g *Guard) target(ctx context.Context, network, address string) (dialTarget, error) {
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return dialTarget{}, fmt.Errorf("ssrfguard: network %q: only TCP and UDP connections are guarded", network)
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return dialTarget{}, fmt.Errorf("ssrfguard: address %q: %w", address, err)
	}
	if host == "" {
		return dialTarget{}, fmt.Errorf("ssrfguard: address %q has no host, which net.Dial reads as this machine: write localhost:%s if that is meant", address, portStr)
	}
	port, ok := parsePort(portStr)
	if !ok {
		p, err := g.resolver.LookupPort(ctx, network, portStr)
		if err != nil {
			return dialTarget{}, fmt.Errorf("ssrfguard: address %q: %w", address, err)
		}
		port = uint16(p)
	}
	t := dialTarget{host: host, port: port}
	if in, ok := inputForHost(ctx, host, port); ok {
		t.taint = &taint{input: in}
		if strings.HasPrefix(network, "tcp") {
			// The service received the request on a TCP port; a UDP socket
			// on the same port number is another service.
			t.self = localAddr(ctx)
		}
	}
	t.hv, t.violation = g.checkHost(host, port, t.taint, t.self)
	return t, nil
}

// checkSpelled judges a host that the C library reads as an address
// (0x7f.1, 2130706433, 0177.0.0.1) where Config.Resolver does not: the
// client that dials after Check resolves with a resolver the guard does not
// see, commonly the C library's (see Spellings in the package
// documentation). Where no resolver reads it so, the name has no answer and
// the refusal costs nothing; a bare number that reads as an address of
// 0.0.0.0/8 ("40184") is no internal address, and no event.
func (g *Guard) checkSpelled(t *dialTarget) *violation {
	if _, ok := g.hostIP(t.host); ok {
		return nil // checkHost judged it already
	}
	ip, ok := parseIP(t.host, true)
	if !ok || t.hv.allowed {
		return nil
	}
	v := g.checkIP(ip, t.port, t.hv, t.taint, t.self)
	if v != nil && t.taint != nil && v.category != "" {
		v.reason = t.taint.describe() + " is " + quoteHost(t.host) + ", " + v.category + " " + ip.String()
	}
	return v
}

// checkNames resolves a host name with the guard's resolver and checks every
// address, as the dial will connect to any of them. A host that is an
// address was judged by checkHost already.
func (g *Guard) checkNames(ctx context.Context, network string, t *dialTarget) *violation {
	if _, ok := g.hostIP(t.host); ok {
		return nil
	}
	ips, err := g.resolver.LookupNetIP(ctx, ipNetwork(network), t.host)
	if err != nil {
		return nil
	}
	for _, ip := range ips {
		if v := g.checkIP(ip, t.port, t.hv, t.taint, t.self); v != nil {
			return v
		}
	}
	return nil
}

// reportDial hands a finding of Check or DialContext to the agent, from the
// caller's goroutine so that the event's Location is the line that called.
func (g *Guard) reportDial(ctx context.Context, network string, t *dialTarget, v *violation, dialed string) error {
	f := rampart.Finding{
		Kind:   rampart.KindSSRF,
		Sink:   sinkNet,
		Detail: dialDetail(network, t, v, dialed),
		Reason: v.reason,
	}
	if t.taint != nil {
		f.Input = t.taint.input
	}
	return g.agent.Report(ctx, f)
}

// dialDetail is the dial with the host from input marked, followed by the
// address that was about to be connected to: "tcp ⟦evil.test⟧:80 → 127.0.0.1:80".
func dialDetail(network string, t *dialTarget, v *violation, dialed string) string {
	h := t.host
	if t.taint != nil {
		h = "⟦" + h + "⟧"
	}
	if strings.IndexByte(t.host, ':') >= 0 {
		h = "[" + h + "]"
	}
	s := network + " " + h + ":" + strconv.Itoa(int(t.port))
	switch {
	case dialed != "":
		s += " → " + dialed
	case v.ip.IsValid():
		s += " → " + v.ip.String()
	}
	return s
}
