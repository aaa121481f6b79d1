package clientip

import "strings"

// The Forwarded header (RFC 7239 section 4):
//
//	Forwarded         = 1#forwarded-element
//	forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
//	forwarded-pair    = token "=" value
//	value             = token / quoted-string
//
// Proxies are more relaxed than the grammar, and so is this parser where
// nothing can be misread: whitespace around ";" and ",", and an unquoted for=
// value holding ":", "[" or "]" ("for=[2001:db8::1]", "for=192.0.2.1:80"),
// are accepted. Anything else outside the grammar makes the element
// malformed.

// lastForwardedElement splits s at its last comma outside a quoted string
// into the element after it and the rest before it; whole reports that there
// was no such comma (elem is all of s). ok is false when a quoted string has
// no opening quote.
//
// Scanning backwards, a quote is escaped when an odd number of backslashes
// precede it (inside a quoted string a backslash always escapes the next
// byte, so a run of them pairs up from its left end); this finds the quoted
// strings of a well-formed element exactly as a forward parse would.
func lastForwardedElement(s string) (rest, elem string, whole, ok bool) {
	for i := len(s) - 1; i >= 0; i-- {
		switch s[i] {
		case ',':
			return s[:i], s[i+1:], false, true
		case '"':
			// s[i] closes a quoted string; find the quote that opens it.
			j := i
			for {
				j = strings.LastIndexByte(s[:j], '"')
				if j < 0 {
					return "", "", false, false
				}
				if backslashesBefore(s, j)%2 == 0 {
					break
				}
			}
			i = j
		}
	}
	return "", s, true, true
}

func backslashesBefore(s string, i int) int {
	n := 0
	for i > 0 && s[i-1] == '\\' {
		i--
		n++
	}
	return n
}

// forwardedFor returns the unquoted value of the for= parameter of a
// Forwarded element. ok is false when the element is malformed, has no for=,
// or has more than one (RFC 7239 section 4: a parameter MUST NOT occur more
// than once per element).
func forwardedFor(elem string) (value string, ok bool) {
	found := false
	for s := elem; ; {
		s = trimOWS(s)
		if s == "" {
			break
		}
		if s[0] == ';' { // an empty pair
			s = s[1:]
			continue
		}
		n := 0
		for n < len(s) && isTchar(s[n]) {
			n++
		}
		if n == 0 || n == len(s) || s[n] != '=' {
			return "", false
		}
		name := s[:n]
		s = s[n+1:]

		var v string
		var good bool
		if s != "" && s[0] == '"' {
			v, s, good = quotedString(s)
		} else {
			n = 0
			for n < len(s) && (isTchar(s[n]) || s[n] == ':' || s[n] == '[' || s[n] == ']') {
				n++
			}
			v, s, good = s[:n], s[n:], n > 0
		}
		if !good {
			return "", false
		}
		if strings.EqualFold(name, "for") {
			if found {
				return "", false
			}
			found, value = true, v
		}
		if s = trimOWS(s); s != "" {
			if s[0] != ';' {
				return "", false
			}
			s = s[1:]
		}
	}
	return value, found
}

// quotedString parses the quoted-string at the start of s (RFC 9110 section
// 5.6.4) and returns its unescaped content and what follows it.
func quotedString(s string) (content, rest string, ok bool) {
	escaped := false
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			content = s[1:i]
			if escaped {
				content = unescape(content)
			}
			return content, s[i+1:], true
		case c == '\\':
			i++
			if i == len(s) || !isQdtext(s[i]) && s[i] != '"' && s[i] != '\\' {
				return "", "", false
			}
			escaped = true
		case !isQdtext(c):
			return "", "", false
		}
	}
	return "", "", false // no closing quote
}

// isQdtext reports whether c may appear unescaped in a quoted string: tab,
// space, visible ASCII but '"' and '\', and obs-text.
func isQdtext(c byte) bool {
	return c == '\t' || c == ' ' || c >= 0x21 && c != '"' && c != '\\' && c != 0x7f
}

func unescape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// isTchar reports whether c is a token character (RFC 9110 section 5.6.2).
func isTchar(c byte) bool { return tchar[c] }

var tchar = func() (t [256]bool) {
	for c := range 256 {
		t[c] = isAlnum(byte(c)) || strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0
	}
	return t
}()
