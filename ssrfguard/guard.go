package ssrfguard

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	"github.com/rampartsec/rampart"
)

// Config configures a Guard. The zero Config is the common case: hosts from
// untrusted input may not reach internal addresses, and the cloud metadata
// endpoints are denied to every request.
type Config struct {
	// Allow lists hosts and networks that requests may always reach, even
	// when the host came from untrusted input: host names ("api.partner.com",
	// "*.internal.example" for every subdomain), IP addresses and CIDR
	// prefixes ("10.20.0.0/16"). Only Config.Deny overrides it. A metadata
	// endpoint is opened only by an entry that names it exactly (its host
	// name, or its single address), never by a wider prefix or a wildcard.
	Allow []string
	// Deny lists hosts and networks that requests may never reach, whether or
	// not untrusted input is involved, in addition to the built-in cloud
	// metadata and credential endpoints (169.254.169.254, fd00:ec2::254,
	// 100.100.100.200, 169.254.170.2, 169.254.170.23, fd00:ec2::23,
	// metadata.google.internal). Same syntax as Allow.
	Deny []string
	// Resolver resolves host names where the guard resolves them itself (see
	// the package documentation); nil means net.DefaultResolver.
	Resolver *net.Resolver
}

// Guard checks outbound HTTP requests (Transport, Client) and connections
// (DialContext, Check) for server-side request forgery. It is safe for
// concurrent use.
type Guard struct {
	agent    *rampart.Agent
	allow    list
	deny     list
	resolver *net.Resolver

	spellingsOnce sync.Once
	spellings     bool // the resolver reads inet_aton spellings as addresses
}

// New returns a guard that reports to agent. An entry of cfg.Allow or
// cfg.Deny that is not a host name, a wildcard domain, an address or a
// prefix is an error that names it.
func New(agent *rampart.Agent, cfg Config) (*Guard, error) {
	if agent == nil {
		return nil, errors.New("ssrfguard: New: agent is nil")
	}
	g := &Guard{agent: agent, resolver: cfg.Resolver}
	if g.resolver == nil {
		g.resolver = net.DefaultResolver
	}
	var err error
	if g.allow, err = parseList("Allow", cfg.Allow); err != nil {
		return nil, err
	}
	if g.deny, err = parseList("Deny", cfg.Deny); err != nil {
		return nil, err
	}
	return g, nil
}

func parseList(field string, entries []string) (list, error) {
	var l list
	for i, e := range entries {
		s := strings.TrimSpace(e)
		if p, err := netip.ParsePrefix(s); err == nil {
			l.nets = append(l.nets, p.Masked())
			continue
		}
		if ip, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
			if ip.Zone() != "" {
				return list{}, fmt.Errorf("ssrfguard: Config.%s[%d] %q has a zone; the lists match addresses whatever the interface", field, i, e)
			}
			l.nets = append(l.nets, netip.PrefixFrom(ip, ip.BitLen()))
			continue
		}
		p, ok := parseHostPattern(s)
		if !ok {
			return list{}, fmt.Errorf("ssrfguard: Config.%s[%d] %q is not a host name, \"*.\" and a domain, an IP address or a CIDR prefix", field, i, e)
		}
		if ip, isIP := parseIP(s, true); isIP {
			// "127.1" is a valid host name to DNS, but every C resolver reads
			// it as an address; say what was meant.
			return list{}, fmt.Errorf("ssrfguard: Config.%s[%d] %q is an unusual spelling of %s; write the address as %s", field, i, e, ip, ip)
		}
		l.hosts = append(l.hosts, p)
	}
	return l, nil
}

// parseHostPattern accepts a host name of letters, digits, '-' and '_' in
// dot-separated labels (a trailing dot allowed), optionally "*." and a domain.
func parseHostPattern(s string) (hostPattern, bool) {
	wildcard := strings.HasPrefix(s, "*.")
	name := strings.TrimSuffix(strings.TrimPrefix(s, "*."), ".")
	if name == "" || len(name) > 253 {
		return hostPattern{}, false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return hostPattern{}, false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) || c == '-' || c == '_') {
				return hostPattern{}, false
			}
		}
	}
	name = strings.ToLower(name)
	if wildcard {
		return hostPattern{name: "." + name, wildcard: true}, true
	}
	return hostPattern{name: name}, true
}

// Transport returns an http.RoundTripper that checks every request, and
// every redirect the client follows, before sending it with base; nil base
// means http.DefaultTransport. The request is not modified (a copy carries the
// guard's state) and its body is closed when the guard refuses it.
//
// When base is an *http.Transport the returned transport is built from
// clones of it with a guarded dial, so that the check is made on each address
// actually dialed (see the package documentation); base itself is not
// changed and its idle connections are not shared. Any other RoundTripper is
// wrapped and checked before the call, with weaker guarantees: wrap the
// *http.Transport innermost and put instrumenting RoundTrippers around the
// result.
func (g *Guard) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if t, ok := base.(*http.Transport); ok {
		return g.newTransport(t)
	}
	return &checkedTransport{g: g, base: base}
}

// Client returns a copy of base (nil means a zero http.Client) whose
// Transport is g.Transport(base.Transport). Timeouts, cookie jar and redirect
// policy are kept.
func (g *Guard) Client(base *http.Client) *http.Client {
	c := &http.Client{}
	if base != nil {
		*c = *base
	}
	c.Transport = g.Transport(c.Transport)
	return c
}
