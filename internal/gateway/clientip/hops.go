package clientip

import (
	"net/netip"
	"strings"
)

// hops yields the addresses of a forwarding header's elements from the right,
// the order in which the proxies that wrote them can be checked.
//
// Parsing from the right is what makes the header safe to read: the elements
// the walk uses were written by trusted proxies and are found by their own
// bytes alone, whatever the client put to their left (an unterminated quoted
// string, megabytes of commas). Nothing left of the element the walk stops at
// is parsed. The lines of a header are taken last first, each line one or
// more whole elements, as if joined by commas.
type hops struct {
	lines     []string
	forwarded bool // Forwarded (RFC 7239) elements, else X-Forwarded-For

	line      int    // index of the line being read; lines before it are unread
	rest      string // unread part of that line; elements are taken from its end
	inLine    bool   // rest holds at least one more element (possibly empty)
	truncated bool   // rest was cut on the left to fit the byte budget
	budget    int    // bytes of lines not yet taken
	n         int    // elements taken
	bad       bool   // an unusable element was found: the walk is over
}

func (h *hops) start() {
	h.line = len(h.lines)
	h.budget = maxHeaderBytes
}

// hopState says what next found.
type hopState uint8

const (
	hopAddr     hopState = iota // an address
	hopEnd                      // no element left: the header ends here
	hopUnusable                 // an element with no usable address, or one beyond the bounds
)

// next returns the address of the next element from the right, or says that
// there is none left (hopEnd) or that the element carries no usable address
// (hopUnusable: obfuscated, "unknown", malformed, empty, beyond the bounds).
// The walk must stop at either. After hopUnusable, it keeps returning it.
func (h *hops) next() (netip.Addr, hopState) {
	if h.bad {
		return netip.Addr{}, hopUnusable
	}
	if !h.inLine {
		if h.line == 0 {
			return netip.Addr{}, hopEnd
		}
		if h.budget == 0 {
			// Out of budget: a further line would be cut to nothing.
			return h.stop()
		}
		h.line--
		h.rest = h.lines[h.line]
		if len(h.rest) > h.budget {
			h.rest = h.rest[len(h.rest)-h.budget:]
			h.truncated = true
		}
		h.budget -= len(h.rest)
		h.inLine = true
	}
	h.n++
	if h.n > maxHops {
		return h.stop()
	}

	var elem string
	var whole bool // elem ends at the start of rest: no separator to its left
	if h.forwarded {
		var good bool
		if h.rest, elem, whole, good = lastForwardedElement(h.rest); !good {
			return h.stop()
		}
	} else {
		i := strings.LastIndexByte(h.rest, ',')
		elem, whole = h.rest[i+1:], i < 0
		if i >= 0 {
			h.rest = h.rest[:i]
		}
	}
	if whole {
		h.inLine = false
		if h.truncated {
			// The leftmost element of a cut line is a fragment of one:
			// "11.2.3.4" cut to "1.2.3.4", "x-for=" cut to "for=".
			return h.stop()
		}
	}

	elem = trimOWS(elem)
	if h.forwarded {
		var good bool
		if elem, good = forwardedFor(elem); !good {
			return h.stop()
		}
	}
	addr, ok := parseNode(elem)
	if !ok {
		return h.stop()
	}
	return addr, hopAddr
}

func (h *hops) stop() (netip.Addr, hopState) {
	h.bad = true
	return netip.Addr{}, hopUnusable
}

// parseNode parses a hop's address as proxies write it: in X-Forwarded-For,
// and in Forwarded's for= once unquoted (RFC 7239 section 6). It accepts an
// IPv4 address, a bracketed IPv6 address, either with a port (RFC 7239 allows
// an obfuscated port, "_abc"), and a bare IPv6 address, which some proxies
// write. The address is unmapped; one with a zone is refused (a zone means
// nothing off the host that wrote it). "unknown" and obfuscated identifiers
// ("_hidden") are not addresses, so they are refused too.
func parseNode(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	var a netip.Addr
	var err error
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		if port := s[end+1:]; port != "" && (port[0] != ':' || !validPort(port[1:])) {
			return netip.Addr{}, false
		}
		if a, err = netip.ParseAddr(s[1:end]); err != nil || !a.Is6() {
			return netip.Addr{}, false
		}
	} else if a, err = netip.ParseAddr(s); err != nil {
		// The last chance: IPv4 with a port. A colon in an IPv6 address
		// cannot be told from a port separator, hence the brackets above.
		i := strings.LastIndexByte(s, ':')
		if i < 0 || !validPort(s[i+1:]) {
			return netip.Addr{}, false
		}
		if a, err = netip.ParseAddr(s[:i]); err != nil || !a.Is4() {
			return netip.Addr{}, false
		}
	}
	if a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// validPort reports whether s is an RFC 7239 node-port: 1 to 5 digits, or an
// obfuscated port ("_" and letters, digits, ".", "_", "-").
func validPort(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '_' {
		if len(s) == 1 {
			return false
		}
		for i := 1; i < len(s); i++ {
			c := s[i]
			if !isAlnum(c) && c != '.' && c != '_' && c != '-' {
				return false
			}
		}
		return true
	}
	if len(s) > 5 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// trimOWS removes HTTP optional whitespace (spaces and tabs) around s.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
