package ssrfguard

import (
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Address ranges that a host from untrusted input must not reach. The order
// matters only for the name reported: more specific ranges first.
var internalRanges = func() []struct {
	prefix netip.Prefix
	name   string
} {
	table := []struct{ cidr, name string }{
		// 0.0.0.0 reaches the host itself (Linux and macOS connect it to
		// loopback). The rest of 0.0.0.0/8, "this network", is reachable only
		// where an interface has an address in it: see machine.zeroNetOnLink.
		{"0.0.0.0/32", "unspecified"},
		{"10.0.0.0/8", "private"},
		{"100.64.0.0/10", "CGNAT"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.0.0/16", "link-local"},
		{"172.16.0.0/12", "private"},
		{"192.0.0.0/24", "reserved"}, // IETF protocol assignments
		{"192.168.0.0/16", "private"},
		{"198.18.0.0/15", "reserved"}, // benchmarking, used inside labs and VPNs
		{"224.0.0.0/4", "multicast"},
		{"240.0.0.0/4", "reserved"}, // includes 255.255.255.255
		{"::/128", "unspecified"},
		{"::1/128", "loopback"},
		{"64:ff9b:1::/48", "private"}, // local-use NAT64 (RFC 8215)
		{"100::/64", "reserved"},      // discard-only
		{"fc00::/7", "private"},       // unique local (ULA)
		{"fe80::/10", "link-local"},
		{"fec0::/10", "private"}, // deprecated site-local
		{"ff00::/8", "multicast"},
	}
	out := make([]struct {
		prefix netip.Prefix
		name   string
	}, len(table))
	for i, r := range table {
		out[i].prefix = netip.MustParsePrefix(r.cidr)
		out[i].name = r.name
	}
	return out
}()

var (
	nat64Prefix      = netip.MustParsePrefix("64:ff9b::/96")
	translatedPrefix = netip.MustParsePrefix("::ffff:0:0:0/96") // IPv4-translated (RFC 2765)
	compatPrefix     = netip.MustParsePrefix("::/96")           // IPv4-compatible, deprecated
)

// embeddedIPv4 returns the IPv4 address inside an IPv6 address that carries
// one in its low 32 bits (IPv4-mapped, IPv4-translated, IPv4-compatible,
// NAT64) and the name of the form; ok is false for any other address.
func embeddedIPv4(ip netip.Addr) (v4 netip.Addr, form string, ok bool) {
	if !ip.Is6() {
		return netip.Addr{}, "", false
	}
	var form2 string
	switch {
	case ip.Is4In6():
		form2 = "IPv4-mapped"
	case translatedPrefix.Contains(ip):
		form2 = "IPv4-translated"
	case nat64Prefix.Contains(ip):
		form2 = "NAT64"
	case compatPrefix.Contains(ip):
		if ip == netip.IPv6Unspecified() || ip == netip.IPv6Loopback() {
			return netip.Addr{}, "", false
		}
		form2 = "IPv4-compatible"
	default:
		return netip.Addr{}, "", false
	}
	b := ip.As16()
	return netip.AddrFrom4([4]byte(b[12:16])), form2, true
}

// classify returns the kind of internal address ip is ("loopback",
// "private", "link-local", "CGNAT", "unspecified", "multicast", "reserved",
// "this network", or "this machine" for an address of one of its interfaces
// that no range names), or "" for a public address. IPv6 forms that embed an IPv4 address are
// classified by that address, as "loopback (IPv4-mapped)".
func classify(ip netip.Addr) string {
	ip = ip.WithZone("")
	if v4, form, ok := embeddedIPv4(ip); ok {
		if c := classify(v4); c != "" {
			return c + " (" + form + ")"
		}
		return ""
	}
	for _, r := range internalRanges {
		if r.prefix.Contains(ip) {
			return r.name
		}
	}
	m := thisMachine()
	if zeroNet.Contains(ip) && m.zeroNetOnLink {
		return "this network"
	}
	if m.has(ip) {
		return "this machine"
	}
	return ""
}

// Cloud metadata endpoints, denied even when no untrusted input is involved:
// they hand out the credentials of the machine (or of its container, or pod),
// and nothing in a service but the cloud SDK (which has its own client) should
// call them.
var (
	metadataAddrs = []netip.Addr{
		netip.MustParseAddr("169.254.169.254"), // AWS, GCP, Azure, OpenStack, DigitalOcean...
		netip.MustParseAddr("fd00:ec2::254"),   // AWS IMDS over IPv6
		netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
		netip.MustParseAddr("169.254.170.2"),   // AWS ECS: task metadata and the task role's credentials
		netip.MustParseAddr("169.254.170.23"),  // AWS EKS Pod Identity Agent: the pod role's credentials
		netip.MustParseAddr("fd00:ec2::23"),    // the same over IPv6
	}
	metadataHosts = []string{"metadata.google.internal"}
)

func isMetadataAddr(ip netip.Addr) bool {
	ip = ip.WithZone("")
	if v4, _, ok := embeddedIPv4(ip); ok {
		ip = v4
	}
	for _, m := range metadataAddrs {
		if ip == m {
			return true
		}
	}
	return false
}

func isMetadataHost(host string) bool {
	for _, m := range metadataHosts {
		if equalHost(host, m) {
			return true
		}
	}
	return false
}

// hostPattern is a host name of Config.Allow or Config.Deny: exact, or
// "*.example.com" for every subdomain of example.com.
type hostPattern struct {
	name     string // lower case, no trailing dot; for a wildcard, ".example.com"
	wildcard bool
}

func (p hostPattern) match(host string) bool {
	host = strings.TrimSuffix(host, ".")
	if p.wildcard {
		return len(host) > len(p.name) && hasSuffixFold(host, p.name)
	}
	return strings.EqualFold(host, p.name)
}

// list is a parsed Config.Allow or Config.Deny.
type list struct {
	hosts []hostPattern
	nets  []netip.Prefix
}

// matchHost reports whether host matches, and whether an exact (not
// wildcard) entry matched.
func (l *list) matchHost(host string) (matched, exact bool) {
	for _, p := range l.hosts {
		if p.match(host) {
			matched = true
			if !p.wildcard {
				return true, true
			}
		}
	}
	return matched, false
}

// matchIP returns the first prefix containing ip, also trying the IPv4
// address that an IPv6 form embeds.
func (l *list) matchIP(ip netip.Addr) (netip.Prefix, bool) {
	ip = ip.WithZone("")
	v4, _, embedded := embeddedIPv4(ip)
	for _, p := range l.nets {
		if p.Contains(ip) || embedded && p.Contains(v4) {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// allowsExactly reports whether one entry names ip alone (a /32 or /128),
// which is what it takes to open a metadata endpoint.
func (l *list) allowsExactly(ip netip.Addr) bool {
	ip = ip.WithZone("")
	if v4, _, ok := embeddedIPv4(ip); ok {
		ip = v4
	}
	for _, p := range l.nets {
		if p.IsSingleIP() && p.Addr() == ip {
			return true
		}
	}
	return false
}

// violation is why a request may not be made: what was found and, for an
// address, which one.
type violation struct {
	ip       netip.Addr // the address that would have been dialed; invalid for a host rule
	category string     // classify(ip) for a taint violation
	reason   string
}

// hostVerdict is what the host name alone decides.
type hostVerdict struct {
	allowed bool // Config.Allow names the host: only Config.Deny addresses stop it
	// metadata: an exact Config.Allow entry names this metadata host, which
	// opens the metadata addresses it resolves to.
	metadata bool
}

// checkHost applies the rules that need only the host name of the URL: the
// deny and allow lists by name, the metadata host names and, for a host from
// input, a host that is an address in any spelling or a localhost name (which
// need no DNS to be judged). self is where the service itself listens (see
// checkIP).
func (g *Guard) checkHost(host string, port uint16, t *taint, self netip.AddrPort) (hostVerdict, *violation) {
	if ok, _ := g.deny.matchHost(host); ok {
		return hostVerdict{}, &violation{reason: "host " + quoteHost(host) + " is in Config.Deny"}
	}
	var hv hostVerdict
	allowed, exact := g.allow.matchHost(host)
	if isMetadataHost(host) {
		if !exact {
			return hostVerdict{}, &violation{reason: quoteHost(host) + " is a cloud metadata endpoint"}
		}
		hv.metadata = true
	}
	hv.allowed = allowed
	if hv.allowed {
		return hv, nil
	}
	if ip, ok := g.hostIP(host); ok {
		v := g.checkIP(ip, port, hv, t, self)
		if v != nil && t != nil && v.category != "" {
			spelled := strings.TrimSuffix(strings.Trim(host, "[]"), ".")
			if spelled != ip.String() {
				v.reason = t.describe() + " is " + quoteHost(host) + ", " + v.category + " " + ip.String()
			} else {
				v.reason = t.describe() + " is " + v.category + " " + ip.String()
			}
		}
		return hv, v
	}
	if t != nil && isLocalhostName(host) && !(self.IsValid() && self.Port() == port) {
		return hv, &violation{category: "loopback", reason: t.describe() + " is the loopback name " + quoteHost(host)}
	}
	return hv, nil
}

// hostIP returns the address that host is, as the guard's resolver reads it:
// the C library's spellings (2130706433, 0x7f.1) count only where the C
// library resolves names (see readsSpellings), so that elsewhere a number in
// a URL is the DNS name it is.
func (g *Guard) hostIP(host string) (netip.Addr, bool) {
	ip, ok := parseIP(host, true)
	if !ok {
		return netip.Addr{}, false
	}
	if _, plain := parseIP(host, false); plain || g.readsSpellings() {
		return ip, true
	}
	return netip.Addr{}, false
}

// checkIP decides a connection to ip:port. In order: Config.Deny refuses;
// metadata endpoints are refused unless an exact Config.Allow entry names
// the address, or the metadata host name requested; Config.Allow accepts; a host that came
// from untrusted input may not reach an internal address, except the address
// and port on which the service received the request (self): a service that
// calls itself is not forging a request.
func (g *Guard) checkIP(ip netip.Addr, port uint16, hv hostVerdict, t *taint, self netip.AddrPort) *violation {
	ip = ip.WithZone("")
	if p, ok := g.deny.matchIP(ip); ok {
		return &violation{ip: ip, reason: ip.String() + " is in Config.Deny (" + p.String() + ")"}
	}
	if isMetadataAddr(ip) && !hv.metadata && !g.allow.allowsExactly(ip) {
		return &violation{ip: ip, reason: ip.String() + " is a cloud metadata endpoint"}
	}
	if hv.allowed || t == nil {
		return nil
	}
	if _, ok := g.allow.matchIP(ip); ok {
		return nil
	}
	c := classify(ip)
	if c == "" || isSelf(ip, port, self) {
		return nil
	}
	return &violation{ip: ip, category: c, reason: t.describe() + " resolves to " + c + " " + ip.String()}
}

// isSelf reports whether ip:port is the address the service received the
// request on, loopback addresses counting as one.
func isSelf(ip netip.Addr, port uint16, self netip.AddrPort) bool {
	if !self.IsValid() || port != self.Port() {
		return false
	}
	a, b := ip.Unmap().WithZone(""), self.Addr().Unmap().WithZone("")
	return a == b || a.IsLoopback() && b.IsLoopback()
}

// quoteHost quotes a host for a reason, cut so that an attacker's long name
// cannot fill the event.
func quoteHost(h string) string {
	const max = 80
	if len(h) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(h[cut]) {
			cut--
		}
		return strconv.Quote(h[:cut]) + "…"
	}
	return strconv.Quote(h)
}
