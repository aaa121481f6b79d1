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
	kind         Kind
	text         string
	unterminated bool
}

func (l lexed) String() string {
	if l.unterminated {
		return fmt.Sprintf("%v %q (unterminated)", l.kind, l.text)
	}
	return fmt.Sprintf("%v %q", l.kind, l.text)
}

func tk(k Kind, text string) lexed     { return lexed{kind: k, text: text} }
func unterm(k Kind, text string) lexed { return lexed{kind: k, text: text, unterminated: true} }

func lexText(d Dialect, stmt string) []lexed {
	var out []lexed
	for _, t := range Tokenize(d, stmt, nil) {
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
					t.Errorf("Tokenize(%v, %q):\n got %v\nwant %v", d, c.stmt, got, c.want)
				}
			})
		}
	}
}

func TestLexerInEveryDialect(t *testing.T) {
	runLexCases(t, everyDialect, []lexCase{
		{"a doubled quote stays inside the string", `SELECT 'it''s', 'x'`,
			[]lexed{tk(Keyword, "SELECT"), tk(String, `'it''s'`), tk(Punct, ","), tk(String, "'x'")}},
		{"an empty string is one token", `''`, []lexed{tk(String, "''")}},
		{"a string of doubled quotes only is one token", `''''''`, []lexed{tk(String, "''''''")}},
		{"numbers take points, exponents and hex digits", `1 1.5 .5 1e10 1E+5 2.5e-3 0x1F 0`,
			[]lexed{tk(Number, "1"), tk(Number, "1.5"), tk(Number, ".5"), tk(Number, "1e10"), tk(Number, "1E+5"),
				tk(Number, "2.5e-3"), tk(Number, "0x1F"), tk(Number, "0")}},
		{"a minus sign is an operator before the number", `a = -1`,
			[]lexed{tk(Word, "a"), tk(Operator, "="), tk(Operator, "-"), tk(Number, "1")}},
		{"comparison and concatenation operators are whole", `a<>b AND c>=d OR e||f`,
			[]lexed{tk(Word, "a"), tk(Operator, "<>"), tk(Word, "b"), tk(Keyword, "AND"), tk(Word, "c"), tk(Operator, ">="),
				tk(Word, "d"), tk(Keyword, "OR"), tk(Word, "e"), tk(Operator, "||"), tk(Word, "f")}},
		{"punctuation is one byte per token", `f(a, b);`,
			[]lexed{tk(Word, "f"), tk(Punct, "("), tk(Word, "a"), tk(Punct, ","), tk(Word, "b"), tk(Punct, ")"), tk(Punct, ";")}},
		{"a qualified name is three tokens", `t.col`, []lexed{tk(Word, "t"), tk(Punct, "."), tk(Word, "col")}},
		{"keywords are recognised in any case", `select From wHeRe`,
			[]lexed{tk(Keyword, "select"), tk(Keyword, "From"), tk(Keyword, "wHeRe")}},
		{"non-ASCII letters make identifiers", `café_ñ`, []lexed{tk(Word, "café_ñ")}},
		{"a line comment runs to the newline", "1 -- note\n2",
			[]lexed{tk(Number, "1"), tk(Comment, "-- note"), tk(Number, "2")}},
		{"a line comment may end the statement", "1 -- ", []lexed{tk(Number, "1"), tk(Comment, "-- ")}},
		{"a block comment is one token", "1 /* a\n b */ 2",
			[]lexed{tk(Number, "1"), tk(Comment, "/* a\n b */"), tk(Number, "2")}},
		{"an empty block comment is one token", "/**/x", []lexed{tk(Comment, "/**/"), tk(Word, "x")}},
		{"a question mark is a parameter", `a = ?`, []lexed{tk(Word, "a"), tk(Operator, "="), tk(Param, "?")}},
		{"an unterminated string runs to the end", `SELECT 'abc`,
			[]lexed{tk(Keyword, "SELECT"), unterm(String, "'abc")}},
		{"a lone quote is an unterminated string", `'`, []lexed{unterm(String, "'")}},
		{"white space of every kind separates tokens", "a\t\n\r\f\vb", []lexed{tk(Word, "a"), tk(Word, "b")}},
		{"an empty statement has no tokens", "", nil},
		{"unknown bytes are punctuation", "\x00\x01", []lexed{tk(Punct, "\x00"), tk(Punct, "\x01")}},
	})
}

