package sqlguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
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
func vulnerableQuery(e exploit) (query string, inputs []string, ok bool) {
	p := strings.NewReplacer("{users}", "users", "{secrets}", "secrets", "{canary}", "canary", "{hits}", "hits", "{blob}", "300000", "{loop}", "300000").Replace(e.payload)
	switch e.context {
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
	switch e.context {
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
	benign := readBenign(t)
	t.Logf("benign corpus: testdata/benign.txt, %d inputs", len(benign))
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
		exploits := readExploits(t, d)
		t.Logf("%s exploits: testdata/exploits_%s.txt, %d payloads", d, d, len(exploits))
		g := newBenchGuard(t, d)
		row := comparisonRow{corpus: "exploits", dialect: d.String()}
		var libMisses, rampartMisses []string
		for _, e := range exploits {
			q, inputs, ok := vulnerableQuery(e)
			if !ok {
				t.Errorf("%s: unknown context %q or undecodable payload %q", e.Pos(), e.context, e.payload)
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
				libMisses = append(libMisses, fmt.Sprintf("%s %q", e.context, inputs[0]))
			}
			err := g.Check(rampart.WithUntrusted(context.Background(), rampart.SourceQuery, inputs...), q)
			if errors.Is(err, rampart.ErrBlocked) {
				row.rampart++
			} else {
				rampartMisses = append(rampartMisses, fmt.Sprintf("line %d: %s %q in %q", e.Number, e.context, inputs[0], q))
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
	benign := readBenign(b)
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
		exploits := readExploits(b, d)
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
