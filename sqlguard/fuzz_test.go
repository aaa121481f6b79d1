package sqlguard

import (
	"fmt"
	"strings"
	"testing"
)

// The seed corpora are in testdata/fuzz/FuzzTokenize and
// testdata/fuzz/FuzzDetect; go test runs them as regression tests. To fuzz:
//
//	go test -run='^$' -fuzz=FuzzTokenize -fuzztime=60s ./sqlguard/
//	go test -run='^$' -fuzz=FuzzDetect -fuzztime=60s ./sqlguard/

// FuzzTokenize checks that the lexer, in every dialect, accounts for every
// byte exactly once: tokens in order, not overlapping, inside the statement,
// their content inside them, nothing but white space between them.
func FuzzTokenize(f *testing.F) {
	f.Add("SELECT 'it''s' FROM t -- c")
	f.Fuzz(func(t *testing.T, stmt string) {
		for _, d := range everyDialect {
			checkTokens(t, d, stmt)
		}
	})
}

func checkTokens(t *testing.T, d Dialect, stmt string) []token {
	t.Helper()
	toks := tokenize(d, stmt, nil, true)
	if len(toks) > len(stmt) {
		t.Fatalf("%v: %d tokens for %d bytes", d, len(toks), len(stmt))
	}
	prev := 0
	for i, tok := range toks {
		where := func() string { return fmt.Sprintf("%v: token %d %+v of %q", d, i, tok, stmt) }
		if tok.Kind < tokWord || tok.Kind > tokComment {
			t.Fatalf("%s: no such kind", where())
		}
		if tok.Start < prev || tok.Start >= tok.End || tok.End > len(stmt) {
			t.Fatalf("%s: out of order, empty or out of bounds (previous end %d)", where(), prev)
		}
		if tok.Start > tok.Inner || tok.Inner > tok.InnerEnd || tok.InnerEnd > tok.End {
			t.Fatalf("%s: content outside the token", where())
		}
		for j := prev; j < tok.Start; j++ {
			if !isSpace(stmt[j]) {
				t.Fatalf("%s: byte %d (%q) before it is in no token", where(), j, stmt[j])
			}
		}
		switch tok.Kind {
		case tokString, tokQuotedIdent, tokComment:
			if tok.Unterminated && tok.End != len(stmt) {
				t.Fatalf("%s: unterminated but ends before the statement", where())
			}
			if !tok.Unterminated {
				// A literal or comment means the same on its own: the
				// lexer carries no state into it.
				alone := tokenize(d, stmt[tok.Start:tok.End], nil, true)
				if len(alone) != 1 || alone[0].Kind != tok.Kind || alone[0].Unterminated ||
					alone[0].Inner != tok.Inner-tok.Start || alone[0].InnerEnd != tok.InnerEnd-tok.Start {
					t.Fatalf("%s: lexed on its own it is %+v", where(), alone)
				}
			}
		default:
			if tok.Unterminated || tok.Inner != tok.Start || tok.InnerEnd != tok.End {
				t.Fatalf("%s: only literals and comments have content", where())
			}
		}
		prev = tok.End
	}
	for j := prev; j < len(stmt); j++ {
		if !isSpace(stmt[j]) {
			t.Fatalf("%v: byte %d (%q) of %q after the last token is in no token", d, j, stmt[j], stmt)
		}
	}
	// Reusing a slice gives the same tokens.
	reused := tokenize(d, stmt, make([]token, 3, 8), true)
	if fmt.Sprint(reused) != fmt.Sprint(toks) {
		t.Fatalf("%v: tokenize with a reused slice differs", d)
	}
	return toks
}

// FuzzDetect checks detect on any statement and input, then the promise of
// no false positive: an input quoted the way the dialect requires, between a
// fixed prefix and suffix, is never reported for an occurrence inside its
// literal.
func FuzzDetect(f *testing.F) {
	f.Add("SELECT * FROM t WHERE a = 'x' OR 1=1 --'", "x' OR 1=1 --")
	f.Fuzz(func(t *testing.T, stmt, input string) {
		for _, d := range everyDialect {
			checkDetect(t, d, stmt, input)
			for _, q := range escapedQueries(d, input) {
				checkEscaped(t, d, input, q)
			}
			checkRaw(t, d, input)
		}
	})
}

// checkRaw is the other side of the promise: an input concatenated raw
// between the quotes of a string, which stays inside that string but which
// the database reads as something else (a doubled quote, a backslash escape
// in MySQL), is reported.
func checkRaw(t *testing.T, d Dialect, input string) {
	t.Helper()
	if len(input) < minInput {
		return
	}
	stmt := fuzzPrefix + "'" + input + "'" + fuzzSuffix
	toks := tokenize(d, stmt, nil, true)
	start := len(fuzzPrefix)
	var lit *token
	for i := range toks {
		if toks[i].Start == start {
			lit = &toks[i]
		}
	}
	if lit == nil || lit.Kind != tokString || lit.Unterminated || lit.End != start+len(input)+2 {
		return // the input does not stay in the string: another rule's business
	}
	read := readString(d, input)
	if read == input {
		return
	}
	if _, ok := detect(stmt, input, input, toks); !ok {
		t.Fatalf("%v: detect(%q, %q) found nothing, but the database reads the string as %q", d, stmt, input, read)
	}
}

