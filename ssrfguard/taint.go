package ssrfguard

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/rampartsec/rampart"
)

// taint records why the host of a request counts as chosen by an attacker.
type taint struct {
	input rampart.Input
	// from is the earlier hop whose host came from the input when this
	// request follows a redirect; nil when this request's own host did.
	from *url.URL
}

// describe names the tainted host in a reason: "host from query input ...".
func (t *taint) describe() string {
	src := string(t.input.Source)
	if src == "" {
		src = "untrusted"
	}
	if t.from != nil {
		return "redirect from a host from " + src + " input to a host that"
	}
	return "host from " + src + " input"
}

// maxHops bounds the walk back through a redirect chain; http.Client stops
// at 10 redirects.
const maxHops = 20

// taintOf returns why req's host counts as attacker-chosen, or nil: its host
// is derived from one of the untrusted inputs of ctx (see hostInInput), or
// req follows a redirect from a hop whose host was — the attacker's server
// answering "302 Location: http://127.0.0.1/" must not launder the address.
func taintOf(ctx context.Context, req *http.Request) *taint {
	if in, ok := inputFor(ctx, req.URL); ok {
		return &taint{input: in}
	}
	hop := req
	for range maxHops {
		if hop.Response == nil || hop.Response.Request == nil {
			return nil
		}
		prev := hop.Response.Request
		if st := stateFrom(prev.Context()); st != nil && st.taint != nil {
			from := st.taint.from
			if from == nil {
				from = prev.URL
			}
			return &taint{input: st.taint.input, from: from}
		}
		if in, ok := inputFor(ctx, prev.URL); ok {
			return &taint{input: in, from: prev.URL}
		}
		hop = prev
	}
	return nil
}

func inputFor(ctx context.Context, u *url.URL) (rampart.Input, bool) {
	if u == nil {
		return rampart.Input{}, false
	}
	return inputForHost(ctx, u.Hostname(), urlPort(u))
}

// inputForHost returns the first input of ctx that a connection to host on
// port was taken from (see hostInInput).
func inputForHost(ctx context.Context, host string, port uint16) (rampart.Input, bool) {
	if host == "" {
		return rampart.Input{}, false
	}
	h := newHostMatch(host)
	for in := range rampart.Inputs(ctx) {
		if h.in(in.Value, port) {
			return in, true
		}
	}
	return rampart.Input{}, false
}

// urlPort returns the port a request to u connects to, 0 if unknown.
func urlPort(u *url.URL) uint16 {
	if p := u.Port(); p != "" {
		n, ok := parsePort(p)
		if !ok {
			return 0
		}
		return n
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "ws":
		return 80
	case "https", "wss":
		return 443
	}
	return 0
}

func parsePort(s string) (uint16, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + uint64(s[i]-'0')
	}
	if n > 65535 {
		return 0, false
	}
	return uint16(n), true
}

// hostInInput reports whether host, the host name of a URL about to be
// requested on port, was taken from the untrusted input v. The input must
// contain the whole host (ASCII case folded, a trailing dot ignored, also
// after percent-decoding v once or twice, and also after mapping the four
// non-ASCII letters that case mappings make ASCII: see caseMapASCII) as a
// token of its own: not preceded or followed by a character that a host
// name continues with. So the input
// may be the host, host:port, a URL in any form (userinfo, brackets, zone) or
// a text that contains one, but "api" does not make "api.internal" tainted,
// and neither does "xapi.internal": an input that is only a word of the host
// did not choose it. A host that is an IP address also counts when the input
// writes the same address another way (see addrInInput).
//
// When the occurrence is followed by an explicit port, that port must be the
// one requested: an input naming localhost:8080 (a Referer, typically) did not
// choose a request to localhost:9090 that the service builds itself. Port 0
// names no service, and counts as no port.
func hostInInput(v, host string, port uint16) bool {
	h := newHostMatch(host)
	return h.in(v, port)
}

// hostMatch is a host prepared for hostInInput, once for all the inputs.
type hostMatch struct {
	host      string // no trailing dot
	hostUpper bool
	ip        netip.Addr // the address that host is, unmapped, without zone
	isAddr    bool
}

func newHostMatch(host string) hostMatch {
	host = strings.TrimSuffix(host, ".")
	h := hostMatch{host: host, hostUpper: hasUpper(host)}
	h.ip, h.isAddr = hostAddr(host)
	return h
}

