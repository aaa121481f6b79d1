package fsguard

import (
	"os"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// A form is one way an input can appear in a name once the application has
// transformed it: the value as received, or decoded, normalised, trimmed.
type form struct {
	value string
	how   string // how the application transformed it, "" for the input as received
}

// Bounds on the work done for one input. Three rounds of percent-decoding
// cover double and triple encoding; an application that decodes more often
// than that is rare enough to leave to os.Root.
const (
	maxDecodes = 3
	maxForms   = 12
)

// mayTransform reports whether v has a byte that one of the transformations
// in forms would change: a percent sign, a backslash where it is not a
// separator, white space at either end, or a non-ASCII character. Most inputs
// have none, and for them the input as received is the only form. It runs
// for every input at every check, so it leans on the vectorised searches of
// package strings and reads eight bytes at a time.
func mayTransform(v string) bool {
	if v == "" {
		return false
	}
	return isSpace(v[0]) || isSpace(v[len(v)-1]) ||
		strings.IndexByte(v, '%') >= 0 ||
		!os.IsPathSeparator('\\') && strings.IndexByte(v, '\\') >= 0 ||
		!isASCII(v)
}

func isASCII(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if w&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// transformedForms returns the forms of v that an application may pass on
// instead of v itself, each different from v:
//
//   - trimmed of white space (strings.TrimSpace);
//   - percent-decoded once, twice or three times (url.PathUnescape, and
//     url.QueryUnescape when the value has a '+'), which is what an
//     application that decodes an already decoded parameter does, and how a
//     double-encoded "..%252f" becomes "../";
//   - normalised with NFKC, each of the above: "‥" U+2025 becomes "..",
//     "／" U+FF0F "/", "ｅｔｃ" "etc";
//   - with backslashes turned into slashes, on systems where a backslash is
//     not a separator, each of the above.
func transformedForms(v string) []form {
	out := make([]form, 0, 4)
	seen := func(s string) bool {
		if s == v {
			return true
		}
		for _, f := range out {
			if f.value == s {
				return true
			}
		}
		return false
	}
	add := func(s, how string) {
		if len(out) < maxForms && !seen(s) {
			out = append(out, form{s, how})
		}
	}
	base := []form{{v, ""}}
	if t := strings.TrimSpace(v); t != v && t != "" {
		add(t, "trimmed")
		base = append(base, form{t, "trimmed"})
	}
	for _, b := range base {
		cur := b.value
		for i := 1; i <= maxDecodes && strings.IndexByte(cur, '%') >= 0; i++ {
			next := percentDecode(cur, false)
			if next == cur {
				break
			}
			add(next, join(b.how, decodedHow(i)))
			if strings.IndexByte(cur, '+') >= 0 {
				add(percentDecode(cur, true), join(b.how, decodedHow(i)))
			}
			cur = next
		}
	}
	n := len(out)
	for i := -1; i < n; i++ {
		f := form{v, ""}
		if i >= 0 {
			f = out[i]
		}
		if !isASCII(f.value) {
			if n := norm.NFKC.String(f.value); n != f.value {
				add(n, join(f.how, "NFKC-normalised"))
			}
		}
	}
	if !os.IsPathSeparator('\\') {
		n = len(out)
		for i := -1; i < n; i++ {
			f := form{v, ""}
			if i >= 0 {
				f = out[i]
			}
			if strings.IndexByte(f.value, '\\') >= 0 {
				add(strings.ReplaceAll(f.value, `\`, "/"), join(f.how, "backslashes read as slashes"))
			}
		}
	}
	return out
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + ", " + b
}

func decodedHow(times int) string {
	switch times {
	case 1:
		return "percent-decoded"
	case 2:
		return "percent-decoded twice"
	}
	return "percent-decoded three times"
}

// percentDecode decodes every well-formed %XX of s, and '+' as a space when
// plus is set. Unlike url.PathUnescape it keeps a malformed escape as it is
// rather than failing: some decoders do the same, and a form that the
// application did not produce simply never occurs in the name.
func percentDecode(s string, plus bool) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			if b == nil {
				b = append(make([]byte, 0, len(s)), s[:i]...)
			}
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		case c == '+' && plus:
			if b == nil {
				b = append(make([]byte, 0, len(s)), s[:i]...)
			}
			b = append(b, ' ')
		default:
			if b != nil {
				b = append(b, c)
			}
		}
	}
	if b == nil {
		return s
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
