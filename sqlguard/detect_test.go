package sqlguard

import (
	"strings"
	"testing"
	"time"
)

type detectCase struct {
	name     string
	dialects []Dialect // nil means every dialect
	stmt     string
	input    string
	want     bool
}

func detectIn(d Dialect, stmt, input string) (injection, bool) {
	return detect(stmt, input, input, tokenize(d, stmt, nil, true))
}

func runDetectCases(t *testing.T, cases []detectCase) {
	t.Helper()
	for _, c := range cases {
		dialects := c.dialects
		if dialects == nil {
			dialects = everyDialect
		}
		for _, d := range dialects {
			t.Run(d.String()+"/"+c.name, func(t *testing.T) {
				inj, got := detectIn(d, c.stmt, c.input)
				if got != c.want {
					t.Fatalf("detect(%v, %q, %q) = %v (%+v), want %v", d, c.stmt, c.input, got, inj, c.want)
				}
				if got && c.stmt[inj.Start:inj.End] != c.input {
					t.Errorf("reported occurrence [%d,%d) = %q, want the input %q", inj.Start, inj.End, c.stmt[inj.Start:inj.End], c.input)
				}
				if got && inj.Reason == "" {
					t.Error("an injection without a reason")
				}
			})
		}
	}
}

var (
	onlyPostgres = []Dialect{Postgres}
	onlyMySQL    = []Dialect{MySQL}
	onlySQLite   = []Dialect{SQLite}
	notMySQL     = []Dialect{Postgres, SQLite}
	notPostgres  = []Dialect{MySQL, SQLite}
	selectUser   = "SELECT id FROM users WHERE name = "
)

