package sqlguard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	libinjection "github.com/corazawaf/libinjection-go"
	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/sqlguard"
)

// This file puts the guard side by side with libinjection, the SQL injection
// detector of ModSecurity and Coraza, on the same corpora. libinjection does
// what a WAF does: it looks at each input alone, without the query. The guard
// looks at the query the input ended up in: a correctly escaped one for the
// benign corpus, a concatenated, vulnerable one for the exploits.

// benchExploit is one line of testdata/exploits_<dialect>.txt.
type benchExploit struct {
	Context string // where the application concatenates the payload
	Oracle  string // how the corpus's author confirmed that it exploits
	Payload string
	Line    int
}

// corpusValue decodes a corpus field: a Go-quoted string when it starts with
// a double quote, the text itself otherwise.
func corpusValue(s string) (string, error) {
	if strings.HasPrefix(s, `"`) {
		return strconv.Unquote(s)
	}
	return s, nil
}

// corpusLines yields the non-blank, non-comment lines of a corpus file with
// their numbers, or reports that the file does not exist.
func corpusLines(tb testing.TB, name string) (lines []string, numbers []int, ok bool) {
	tb.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, false
	}
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		lines = append(lines, line)
		numbers = append(numbers, n)
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return lines, numbers, true
}

// fallbackBenign stands in for testdata/benign.txt while it does not exist.
var fallbackBenign = []string{
	"O'Brien", "Robert'); DROP TABLE Students;--", "1=1", "select", "union square",
	"it's -- fine", "/* not a comment */", "Tom & Jerry", "100% cotton", "C:\\Users\\me",
	`say "hello"`, "rock 'n' roll", "OR", "x' OR '1'='1", "1; DELETE FROM users",
}

// fallbackExploits stands in for testdata/exploits_<dialect>.txt.
var fallbackExploits = []benchExploit{
	{Context: "str", Oracle: "fallback", Payload: "x' OR '1'='1"},
	{Context: "str", Oracle: "fallback", Payload: "' UNION SELECT name, email FROM users --"},
	{Context: "str", Oracle: "fallback", Payload: "'; DROP TABLE users; --"},
	{Context: "num", Oracle: "fallback", Payload: "1 OR 1=1"},
	{Context: "num", Oracle: "fallback", Payload: "0 UNION SELECT 1, name FROM users"},
}

func loadBenign(tb testing.TB) (inputs []string, source string) {
	tb.Helper()
	lines, numbers, ok := corpusLines(tb, "benign.txt")
	if !ok {
		return fallbackBenign, "inline fallback (testdata/benign.txt missing)"
	}
	for i, line := range lines {
		v, err := corpusValue(line)
		if err != nil {
			tb.Fatalf("benign.txt:%d: %v", numbers[i], err)
		}
		inputs = append(inputs, v)
	}
	return inputs, "testdata/benign.txt"
}

func loadExploits(tb testing.TB, d sqlguard.Dialect) (exploits []benchExploit, source string) {
	tb.Helper()
	name := "exploits_" + d.String() + ".txt"
	lines, numbers, ok := corpusLines(tb, name)
	if !ok {
		return fallbackExploits, "inline fallback (testdata/" + name + " missing)"
	}
	for i, line := range lines {
		fields := strings.SplitN(line, "\t", 3)
		if len(fields) != 3 {
			tb.Fatalf("%s:%d: want context<TAB>oracle<TAB>payload", name, numbers[i])
		}
		p, err := corpusValue(fields[2])
		if err != nil {
			tb.Fatalf("%s:%d: %v", name, numbers[i], err)
		}
		exploits = append(exploits, benchExploit{Context: fields[0], Oracle: fields[1], Payload: p, Line: numbers[i]})
	}
	return exploits, "testdata/" + name
}

var benchDialects = []sqlguard.Dialect{sqlguard.Postgres, sqlguard.MySQL, sqlguard.SQLite}

