package sqlguard

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// readOnlyCase is one line of testdata/readonly.txt.
type readOnlyCase struct {
	dialect Dialect
	write   bool
	stmt    string
	line    int
}

// readOnlyCases reads testdata/readonly.txt, a line for each dialect it
// names ("*": all three).
func readOnlyCases(tb testing.TB) []readOnlyCase {
	tb.Helper()
	f, err := os.Open("testdata/readonly.txt")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []readOnlyCase
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		dialect, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimLeft(rest, " ")
		verdict, stmt, _ := strings.Cut(rest, " ")
		stmt = strings.TrimLeft(stmt, " ")
		if verdict != "read" && verdict != "write" {
			tb.Fatalf("testdata/readonly.txt:%d: verdict %q, want read or write", n, verdict)
		}
		ds := []Dialect{Postgres, MySQL, SQLite}
		if dialect != "*" {
			d, err := ParseDialect(dialect)
			if err != nil {
				tb.Fatalf("testdata/readonly.txt:%d: %v", n, err)
			}
			ds = []Dialect{d}
		}
		for _, d := range ds {
			out = append(out, readOnlyCase{dialect: d, write: verdict == "write", stmt: stmt, line: n})
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestReadOnlyClassifier(t *testing.T) {
	for _, c := range readOnlyCases(t) {
		why := readOnlyRefusal(c.dialect, c.stmt, tokenize(c.dialect, c.stmt, nil, false))
		if (why != "") != c.write {
			t.Errorf("testdata/readonly.txt:%d: %s %q: refusal %q, want write=%v", c.line, c.dialect, c.stmt, why, c.write)
		}
	}
}

func TestReadOnlyReasonsNameWhatWrites(t *testing.T) {
	for _, c := range []struct {
		d    Dialect
		stmt string
		want string
	}{
		{Postgres, "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", "DELETE writes"},
		{Postgres, "SELECT nextval('s')", "nextval() advances a sequence"},
		{Postgres, "SELECT 1; SELECT 2; UPDATE t SET a = 1", "statement 3: UPDATE statement"},
		{Postgres, "SELECT * FROM t FOR UPDATE", "FOR UPDATE locks rows"},
		{Postgres, "SELECT f(1)", "function f(): unknown effects"},
		{MySQL, "SELECT * FROM t INTO OUTFILE '/tmp/x'", "SELECT ... INTO writes"},
		{SQLite, "PRAGMA user_version = 5", "PRAGMA user_version with a value"},
	} {
		why := readOnlyRefusal(c.d, c.stmt, tokenize(c.d, c.stmt, nil, false))
		if !strings.Contains(why, c.want) {
			t.Errorf("%s %q: %q, want it to say %q", c.d, c.stmt, why, c.want)
		}
	}
}

// FuzzReadOnly checks the classifier against the lexer: whatever the input,
// it does not panic, a word that writes (INSERT, UPDATE, DELETE, MERGE,
// INTO) that the lexer reads as code is refused, a write appended as a
// statement of its own is refused, and a read put before the input changes
// nothing. Its seeds are testdata/readonly.txt; to fuzz:
//
//	go test -run='^$' -fuzz=FuzzReadOnly -fuzztime=60s ./sqlguard/
func FuzzReadOnly(f *testing.F) {
	for _, c := range readOnlyCases(f) {
		f.Add(uint8(c.dialect), c.stmt)
	}
	f.Fuzz(func(t *testing.T, dialect uint8, stmt string) {
		d := Dialect(dialect%3 + 1)
		toks := tokenize(d, stmt, nil, false)
		why := readOnlyRefusal(d, stmt, toks)
		if again := readOnlyRefusal(d, stmt, tokenize(d, stmt, nil, false)); again != why {
			t.Fatalf("%s %q: %q then %q", d, stmt, why, again)
		}
		if why == "" {
			for _, tk := range toks {
				if tk.Kind != tokWord {
					continue
				}
				switch strings.ToUpper(stmt[tk.Start:tk.End]) {
				case "INSERT", "UPDATE", "DELETE", "MERGE", "INTO":
					t.Fatalf("%s %q: allowed, with %q in its code", d, stmt, stmt[tk.Start:tk.End])
				}
			}
		}
		// Appended on a line of its own, a DELETE is code unless the
		// input leaves a comment or a literal open.
		w := stmt + "\n;DELETE FROM t"
		wt := tokenize(d, w, nil, false)
		code := false
		for _, tk := range wt {
			code = code || tk.Kind == tokWord && tk.Start == len(stmt)+2
		}
		if code && readOnlyRefusal(d, w, wt) == "" {
			t.Fatalf("%s %q: allowed with a DELETE after it", d, stmt)
		}
		// A read before the input is judged on its own.
		p := "SELECT 1;" + stmt
		if got := readOnlyRefusal(d, p, tokenize(d, p, nil, false)); (got == "") != (why == "") {
			t.Fatalf("%s %q: %q alone, %q after SELECT 1;", d, stmt, why, got)
		}
	})
}

// typicalSelect is the statement of the read-only benchmarks: what an
// application's list page runs.
const typicalSelect = "SELECT o.id, o.item, o.total, u.name FROM orders o JOIN users u ON u.id = o.owner WHERE o.owner = $1 AND o.deleted_at IS NULL ORDER BY o.created DESC LIMIT 20"

// BenchmarkReadOnlyRefusal measures the classifier alone, lexing included,
// on a typical SELECT (see BenchmarkCheckReadOnly for it inside Check).
func BenchmarkReadOnlyRefusal(b *testing.B) {
	toks := make([]token, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		toks = tokenize(Postgres, typicalSelect, toks, false)
		if why := readOnlyRefusal(Postgres, typicalSelect, toks); why != "" {
			b.Fatal(why)
		}
	}
}

func TestReadOnlyRefusalAllocatesNothingForAQuery(t *testing.T) {
	stmt := "select id from t where a = lower($1); commit"
	toks := tokenize(Postgres, stmt, nil, false)
	if n := testing.AllocsPerRun(100, func() {
		if why := readOnlyRefusal(Postgres, stmt, toks); why != "" {
			t.Fatal(why)
		}
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
