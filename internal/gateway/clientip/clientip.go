// Package clientip finds the address of the external client of a request
// that may have passed through proxies in front of the gateway.
//
// The connection peer (the request's RemoteAddr) is the only address nobody
// can forge. A forwarding header is read only when the peer is one of the
// configured trusted proxies, and then only the one header those proxies are
// configured to write ([Config.Header]: X-Forwarded-For by default,
// Forwarded, or X-Real-IP). Every other forwarding header is the client's
// own text, passed through by proxies that do not touch it, and is never
// read: a proxy that appends to X-Forwarded-For forwards the client's
// Forwarded header untouched, and whatever it says must not change the
// answer.
//
// X-Forwarded-For and Forwarded are lists, one element appended by each
// proxy. The header is walked from the right (the element the peer
// appended), one hop at a time, while each hop is itself a trusted proxy.
// The first address that is not a trusted proxy is the client. Everything to
// its left was written by the client, or by proxies nobody vouches for, and
// is never parsed. When every hop is a trusted proxy, the leftmost is the
// client (a host inside the trusted network); when the peer is trusted and
// the header is absent, the peer itself is the client. X-Real-IP holds one
// address, which the trusted proxy overwrote with its own peer's address:
// that address is the client.
//
// An element the walk reaches that carries no usable address is an error
// ([ErrUnusableHeader]), never an answer: an RFC 7239 obfuscated identifier
// ("_hidden") or "unknown", a malformed value, an element without for=, an
// empty element, or an element beyond the bounds (64 hops, the rightmost
// 8 KiB of the header's lines); for X-Real-IP, more than one line or a value
// that is not one address. Such an element was written, or passed on, by a
// trusted proxy that will not or cannot say who its client was. Answering
// with the last trusted hop instead would give every client behind that
// proxy the proxy's own address, out of reach of IP decisions and sharing
// one rate-limit bucket with everyone else; so the caller must refuse the
// request (the gateway answers 400) rather than guess.
package clientip

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Bounds on the work done for one header, whatever its size: the walk ends
// with ErrUnusableHeader (as at a malformed element) if it would go past
// maxHops elements or the left edge of the rightmost maxHeaderBytes bytes of
// the header's lines.
const (
	maxHops        = 64
	maxHeaderBytes = 8 << 10
)

// ErrUnknownPeer is returned by ClientIP when the request's RemoteAddr is
// not an IP address, optionally with a port: a request that came over a
// Unix socket, or one built by hand without a RemoteAddr.
var ErrUnknownPeer = errors.New("clientip: RemoteAddr is not an IP address")

// ErrUnusableHeader is returned by ClientIP when the peer is a trusted proxy
// and the walk of the configured header reaches an element that holds no
// usable address (see the package documentation). The request must be
// refused: there is no address to attribute it to.
var ErrUnusableHeader = errors.New("clientip: the forwarding header of a trusted proxy holds no usable client address")

// The headers a Config may name, in canonical form.
const (
	HeaderXForwardedFor = "X-Forwarded-For"
	HeaderForwarded     = "Forwarded"
	HeaderXRealIP       = "X-Real-Ip"
)

// Config configures a Resolver.
type Config struct {
	// TrustedProxies are the proxies whose forwarding header is believed,
	// each a CIDR prefix ("10.0.0.0/8", "2001:db8::/32") or a single
	// address ("192.0.2.10"). IPv4-mapped IPv6 forms are taken as the IPv4
	// addresses they map. An entry that is neither, one with an IPv6 zone,
	// and a prefix of length 0 are refused: trusting every address would
	// make the client address whatever the client says it is. None means
	// the peer is always the client.
	TrustedProxies []string

	// Header is the one header the trusted proxies write the client's
	// address in: "X-Forwarded-For" (the default when empty), "Forwarded"
	// (RFC 7239) or "X-Real-IP" (case does not matter). Every trusted
	// proxy must write it: appending to X-Forwarded-For or Forwarded, or
	// setting X-Real-IP to the address of its peer.
	Header string
}

// Resolver finds the client address of requests given the proxies trusted to
// report it. The zero value trusts no proxy: ClientIP returns the peer.
// A Resolver is safe for concurrent use.
type Resolver struct {
	trusted []netip.Prefix
	header  string // canonical; "" in the zero value, which reads none
}

// New returns a Resolver that believes the header cfg.Header written by the
// proxies cfg.TrustedProxies. Its errors name the field at fault.
func New(cfg Config) (*Resolver, error) {
	r := &Resolver{trusted: make([]netip.Prefix, 0, len(cfg.TrustedProxies))}
	switch strings.ToLower(cfg.Header) {
	case "", "x-forwarded-for":
		r.header = HeaderXForwardedFor
	case "forwarded":
		r.header = HeaderForwarded
	case "x-real-ip":
		r.header = HeaderXRealIP
	default:
		return nil, fmt.Errorf("clientip: header %q is not X-Forwarded-For, Forwarded or X-Real-IP", cfg.Header)
	}
	for _, entry := range cfg.TrustedProxies {
		p, err := parseTrusted(strings.TrimSpace(entry))
		if err != nil {
			return nil, fmt.Errorf("clientip: trusted proxy %q: %w", entry, err)
		}
		r.trusted = append(r.trusted, p)
	}
	return r, nil
}

// Header returns the canonical name of the header r reads ("" for the zero
// Resolver, which reads none).
func (r *Resolver) Header() string { return r.header }

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

// ClientIP returns the address of the client that sent req: the peer,
// unless the peer is a trusted proxy, in which case the first address that is
// not a trusted proxy, walking the configured header from the right (see the
// package documentation). The address is unmapped (IPv4-mapped IPv6 becomes
// IPv4) and has no zone. When every hop is a trusted proxy, the result is the
// leftmost one; when the header is absent, it is the peer.
//
// A header's lines are taken as the concatenation of all of them, in order.
// Other forwarding headers are not read, whatever they say.
//
// The errors are ErrUnknownPeer and ErrUnusableHeader.
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
	lines := req.Header[r.header]
	if len(lines) == 0 {
		return peer, nil
	}
	if r.header == HeaderXRealIP {
		// One address, set (not appended) by the trusted proxy: a second
		// line, or a list, is a client's value the proxy passed on.
		if len(lines) != 1 || len(lines[0]) > maxHeaderBytes {
			return netip.Addr{}, ErrUnusableHeader
		}
		a, ok := parseNode(trimOWS(lines[0]))
		if !ok {
			return netip.Addr{}, ErrUnusableHeader
		}
		return a, nil
	}
	h := hops{lines: lines, forwarded: r.header == HeaderForwarded}
	h.start()
	client := peer
	for {
		a, st := h.next()
		switch st {
		case hopEnd:
			return client, nil
		case hopUnusable:
			return netip.Addr{}, ErrUnusableHeader
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
// client or a proxy reports a client address: the three this package can
// read and the single-address ones other software trusts. A gateway removes all of
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
