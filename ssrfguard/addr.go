package ssrfguard

import (
	"net/netip"
	"strings"
)

// parseIP returns the address that host denotes without a DNS query, read the
// way the resolver that dials it reads it:
//
//   - IPv6 with or without brackets, with or without a zone ("[::1]",
//     "fe80::1%eth0"); the zone is dropped.
//   - IPv4 in dotted-decimal form, four parts ("127.0.0.1"), as Go's dialer
//     reads it before any resolver is asked.
//   - With spellings set, IPv4 in every form inet_aton(3) accepts: one to
//     four parts separated by dots, each decimal, octal (leading 0) or
//     hexadecimal (0x), the last part filling the bytes that remain: 127.1,
//     2130706433, 0x7f000001, 0x7f.1, 0177.0.0.1. The C library's resolver
//     (glibc's getaddrinfo, Go's cgo resolver, macOS and Windows) connects to
//     them; Go's own resolver does not (it looks an all-numeric name up in
//     /etc/hosts only, and sends 0x7f.1 to DNS): see Guard.readsSpellings.
//
// One trailing dot is ignored ("127.0.0.1." is treated as 127.0.0.1 although
// a resolver may send it to DNS): for a guard, reading too much as an address
// is the safe mistake, and no ordinary value is spelled that way.
func parseIP(host string, spellings bool) (netip.Addr, bool) {
	if host == "" {
		return netip.Addr{}, false
	}
	if host[0] == '[' {
		if len(host) < 2 || host[len(host)-1] != ']' {
			return netip.Addr{}, false
		}
		return parseIPv6(host[1 : len(host)-1])
	}
	if strings.IndexByte(host, ':') >= 0 {
		if ip, ok := parseIPv6(host); ok {
			return ip, true
		}
		return parseIPv6(strings.TrimSuffix(host, "."))
	}
	host = strings.TrimSuffix(host, ".")
	if !spellings {
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is4() {
			return netip.Addr{}, false
		}
		return ip, true
	}
	return parseIPv4(host)
}

func parseIPv6(s string) (netip.Addr, bool) {
	if strings.IndexByte(s, ':') < 0 {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(s)
	if err != nil || !ip.Is6() {
		return netip.Addr{}, false
	}
	return ip.WithZone(""), true
}

// parseIPv4 implements glibc's inet_aton: parts are parsed like strtoul with
// base 0, every part but the last is one byte, the last part fills the
// remaining 4, 3, 2 or 1 bytes, and nothing may follow.
func parseIPv4(s string) (netip.Addr, bool) {
	if s == "" || !isDigit(s[0]) {
		return netip.Addr{}, false
	}
	var parts [4]uint32
	n := 0
	for {
		v, rest, ok := parseAtonPart(s)
		if !ok {
			return netip.Addr{}, false
		}
		parts[n] = v
		n++
		if rest == "" {
			break
		}
		if rest[0] != '.' || n == 4 {
			return netip.Addr{}, false
		}
		s = rest[1:]
	}
	for _, p := range parts[:n-1] {
		if p > 0xff {
			return netip.Addr{}, false
		}
	}
	last := parts[n-1]
	if last > uint32(0xffffffff>>(8*(n-1))) {
		return netip.Addr{}, false
	}
	var v uint32
	for _, p := range parts[:n-1] {
		v = v<<8 | p
	}
	v = v<<(8*(5-n)) | last
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// parseAtonPart reads one number of an inet_aton address from the start of s
// and returns it with the rest of s. It fails on an empty part, on a value
// above 32 bits, and on "0x" without hex digits (strtoul would stop after the
// 0, leaving an "x" that inet_aton rejects).
func parseAtonPart(s string) (v uint32, rest string, ok bool) {
	if s == "" || !isDigit(s[0]) {
		return 0, s, false
	}
	base, i := uint64(10), 0
	if s[0] == '0' {
		base, i = 8, 1
		if len(s) > 1 && (s[1] == 'x' || s[1] == 'X') {
			base, i = 16, 2
			if len(s) == 2 || hexVal(s[2]) < 0 {
				return 0, s, false
			}
		}
	}
	var acc uint64
	for ; i < len(s); i++ {
		d := hexVal(s[i])
		if d < 0 || uint64(d) >= base {
			break
		}
		acc = acc*base + uint64(d)
		if acc > 0xffffffff {
			return 0, s, false
		}
	}
	return uint32(acc), s[i:], true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func hexVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// isLocalhostName reports whether host is a name that resolves to the
// loopback interface without DNS: localhost and its subdomains (RFC 6761,
// which resolvers such as systemd-resolved answer locally) and the aliases
// that distributions put in /etc/hosts.
func isLocalhostName(host string) bool {
	h := strings.TrimSuffix(host, ".")
	for _, name := range [...]string{"localhost", "localhost.localdomain", "localhost6", "localhost6.localdomain6", "ip6-localhost", "ip6-loopback"} {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return hasSuffixFold(h, ".localhost")
}

// equalHost compares host names as DNS does: ASCII case folded, a trailing
// dot ignored.
func equalHost(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}
