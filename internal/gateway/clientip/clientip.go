// Package clientip finds the address of the external client of a request
// that may have passed through proxies in front of the gateway.
//
// The connection peer (the request's RemoteAddr) is the only address nobody
// can forge. Forwarding headers are read only when the peer is one of the
// configured trusted proxies, and then only as far as trusted proxies wrote
// them: the header is walked from the right (the element the peer appended),
// one hop at a time, while each hop is itself a trusted proxy. The first
// address that is not a trusted proxy is the client. Everything to its left
// was written by the client, or by proxies nobody vouches for, and is ignored.
//
// An element that carries no usable address ends the walk at the last trusted
// hop, which is then the answer: an RFC 7239 obfuscated identifier
// ("_hidden") or "unknown", a malformed value, an element without for=, or an
// element beyond the bounds (64 hops, the rightmost 8 KiB of each header).
// That element was written by a trusted proxy saying it will not or cannot
// tell who its client was; whatever lies further left is not vouched for,
// so the nearest hop known for certain stands for the client. The result is
// then a trusted proxy's address, shared by every client that proxy hides.
package clientip

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Bounds on the work done for one header, whatever its size: the walk stops
// (as at a malformed element) after maxHops elements or at the left edge of
// the rightmost maxHeaderBytes bytes of the header's lines.
const (
	maxHops        = 64
	maxHeaderBytes = 8 << 10
)

// ErrUnknownPeer is returned by ClientIP when the request's RemoteAddr is
// not an IP address, optionally with a port: a request that came over a
// Unix socket, or one built by hand without a RemoteAddr.
var ErrUnknownPeer = errors.New("clientip: RemoteAddr is not an IP address")

// Resolver finds the client address of requests given the proxies trusted to
// report it. The zero value trusts no proxy: ClientIP returns the peer.
// A Resolver is safe for concurrent use.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver that trusts the forwarding headers written by the
// given proxies, each a CIDR prefix ("10.0.0.0/8", "2001:db8::/32") or a
// single address ("192.0.2.10"). IPv4-mapped IPv6 forms are taken as the
// IPv4 addresses they map. It refuses an entry that is neither, one with an
// IPv6 zone, and a prefix of length 0: trusting every address would make the
// client address whatever the client says it is.
func New(trustedProxies []string) (*Resolver, error) {
	r := &Resolver{trusted: make([]netip.Prefix, 0, len(trustedProxies))}
	for _, entry := range trustedProxies {
		p, err := parseTrusted(strings.TrimSpace(entry))
		if err != nil {
			return nil, fmt.Errorf("clientip: trusted proxy %q: %w", entry, err)
		}
		r.trusted = append(r.trusted, p)
	}
	return r, nil
}

func parseTrusted(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, errors.New("not a CIDR prefix")
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, errors.New("not an IP address or CIDR prefix")
		}
		if a.Zone() != "" {
			return netip.Prefix{}, errors.New("IPv6 zones are not allowed")
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	p = p.Masked()
	// Addresses are unmapped before they are compared, so an IPv4-mapped
	// prefix (a masked one has at least 96 bits) becomes the IPv4 prefix it
	// means; otherwise it would match nothing.
	if a := p.Addr(); a.Is4In6() {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	if p.Bits() == 0 {
		return netip.Prefix{}, errors.New("a prefix of length 0 trusts every address")
	}
	return p, nil
}

func (r *Resolver) isTrusted(a netip.Addr) bool {
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP returns the address of the client that sent req: the peer, unless
// the peer is a trusted proxy, in which case the first address that is not a
// trusted proxy, walking the forwarding headers from the right (see the
// package documentation). The address is unmapped (IPv4-mapped IPv6 becomes
// IPv4) and has no zone. When every hop is a trusted proxy, the result is the
// leftmost one; when the walk ends early, it is the last trusted hop.
//
// The RFC 7239 Forwarded header and X-Forwarded-For are each the
// concatenation of all their lines, in order. When only one is present it is
// the one walked. When both are, both are walked in step and trusted only
// where they agree: the walk ends at the first hop on which they differ. A
// trusted proxy that appends to only one of them passes the other through
// from the client unchecked, so neither can be preferred without knowing
// which one the proxies write; an attacker who sends the other header gets
// the last agreed trusted hop as their address, never an address of their
// choosing. Deployments should have every trusted proxy write the same
// header (or both).
//
// The only error is ErrUnknownPeer.
func (r *Resolver) ClientIP(req *http.Request) (netip.Addr, error) {
	peer, ok := parsePeer(req.RemoteAddr)
	if !ok {
		return netip.Addr{}, fmt.Errorf("%w: %q", ErrUnknownPeer, req.RemoteAddr)
	}
	if !r.isTrusted(peer) {
		return peer, nil
	}
	// The keys are in canonical form, as net/http's server and Header.Add
	// store them: indexing the map skips Values' canonicalization.
	fwd := hops{lines: req.Header["Forwarded"], forwarded: true}
	xff := hops{lines: req.Header["X-Forwarded-For"]}
	fwd.start()
	xff.start()
	hasFwd, hasXFF := len(fwd.lines) > 0, len(xff.lines) > 0

	client := peer
	for {
		var a netip.Addr
		var ok bool
		switch {
		case hasFwd && hasXFF:
			af, okf := fwd.next()
			ax, okx := xff.next()
			a, ok = af, okf && okx && af == ax
		case hasFwd:
			a, ok = fwd.next()
		case hasXFF:
			a, ok = xff.next()
		}
		if !ok {
			return client, nil
		}
		if !r.isTrusted(a) {
			return a, nil
		}
		client = a
	}
}

// parsePeer parses RemoteAddr as net/http's server sets it ("ip:port",
// "[ipv6%zone]:port"), or as a bare address, which middleware sometimes
// leaves there. The zone is dropped: it names an interface of this host,
// not part of the client's address.
func parsePeer(s string) (netip.Addr, bool) {
	var a netip.Addr
	if ap, err := netip.ParseAddrPort(s); err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(s); err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

// ForwardingHeaders returns the names of the request headers by which a
// client or a proxy reports a client address: the two this package reads and
// the single-address ones other software trusts. A gateway removes all of
// them from inbound requests and writes its own before forwarding, so that a
// service behind it never reads an address the client chose. The slice is
// new at each call.
func ForwardingHeaders() []string {
	return []string{
		"Forwarded",
		"X-Forwarded-For",
		"X-Real-Ip",
		"X-Client-Ip",
		"X-Cluster-Client-Ip",
		"X-Original-Forwarded-For",
		"True-Client-Ip",
		"Cf-Connecting-Ip",
		"Fastly-Client-Ip",
	}
}