func TestLexerPostgres(t *testing.T) {
	runLexCases(t, []Dialect{Postgres}, []lexCase{
		{"a backslash is literal in a standard string", `SELECT 'a\' , 1`,
			[]lexed{tk(Keyword, "SELECT"), tk(String, `'a\'`), tk(Punct, ","), tk(Number, "1")}},
		{"a backslash before a doubled quote is literal", `'a\'' x'`, []lexed{tk(String, `'a\'' x'`)}},
		{"an E string takes backslash escapes", `E'it\'s' x`, []lexed{tk(String, `E'it\'s'`), tk(Word, "x")}},
		{"a lower-case e string takes backslash escapes", `e'a\\' x`, []lexed{tk(String, `e'a\\'`), tk(Word, "x")}},
		{"an E string takes doubled quotes too", `E'a''b'`, []lexed{tk(String, `E'a''b'`)}},
		{"an E string ending in an escaped quote is unterminated", `E'a\'`, []lexed{unterm(String, `E'a\'`)}},
		{"N, B and X strings are strings", `N'a' B'01' X'1F'`,
			[]lexed{tk(String, "N'a'"), tk(String, "B'01'"), tk(String, "X'1F'")}},
		{"a Unicode string is a standard string", `U&'d\0061t\' x`, []lexed{tk(String, `U&'d\0061t\'`), tk(Word, "x")}},
		{"a Unicode identifier is a quoted identifier", `U&"a b"`, []lexed{tk(QuotedIdent, `U&"a b"`)}},
		{"an empty dollar tag quotes a string", `SELECT $$it's a \ string$$, 1`,
			[]lexed{tk(Keyword, "SELECT"), tk(String, `$$it's a \ string$$`), tk(Punct, ","), tk(Number, "1")}},
		{"a named dollar tag quotes a string holding other tags", `$fn$ select $$x$$; $f$ $fn$ x`,
			[]lexed{tk(String, `$fn$ select $$x$$; $f$ $fn$`), tk(Word, "x")}},
		{"a dollar tag may hold digits after its first letter", `$a1$x$a1$`, []lexed{tk(String, "$a1$x$a1$")}},
		{"a numbered parameter is not a dollar tag", `$1 = $12`,
			[]lexed{tk(Param, "$1"), tk(Operator, "="), tk(Param, "$12")}},
		{"a parameter before a dollar string is still a parameter", `$1$$x$$`,
			[]lexed{tk(Param, "$1"), tk(String, "$$x$$")}},
		{"a dollar without a tag is an operator", `$a b`,
			[]lexed{tk(Operator, "$"), tk(Word, "a"), tk(Word, "b")}},
		{"an unclosed dollar string is unterminated", `$q$ abc $Q$`, []lexed{unterm(String, "$q$ abc $Q$")}},
		{"a dollar inside an identifier is part of it", `a$b$ $$c$$`,
			[]lexed{tk(Word, "a$b$"), tk(String, "$$c$$")}},
		{"a double-quoted identifier takes doubled quotes", `"a""b" x`,
			[]lexed{tk(QuotedIdent, `"a""b"`), tk(Word, "x")}},
		{"a backslash does not escape in a quoted identifier", `"a\" x`,
			[]lexed{tk(QuotedIdent, `"a\"`), tk(Word, "x")}},
		{"an unterminated identifier runs to the end", `"abc`, []lexed{unterm(QuotedIdent, `"abc`)}},
		{"a backtick is an operator", "`a`", []lexed{tk(Operator, "`"), tk(Word, "a"), tk(Operator, "`")}},
		{"a bracket is punctuation", `a[1]`,
			[]lexed{tk(Word, "a"), tk(Punct, "["), tk(Number, "1"), tk(Punct, "]")}},
		{"two dashes always open a comment", `1--1`, []lexed{tk(Number, "1"), tk(Comment, "--1")}},
		{"a carriage return ends a line comment", "1 -- a\rDROP",
			[]lexed{tk(Number, "1"), tk(Comment, "-- a"), tk(Keyword, "DROP")}},
		{"a hash is an operator", `a # b`, []lexed{tk(Word, "a"), tk(Operator, "#"), tk(Word, "b")}},
		{"block comments nest", `/* a /* b */ c */ x`, []lexed{tk(Comment, "/* a /* b */ c */"), tk(Word, "x")}},
		{"a slash-star after a slash-star opens a nested comment", `/*/*/ x */ */ y`,
			[]lexed{tk(Comment, "/*/*/ x */ */"), tk(Word, "y")}},
		{"an unclosed nested comment is unterminated", `/* a /* b */ c`, []lexed{unterm(Comment, "/* a /* b */ c")}},
		{"a bang after slash-star is an ordinary comment", `/*! DROP */ x`,
			[]lexed{tk(Comment, "/*! DROP */"), tk(Word, "x")}},
		{"a cast is an operator", `a::int`, []lexed{tk(Word, "a"), tk(Operator, "::"), tk(Word, "int")}},
		{"JSON operators stop before a comment", `a->>'k'--c`,
			[]lexed{tk(Word, "a"), tk(Operator, "->>"), tk(String, "'k'"), tk(Comment, "--c")}},
		{"an operator stops before a block comment", `a+/*c*/b`,
			[]lexed{tk(Word, "a"), tk(Operator, "+"), tk(Comment, "/*c*/"), tk(Word, "b")}},
		{"an at sign is an operator", `@x`, []lexed{tk(Operator, "@"), tk(Word, "x")}},
		{"a digit run ending in letters is a number then a word", `1abc`, []lexed{tk(Number, "1"), tk(Word, "abc")}},
	})
}

