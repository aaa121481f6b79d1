package sqlguard

import (
	"fmt"
	"strings"
)

// Injection describes how an input changes a statement.
type Injection struct {
	Start, End int    // the input's occurrence in the statement
	Reason     string // e.g. "closes a string literal and adds 6 tokens"
}

// Detect reports whether input, occurring in stmt, is an injection: whether
// any occurrence of it is not wholly inside one token. toks must be
// Tokenize(d, stmt). An occurrence inside the content of one string, quoted
// identifier or comment is data; an occurrence that is one whole word,
// number, parameter or operator, possibly with white space around it, cannot
// add syntax either (see the package documentation for what this leaves
// out). Anything else — an occurrence that reaches a quote or comment
// delimiter, or that spans two tokens — lets the input decide the structure
// of the statement, and is an injection.
func Detect(stmt, input string, toks []Token) (Injection, bool) {
	if len(input) < minInput || onlyQuotesAndSpace(input) {
		return Injection{}, false
	}
	for off := 0; ; {
		i := strings.Index(stmt[off:], input)
		if i < 0 {
			return Injection{}, false
		}
		start := off + i
		end := start + len(input)
		reason, within := classify(toks, start, end)
		if reason != "" {
			return Injection{Start: start, End: end, Reason: reason}, true
		}
		// Every later occurrence that ends by the end of the token holding
		// this one is inside it too: skip them, so that a short input
		// repeated through a long literal costs linear time.
		off = max(start+1, within-len(input)+1)
	}
}

// minInput mirrors the SDK's rule: a one-byte input cannot both open and use
// a string or comment, so alone it can only make a statement fail.
const minInput = 2

// onlyQuotesAndSpace reports whether input holds nothing but quote characters
// and white space. Such an input can open or close literals but adds nothing
// the database would execute: concatenated raw, it makes the statement fail
// or changes a string's text. Escaped correctly, it coincides with the
// application's own delimiters (” next to the opening quote), which must not
// block.
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

// classify returns why the occurrence [start,end) is an injection, or "" and
// the end of the content of the token that safely holds it (0 when none
// does).
func classify(toks []Token, start, end int) (string, int) {
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
		return "", 0 // white space only
	case 1:
		t := toks[first]
		switch t.Kind {
		case String, QuotedIdent, Comment:
			if t.Inner <= start && end <= t.InnerEnd && !t.Unterminated {
				return "", t.InnerEnd
			}
			if t.Inner <= start && end <= t.InnerEnd {
				return fmt.Sprintf("leaves a %s unterminated", t.Kind), 0
			}
			if t.Start >= start && t.End <= end {
				return fmt.Sprintf("adds a %s", t.Kind), 0
			}
			return fmt.Sprintf("breaks out of a %s", t.Kind), 0
		}
		return "", t.End
	}
	// Several tokens: the input decides where tokens begin and end.
	opens := ""
	if t := toks[first]; t.Start < start && (t.Kind == String || t.Kind == QuotedIdent || t.Kind == Comment) {
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
		if t.Kind == Comment && t.Start >= start {
			return opens + "adds " + tokens(added) + " including a comment", 0
		}
	}
	return opens + "adds " + tokens(added), 0
}

func tokens(n int) string {
	if n == 1 {
		return "1 token"
	}
	return fmt.Sprintf("%d tokens", n)
}
