package sqlguard

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// escStyle is how a database decodes the content of a quoted literal.
type escStyle uint8

const (
	escNone      escStyle = iota // comments, $tag$ strings, [identifiers]: content is taken as it is
	escDouble                    // a doubled quote stands for one quote
	escMySQL                     // doubled quotes and MySQL's backslash escapes (\' \\ \n \0 \Z ...)
	escPostgresE                 // doubled quotes and the backslash escapes of PostgreSQL's E'...'
	escUnicode                   // doubled quotes and PostgreSQL's U&'...' escapes (\\ \0041 \+000041)
)

// unitAt returns the end of the unit of a literal's content that starts at j
// (j < end, end the end of the content): one byte, or an escape sequence. q
// is the literal's quote. plain reports that the unit decodes to itself.
func unitAt(s string, j, end int, es escStyle, q byte) (next int, plain bool) {
	c := s[j]
	switch {
	case c == q && es != escNone:
		next = j + 2 // inside the content, a quote is always doubled
	case c == '\\' && es == escMySQL:
		next = j + 2
		if next <= end && (s[j+1] == '%' || s[j+1] == '_') {
			// MySQL keeps \% and \_ as they are, for LIKE patterns.
			return next, true
		}
	case c == '\\' && es == escPostgresE:
		next = j + 2
		if j+1 < end {
			switch d := s[j+1]; {
			case '0' <= d && d <= '7':
				next = j + 1 + digitRun(s, j+1, end, 3, isOctal)
			case d == 'x':
				next = j + 2 + digitRun(s, j+2, end, 2, isHex)
			case d == 'u':
				next = j + 2 + digitRun(s, j+2, end, 4, isHex)
			case d == 'U':
				next = j + 2 + digitRun(s, j+2, end, 8, isHex)
			}
		}
	case c == '\\' && es == escUnicode:
		next = j + 2
		if j+1 < end {
			if s[j+1] == '+' {
				if digitRun(s, j+2, end, 6, isHex) == 6 {
					next = j + 8
				}
			} else if digitRun(s, j+1, end, 4, isHex) == 4 {
				next = j + 5
			}
		}
	default:
		return j + 1, true
	}
	return min(next, end), false
}

func isOctal(c byte) bool { return '0' <= c && c <= '7' }

// digitRun counts the bytes from i (at most max, before end) that ok accepts.
func digitRun(s string, i, end, max int, ok func(byte) bool) int {
	n := 0
	for i+n < end && n < max && ok(s[i+n]) {
		n++
	}
	return n
}

// decodeUnit appends what the database reads for the unit s[j:next].
func decodeUnit(dst []byte, s string, j, next int, es escStyle, q byte) []byte {
	u := s[j:next]
	if len(u) == 1 {
		return append(dst, u[0])
	}
	if u[0] == q {
		return append(dst, q)
	}
	// A backslash escape.
	switch es {
	case escMySQL:
		switch u[1] {
		case '0':
			return append(dst, 0)
		case 'b':
			return append(dst, '\b')
		case 'n':
			return append(dst, '\n')
		case 'r':
			return append(dst, '\r')
		case 't':
			return append(dst, '\t')
		case 'Z':
			return append(dst, 0x1a)
		case '%', '_':
			return append(dst, u...)
		}
		return append(dst, u[1])
	case escPostgresE:
		switch d := u[1]; {
		case 'b' == d:
			return append(dst, '\b')
		case 'f' == d:
			return append(dst, '\f')
		case 'n' == d:
			return append(dst, '\n')
		case 'r' == d:
			return append(dst, '\r')
		case 't' == d:
			return append(dst, '\t')
		case isOctal(d):
			v, _ := strconv.ParseUint(u[1:], 8, 16)
			return append(dst, byte(v))
		case d == 'x' && len(u) > 2:
			v, _ := strconv.ParseUint(u[2:], 16, 8)
			return append(dst, byte(v))
		case (d == 'u' || d == 'U') && len(u) > 2:
			v, _ := strconv.ParseUint(u[2:], 16, 32)
			return utf8.AppendRune(dst, rune(v))
		}
		return append(dst, u[1:]...)
	case escUnicode:
		switch {
		case len(u) == 5:
			v, _ := strconv.ParseUint(u[1:], 16, 32)
			return utf8.AppendRune(dst, rune(v))
		case len(u) == 8:
			v, _ := strconv.ParseUint(u[2:], 16, 32)
			return utf8.AppendRune(dst, rune(v))
		}
		return append(dst, u[1:]...)
	}
	return append(dst, u...)
}

// literal judges the occurrences of an input inside the content of one
// string or quoted identifier by what the database reads there. Occurrences
// must be given in increasing order of start: it scans the content once.
type literal struct {
	stmt       string
	tok        int // index of the token
	kind       tokenKind
	start, end int // its content
	es         escStyle
	q          byte
	pos        int // a unit boundary: every unit before it has been seen

	// The decoded content, built when an occurrence meets an escape: dec,
	// and for each decoded byte the start of the unit it comes from (and
	// the content's end after the last).
	dec     string
	rawAt   []int32
	wants   []string // what the content may decode to where the input is
	next    []int    // per want, the next decoded position to search from
	covered int      // the largest end of the spans taken so far
}