func TestLexerMySQL(t *testing.T) {
	runLexCases(t, []Dialect{MySQL}, []lexCase{
		{"a backslash escapes a single quote", `SELECT 'it\'s', 1`,
			[]lexed{tk(Keyword, "SELECT"), tk(String, `'it\'s'`), tk(Punct, ","), tk(Number, "1")}},
		{"a backslash escapes a double quote", `"a\"b" x`, []lexed{tk(String, `"a\"b"`), tk(Word, "x")}},
		{"double quotes make a string", `"x" "a""b"`, []lexed{tk(String, `"x"`), tk(String, `"a""b"`)}},
		{"an escaped backslash ends before the quote", `'a\\' x`, []lexed{tk(String, `'a\\'`), tk(Word, "x")}},
		{"a string ending in an escaped quote is unterminated", `'a\' OR 1=1`, []lexed{unterm(String, `'a\' OR 1=1`)}},
		{"a backslash at the very end is unterminated", `'a\`, []lexed{unterm(String, `'a\`)}},
		{"hex, bit and national strings are strings", `x'4F' b'01' N'é'`,
			[]lexed{tk(String, "x'4F'"), tk(String, "b'01'"), tk(String, "N'é'")}},
		{"a charset introducer is a word before the string", `_utf8mb4'a'`,
			[]lexed{tk(Word, "_utf8mb4"), tk(String, "'a'")}},
		{"a backtick identifier takes doubled backticks", "`a``b` x",
			[]lexed{tk(QuotedIdent, "`a``b`"), tk(Word, "x")}},
		{"a backslash does not escape in a backtick identifier", "`a\\` x",
			[]lexed{tk(QuotedIdent, "`a\\`"), tk(Word, "x")}},
		{"a hash opens a line comment", "1 # c\n2", []lexed{tk(Number, "1"), tk(Comment, "# c"), tk(Number, "2")}},
		{"a hash ends an operator", "1=#c", []lexed{tk(Number, "1"), tk(Operator, "="), tk(Comment, "#c")}},
		{"two dashes without a space are two minus signs", `1--1`,
			[]lexed{tk(Number, "1"), tk(Operator, "-"), tk(Operator, "-"), tk(Number, "1")}},
		{"two dashes and a space open a comment", `1-- 1`, []lexed{tk(Number, "1"), tk(Comment, "-- 1")}},
		{"two dashes and a tab open a comment", "1--\t1", []lexed{tk(Number, "1"), tk(Comment, "--\t1")}},
		{"two dashes and a control character open a comment", "1--\x01x\n2",
			[]lexed{tk(Number, "1"), tk(Comment, "--\x01x"), tk(Number, "2")}},
		{"two dashes and DEL open a comment", "1--\x7fx", []lexed{tk(Number, "1"), tk(Comment, "--\x7fx")}},
		{"two dashes at the end open a comment", `1--`, []lexed{tk(Number, "1"), tk(Comment, "--")}},
		{"three dashes and a space are a minus and a comment", `1--- x`,
			[]lexed{tk(Number, "1"), tk(Operator, "-"), tk(Comment, "-- x")}},
		{"a carriage return does not end a line comment", "1 -- a\rDROP", []lexed{tk(Number, "1"), tk(Comment, "-- a\rDROP")}},
		{"a NUL ends a line comment", "1 # a\x00DROP",
			[]lexed{tk(Number, "1"), tk(Comment, "# a"), tk(Punct, "\x00"), tk(Keyword, "DROP")}},
		{"block comments do not nest", `/* a /* b */ c */`,
			[]lexed{tk(Comment, "/* a /* b */"), tk(Word, "c"), tk(Operator, "*/")}},
		{"an executable comment is code", `SELECT /*! DISTINCT */ a`,
			[]lexed{tk(Keyword, "SELECT"), tk(Punct, "/*!"), tk(Keyword, "DISTINCT"), tk(Punct, "*/"), tk(Word, "a")}},
		{"a versioned executable comment is code", `1 /*!50000 UNION SELECT 2*/`,
			[]lexed{tk(Number, "1"), tk(Punct, "/*!50000"), tk(Keyword, "UNION"), tk(Keyword, "SELECT"), tk(Number, "2"), tk(Punct, "*/")}},
		{"a MariaDB executable comment is code", `/*M!100100 x */`,
			[]lexed{tk(Punct, "/*M!100100"), tk(Word, "x"), tk(Punct, "*/")}},
		{"a string in an executable comment may hold the closer", `/*! '*/' */`,
			[]lexed{tk(Punct, "/*!"), tk(String, "'*/'"), tk(Punct, "*/")}},
		{"an operator stops before the closer of an executable comment", `/*!1=*/`,
			[]lexed{tk(Punct, "/*!1"), tk(Operator, "="), tk(Punct, "*/")}},
		{"an ordinary comment inside an executable comment is a comment", `/*! a /* b */ c */`,
			[]lexed{tk(Punct, "/*!"), tk(Word, "a"), tk(Comment, "/* b */"), tk(Word, "c"), tk(Punct, "*/")}},
		{"an unclosed executable comment is code to the end", `/*! x`, []lexed{tk(Punct, "/*!"), tk(Word, "x")}},
		{"an optimizer hint is a comment", `SELECT /*+ BKA(t) */ 1`,
			[]lexed{tk(Keyword, "SELECT"), tk(Comment, "/*+ BKA(t) */"), tk(Number, "1")}},
		{"an unterminated block comment is unterminated", `1 /* x`, []lexed{tk(Number, "1"), unterm(Comment, "/* x")}},
		{"user and system variables are words", `@a := @@global.max_connections`,
			[]lexed{tk(Word, "@a"), tk(Operator, ":="), tk(Word, "@@global"), tk(Punct, "."), tk(Word, "max_connections")}},
		{"a variable name may hold a dollar", `@a$b`, []lexed{tk(Word, "@a$b")}},
		{"an identifier may start with digits", `1abc 0x1Fg 1e`,
			[]lexed{tk(Word, "1abc"), tk(Word, "0x1Fg"), tk(Word, "1e")}},
		{"a number with a point or an exponent ends there", `1.5abc .5e1x 1e5x`,
			[]lexed{tk(Number, "1.5"), tk(Word, "abc"), tk(Number, ".5e1"), tk(Word, "x"), tk(Number, "1e5"), tk(Word, "x")}},
		{"a dollar is part of an identifier", `a$b`, []lexed{tk(Word, "a$b")}},
		{"a JSON path operator is an operator", `c->>'$.a'`,
			[]lexed{tk(Word, "c"), tk(Operator, "->>"), tk(String, "'$.a'")}},
	})
}

func TestLexerSQLite(t *testing.T) {
	runLexCases(t, []Dialect{SQLite}, []lexCase{
		{"a backslash is literal in a string", `SELECT 'a\' , 1`,
			[]lexed{tk(Keyword, "SELECT"), tk(String, `'a\'`), tk(Punct, ","), tk(Number, "1")}},
		{"double quotes make an identifier", `"a""b" x`, []lexed{tk(QuotedIdent, `"a""b"`), tk(Word, "x")}},
		{"backticks make an identifier", "`a``b` x", []lexed{tk(QuotedIdent, "`a``b`"), tk(Word, "x")}},
		{"brackets make an identifier", `[a b] x`, []lexed{tk(QuotedIdent, "[a b]"), tk(Word, "x")}},
		{"brackets do not double", `[a]]b]`, []lexed{tk(QuotedIdent, "[a]"), tk(Punct, "]"), tk(Word, "b"), tk(Punct, "]")}},
		{"an unclosed bracket is unterminated", `[a b`, []lexed{unterm(QuotedIdent, "[a b")}},
		{"a blob is a string", `x'1F'`, []lexed{tk(String, "x'1F'")}},
		{"every parameter form is a parameter", `? ?2 :name @name $name`,
			[]lexed{tk(Param, "?"), tk(Param, "?2"), tk(Param, ":name"), tk(Param, "@name"), tk(Param, "$name")}},
		{"a dollar is part of an identifier", `a$b`, []lexed{tk(Word, "a$b")}},
		{"a parameter name may hold a dollar", `$a$b`, []lexed{tk(Param, "$a$b")}},
		{"a lone colon is an operator", `a : b`, []lexed{tk(Word, "a"), tk(Operator, ":"), tk(Word, "b")}},
		{"a hash is not a comment", `a # b`, []lexed{tk(Word, "a"), tk(Operator, "#"), tk(Word, "b")}},
		{"two dashes always open a comment", `1--1`, []lexed{tk(Number, "1"), tk(Comment, "--1")}},
		{"block comments do not nest", `/* a /* b */ c`, []lexed{tk(Comment, "/* a /* b */"), tk(Word, "c")}},
		{"an unclosed block comment is accepted to the end", `1 /* x`, []lexed{tk(Number, "1"), tk(Comment, "/* x")}},
		{"a NUL ends a line comment", "1 -- a\x00DROP",
			[]lexed{tk(Number, "1"), tk(Comment, "-- a"), tk(Punct, "\x00"), tk(Keyword, "DROP")}},
		{"a NUL ends a block comment", "1 /* a\x00 */ DROP",
			[]lexed{tk(Number, "1"), tk(Comment, "/* a"), tk(Punct, "\x00"), tk(Operator, "*/"), tk(Keyword, "DROP")}},
		{"a bang after slash-star is an ordinary comment", `/*! DROP */ x`,
			[]lexed{tk(Comment, "/*! DROP */"), tk(Word, "x")}},
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
			toks := Tokenize(c.d, c.stmt, nil)
			if len(toks) != 1 {
				t.Fatalf("Tokenize(%v, %q) = %d tokens, want 1", c.d, c.stmt, len(toks))
			}
			if got := c.stmt[toks[0].Inner:toks[0].InnerEnd]; got != c.inner {
				t.Errorf("content of %q = %q, want %q", c.stmt, got, c.inner)
			}
		})
	}
}