func (h *hostMatch) in(v string, port uint16) bool {
	host, ip, isAddr := h.host, h.ip, h.isAddr
	if host == "" || len(v) < len(host) && (!isAddr || len(v) < len("::1")) {
		return false
	}
	for range 3 {
		if h.inText(v, port) {
			return true
		}
		// A service that case-maps its input turns the few non-ASCII
		// letters that map to ASCII ones into them (see caseMapASCII).
		if m := caseMapASCII(v); m != v && h.inText(m, port) {
			return true
		}
		if isAddr && addrInInput(v, host, ip, port) {
			return true
		}
		if strings.IndexByte(v, '%') < 0 {
			return false
		}
		d := percentDecode(v)
		if d == v {
			return false
		}
		v = d
	}
	return false
}

// inText reports whether v holds the host as matchHost reads it, ASCII case
// folded.
func (h *hostMatch) inText(v string, port uint16) bool {
	host := h.host
	if len(v) < len(host) {
		return false
	}
	if matchHost(v, host, port, false) {
		return true
	}
	if !h.hostUpper && !hasUpper(v) {
		return false
	}
	if len(v)*len(host) <= maxFoldScan {
		return matchHost(v, host, port, true)
	}
	return matchHost(asciiLower(v), asciiLower(host), port, false)
}

// caseMapASCII returns s with each non-ASCII letter that Go's case mappings
// turn into an ASCII one (strings.ToLower, ToUpper, ToTitle, with or without
// unicode.TurkishCase) replaced by that letter in lower case, the match
// folding ASCII case anyway: "\u212Aubernetes" becomes "kubernetes", which
// strings.ToLower makes of it. There are four: K (U+212A KELVIN SIGN) lowers
// to k, İ (U+0130) to i, ſ (U+017F LATIN SMALL LETTER LONG S) uppers to S and
// ı (U+0131 DOTLESS I) to I. unicode.SimpleFold knows the first and third
// only. A string without those letters is returned as it is, without
// allocating.
func caseMapASCII(s string) string {
	// The four start with the byte 0xC4, 0xC5 or 0xE2. Most inputs, ASCII
	// or not, hold none: a short one is looked through once, a long one
	// with IndexByte, faster than a loop.
	start := len(s)
	if len(s) <= 64 {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c == 0xC4 || c == 0xC5 || c == 0xE2 {
				start = i
				break
			}
		}
	} else {
		for _, lead := range [...]byte{0xC4, 0xC5, 0xE2} {
			if i := strings.IndexByte(s[:start], lead); i >= 0 {
				start = i
			}
		}
	}
	var b []byte
	done := 0 // s[:done] is in b
	for i := start; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if a := toASCIILetter(r); a != 0 {
			if b == nil {
				b = make([]byte, 0, len(s))
			}
			b = append(append(b, s[done:i]...), a)
			done = i + size
		}
		i += size
	}
	if b == nil {
		return s
	}
	return string(append(b, s[done:]...))
}

// toASCIILetter returns the ASCII letter that a case mapping turns r into,
// for the non-ASCII letters listed at caseMapASCII, and 0 for every other
// rune. TestCaseMapASCIIKnowsEveryLetter checks the list against package
// unicode.
func toASCIILetter(r rune) byte {
	switch r {
	case '\u212A': // KELVIN SIGN
		return 'k'
	case '\u017F': // LATIN SMALL LETTER LONG S
		return 's'
	case '\u0130': // LATIN CAPITAL LETTER I WITH DOT ABOVE
		return 'i'
	case '\u0131': // LATIN SMALL LETTER DOTLESS I
		return 'i'
	}
	return 0
}