// escapedQuery is what a careful application that builds SQL by hand sends:
// the input escaped for the dialect inside a string literal (the
// /notes/find-escaped route of integration_test.go).
func escapedQuery(d sqlguard.Dialect, input string) string {
	esc := input
	if d == sqlguard.MySQL {
		esc = strings.ReplaceAll(esc, `\`, `\\`)
	}
	esc = strings.ReplaceAll(esc, "'", "''")
	return "SELECT id, body FROM notes WHERE body = '" + esc + "' ORDER BY id"
}

// vulnerableQuery is the statement the vulnerable route of
// integration_test.go named by the exploit's context runs, and the inputs of
// its request: the payload after transport decoding (what both the
// application and a WAF see) and the other parameters. It reports false
// for a context it does not know.
func vulnerableQuery(e benchExploit) (query string, inputs []string, ok bool) {
	p := strings.NewReplacer("{users}", "users", "{secrets}", "secrets", "{canary}", "canary", "{hits}", "hits", "{blob}", "300000", "{loop}", "300000").Replace(e.Payload)
	switch e.Context {
	case "str-raw":
		v, err := url.ParseQuery("name=" + p)
		if err != nil {
			return "", nil, false
		}
		p = v.Get("name")
	case "json":
		if err := json.Unmarshal([]byte(`"`+p+`"`), &p); err != nil {
			return "", nil, false
		}
	}
	switch e.Context {
	case "str", "str-raw", "json":
		return "SELECT name, email FROM users WHERE name = '" + p + "'", []string{p}, true
	case "num":
		return "SELECT name, email FROM users WHERE id = " + p, []string{p}, true
	case "order":
		return "SELECT name, email FROM users ORDER BY " + p, []string{p}, true
	case "login":
		return "SELECT name FROM users WHERE name = '" + p + "' AND password = 'not-the-password'", []string{p, "not-the-password"}, true
	case "login-bs":
		return `SELECT name FROM users WHERE name = '\' AND password = '` + p + "'", []string{p, `\`}, true
	case "doubled":
		return "SELECT name, email FROM users WHERE name = '" + strings.ReplaceAll(p, "'", "''") + "'", []string{p}, true
	case "slashed":
		return "SELECT name, email FROM users WHERE name = '" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(p) + "'", []string{p}, true
	case "decoded":
		u, err := url.QueryUnescape(p)
		if err != nil {
			return "", nil, false
		}
		return "SELECT name, email FROM users WHERE name = '" + u + "'", []string{p}, true
	case "exec":
		return "UPDATE users SET visits = visits + 1 WHERE name = '" + p + "'", []string{p}, true
	case "header":
		return "INSERT INTO hits (ua) VALUES ('" + p + "')", []string{p}, true
	}
	return "", nil, false
}

// comparisonRow is one line of the table TestLibinjectionComparison logs.
type comparisonRow struct {
	corpus, dialect string
	n               int // inputs
	occur           int // benign inputs that occur verbatim in the escaped query
	libinjection    int // inputs libinjection flags
	rampart         int // inputs the guard blocks
}

func TestLibinjectionComparison(t *testing.T) {
	benign, benignSource := loadBenign(t)
	t.Logf("benign corpus: %s, %d inputs", benignSource, len(benign))
	var rows []comparisonRow

	libFP := 0
	var libFPExamples []string
	for _, v := range benign {
		if sqli, _ := libinjection.IsSQLi(v); sqli {
			libFP++
			if len(libFPExamples) < 15 {
				libFPExamples = append(libFPExamples, strconv.Quote(v))
			}
		}
	}
	for _, d := range benchDialects {
		g := newBenchGuard(t, d)
		row := comparisonRow{corpus: "benign", dialect: d.String(), n: len(benign), libinjection: libFP}
		for _, v := range benign {
			q := escapedQuery(d, v)
			if strings.Contains(q, v) {
				row.occur++
			}
			err := g.Check(rampart.WithUntrusted(context.Background(), rampart.SourceQuery, v), q)
			if err != nil {
				row.rampart++
				t.Errorf("false positive (%s): input %q in %q: %v", d, v, q, err)
			}
		}
		rows = append(rows, row)
	}

	for _, d := range benchDialects {
		exploits, source := loadExploits(t, d)
		t.Logf("%s exploits: %s, %d payloads", d, source, len(exploits))
		g := newBenchGuard(t, d)
		row := comparisonRow{corpus: "exploits", dialect: d.String()}
		var libMisses, rampartMisses []string
		for _, e := range exploits {
			q, inputs, ok := vulnerableQuery(e)
			if !ok {
				t.Errorf("exploits_%s.txt:%d: unknown context %q or undecodable payload %q", d, e.Line, e.Context, e.Payload)
				continue
			}
			row.n++
			// A WAF inspects every input of the request; the payload is
			// the first.
			detected := false
			for _, in := range inputs {
				if sqli, _ := libinjection.IsSQLi(in); sqli {
					detected = true
				}
			}
			if detected {
				row.libinjection++
			} else {
				libMisses = append(libMisses, fmt.Sprintf("%s %q", e.Context, inputs[0]))
			}
			err := g.Check(rampart.WithUntrusted(context.Background(), rampart.SourceQuery, inputs...), q)
			if errors.Is(err, rampart.ErrBlocked) {
				row.rampart++
			} else {
				rampartMisses = append(rampartMisses, fmt.Sprintf("line %d: %s %q in %q", e.Line, e.Context, inputs[0], q))
			}
		}
		if len(libMisses) > 0 {
			t.Logf("%s: libinjection misses:\n\t%s", d, strings.Join(libMisses, "\n\t"))
		}
		if len(rampartMisses) > 0 {
			t.Logf("%s: Rampart misses:\n\t%s", d, strings.Join(rampartMisses, "\n\t"))
		}
		rows = append(rows, row)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "\n%-9s %-9s %6s %14s %14s\n", "corpus", "dialect", "inputs", "libinjection", "rampart")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-9s %-9s %6d %14d %14d", r.corpus, r.dialect, r.n, r.libinjection, r.rampart)
		if r.corpus == "benign" {
			fmt.Fprintf(&b, "   (false positives; %d of %d inputs occur verbatim in the escaped query)", r.occur, r.n)
		} else {
			b.WriteString("   (detections)")
		}
		b.WriteByte('\n')
	}
	t.Log(b.String())
	if len(libFPExamples) > 0 {
		t.Logf("libinjection false positives, e.g.:\n\t%s", strings.Join(libFPExamples, "\n\t"))
	}
}

// BenchmarkCorpus measures the time per input of libinjection.IsSQLi and of
// Guard.Check (one input in the context, placed in a query as in
// TestLibinjectionComparison). One op is the whole corpus; ns/input is the
// figure to compare.
//
// Compare with: benchstat -col /engine
func BenchmarkCorpus(b *testing.B) {
	benign, _ := loadBenign(b)
	type item struct {
		g     *sqlguard.Guard
		ctx   context.Context
		input string
		query string
	}
	corpora := map[string][]item{}
	gs := map[sqlguard.Dialect]*sqlguard.Guard{}
	for _, d := range benchDialects {
		gs[d] = newBenchGuard(b, d)
	}
	for _, v := range benign {
		d := sqlguard.Postgres
		corpora["benign"] = append(corpora["benign"], item{gs[d], rampart.WithUntrusted(context.Background(), rampart.SourceQuery, v), v, escapedQuery(d, v)})
	}
	for _, d := range benchDialects {
		exploits, _ := loadExploits(b, d)
		for _, e := range exploits {
			q, inputs, ok := vulnerableQuery(e)
			if !ok {
				continue
			}
			corpora["exploits"] = append(corpora["exploits"], item{gs[d], rampart.WithUntrusted(context.Background(), rampart.SourceQuery, inputs[0]), inputs[0], q})
		}
	}
	for _, corpus := range []string{"benign", "exploits"} {
		items := corpora[corpus]
		if len(items) == 0 {
			b.Fatalf("corpus %s is empty", corpus)
		}
		b.Run("corpus="+corpus+"/engine=libinjection", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, it := range items {
					libinjection.IsSQLi(it.input)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(items)), "ns/input")
		})
		b.Run("corpus="+corpus+"/engine=rampart", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, it := range items {
					_ = it.g.Check(it.ctx, it.query)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(items)), "ns/input")
		})
	}
}