// hasEscapes reports whether the content of t may hold an escape sequence:
// a quote or, where backslashes escape, a backslash. Without one, every input
// inside it is read as it is.
func hasEscapes(stmt string, t token) bool {
	content := stmt[t.Inner:t.InnerEnd]
	if strings.IndexByte(content, stmt[t.Inner-1]) >= 0 {
		return true
	}
	return t.esc != escDouble && strings.IndexByte(content, '\\') >= 0
}

func newLiteral(stmt string, idx int, t token) literal {
	return literal{stmt: stmt, tok: idx, kind: t.Kind, start: t.Inner, end: t.InnerEnd, es: t.esc, q: stmt[t.Inner-1], pos: t.Inner}
}

// nextEscape returns the start of the first unit at or after from that does
// not decode to itself, or the end of the content. from must not decrease
// from one call to the next.
func (l *literal) nextEscape(from int) int {
	s := l.stmt
	for l.pos < l.end {
		if c := s[l.pos]; c == l.q || c == '\\' && l.es != escDouble {
			next, plain := unitAt(s, l.pos, l.end, l.es, l.q)
			if !plain && l.pos >= from {
				return l.pos
			}
			l.pos = next
			continue
		}
		// Single plain bytes up to the next byte that may start an escape.
		var k int
		if l.es == escDouble {
			k = strings.IndexByte(s[l.pos:l.end], l.q)
		} else {
			k = strings.IndexAny(s[l.pos:l.end], string([]byte{l.q, '\\'}))
		}
		if k < 0 {
			l.pos = l.end
			break
		}
		l.pos += k
	}
	return l.end
}

// judge returns why the occurrence [start,end) of form, inside the content,
// does not stand for value in what the database reads, or "". It does when
// no escape sequence starts inside it (its bytes are read as they are) or
// when the decoded content holds value, or form, at a place whose escaped
// text covers the occurrence: the application escaped the input there.
func (l *literal) judge(start, end int, form, value string) string {
	esc := l.nextEscape(start)
	if esc >= end {
		return ""
	}
	if l.covers(start, end, form, value) {
		return ""
	}
	next, _ := unitAt(l.stmt, esc, l.end, l.es, l.q)
	kind := l.kind.String()
	if next > end {
		return "escapes the " + quoteByte(l.stmt[end]) + " after it inside a " + kind
	}
	var read []byte
	for j := start; j < end; {
		n, _ := unitAt(l.stmt, j, l.end, l.es, l.q)
		read = decodeUnit(read, l.stmt, j, n, l.es, l.q)
		j = n
	}
	return "changes its value inside a " + kind + ": read as " + clip(string(read))
}

func quoteByte(c byte) string {
	switch c {
	case '\'':
		return "quote"
	case '"':
		return "double quote"
	case '`':
		return "backtick"
	}
	return strconv.QuoteRune(rune(c)) + " byte"
}

func clip(s string) string {
	const room = 40
	if len(s) > room {
		cut := room
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}

// covers reports whether some occurrence of value or form in the decoded
// content comes from raw text that includes [start,end). Calls must come in
// increasing order of start.
func (l *literal) covers(start, end int, form, value string) bool {
	if l.rawAt == nil {
		l.decode()
		l.wants = append(l.wants, value)
		if form != value {
			l.wants = append(l.wants, form)
		}
		l.next = make([]int, len(l.wants))
	}
	// Take every span that starts at or before start; spans of one want
	// come in increasing order of start and of end.
	for w, want := range l.wants {
		for l.next[w] >= 0 && want != "" {
			i := strings.Index(l.dec[l.next[w]:], want)
			if i < 0 {
				l.next[w] = -1
				break
			}
			i += l.next[w]
			spanStart := int(l.rawAt[i])
			if spanStart > start {
				break // keep it for a later occurrence
			}
			// The span ends with the unit of the last decoded byte (a unit
			// may decode to several bytes).
			last := i + len(want) - 1
			k := last + 1
			for k < len(l.dec) && l.rawAt[k] == l.rawAt[last] {
				k++
			}
			spanEnd := l.end
			if k < len(l.dec) {
				spanEnd = int(l.rawAt[k])
			}
			l.covered = max(l.covered, spanEnd)
			l.next[w] = i + 1
		}
	}
	return l.covered >= end
}

// decode builds the decoded content and the map back to the raw text.
func (l *literal) decode() {
	s := l.stmt
	dec := make([]byte, 0, l.end-l.start)
	rawAt := make([]int32, 0, l.end-l.start)
	for j := l.start; j < l.end; {
		next, _ := unitAt(s, j, l.end, l.es, l.q)
		n := len(dec)
		dec = decodeUnit(dec, s, j, next, l.es, l.q)
		for range len(dec) - n {
			rawAt = append(rawAt, int32(j))
		}
		j = next
	}
	l.dec = string(dec)
	if rawAt == nil {
		rawAt = []int32{}
	}
	l.rawAt = rawAt
}