func TestDetect(t *testing.T) {
	runDetectCases(t, []detectCase{
		// Data inside a literal.
		{"an input wholly inside a string is data", nil,
			selectUser + "'john doe' AND active", "john doe", false},
		{"an input that looks like an attack inside a string is data", nil,
			selectUser + "'OR 1=1 UNION SELECT password FROM users' LIMIT 1", "OR 1=1 UNION SELECT password FROM users", false},
		{"an input that is part of a string's content is data", nil,
			selectUser + "'%mc%'", "mc", false},
		{"O'Brien with the quote doubled never occurs verbatim", nil,
			selectUser + "'O''Brien'", "O'Brien", false},
		{"O'Brien with the quote backslash-escaped never occurs verbatim", onlyMySQL,
			selectUser + `'O\'Brien'`, "O'Brien", false},
		{"a doubled quote inside a raw input changes its value", nil,
			selectUser + "'say ''hi'''", "say ''hi''", true},
		{"a doubled quote inside an input is data when the app doubles it again", nil,
			selectUser + "'say ''''hi'''''", "say ''hi''", false},
		{"a backslash before a quote in a raw MySQL input changes its value", onlyMySQL,
			selectUser + `'a\\'' OR 1=1 -- '`, `a\\'' OR 1=1 -- `, true},
		{"a backslash before a quote in a MySQL input is data when the app escapes both", onlyMySQL,
			selectUser + `'a\\\\'''' OR 1=1 -- '`, `a\\'' OR 1=1 -- `, false},
		{"an input inside a double-quoted MySQL string is data", onlyMySQL,
			selectUser + `"it's; DROP TABLE t"`, "it's; DROP TABLE t", false},
		{"an input inside a quoted identifier is data", notMySQL,
			`SELECT "my col; DROP" FROM t`, "my col; DROP", false},
		{"an input inside a backtick identifier is data", notPostgres,
			"SELECT `my col; DROP` FROM t", "my col; DROP", false},
		{"an input inside a bracket identifier is data", onlySQLite,
			"SELECT [my col; DROP] FROM t", "my col; DROP", false},
		{"an input inside a dollar-quoted string is data", onlyPostgres,
			"SELECT $$it's -- fine$$", "it's -- fine", false},
		{"a backslash-escaped quote in a raw input changes its value in an E string", onlyPostgres,
			`SELECT E'\' OR 1=1 --'`, `\' OR 1=1 --`, true},
		{"an input inside an E string with its backslash escaped is data", onlyPostgres,
			`SELECT E'\\'' OR 1=1 --'`, `\' OR 1=1 --`, false},

		// Breaking out of a literal.
		{"an input that closes a string and adds a condition is an injection", nil,
			selectUser + "'x' OR '1'='1'", "x' OR '1'='1", true},
		{"an input that closes a string and unions a query is an injection", nil,
			selectUser + "'' UNION SELECT password FROM users WHERE ''=''", "' UNION SELECT password FROM users WHERE ''='", true},
		{"an unescaped O'Brien breaks the string and is an injection", nil,
			selectUser + "'O'Brien'", "O'Brien", true},
		{"an input that ends the statement inside a string is an injection", nil,
			selectUser + "'x'; DROP TABLE users; SELECT '", "x'; DROP TABLE users; SELECT ", true},
		{"an input that closes a quoted identifier is an injection", notMySQL,
			`SELECT "a" FROM users; DROP TABLE t; --" FROM t`, `a" FROM users; DROP TABLE t; --`, true},
		{"an input that closes a dollar-quoted string is an injection", onlyPostgres,
			"SELECT * FROM t WHERE a = $$x$$ OR 1=1 --$$", "x$$ OR 1=1 --", true},
		{"an input that ends inside an unterminated string is an injection", onlyMySQL,
			selectUser + `'it\'`, `it\`, true},
		{"an input that is a whole string in a numeric context is an injection", nil,
			"SELECT * FROM t WHERE id = 'a'", "'a'", true},

		// Numeric and identifier contexts.
		{"a tautology in a numeric context is an injection", nil,
			"SELECT * FROM users WHERE id = 1 OR 1=1", "1 OR 1=1", true},
		{"a tautology without spaces is an injection", nil,
			"SELECT * FROM users WHERE id = 1OR(1)=(1)", "1OR(1)=(1)", true},
		{"a stacked query in a numeric context is an injection", nil,
			"SELECT * FROM users WHERE id = 1; DROP TABLE users", "1; DROP TABLE users", true},
		{"a number input that is one number is data", nil,
			"SELECT * FROM users WHERE id = 42 LIMIT 10", "42", false},
		{"a number input inside a longer number is data", nil,
			"SELECT * FROM users LIMIT 100", "10", false},
		{"a word input that coincides with a column is data", nil,
			"SELECT name, email FROM users WHERE id = 7 ORDER BY name", "name", false},
		{"a word input that coincides with a table is data", nil,
			"SELECT name FROM users", "users", false},
		{"a word input inside a longer identifier is data", nil,
			"SELECT username FROM users", "user", false},
		{"a keyword input is one token", nil,
			"SELECT name FROM users ORDER BY name DESC", "DESC", false},
		{"a sort column and direction are two tokens", nil,
			"SELECT name FROM users ORDER BY name DESC", "name DESC", true},
		{"a one-byte input is never an injection", nil,
			"SELECT * FROM users WHERE name = '' OR 1=1 --'", "'", false},
		{"an input that does not occur is never an injection", nil,
			"SELECT 1", "DROP", false},

		// Comments.
		{"comment truncation after a string is an injection", notMySQL,
			selectUser + "'admin'--' AND password = 'x'", "admin'--", true},
		{"comment truncation with a space is an injection", nil,
			selectUser + "'admin'-- ' AND password = 'x'", "admin'-- ", true},
		{"MySQL comment truncation with a hash is an injection", onlyMySQL,
			selectUser + "'admin'#' AND password = 'x'", "admin'#", true},
		{"comment truncation with a block comment is an injection", nil,
			selectUser + "'admin'/*' AND password = 'x'*/", "admin'/*", true},
		{"an input that is a whole comment is an injection", nil,
			"SELECT * FROM t WHERE id = 1 /* x */", "/* x */", true},
		{"an input inside a block comment is data", nil,
			"SELECT 1 /* search: foo ' bar */", "foo ' bar", false},
		{"an input inside a line comment is data", nil,
			"SELECT 1 -- search: foo ' bar\n", "foo ' bar", false},
		{"an input inside a hash comment is data", onlyMySQL,
			"SELECT 1 # search: foo ' bar", "foo ' bar", false},
		{"an input that closes a block comment is an injection", nil,
			"SELECT 1 /* x */ DROP TABLE t; /* */", "x */ DROP TABLE t; /*", true},
		{"an input with a newline leaves a line comment", nil,
			"SELECT 1 -- x\nDELETE FROM t", "x\nDELETE FROM t", true},
		{"an input with a carriage return leaves a PostgreSQL line comment", onlyPostgres,
			"SELECT 1 -- x\rDELETE FROM t", "x\rDELETE FROM t", true},
		{"a carriage return does not end a MySQL or SQLite line comment", notPostgres,
			"SELECT 1 -- x\rDELETE FROM t", "x\rDELETE FROM t", false},
		{"an input with a NUL leaves a MySQL or SQLite line comment", notPostgres,
			"DELETE FROM t WHERE id = 1 -- x\x00\n AND owner = 2", "x\x00", true},
		{"an input with a NUL leaves a SQLite block comment", onlySQLite,
			"DELETE FROM t /* x\x00 */ WHERE owner = 2", "x\x00", true},
		{"an input whose leading space turns MySQL's -- into a comment is an injection", onlyMySQL,
			"DELETE FROM t WHERE id = 1-- 1 AND owner = 2", " 1", true},
		{"an input after a -- that is already a comment is data", notMySQL,
			"DELETE FROM t WHERE id = 1-- 1 AND owner = 2", " 1", false},
		{"an input that is a MySQL executable comment is an injection", nil,
			"SELECT * FROM t WHERE id = 1 /*!UNION SELECT 2*/", "/*!UNION SELECT 2*/", true},
		{"an input inside a MySQL executable comment adds code", onlyMySQL,
			"SELECT * FROM t /*! WHERE 1=1 */", "WHERE 1=1", true},
		{"an input inside a nested PostgreSQL comment is data", onlyPostgres,
			"SELECT 1 /* a /* b */ x */", "b */ x", false},
		{"an input that closes a MySQL or SQLite comment early is an injection", notPostgres,
			"SELECT 1 /* a /* b */ x */", "b */ x", true},

		// Dialects read backslashes differently: the MySQL backslash trick.
		{"the backslash alone is one byte and not checked", nil,
			selectUser + `'\' AND password = ' OR 1=1 -- '`, `\`, false},
		{"the input after an escaped quote is code in MySQL", onlyMySQL,
			selectUser + `'\' AND password = ' OR 1=1 -- '`, ` OR 1=1 -- `, true},
		{"the input after a backslash is data in a standard string", notMySQL,
			selectUser + `'\' AND password = ' OR 1=1 -- '`, ` OR 1=1 -- `, false},
		{"a two-byte input ending in a backslash escapes the closing quote in MySQL", onlyMySQL,
			selectUser + `'a\' AND password = ' OR 1=1 -- '`, `a\`, true},
		{"a two-byte input ending in a backslash is data in a standard string", notMySQL,
			selectUser + `'a\' AND password = ' OR 1=1 -- '`, `a\`, false},
		{"the second input of the two-byte backslash trick is code in MySQL", onlyMySQL,
			selectUser + `'a\' AND password = ' OR 1=1 -- '`, ` OR 1=1 -- `, true},
		{"a backslash-escaped quote is an injection where backslash is literal", notMySQL,
			selectUser + `'x\' OR 1=1 --'`, `x\' OR 1=1 --`, true},
		{"a backslash-escaped quote in a raw MySQL input changes its value", onlyMySQL,
			selectUser + `'x\' OR 1=1 --'`, `x\' OR 1=1 --`, true},
		{"a backslash-escaped quote is data in MySQL when the app escapes it", onlyMySQL,
			selectUser + `'x\\\' OR 1=1 --'`, `x\' OR 1=1 --`, false},

		// White space around an input.
		{"a number padded with spaces is data", nil,
			"SELECT * FROM users WHERE id =  42  LIMIT 1", " 42  ", false},
		{"a name padded with spaces inside a string is data", nil,
			selectUser + "'  bob  '", "  bob  ", false},
		{"a padded tautology is an injection", nil,
			"SELECT * FROM users WHERE id =  1 OR 1=1 ", "  1 OR 1=1 ", true},
		{"an input of white space only is data", nil,
			"SELECT a,   b FROM t", "   ", false},
		{"an input with a leading space that closes a string is an injection", nil,
			selectUser + "' x' OR 'a'='a'", " x' OR 'a'='a", true},

		// Several occurrences.
		{"a later unsafe occurrence is an injection after a safe one", nil,
			"SELECT * FROM t WHERE note = 'x OR y' AND id = x OR y", "x OR y", true},
		{"every occurrence inside a string is data", nil,
			"SELECT 'ab', 'ab' || 'xaby'", "ab", false},
		{"an unsafe occurrence overlapping a safe one is an injection", nil,
			"SELECT * FROM t WHERE a = 1.1.1", "1.1", true},
	})
}

// TestDetectReportsTheUnsafeOccurrence checks which occurrence is reported
// and why.
func TestDetectReportsTheUnsafeOccurrence(t *testing.T) {
	cases := []struct {
		name   string
		d      Dialect
		stmt   string
		input  string
		start  int
		reason string
	}{
		{"the second occurrence when the first is inside a string", SQLite,
			"SELECT * FROM t WHERE note = 'x OR y' AND id = x OR y", "x OR y",
			strings.LastIndex("SELECT * FROM t WHERE note = 'x OR y' AND id = x OR y", "x OR y"), "adds 3 tokens"},
		{"a string broken out of", Postgres,
			selectUser + "'x' OR '1'='1'", "x' OR '1'='1", len(selectUser) + 1, "closes a string and adds 3 tokens"},
		{"a comment added after a string", Postgres,
			selectUser + "'admin'--'", "admin'--", len(selectUser) + 1, "closes a string and adds 0 tokens including a comment"},
		{"a whole comment", Postgres,
			"SELECT 1 /* x */", "/* x */", 9, "adds a comment"},
		{"a string left open", MySQL,
			selectUser + `'it\'`, `it\`, len(selectUser) + 1, "leaves a string unterminated"},
		{"a quoted identifier broken out of", Postgres,
			`SELECT "a" b`, `a" b`, 8, "closes a quoted identifier and adds 1 token"},
		{"an overlapping occurrence", SQLite,
			"SELECT 1.1.1", "1.1", 9, "adds 1 token"},
		{"a string reached without leaving it", Postgres,
			"SELECT 'abc'", "'ab", 7, "breaks out of a string"},
		{"one added token", SQLite,
			"SELECT a b", "a b", 7, "adds 2 tokens"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inj, ok := detectIn(c.d, c.stmt, c.input)
			if !ok {
				t.Fatalf("detect(%v, %q, %q) found no injection", c.d, c.stmt, c.input)
			}
			if inj.Start != c.start || inj.End != c.start+len(c.input) {
				t.Errorf("occurrence [%d,%d), want [%d,%d)", inj.Start, inj.End, c.start, c.start+len(c.input))
			}
			if inj.Reason != c.reason {
				t.Errorf("reason %q, want %q", inj.Reason, c.reason)
			}
		})
	}
}

// TestEscapedInputsAreNeverInjections is the zero-false-positive promise on
// inputs that look like attacks: quoted the way each dialect needs (or in a
// comment they cannot end), none of them is reported. FuzzDetect checks the
// same property on random inputs.
func TestEscapedInputsAreNeverInjections(t *testing.T) {
	inputs := []string{
		"O'Brien", "' OR '1'='1", "admin'--", "admin'-- ", "admin'#", `\`, `\'`, `\\'`, `a\`, `a\\`,
		"1; DROP TABLE users", "'; DROP TABLE users; --", "*/ OR 1=1 /*", "/*! UNION */", "1 /*!50000 OR */ 1",
		"$$ OR 1=1 $$", "$q$ OR 1=1", "\" OR \"\"=\"", "` OR 1", "] OR 1", "'\n--\r\x00", "ünïcödé '", "x''", "'x",
		"E'\\' OR 1=1 --", "U&'\\0027' OR 1", "x /* y", "-- x", "# x",
	}
	for _, d := range everyDialect {
		for _, in := range inputs {
			for _, q := range escapedQueries(d, in) {
				t.Run(d.String()+"/"+q.quoting+"/"+in, func(t *testing.T) {
					if !onlyInside(q.stmt(), in, q.contentStart(), q.contentEnd()) {
						t.Fatalf("%q occurs outside its literal in %q: the test proves nothing", in, q.stmt())
					}
					checkEscaped(t, d, in, q)
				})
			}
		}
	}
}

// TestInputsOfQuotesOnlyAreNeverInjections: such an input, escaped, matches
// the application's own delimiters; raw, it can only break the statement.
func TestInputsOfQuotesOnlyAreNeverInjections(t *testing.T) {
	for _, d := range everyDialect {
		for _, in := range []string{"''", "'''", "' '", " ' ", `""`, "` `"} {
			for _, q := range escapedQueries(d, in) {
				t.Run(d.String()+"/"+in, func(t *testing.T) {
					if _, ok := detectIn(d, q.stmt(), in); ok {
						t.Errorf("detect(%q, %q) reported an injection", q.stmt(), in)
					}
				})
			}
		}
		// A payload made of more than quotes still is one.
		stmt := "SELECT 1 FROM t WHERE a = '' OR ''='' AND b = 2"
		if _, ok := detectIn(d, stmt, "' OR ''='"); !ok {
			t.Errorf("%v: detect(%q) missed the tautology", d, stmt)
		}
	}
}

func TestARepeatedInputInALongLiteralCostsLinearTime(t *testing.T) {
	input := strings.Repeat("a", 32<<10)
	stmt := "SELECT 1 WHERE x = '" + strings.Repeat("a", 1<<20) + "' AND y = 'aaaa" + "' OR 1=1 --'"
	// Compared with lexing the same statement (linear) on the same machine
	// at the same moment, the fastest of three runs each, so that a busy
	// machine slows both: a quadratic search would take thousands of times
	// longer (32 KiB of input at each of a million offsets).
	var toks []token
	lex, search := time.Duration(1<<63-1), time.Duration(1<<63-1)
	var ok bool
	for range 3 {
		start := time.Now()
		toks = tokenize(MySQL, stmt, toks[:0], true)
		lex = min(lex, time.Since(start))
		start = time.Now()
		_, ok = detect(stmt, input, input, toks)
		search = min(search, time.Since(start))
	}
	if limit := 50*lex + 50*time.Millisecond; search > limit {
		t.Errorf("detect took %v over a 1 MiB literal, lexing it %v", search, lex)
	}
	if ok {
		t.Error("an input inside the literal was reported")
	}
	if _, ok := detect(stmt, "aaaa' OR 1=1 --", "aaaa' OR 1=1 --", toks); !ok {
		t.Error("the injection after the long literal was missed")
	}
}

// TestDetectInputsThatChangeTheirValueInsideALiteral: an input that stays in
// one string but whose own bytes the database reads as escape sequences is
// stored as something else than what the application received (and perhaps
// validated): an injection into the literal. The same input escaped by the
// application is data.
func TestDetectInputsThatChangeTheirValueInsideALiteral(t *testing.T) {
	runDetectCases(t, []detectCase{
		// Raw: the value changes.
		{"two quotes alone are stored as one", nil,
			selectUser + "''''", "''", true},
		{"two quotes alone are stored as one before more of the statement", nil,
			selectUser + "'''' AND active = 1", "''", true},
		{"four quotes are stored as two", nil,
			selectUser + "''''''", "''''", true},
		{"a pair of quotes inside longer text is stored as one", nil,
			selectUser + "'ab''cd'", "ab''cd", true},
		{"a pair of quotes at the end of the input", nil,
			selectUser + "'ab''' AND active = 1", "ab''", true},
		{"a backslash-escaped quote is stored as a quote in MySQL", onlyMySQL,
			selectUser + `'\''`, `\'`, true},
		{"a backslash-escaped quote inside text in MySQL", onlyMySQL,
			selectUser + `'ab\'cd'`, `ab\'cd`, true},
		{"two backslashes are stored as one in MySQL", onlyMySQL,
			selectUser + `'a\\b'`, `a\\b`, true},
		{"backslash n is stored as a newline in MySQL", onlyMySQL,
			selectUser + `'a\nb'`, `a\nb`, true},
		{"backslash 0 is stored as a NUL in MySQL", onlyMySQL,
			selectUser + `'a\0b'`, `a\0b`, true},
		{"two double quotes are one in a MySQL double-quoted string", onlyMySQL,
			`SELECT id FROM users WHERE name = "ab""cd"`, `ab""cd`, true},
		{"two double quotes are one in a quoted identifier", notMySQL,
			`SELECT "ab""cd" FROM t`, `ab""cd`, true},
		{"two backticks are one in a backtick identifier", notPostgres,
			"SELECT `ab``cd` FROM t", "ab``cd", true},
		{"a hex escape is a quote in a PostgreSQL E string", onlyPostgres,
			`SELECT E'ab\x27cd'`, `ab\x27cd`, true},
		{"an octal escape in a PostgreSQL E string", onlyPostgres,
			`SELECT E'ab\047cd'`, `ab\047cd`, true},
		{"a Unicode escape is a quote in a PostgreSQL U& string", onlyPostgres,
			`SELECT U&'ab\0027cd'`, `ab\0027cd`, true},
		{"quotes and spaces are read as fewer quotes", nil,
			selectUser + "''' '''", "'' ''", true},
		{"three quotes swallow the closing quote and leave the string open", nil,
			selectUser + "'''''", "'''", true},

		// Escaped by the application: data.
		{"two quotes doubled are data", nil,
			selectUser + "''''''", "''", false},
		{"four quotes doubled are data", nil,
			selectUser + "''''''''''", "''''", false},
		{"two quotes doubled inside a LIKE pattern are data", nil,
			selectUser + "'%''''%'", "''", false},
		{"O'Brien doubled is data", nil,
			selectUser + "'O''Brien'", "O'Brien", false},
		{"a pair of quotes in text, doubled, is data", nil,
			selectUser + "'ab''''cd'", "ab''cd", false},
		{"two quotes backslash-escaped are data in MySQL", onlyMySQL,
			selectUser + `'\'\''`, "''", false},
		{"a backslash and quote escaped with backslashes are data in MySQL", onlyMySQL,
			selectUser + `'\\\''`, `\'`, false},
		{"a backslash and quote escaped by doubling both are data in MySQL", onlyMySQL,
			selectUser + `'\\'''`, `\'`, false},
		{"an input ending in a backslash, escaped, is data in MySQL", onlyMySQL,
			selectUser + `'a\\' AND active = 1`, `a\`, false},
		{"backslashes are plain in a standard string", notMySQL,
			selectUser + `'a\nb\\c'`, `a\nb\\c`, false},
		{"an input in a dollar-quoted string is read as it is", onlyPostgres,
			"SELECT $$ab''cd$$", "ab''cd", false},
		{"an input in a comment is never decoded", nil,
			"SELECT 1 /* ab''cd */", "ab''cd", false},
		{"an input after an escape written by the application is read as it is", onlyMySQL,
			`SELECT 'C:\new' AND x = 1`, "new", false},
		{"an input that is a doubled quote in an empty literal of the application is not judged there", nil,
			"SELECT COALESCE(name, '') FROM users", "''", false},
		{"two quotes from another input coincide with O'Brien escaped", nil,
			"INSERT INTO people (name, nick) VALUES ('O''Brien', 'x')", "''", false},
		{"two quotes escaped beside O'Brien escaped", nil,
			"INSERT INTO people (name, nick) VALUES ('O''Brien', '''''')", "''", false},
		{"two quotes raw beside O'Brien escaped", nil,
			"INSERT INTO people (name, nick) VALUES ('O''Brien', '''')", "''", true},
		{"two quotes raw at the start of a LIKE pattern", nil,
			selectUser + "'''%'", "''", true},
		{"two quotes raw at the end of a LIKE pattern", nil,
			selectUser + "'%'''", "''", true},
		{"backslash n from another input coincides with the application's escape in MySQL", onlyMySQL,
			`SELECT CONCAT(a, 'x\ny') FROM t`, `\n`, false},
		{"backslash n raw as the whole value in MySQL", onlyMySQL,
			selectUser + `'\n'`, `\n`, true},
		{"quotes and a space that coincide with a literal of the application are not judged there", nil,
			"SELECT 'a' || ' ' || 'b'", "' '", false},
	})
}

// TestDetectSignedNumbers: a sign and a number where an operand starts is
// one value; a sign after an operand subtracts, which is structure.
func TestDetectSignedNumbers(t *testing.T) {
	runDetectCases(t, []detectCase{
		{"a negative id is data", nil,
			"SELECT * FROM users WHERE id = -1", "-1", false},
		{"a negative id next to the comparison is data", nil,
			"SELECT * FROM users WHERE id=-1", "-1", false},
		{"a negative id after <> is data", nil,
			"SELECT * FROM users WHERE id<>-1 LIMIT 5", "-1", false},
		{"a negative decimal is data", nil,
			"SELECT * FROM prices WHERE delta = -2.5", "-2.5", false},
		{"a positive sign is data", nil,
			"SELECT * FROM users LIMIT 10 OFFSET +3", "+3", false},
		{"LIMIT -1 is data", nil,
			"SELECT * FROM users LIMIT -1", "-1", false},
		{"a signed exponent number is data", nil,
			"SELECT * FROM t WHERE x > -1e-3", "-1e-3", false},
		{"a signed number with white space around it is data", nil,
			"SELECT * FROM t WHERE x =  -7  AND y = 1", " -7 ", false},
		{"a signed number in a list is data", nil,
			"SELECT * FROM t WHERE x IN (1,-2)", "-2", false},
		{"a signed number after BETWEEN and AND is data", nil,
			"SELECT * FROM t WHERE x BETWEEN -5 AND -2", "-2", false},
		{"a signed number that starts a longer number is data", nil,
			"SELECT * FROM t WHERE x = -10", "-1", false},
		{"a signed number after a comment is data", nil,
			"SELECT * FROM t WHERE x = /* id */ -1", "-1", false},

		{"a subtraction is an injection", nil,
			"SELECT * FROM users WHERE id = 1-1", "1-1", true},
		{"a sign after a number subtracts", nil,
			"SELECT * FROM users WHERE id = 5-1", "-1", true},
		{"a sign after a column subtracts", nil,
			"SELECT * FROM users WHERE id = a -1", "-1", true},
		{"a sign after a closing parenthesis subtracts", nil,
			"SELECT * FROM users WHERE id = (5)-1", "-1", true},
		{"a signed number and a condition is an injection", nil,
			"SELECT * FROM users WHERE id = -1 OR 1=1", "-1 OR 1=1", true},
		{"two signs are an injection", nil,
			"SELECT * FROM users WHERE id = - -1", "- -1", true},
		{"a sign apart from its number is an injection", nil,
			"SELECT * FROM users WHERE id = - 1", "- 1", true},
		{"a double minus is a comment", notMySQL,
			"SELECT * FROM users WHERE id = 5--1 AND owner = 2", "-1", true},
		{"a double minus is a comment made by the input", notMySQL,
			"SELECT * FROM users WHERE id = --1 AND owner = 2", "--1", true},
		{"a double minus in MySQL is two signs", onlyMySQL,
			"SELECT * FROM users WHERE id = --1 AND owner = 2", "--1", true},
		{"a sign that ends a PostgreSQL operator is part of it", onlyPostgres,
			"SELECT * FROM t WHERE doc #-1", "-1", true},
		{"a sign and a word is an injection", nil,
			"SELECT * FROM users WHERE id = -id", "-id", true},
		{"a sign and a string is an injection", nil,
			"SELECT * FROM users WHERE id = -'1'", "-'1'", true},
		{"a sign and a parameter is an injection", nil,
			"SELECT * FROM users WHERE id = -?", "-?", true},
	})
}