// hostAddr returns the address that host, an IP literal, is: unmapped and
// without zone, the form in which two spellings of one address are equal.
func hostAddr(host string) (netip.Addr, bool) {
	if strings.IndexByte(host, ':') < 0 && (host == "" || !isDigit(host[len(host)-1])) {
		return netip.Addr{}, false // a name: spare the parse
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.WithZone("").Unmap(), true
}

// addrInInput reports whether the input v names the address ip (the host
// about to be dialed, an IP literal) in another spelling than host's: a
// service that reads its input as an address and dials it as Go writes it
// (netip.AddrPort.String, net.IP.String, Addr.Unmap) turns
// [0:0:0:0:0:0:0:1] into [::1], [::ffff:7f00:1] into [::ffff:127.0.0.1] or
// 127.0.0.1, and drops a zone. So an IPv6 literal of the input with the
// same value counts, and so does the IPv4 address in dotted form when the
// host is that address mapped to IPv6. The port rule of matchHost applies.
func addrInInput(v, host string, ip netip.Addr, port uint16) bool {
	if ip.Is4() && strings.IndexByte(host, ':') >= 0 && matchHost(v, ip.String(), port, false) {
		return true // ::ffff:127.0.0.1 from 127.0.0.1
	}
	if c := strings.IndexByte(v, ':'); c < 0 || strings.IndexByte(v[c+1:], ':') < 0 {
		return false // no IPv6 literal
	}
	for i := 0; i < len(v); {
		j := strings.IndexByte(v[i:], ':')
		if j < 0 {
			return false
		}
		j += i
		// The run of address characters around this colon, as a token.
		start, end := j, j+1
		for start > i && isHostByte(v[start-1], true) {
			start--
		}
		for end < len(v) && isHostByte(v[end], true) {
			end++
		}
		i = end
		tok := v[start:end]
		if strings.Count(tok, ":") < 2 {
			continue // "https:", "host:port"
		}
		if k := strings.IndexByte(tok, '%'); k >= 0 {
			tok = tok[:k] // a zone, percent-encoded or not
		}
		if a, err := netip.ParseAddr(strings.TrimSuffix(tok, ".")); err == nil && a.Unmap() == ip {
			if !otherPort(v[end:], true, port) {
				return true
			}
			continue
		}
		// ::1:6379, an address and a port without the brackets, which a
		// parser that splits at the last colon reads as [::1]:6379.
		if k := strings.LastIndexByte(tok, ':'); k > 0 {
			if a, err := netip.ParseAddr(tok[:k]); err == nil && a.Unmap() == ip && !otherPort(tok[k:], false, port) {
				return true
			}
		}
	}
	return false
}

// maxFoldScan bounds the work of the allocation-free case-insensitive scan
// (input length times host length); beyond it the input is lowered once and
// searched with strings.Index, which stays linear.
const maxFoldScan = 1 << 16

func matchHost(v, host string, port uint16, fold bool) bool {
	ipv6 := strings.IndexByte(host, ':') >= 0
	for off := 0; off+len(host) <= len(v); {
		var i int
		if fold {
			i = indexFoldASCII(v[off:], host)
		} else {
			i = strings.Index(v[off:], host)
		}
		if i < 0 {
			return false
		}
		i += off
		off = i + 1
		if i > 0 && isHostByte(v[i-1], ipv6) {
			continue
		}
		j := i + len(host)
		if j < len(v) && v[j] == '.' {
			j++
		}
		if j < len(v) && isHostByte(v[j], ipv6) {
			continue
		}
		if otherPort(v[j:], ipv6, port) {
			continue
		}
		return true
	}
	return false
}

// otherPort reports whether rest, what follows an occurrence of the host in
// an input, starts with an explicit port (after the closing bracket of an
// IPv6 address) that is not port. A port that is not one (above 65535, or
// 0, which clients read as "no port" and replace with their default) cannot
// name another service: the occurrence counts.
func otherPort(rest string, ipv6 bool, port uint16) bool {
	if ipv6 && strings.HasPrefix(rest, "]") {
		rest = rest[1:]
	}
	if len(rest) < 2 || rest[0] != ':' || !isDigit(rest[1]) {
		return false
	}
	k := 1
	for k < len(rest) && isDigit(rest[k]) {
		k++
	}
	p, ok := parsePort(rest[1:k])
	return ok && p != 0 && p != port
}

// indexFoldASCII is strings.Index with ASCII letters compared without case,
// without allocating. It costs up to len(s)*len(sub).
func indexFoldASCII(s, sub string) int {
	if sub == "" {
		return 0
	}
	first := lowerByte(sub[0])
outer:
	for i := 0; i+len(sub) <= len(s); i++ {
		if lowerByte(s[i]) != first {
			continue
		}
		for j := 1; j < len(sub); j++ {
			if lowerByte(s[i+j]) != lowerByte(sub[j]) {
				continue outer
			}
		}
		return i
	}
	return -1
}

func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// isHostByte reports whether c may continue a host name (or an IPv6
// address), so that an occurrence next to it is part of a longer host.
// Non-ASCII bytes do not: treating them as separators errs towards taint.
func isHostByte(c byte, ipv6 bool) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		return true
	case ipv6 && (c == ':' || c == '%'):
		return true
	}
	return false
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

func asciiLower(s string) string {
	if !hasUpper(s) {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// percentDecode decodes every valid %XX of s and leaves anything else as it
// is: an input is not a well-formed URL, and what matters is what an
// application that unescapes it would see.
func percentDecode(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && hexVal(s[i+1]) >= 0 && hexVal(s[i+2]) >= 0 {
			if b == nil {
				b = make([]byte, 0, len(s))
				b = append(b, s[:i]...)
			}
			b = append(b, byte(hexVal(s[i+1])<<4|hexVal(s[i+2])))
			i += 2
			continue
		}
		if b != nil {
			b = append(b, s[i])
		}
	}
	if b == nil {
		return s
	}
	return string(b)
}

// indexFold is strings.Index with ASCII case folded.
func indexFold(s, sub string) int {
	if i := strings.Index(s, sub); i >= 0 {
		return i
	}
	return indexFoldASCII(s, sub)
}
