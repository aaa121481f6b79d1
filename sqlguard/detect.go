package sqlguard

import (
	"fmt"
	"strings"
)

// injection describes how an input changes a statement.
type injection struct {
	Start, End int    // the input's occurrence in the statement
	Reason     string // e.g. "closes a string literal and adds 6 tokens"
}

// detect reports whether input, occurring in stmt, is an injection: whether
// any occurrence of it is not wholly inside one token, or changes value
// inside the string it is in. toks must be tokenize(d, stmt, ...). An
// occurrence inside the content of one string, quoted identifier or comment
// is data when the database reads it as it is (or as the input, correctly
// escaped); an occurrence that is one whole word, number, parameter or
// operator, or a signed number where an operand starts, possibly with white
// space around it, cannot add syntax either (see the package documentation
// for what this leaves out). Anything else — an occurrence that reaches a
// quote or comment delimiter, that spans two tokens, or whose bytes the
// database reads as escape sequences — lets the input decide the structure
// or the data of the statement, and is an injection.
//
// form is the way the input value occurs in stmt: value itself, or value as
// an application transforms it before concatenating it (escaped, trimmed,
// decoded). Inside a literal, form is data where the database reads value
// or form.
func detect(stmt, form, value string, toks []token) (injection, bool) {
	if len(form) < minInput {
		return injection{}, false
	}
	// An input of quotes and white space only is judged only inside
	// literals: elsewhere its occurrences coincide with the delimiters that
	// the application writes around the input (see onlyQuotesAndSpace).
	quotesOnly := onlyQuotesAndSpace(form)
	// An input made only of escape sequences ('', \n, \') is the same bytes
	// as the escaped quotes and backslashes of any text: inside a literal, it
	// is judged only where it reaches the literal's start or end, as an
	// input concatenated into the literal does (see onlyEscapes).
	escapesOnly := onlyEscapes(form)
	for off := 0; ; {
		i := strings.Index(stmt[off:], form)
		if i < 0 {
			return injection{}, false
		}
		start := off + i
		end := start + len(form)
		reason, in, within := classify(stmt, toks, start, end)
		if reason != "" && (in >= 0 || !quotesOnly) {
			return injection{Start: start, End: end, Reason: reason}, true
		}
		if reason != "" || within == 0 {
			off = start + 1
			continue
		}
		if in >= 0 && toks[in].esc != escNone && hasEscapes(stmt, toks[in]) {
			// Judge every occurrence inside this literal here, in order.
			lit := newLiteral(stmt, in, toks[in])
			for s := start; ; {
				if escapesOnly && s != lit.start && s+len(form) != lit.end {
					// Inside other text: an escape of that text, not the
					// input's (O'Brien escaped holds two quotes).
				} else if reason := lit.judge(s, s+len(form), form, value); reason != "" {
					return injection{Start: s, End: s + len(form), Reason: reason}, true
				}
				// The next occurrence worth judging reaches the next escape
				// sequence of the literal (those before it are read as they
				// are) and is not inside the escaped input that covered this
				// one.
				next := max(s+1, lit.nextEscape(s+1)-len(form)+1, lit.covered-len(form)+1)
				i := -1
				if next+len(form) <= lit.end {
					i = strings.Index(stmt[next:lit.end], form)
				}
				if i < 0 {
					break
				}
				s = next + i
			}
			off = max(start+1, within-len(form)+1)
			continue
		}
		// Every later occurrence that ends by the end of the token holding
		// this one is inside it too: skip them, so that a short input
		// repeated through a long literal costs linear time.
		off = max(start+1, within-len(form)+1)
	}
}

// minInput is the length below which an input is not considered. This is
// the guard's own rule, not one the SDK applies to every input: a one-byte
// input cannot both open and use a string or comment, nor hold an escape
// sequence, so alone it can only make a statement fail.
const minInput = 2

// onlyQuotesAndSpace reports whether input holds nothing but quote characters
// and white space. Outside a literal, such an input can open or close
// literals but adds nothing the database would execute: concatenated raw,
// it makes the statement fail, or another input that it lets out of a
// literal is caught. And correctly escaped, it coincides with the
// application's own delimiters (two quotes, escaped, are four, and six with
// the delimiters around them: the raw input occurs across the opening
// quote), which must not block. Inside a literal it is judged like any
// input: raw, its doubled quotes are read as one and change its value.
func onlyQuotesAndSpace(input string) bool {
	for i := 0; i < len(input); i++ {
		switch input[i] {
		case '\'', '"', '`', ' ', '\t', '\n', '\r':
		default:
			return false
		}
	}
	return true
}

// onlyEscapes reports whether input is made only of quotes, white space and
// backslash escapes (a backslash and the byte after it). Such an input occurs
// wherever the statement's literals hold escaped quotes or backslashes —
// the input of two quotes occurs in O'Brien escaped, the input \n in a
// MySQL literal '\n' — so it is judged inside a literal only where it
// touches the literal's start or end: there it is the value, or the edge of
// a value, that the application concatenated.
func onlyEscapes(input string) bool {
	for i := 0; i < len(input); i++ {
		switch input[i] {
		case '\'', '"', '`', ' ', '\t', '\n', '\r':
		case '\\':
			i++
		default:
			return false
		}
	}
	return true
}

