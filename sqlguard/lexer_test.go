package sqlguard

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// lexed is a token as the tests write it: its kind, its exact text, and
// whether it runs unterminated to the end of the statement.
type lexed struct {
	kind         tokenKind
	text         string
	unterminated bool
}

func (l lexed) String() string {
	if l.unterminated {
		return fmt.Sprintf("%v %q (unterminated)", l.kind, l.text)
	}
	return fmt.Sprintf("%v %q", l.kind, l.text)
}

func tk(k tokenKind, text string) lexed     { return lexed{kind: k, text: text} }
func unterm(k tokenKind, text string) lexed { return lexed{kind: k, text: text, unterminated: true} }

func lexText(d Dialect, stmt string) []lexed {
	var out []lexed
	for _, t := range tokenize(d, stmt, nil, true) {
		out = append(out, lexed{t.Kind, stmt[t.Start:t.End], t.Unterminated})
	}
	return out
}

var everyDialect = []Dialect{Postgres, MySQL, SQLite}

type lexCase struct {
	name string
	stmt string
	want []lexed
}

func runLexCases(t *testing.T, dialects []Dialect, cases []lexCase) {
	t.Helper()
	for _, d := range dialects {
		for _, c := range cases {
			t.Run(d.String()+"/"+c.name, func(t *testing.T) {
				got := lexText(d, c.stmt)
				if fmt.Sprint(got) != fmt.Sprint(c.want) {
					t.Errorf("tokenize(%v, %q):\n got %v\nwant %v", d, c.stmt, got, c.want)
				}
			})
		}
	}
}

func TestLexerInEveryDialect(t *testing.T) {
	runLexCases(t, everyDialect, []lexCase{
		{"a doubled quote stays inside the string", `SELECT 'it''s', 'x'`,
			[]lexed{tk(tokKeyword, "SELECT"), tk(tokString, `'it''s'`), tk(tokPunct, ","), tk(tokString, "'x'")}},
		{"an empty string is one token", `''`, []lexed{tk(tokString, "''")}},
		{"a string of doubled quotes only is one token", `''''''`, []lexed{tk(tokString, "''''''")}},
		{"numbers take points, exponents and hex digits", `1 1.5 .5 1e10 1E+5 2.5e-3 0x1F 0`,
			[]lexed{tk(tokNumber, "1"), tk(tokNumber, "1.5"), tk(tokNumber, ".5"), tk(tokNumber, "1e10"), tk(tokNumber, "1E+5"),
				tk(tokNumber, "2.5e-3"), tk(tokNumber, "0x1F"), tk(tokNumber, "0")}},
		{"a minus sign is an operator before the number", `a = -1`,
			[]lexed{tk(tokWord, "a"), tk(tokOperator, "="), tk(tokOperator, "-"), tk(tokNumber, "1")}},
		{"comparison and concatenation operators are whole", `a<>b AND c>=d OR e||f`,
			[]lexed{tk(tokWord, "a"), tk(tokOperator, "<>"), tk(tokWord, "b"), tk(tokKeyword, "AND"), tk(tokWord, "c"), tk(tokOperator, ">="),
				tk(tokWord, "d"), tk(tokKeyword, "OR"), tk(tokWord, "e"), tk(tokOperator, "||"), tk(tokWord, "f")}},
		{"punctuation is one byte per token", `f(a, b);`,
			[]lexed{tk(tokWord, "f"), tk(tokPunct, "("), tk(tokWord, "a"), tk(tokPunct, ","), tk(tokWord, "b"), tk(tokPunct, ")"), tk(tokPunct, ";")}},
		{"a qualified name is three tokens", `t.col`, []lexed{tk(tokWord, "t"), tk(tokPunct, "."), tk(tokWord, "col")}},
		{"keywords are recognised in any case", `select From wHeRe`,
			[]lexed{tk(tokKeyword, "select"), tk(tokKeyword, "From"), tk(tokKeyword, "wHeRe")}},
		{"non-ASCII letters make identifiers", `café_ñ`, []lexed{tk(tokWord, "café_ñ")}},
		{"a line comment runs to the newline", "1 -- note\n2",
			[]lexed{tk(tokNumber, "1"), tk(tokComment, "-- note"), tk(tokNumber, "2")}},
		{"a line comment may end the statement", "1 -- ", []lexed{tk(tokNumber, "1"), tk(tokComment, "-- ")}},
		{"a block comment is one token", "1 /* a\n b */ 2",
			[]lexed{tk(tokNumber, "1"), tk(tokComment, "/* a\n b */"), tk(tokNumber, "2")}},
		{"an empty block comment is one token", "/**/x", []lexed{tk(tokComment, "/**/"), tk(tokWord, "x")}},
		{"a question mark is a parameter", `a = ?`, []lexed{tk(tokWord, "a"), tk(tokOperator, "="), tk(tokParam, "?")}},
		{"an unterminated string runs to the end", `SELECT 'abc`,
			[]lexed{tk(tokKeyword, "SELECT"), unterm(tokString, "'abc")}},
		{"a lone quote is an unterminated string", `'`, []lexed{unterm(tokString, "'")}},
		{"white space of every kind separates tokens", "a\t\n\r\f\vb", []lexed{tk(tokWord, "a"), tk(tokWord, "b")}},
		{"an empty statement has no tokens", "", nil},
		{"unknown bytes are punctuation", "\x00\x01", []lexed{tk(tokPunct, "\x00"), tk(tokPunct, "\x01")}},
	})
}