func TestTokenizeReusesTheSlice(t *testing.T) {
	buf := make([]Token, 0, 16)
	toks := Tokenize(SQLite, "SELECT 1", buf)
	if &toks[0] != &buf[:1][0] {
		t.Error("Tokenize did not reuse the slice it was given")
	}
	toks = Tokenize(SQLite, "x", toks)
	if len(toks) != 1 {
		t.Errorf("Tokenize kept %d tokens of the previous statement", len(toks)-1)
	}
}

func TestKindNames(t *testing.T) {
	for k := Word; k <= Comment; k++ {
		if s := k.String(); s == "" || s == "unknown" {
			t.Errorf("Kind(%d) has no name", k)
		}
	}
	if s := Kind(200).String(); s != "unknown" {
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
	// size on the same machine at the same moment, the fastest of three
	// runs each, so that a busy machine or the race detector slows both: a
	// quadratic lexer takes thousands of times longer on these inputs.
	ordinary := strings.Repeat("SELECT a, b FROM t WHERE c = 'x' AND d > 1; ", size/44)
	fastest := func(d Dialect, stmt string) (time.Duration, []Token) {
		best := time.Duration(1<<63 - 1)
		var toks []Token
		for range 3 {
			start := time.Now()
			toks = Tokenize(d, stmt, toks[:0])
			best = min(best, time.Since(start))
		}
		return best, toks
	}
	for name, stmt := range inputs {
		for _, d := range everyDialect {
			t.Run(d.String()+"/"+name, func(t *testing.T) {
				base, _ := fastest(d, ordinary)
				took, toks := fastest(d, stmt)
				if limit := 50*base + 50*time.Millisecond; took > limit {
					t.Errorf("Tokenize of %d bytes took %v, ordinary SQL of that size %v", len(stmt), took, base)
				}
				if len(toks) > len(stmt) {
					t.Errorf("%d tokens for %d bytes", len(toks), len(stmt))
				}
			})
		}
	}
}