// classify returns why the occurrence [start,end) is an injection, or "";
// the index of the string, quoted identifier or comment whose content holds
// it wholly (-1 when none does); and the end of the content of the token
// that safely holds it (0 when none does).
func classify(stmt string, toks []token, start, end int) (reason string, in, within int) {
	// First token that ends after start.
	lo, hi := 0, len(toks)
	for lo < hi {
		m := (lo + hi) / 2
		if toks[m].End <= start {
			lo = m + 1
		} else {
			hi = m
		}
	}
	first := lo
	last := first
	for last < len(toks) && toks[last].Start < end {
		last++
	}
	n := last - first // tokens the occurrence touches
	switch n {
	case 0:
		return "", -1, 0 // white space only
	case 1:
		t := toks[first]
		switch t.Kind {
		case tokString, tokQuotedIdent, tokComment:
			if t.Inner <= start && end <= t.InnerEnd && !t.Unterminated {
				return "", first, t.InnerEnd
			}
			if t.Inner <= start && end <= t.InnerEnd {
				return fmt.Sprintf("leaves a %s unterminated", t.Kind), first, 0
			}
			if t.Start >= start && t.End <= end {
				return fmt.Sprintf("adds a %s", t.Kind), -1, 0
			}
			return fmt.Sprintf("breaks out of a %s", t.Kind), -1, 0
		}
		return "", -1, t.End
	case 2:
		if signedNumber(stmt, toks, first, start, end) {
			return "", -1, toks[first+1].End
		}
	}
	// Several tokens: the input decides where tokens begin and end.
	opens := ""
	if t := toks[first]; t.Start < start && (t.Kind == tokString || t.Kind == tokQuotedIdent || t.Kind == tokComment) {
		opens = fmt.Sprintf("closes a %s and ", t.Kind)
	}
	added := n
	if toks[first].Start < start {
		added--
	}
	if toks[last-1].End > end {
		added--
	}
	for _, t := range toks[first:last] {
		if t.Kind == tokComment && t.Start >= start {
			return opens + "adds " + tokens(added) + " including a comment", -1, 0
		}
	}
	return opens + "adds " + tokens(added), -1, 0
}

func tokens(n int) string {
	if n == 1 {
		return "1 token"
	}
	return fmt.Sprintf("%d tokens", n)
}

// signedNumber reports whether the occurrence [start,end), which touches
// the two tokens from first, is a sign and a number where the statement
// expects an operand: "-1" in "WHERE id = -1", "LIMIT -1", "OFFSET +3". Such
// an input is one value, as a number alone is. The sign must be a token of
// its own (the lexer keeps it apart from a comparison before it, "=-1", but
// not from "#-" and other PostgreSQL operators it would end), be followed by
// the number at once, and not follow an operand: after a column, a number
// or a closing parenthesis it subtracts ("a -1", "5-1"), which is structure.
// "--1" never gets here: it is a comment in PostgreSQL and SQLite, and two
// operators in MySQL.
func signedNumber(stmt string, toks []token, first, start, end int) bool {
	sign, num := toks[first], toks[first+1]
	if sign.Kind != tokOperator || sign.End-sign.Start != 1 || sign.Start < start ||
		stmt[sign.Start] != '-' && stmt[sign.Start] != '+' ||
		num.Kind != tokNumber || num.Start != sign.End {
		return false
	}
	for k := first - 1; k >= 0; k-- {
		t := toks[k]
		switch t.Kind {
		case tokComment:
			continue
		case tokOperator:
			return true
		case tokPunct:
			c := stmt[t.Start]
			return t.End-t.Start == 1 && (c == '(' || c == ',')
		case tokWord, tokKeyword:
			return startsOperand(stmt[t.Start:t.End])
		}
		return false // a number, string, identifier or parameter: "-" subtracts
	}
	return true // the start of the statement
}

// operandWords are the words after which an operand starts, so that a sign
// after them is unary.
var operandWords = func() map[string]struct{} {
	m := map[string]struct{}{}
	for _, w := range strings.Fields(`ALL AND ANY BETWEEN BY CASE DEFAULT DISTINCT DIV ELSE ESCAPE
		FIRST GLOB HAVING ILIKE INTERVAL LIKE LIMIT MOD NEXT NOT OFFSET ON OR REGEXP RETURN RLIKE
		SELECT SET SOME THEN TOP WHEN WHERE XOR`) {
		m[w] = struct{}{}
	}
	return m
}()

func startsOperand(w string) bool {
	if len(w) < 2 || len(w) > 8 {
		return false
	}
	var buf [8]byte
	for i := 0; i < len(w); i++ {
		c := w[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	_, ok := operandWords[string(buf[:len(w)])]
	return ok
}