// readString decodes the content of a '...' string the way the dialect's
// server does; written apart from the guard's decoder, as an oracle.
func readString(d Dialect, content string) string {
	if d != MySQL {
		return strings.ReplaceAll(content, "''", "'")
	}
	var b strings.Builder
	for i := 0; i < len(content); i++ {
		c := content[i]
		switch {
		case c == '\\' && i+1 < len(content):
			i++
			switch e := content[i]; e {
			case '0':
				b.WriteByte(0)
			case 'b':
				b.WriteByte('\b')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'Z':
				b.WriteByte(0x1a)
			case '%', '_':
				b.WriteByte('\\')
				b.WriteByte(e)
			default:
				b.WriteByte(e)
			}
		case c == '\'' && i+1 < len(content) && content[i+1] == '\'':
			i++
			b.WriteByte('\'')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func checkDetect(t *testing.T, d Dialect, stmt, input string) {
	t.Helper()
	inj, ok := detect(stmt, input, input, tokenize(d, stmt, nil, true))
	if !ok {
		return
	}
	if len(input) < minInput {
		t.Fatalf("%v: detect(%q, %q) reported an input shorter than %d bytes", d, stmt, input, minInput)
	}
	if inj.Start < 0 || inj.End > len(stmt) || inj.End-inj.Start != len(input) || stmt[inj.Start:inj.End] != input {
		t.Fatalf("%v: detect(%q, %q) = %+v: not an occurrence of the input", d, stmt, input, inj)
	}
	if inj.Reason == "" {
		t.Fatalf("%v: detect(%q, %q) = %+v: no reason", d, stmt, input, inj)
	}
}

const (
	fuzzPrefix = "SELECT id FROM users WHERE name = "
	fuzzSuffix = " AND active = 1 ORDER BY id"
)

// escapedLiteral is an input written into a statement the way a correct
// application writes it: quoted and escaped for the dialect, or inside a
// comment when it holds nothing that ends the comment.
type escapedLiteral struct {
	quoting         string // what kind of literal, for messages
	kind            tokenKind
	esc             escStyle // how the database decodes it
	prefix          string
	literal         string // the quoted input; it may end with white space
	tokLen          int    // the token's length within literal
	inner, innerEnd int    // the token's content within literal
	in, inEnd       int    // the escaped input within literal
}

func (q escapedLiteral) stmt() string      { return q.prefix + q.literal + fuzzSuffix }
func (q escapedLiteral) contentStart() int { return len(q.prefix) + q.in }
func (q escapedLiteral) contentEnd() int   { return len(q.prefix) + q.inEnd }

func quotedLiteral(quoting string, k tokenKind, prefix, open, body, closing string) escapedLiteral {
	n := len(open) + len(body) + len(closing)
	return escapedLiteral{quoting: quoting, kind: k, prefix: prefix, literal: open + body + closing, tokLen: n,
		inner: len(open), innerEnd: len(open) + len(body), in: len(open), inEnd: len(open) + len(body)}
}

// decodedBy sets how the database decodes the literal's content.
func (q escapedLiteral) decodedBy(es escStyle) escapedLiteral {
	q.esc = es
	return q
}

func (t token) withoutEsc() token {
	t.esc = escNone
	return t
}

// escapedQueries returns the ways the dialect lets an application quote in.
func escapedQueries(d Dialect, in string) []escapedLiteral {
	double := func(s, q string) string { return strings.ReplaceAll(s, q, q+q) }
	backslashes := func(s string) string { return strings.ReplaceAll(s, `\`, `\\`) }
	var qs []escapedLiteral
	switch d {
	case Postgres:
		qs = append(qs,
			quotedLiteral("string", tokString, fuzzPrefix, "'", double(in, "'"), "'").decodedBy(escDouble),
			quotedLiteral("E string", tokString, fuzzPrefix, "E'", double(backslashes(in), "'"), "'").decodedBy(escPostgresE),
			quotedLiteral("quoted identifier", tokQuotedIdent, "SELECT ", `"`, double(in, `"`), `"`).decodedBy(escDouble))
		// A dollar tag quotes anything that does not hold the tag.
		if strings.Index(in+"$q$", "$q$") == len(in) {
			qs = append(qs, quotedLiteral("dollar string", tokString, fuzzPrefix, "$q$", in, "$q$"))
		}
	case MySQL:
		qs = append(qs,
			quotedLiteral("string", tokString, fuzzPrefix, "'", double(backslashes(in), "'"), "'").decodedBy(escMySQL),
			quotedLiteral("double-quoted string", tokString, fuzzPrefix, `"`, double(backslashes(in), `"`), `"`).decodedBy(escMySQL),
			quotedLiteral("backtick identifier", tokQuotedIdent, "SELECT ", "`", double(in, "`"), "`").decodedBy(escDouble))
	case SQLite:
		qs = append(qs,
			quotedLiteral("string", tokString, fuzzPrefix, "'", double(in, "'"), "'").decodedBy(escDouble),
			quotedLiteral("quoted identifier", tokQuotedIdent, "SELECT ", `"`, double(in, `"`), `"`).decodedBy(escDouble),
			quotedLiteral("backtick identifier", tokQuotedIdent, "SELECT ", "`", double(in, "`"), "`").decodedBy(escDouble))
		if !strings.Contains(in, "]") {
			qs = append(qs, quotedLiteral("bracket identifier", tokQuotedIdent, "SELECT ", "[", in, "]"))
		}
	}
	// Comments cannot escape; an application may put in a comment only what
	// does not end it.
	block := !strings.Contains(in, "*/") && !(d == Postgres && strings.Contains(in, "/*")) &&
		!(d == SQLite && strings.Contains(in, "\x00"))
	if block {
		q := quotedLiteral("block comment", tokComment, "SELECT 1 ", "/* ", in, " */")
		q.inner, q.innerEnd = 2, len(q.literal)-2
		qs = append(qs, q)
	}
	line := !strings.Contains(in, "\n") && !(d == Postgres && strings.Contains(in, "\r")) &&
		!(d != Postgres && strings.Contains(in, "\x00"))
	if line {
		q := quotedLiteral("line comment", tokComment, "SELECT 1 ", "-- ", in, "\n")
		q.tokLen, q.inner, q.innerEnd = len(q.literal)-1, 2, len(q.literal)-1
		if d == MySQL {
			q.inner = 3 // MySQL's delimiter is "-- " with its space
		}
		qs = append(qs, q)
	}
	return qs
}

// checkEscaped checks that the literal is one token holding the input, that
// the statement around it lexes as it does without it, and that no
// occurrence of the input inside the literal is reported. An occurrence that
// reaches into the prefix, the delimiters or the suffix (an input of two
// single quotes against the quotes around it) may be reported: it coincides
// with the application's own syntax.
func checkEscaped(t *testing.T, d Dialect, input string, q escapedLiteral) {
	t.Helper()
	stmt := q.stmt()
	toks := tokenize(d, stmt, nil, true)
	before := tokenize(d, q.prefix, nil, true)
	after := tokenize(d, fuzzSuffix, nil, true)
	if len(toks) != len(before)+1+len(after) {
		t.Fatalf("%v %s: %q lexes as %d tokens, want %d+1+%d", d, q.quoting, stmt, len(toks), len(before), len(after))
	}
	start := len(q.prefix)
	want := token{Kind: q.kind, Start: start, End: start + q.tokLen, Inner: start + q.inner, InnerEnd: start + q.innerEnd}
	if got := toks[len(before)]; got.esc != q.esc || got.withoutEsc() != want {
		t.Fatalf("%v %s: the literal of %q lexes as %+v, want %+v", d, q.quoting, stmt, got, want)
	}
	for i, tok := range toks[:len(before)] {
		if tok != before[i] {
			t.Fatalf("%v %s: the prefix of %q lexes differently: %+v, want %+v", d, q.quoting, stmt, tok, before[i])
		}
	}
	shift := start + len(q.literal)
	for i, tok := range toks[len(before)+1:] {
		a := after[i]
		a.Start, a.End, a.Inner, a.InnerEnd = a.Start+shift, a.End+shift, a.Inner+shift, a.InnerEnd+shift
		if tok != a {
			t.Fatalf("%v %s: the suffix of %q lexes differently: %+v, want %+v", d, q.quoting, stmt, tok, a)
		}
	}

	inj, ok := detect(stmt, input, input, toks)
	if ok && insideRange(inj, q.contentStart(), q.contentEnd()) {
		t.Fatalf("%v %s: detect(%q, %q) = %+v: an occurrence inside the literal is reported", d, q.quoting, stmt, input, inj)
	}
	if ok && onlyInside(stmt, input, q.contentStart(), q.contentEnd()) {
		t.Fatalf("%v %s: detect(%q, %q) = %+v though every occurrence is inside the literal", d, q.quoting, stmt, input, inj)
	}
}

func insideRange(inj injection, start, end int) bool { return start <= inj.Start && inj.End <= end }

// onlyInside reports whether every occurrence of input in stmt is inside
// [start,end).
func onlyInside(stmt, input string, start, end int) bool {
	if input == "" {
		return true
	}
	for off := 0; ; {
		i := strings.Index(stmt[off:], input)
		if i < 0 {
			return true
		}
		if off+i < start || off+i+len(input) > end {
			return false
		}
		off += i + 1
	}
}