func TestLexerPostgres(t *testing.T) {
	runLexCases(t, []Dialect{Postgres}, []lexCase{
		{"a backslash is literal in a standard string", `SELECT 'a\' , 1`,
			[]lexed{tk(tokKeyword, "SELECT"), tk(tokString, `'a\'`), tk(tokPunct, ","), tk(tokNumber, "1")}},
		{"a backslash before a doubled quote is literal", `'a\'' x'`, []lexed{tk(tokString, `'a\'' x'`)}},
		{"an E string takes backslash escapes", `E'it\'s' x`, []lexed{tk(tokString, `E'it\'s'`), tk(tokWord, "x")}},
		{"a lower-case e string takes backslash escapes", `e'a\\' x`, []lexed{tk(tokString, `e'a\\'`), tk(tokWord, "x")}},
		{"an E string takes doubled quotes too", `E'a''b'`, []lexed{tk(tokString, `E'a''b'`)}},
		{"an E string ending in an escaped quote is unterminated", `E'a\'`, []lexed{unterm(tokString, `E'a\'`)}},
		{"N, B and X strings are strings", `N'a' B'01' X'1F'`,
			[]lexed{tk(tokString, "N'a'"), tk(tokString, "B'01'"), tk(tokString, "X'1F'")}},
		{"a Unicode string is a standard string", `U&'d\0061t\' x`, []lexed{tk(tokString, `U&'d\0061t\'`), tk(tokWord, "x")}},
		{"a Unicode identifier is a quoted identifier", `U&"a b"`, []lexed{tk(tokQuotedIdent, `U&"a b"`)}},
		{"an empty dollar tag quotes a string", `SELECT $$it's a \ string$$, 1`,
			[]lexed{tk(tokKeyword, "SELECT"), tk(tokString, `$$it's a \ string$$`), tk(tokPunct, ","), tk(tokNumber, "1")}},
		{"a named dollar tag quotes a string holding other tags", `$fn$ select $$x$$; $f$ $fn$ x`,
			[]lexed{tk(tokString, `$fn$ select $$x$$; $f$ $fn$`), tk(tokWord, "x")}},
		{"a dollar tag may hold digits after its first letter", `$a1$x$a1$`, []lexed{tk(tokString, "$a1$x$a1$")}},
		{"a numbered parameter is not a dollar tag", `$1 = $12`,
			[]lexed{tk(tokParam, "$1"), tk(tokOperator, "="), tk(tokParam, "$12")}},
		{"a parameter before a dollar string is still a parameter", `$1$$x$$`,
			[]lexed{tk(tokParam, "$1"), tk(tokString, "$$x$$")}},
		{"a dollar without a tag is an operator", `$a b`,
			[]lexed{tk(tokOperator, "$"), tk(tokWord, "a"), tk(tokWord, "b")}},
		{"an unclosed dollar string is unterminated", `$q$ abc $Q$`, []lexed{unterm(tokString, "$q$ abc $Q$")}},
		{"a dollar inside an identifier is part of it", `a$b$ $$c$$`,
			[]lexed{tk(tokWord, "a$b$"), tk(tokString, "$$c$$")}},
		{"a double-quoted identifier takes doubled quotes", `"a""b" x`,
			[]lexed{tk(tokQuotedIdent, `"a""b"`), tk(tokWord, "x")}},
		{"a backslash does not escape in a quoted identifier", `"a\" x`,
			[]lexed{tk(tokQuotedIdent, `"a\"`), tk(tokWord, "x")}},
		{"an unterminated identifier runs to the end", `"abc`, []lexed{unterm(tokQuotedIdent, `"abc`)}},
		{"a backtick is an operator", "`a`", []lexed{tk(tokOperator, "`"), tk(tokWord, "a"), tk(tokOperator, "`")}},
		{"a bracket is punctuation", `a[1]`,
			[]lexed{tk(tokWord, "a"), tk(tokPunct, "["), tk(tokNumber, "1"), tk(tokPunct, "]")}},
		{"two dashes always open a comment", `1--1`, []lexed{tk(tokNumber, "1"), tk(tokComment, "--1")}},
		{"a carriage return ends a line comment", "1 -- a\rDROP",
			[]lexed{tk(tokNumber, "1"), tk(tokComment, "-- a"), tk(tokKeyword, "DROP")}},
		{"a hash is an operator", `a # b`, []lexed{tk(tokWord, "a"), tk(tokOperator, "#"), tk(tokWord, "b")}},
		{"block comments nest", `/* a /* b */ c */ x`, []lexed{tk(tokComment, "/* a /* b */ c */"), tk(tokWord, "x")}},
		{"a slash-star after a slash-star opens a nested comment", `/*/*/ x */ */ y`,
			[]lexed{tk(tokComment, "/*/*/ x */ */"), tk(tokWord, "y")}},
		{"an unclosed nested comment is unterminated", `/* a /* b */ c`, []lexed{unterm(tokComment, "/* a /* b */ c")}},
		{"a bang after slash-star is an ordinary comment", `/*! DROP */ x`,
			[]lexed{tk(tokComment, "/*! DROP */"), tk(tokWord, "x")}},
		{"a cast is an operator", `a::int`, []lexed{tk(tokWord, "a"), tk(tokOperator, "::"), tk(tokWord, "int")}},
		{"JSON operators stop before a comment", `a->>'k'--c`,
			[]lexed{tk(tokWord, "a"), tk(tokOperator, "->>"), tk(tokString, "'k'"), tk(tokComment, "--c")}},
		{"an operator stops before a block comment", `a+/*c*/b`,
			[]lexed{tk(tokWord, "a"), tk(tokOperator, "+"), tk(tokComment, "/*c*/"), tk(tokWord, "b")}},
		{"an at sign is an operator", `@x`, []lexed{tk(tokOperator, "@"), tk(tokWord, "x")}},
		{"a digit run ending in letters is a number then a word", `1abc`, []lexed{tk(tokNumber, "1"), tk(tokWord, "abc")}},
	})
}

func TestLexerMySQL(t *testing.T) {
	runLexCases(t, []Dialect{MySQL}, []lexCase{
		{"a backslash escapes a single quote", `SELECT 'it\'s', 1`,
			[]lexed{tk(tokKeyword, "SELECT"), tk(tokString, `'it\'s'`), tk(tokPunct, ","), tk(tokNumber, "1")}},
		{"a backslash escapes a double quote", `"a\"b" x`, []lexed{tk(tokString, `"a\"b"`), tk(tokWord, "x")}},
		{"double quotes make a string", `"x" "a""b"`, []lexed{tk(tokString, `"x"`), tk(tokString, `"a""b"`)}},
		{"an escaped backslash ends before the quote", `'a\\' x`, []lexed{tk(tokString, `'a\\'`), tk(tokWord, "x")}},
		{"a string ending in an escaped quote is unterminated", `'a\' OR 1=1`, []lexed{unterm(tokString, `'a\' OR 1=1`)}},
		{"a backslash at the very end is unterminated", `'a\`, []lexed{unterm(tokString, `'a\`)}},
		{"hex, bit and national strings are strings", `x'4F' b'01' N'é'`,
			[]lexed{tk(tokString, "x'4F'"), tk(tokString, "b'01'"), tk(tokString, "N'é'")}},
		{"a charset introducer is a word before the string", `_utf8mb4'a'`,
			[]lexed{tk(tokWord, "_utf8mb4"), tk(tokString, "'a'")}},
		{"a backtick identifier takes doubled backticks", "`a``b` x",
			[]lexed{tk(tokQuotedIdent, "`a``b`"), tk(tokWord, "x")}},
		{"a backslash does not escape in a backtick identifier", "`a\\` x",
			[]lexed{tk(tokQuotedIdent, "`a\\`"), tk(tokWord, "x")}},
		{"a hash opens a line comment", "1 # c\n2", []lexed{tk(tokNumber, "1"), tk(tokComment, "# c"), tk(tokNumber, "2")}},
		{"a hash ends an operator", "1=#c", []lexed{tk(tokNumber, "1"), tk(tokOperator, "="), tk(tokComment, "#c")}},
		{"two dashes without a space are two minus signs", `1--1`,
			[]lexed{tk(tokNumber, "1"), tk(tokOperator, "-"), tk(tokOperator, "-"), tk(tokNumber, "1")}},
		{"two dashes and a space open a comment", `1-- 1`, []lexed{tk(tokNumber, "1"), tk(tokComment, "-- 1")}},
		{"two dashes and a tab open a comment", "1--\t1", []lexed{tk(tokNumber, "1"), tk(tokComment, "--\t1")}},
		{"two dashes and a control character open a comment", "1--\x01x\n2",
			[]lexed{tk(tokNumber, "1"), tk(tokComment, "--\x01x"), tk(tokNumber, "2")}},
		{"two dashes and DEL open a comment", "1--\x7fx", []lexed{tk(tokNumber, "1"), tk(tokComment, "--\x7fx")}},
		{"two dashes at the end open a comment", `1--`, []lexed{tk(tokNumber, "1"), tk(tokComment, "--")}},
		{"three dashes and a space are a minus and a comment", `1--- x`,
			[]lexed{tk(tokNumber, "1"), tk(tokOperator, "-"), tk(tokComment, "-- x")}},
		{"a carriage return does not end a line comment", "1 -- a\rDROP", []lexed{tk(tokNumber, "1"), tk(tokComment, "-- a\rDROP")}},
		{"a NUL ends a line comment", "1 # a\x00DROP",
			[]lexed{tk(tokNumber, "1"), tk(tokComment, "# a"), tk(tokPunct, "\x00"), tk(tokKeyword, "DROP")}},
		{"block comments do not nest", `/* a /* b */ c */`,
			[]lexed{tk(tokComment, "/* a /* b */"), tk(tokWord, "c"), tk(tokOperator, "*/")}},
		{"an executable comment is code", `SELECT /*! DISTINCT */ a`,
			[]lexed{tk(tokKeyword, "SELECT"), tk(tokPunct, "/*!"), tk(tokKeyword, "DISTINCT"), tk(tokPunct, "*/"), tk(tokWord, "a")}},
		{"a versioned executable comment is code", `1 /*!50000 UNION SELECT 2*/`,
			[]lexed{tk(tokNumber, "1"), tk(tokPunct, "/*!50000"), tk(tokKeyword, "UNION"), tk(tokKeyword, "SELECT"), tk(tokNumber, "2"), tk(tokPunct, "*/")}},
		{"a MariaDB executable comment is code", `/*M!100100 x */`,
			[]lexed{tk(tokPunct, "/*M!100100"), tk(tokWord, "x"), tk(tokPunct, "*/")}},
		{"a string in an executable comment may hold the closer", `/*! '*/' */`,
			[]lexed{tk(tokPunct, "/*!"), tk(tokString, "'*/'"), tk(tokPunct, "*/")}},
		{"an operator stops before the closer of an executable comment", `/*!1=*/`,
			[]lexed{tk(tokPunct, "/*!1"), tk(tokOperator, "="), tk(tokPunct, "*/")}},
		{"an ordinary comment inside an executable comment is a comment", `/*! a /* b */ c */`,
			[]lexed{tk(tokPunct, "/*!"), tk(tokWord, "a"), tk(tokComment, "/* b */"), tk(tokWord, "c"), tk(tokPunct, "*/")}},
		{"an unclosed executable comment is code to the end", `/*! x`, []lexed{tk(tokPunct, "/*!"), tk(tokWord, "x")}},
		{"an optimizer hint is a comment", `SELECT /*+ BKA(t) */ 1`,
			[]lexed{tk(tokKeyword, "SELECT"), tk(tokComment, "/*+ BKA(t) */"), tk(tokNumber, "1")}},
		{"an unterminated block comment is unterminated", `1 /* x`, []lexed{tk(tokNumber, "1"), unterm(tokComment, "/* x")}},
		{"user and system variables are words", `@a := @@global.max_connections`,
			[]lexed{tk(tokWord, "@a"), tk(tokOperator, ":="), tk(tokWord, "@@global"), tk(tokPunct, "."), tk(tokWord, "max_connections")}},
		{"a variable name may hold a dollar", `@a$b`, []lexed{tk(tokWord, "@a$b")}},
		{"an identifier may start with digits", `1abc 0x1Fg 1e`,
			[]lexed{tk(tokWord, "1abc"), tk(tokWord, "0x1Fg"), tk(tokWord, "1e")}},
		{"a number with a point or an exponent ends there", `1.5abc .5e1x 1e5x`,
			[]lexed{tk(tokNumber, "1.5"), tk(tokWord, "abc"), tk(tokNumber, ".5e1"), tk(tokWord, "x"), tk(tokNumber, "1e5"), tk(tokWord, "x")}},
		{"a dollar is part of an identifier", `a$b`, []lexed{tk(tokWord, "a$b")}},
		{"a JSON path operator is an operator", `c->>'$.a'`,
			[]lexed{tk(tokWord, "c"), tk(tokOperator, "->>"), tk(tokString, "'$.a'")}},
	})
}

func TestLexerSQLite(t *testing.T) {
	runLexCases(t, []Dialect{SQLite}, []lexCase{
		{"a backslash is literal in a string", `SELECT 'a\' , 1`,
			[]lexed{tk(tokKeyword, "SELECT"), tk(tokString, `'a\'`), tk(tokPunct, ","), tk(tokNumber, "1")}},
		{"double quotes make an identifier", `"a""b" x`, []lexed{tk(tokQuotedIdent, `"a""b"`), tk(tokWord, "x")}},
		{"backticks make an identifier", "`a``b` x", []lexed{tk(tokQuotedIdent, "`a``b`"), tk(tokWord, "x")}},
		{"brackets make an identifier", `[a b] x`, []lexed{tk(tokQuotedIdent, "[a b]"), tk(tokWord, "x")}},
		{"brackets do not double", `[a]]b]`, []lexed{tk(tokQuotedIdent, "[a]"), tk(tokPunct, "]"), tk(tokWord, "b"), tk(tokPunct, "]")}},
		{"an unclosed bracket is unterminated", `[a b`, []lexed{unterm(tokQuotedIdent, "[a b")}},
		{"a blob is a string", `x'1F'`, []lexed{tk(tokString, "x'1F'")}},
		{"every parameter form is a parameter", `? ?2 :name @name $name`,
			[]lexed{tk(tokParam, "?"), tk(tokParam, "?2"), tk(tokParam, ":name"), tk(tokParam, "@name"), tk(tokParam, "$name")}},
		{"a dollar is part of an identifier", `a$b`, []lexed{tk(tokWord, "a$b")}},
		{"a parameter name may hold a dollar", `$a$b`, []lexed{tk(tokParam, "$a$b")}},
		{"a lone colon is an operator", `a : b`, []lexed{tk(tokWord, "a"), tk(tokOperator, ":"), tk(tokWord, "b")}},
		{"a hash is not a comment", `a # b`, []lexed{tk(tokWord, "a"), tk(tokOperator, "#"), tk(tokWord, "b")}},
		{"two dashes always open a comment", `1--1`, []lexed{tk(tokNumber, "1"), tk(tokComment, "--1")}},
		{"block comments do not nest", `/* a /* b */ c`, []lexed{tk(tokComment, "/* a /* b */"), tk(tokWord, "c")}},
		{"an unclosed block comment is accepted to the end", `1 /* x`, []lexed{tk(tokNumber, "1"), tk(tokComment, "/* x")}},
		{"a NUL ends a line comment", "1 -- a\x00DROP",
			[]lexed{tk(tokNumber, "1"), tk(tokComment, "-- a"), tk(tokPunct, "\x00"), tk(tokKeyword, "DROP")}},
		{"a NUL ends a block comment", "1 /* a\x00 */ DROP",
			[]lexed{tk(tokNumber, "1"), tk(tokComment, "/* a"), tk(tokPunct, "\x00"), tk(tokOperator, "*/"), tk(tokKeyword, "DROP")}},
		{"a bang after slash-star is an ordinary comment", `/*! DROP */ x`,
			[]lexed{tk(tokComment, "/*! DROP */"), tk(tokWord, "x")}},
	})
}

// TestTokenContent checks Inner and InnerEnd: the content between the
// delimiters, which is where an input may be without changing anything.
func TestTokenContent(t *testing.T) {
	cases := []struct {
		name  string
		d     Dialect
		stmt  string
		inner string
	}{
		{"a string's content excludes its quotes", Postgres, `'it''s'`, `it''s`},
		{"an E string's content starts after E and the quote", Postgres, `E'a\'b'`, `a\'b`},
		{"a dollar string's content excludes its tags", Postgres, `$t$ x $t$`, ` x `},
		{"an empty dollar string has empty content", Postgres, `$$$$`, ``},
		{"a Unicode string's content starts after U&'", Postgres, `U&'x'`, `x`},
		{"a quoted identifier's content excludes its quotes", SQLite, `[a b]`, `a b`},
		{"a line comment's content follows the dashes", SQLite, "-- hi\n", ` hi`},
		{"a hash comment's content follows the hash", MySQL, "# hi", ` hi`},
		{"a MySQL dash comment's content follows the space its delimiter needs", MySQL, "-- hi", `hi`},
		{"a MySQL dash comment at the end has empty content", MySQL, "--", ``},
		{"a MySQL dash comment before a newline has empty content", MySQL, "--\n", ``},
		{"a block comment's content is between its delimiters", Postgres, `/* a /* b */ */`, ` a /* b */ `},
		{"an unterminated string's content runs to the end", MySQL, `'ab\`, `ab\`},
		{"an unterminated comment's content runs to the end", Postgres, `/* ab`, ` ab`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			toks := tokenize(c.d, c.stmt, nil, true)
			if len(toks) != 1 {
				t.Fatalf("tokenize(%v, %q) = %d tokens, want 1", c.d, c.stmt, len(toks))
			}
			if got := c.stmt[toks[0].Inner:toks[0].InnerEnd]; got != c.inner {
				t.Errorf("content of %q = %q, want %q", c.stmt, got, c.inner)
			}
		})
	}
}

func TestTokenizeReusesTheSlice(t *testing.T) {
	buf := make([]token, 0, 16)
	toks := tokenize(SQLite, "SELECT 1", buf, true)
	if &toks[0] != &buf[:1][0] {
		t.Error("tokenize did not reuse the slice it was given")
	}
	toks = tokenize(SQLite, "x", toks, true)
	if len(toks) != 1 {
		t.Errorf("tokenize kept %d tokens of the previous statement", len(toks)-1)
	}
}

func TestKindNames(t *testing.T) {
	for k := tokWord; k <= tokComment; k++ {
		if s := k.String(); s == "" || s == "unknown" {
			t.Errorf("tokenKind(%d) has no name", k)
		}
	}
	if s := tokenKind(200).String(); s != "unknown" {
		t.Errorf("Kind(200) = %q, want unknown", s)
	}
}

// TestTokenizeTakesLinearTime lexes statements built to make a careless lexer
// rescan its input: each must take far less than a quadratic lexer would.
func TestTokenizeTakesLinearTime(t *testing.T) {
	const size = 256 << 10
	fill := func(unit string) string { return strings.Repeat(unit, size/len(unit)) }
	inputs := map[string]string{
		"dollar tags that never close":   fill("$a$"),
		"dollar signs":                   fill("$"),
		"a long dollar tag, near misses": "$" + fill("a")[:size/2] + "$" + fill("$aaaaaaaa"),
		"nested comment openers":         fill("/*"),
		"comment closers":                fill("*/"),
		"executable comment openers":     fill("/*!"),
		"quotes":                         fill("'"),
		"backslashes in a string":        "'" + fill(`\`),
		"dashes":                         fill("-"),
		"operators":                      fill("<>"),
		"digits and points":              fill("1.e"),
		"brackets":                       fill("["),
		"at signs":                       fill("@"),
		"words":                          fill("a "),
	}
	// The time is compared with the time to lex ordinary SQL of the same
	// size on the same machine, the fastest of three runs each, so that a
	// busy machine or the race detector slows both: a quadratic lexer takes
	// thousands of times longer on these inputs. The ordinary time is
	// measured once per dialect; an input over the limit is measured again
	// beside a fresh ordinary time, at the same moment, before it counts as
	// a failure, so that a moment of load cannot fail it and a quadratic
	// lexer fails both times.
	ordinary := strings.Repeat("SELECT a, b FROM t WHERE c = 'x' AND d > 1; ", size/44)
	fastest := func(d Dialect, stmt string) (time.Duration, []token) {
		best := time.Duration(1<<63 - 1)
		var toks []token
		for range 3 {
			start := time.Now()
			toks = tokenize(d, stmt, toks[:0], true)
			best = min(best, time.Since(start))
		}
		return best, toks
	}
	over := func(took, base time.Duration) bool { return took > 50*base+50*time.Millisecond }
	bases := map[Dialect]time.Duration{}
	for _, d := range everyDialect {
		bases[d], _ = fastest(d, ordinary)
	}
	for name, stmt := range inputs {
		for _, d := range everyDialect {
			t.Run(d.String()+"/"+name, func(t *testing.T) {
				base := bases[d]
				took, toks := fastest(d, stmt)
				if over(took, base) {
					base, _ = fastest(d, ordinary)
					took, _ = fastest(d, stmt)
				}
				if over(took, base) {
					t.Errorf("tokenize of %d bytes took %v, ordinary SQL of that size %v", len(stmt), took, base)
				}
				if len(toks) > len(stmt) {
					t.Errorf("%d tokens for %d bytes", len(toks), len(stmt))
				}
			})
		}
	}
}
