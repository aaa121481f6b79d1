package sqlguard_test

// Integration tests, against the three real databases (see dbs_test.go), for
// two classes of input that stay inside one token:
//
//   - input whose own bytes the database reads as escape sequences ('' for
//     one quote, \' in MySQL): concatenated raw into a string, it is stored
//     as something else than the application received: blocked; escaped by
//     the application, it is stored exactly: allowed.
//   - a signed number concatenated where the statement expects a number
//     (WHERE id = -1, LIMIT -1, OFFSET +3): one value, allowed; with more
//     after it (-1 OR 1=1), blocked.
//
//	go test ./sqlguard/ -run IntegrationValues -count=1

import (
	"database/sql"
	"errors"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/ramparttest"
	"github.com/rampartsec/rampart/sqlguard"
)

// valueRoutes are the application of these tests, on the fixture's tables.
func valueRoutes(s *shop) *http.ServeMux {
	fx := s.fx
	mux := http.NewServeMux()
	insert := func(w http.ResponseWriter, r *http.Request, stmt string) {
		var id int64
		var err error
		if fx.b.dialect == sqlguard.Postgres {
			err = s.db.QueryRowContext(r.Context(), stmt+" RETURNING id").Scan(&id) // sink:value-insert
		} else {
			var res sql.Result
			if res, err = s.db.ExecContext(r.Context(), stmt); err == nil { // sink:value-insert
				id, err = res.LastInsertId()
			}
		}
		s.writeID(w, r, id, err)
	}
	// Vulnerable: the text is concatenated as it came.
	mux.HandleFunc("POST /raw", func(w http.ResponseWriter, r *http.Request) {
		insert(w, r, "INSERT INTO "+fx.notes+" (body) VALUES ('"+r.PostFormValue("text")+"')")
	})
	// Safe: escaped for the dialect (quotes doubled, and backslashes too on
	// MySQL).
	mux.HandleFunc("POST /escaped", func(w http.ResponseWriter, r *http.Request) {
		insert(w, r, "INSERT INTO "+fx.notes+" (body) VALUES ('"+fx.b.quote(r.PostFormValue("text"))+"')")
	})
	if fx.b.dialect == sqlguard.Postgres {
		// PostgreSQL's E'...' strings read backslash escapes.
		mux.HandleFunc("POST /raw-e", func(w http.ResponseWriter, r *http.Request) {
			insert(w, r, "INSERT INTO "+fx.notes+" (body) VALUES (E'"+r.PostFormValue("text")+"')")
		})
		mux.HandleFunc("POST /escaped-e", func(w http.ResponseWriter, r *http.Request) {
			text := strings.ReplaceAll(strings.ReplaceAll(r.PostFormValue("text"), `\`, `\\`), "'", "''")
			insert(w, r, "INSERT INTO "+fx.notes+" (body) VALUES (E'"+text+"')")
		})
	}
	// Numeric contexts, the number validated by the application (or not).
	mux.HandleFunc("GET /by-id", func(w http.ResponseWriter, r *http.Request) {
		rows, err := s.db.QueryContext(r.Context(), "SELECT name FROM "+fx.users+" WHERE id = "+r.URL.Query().Get("id")+" ORDER BY id") // sink:value-number
		s.writeRows(w, r, rows, err)
	})
	mux.HandleFunc("GET /above", func(w http.ResponseWriter, r *http.Request) {
		rows, err := s.db.QueryContext(r.Context(), "SELECT name FROM "+fx.users+" WHERE visits > "+r.URL.Query().Get("min")+" ORDER BY id")
		s.writeRows(w, r, rows, err)
	})
	mux.HandleFunc("GET /page", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		rows, err := s.db.QueryContext(r.Context(), "SELECT name FROM "+fx.users+" ORDER BY id LIMIT "+q.Get("limit")+" OFFSET "+q.Get("offset"))
		s.writeRows(w, r, rows, err)
	})
	return mux
}

// valueSinks returns the file:line of each "sink:value-..." marker of this
// file: where the events must point.
func valueSinks(t *testing.T) map[string][]string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	src, err := os.ReadFile(file)
	if err != nil {
		if src, err = os.ReadFile("values_integration_test.go"); err != nil {
			t.Fatal(err)
		}
	}
	marker := "// sink" + ":"
	locs := map[string][]string{}
	for i, line := range strings.Split(string(src), "\n") {
		if j := strings.LastIndex(line, marker); j >= 0 {
			name := strings.TrimSpace(line[j+len(marker):])
			locs[name] = append(locs[name], file+":"+strconv.Itoa(i+1))
		}
	}
	return locs
}

// selfChanging returns inputs that the database, given them raw inside the
// quotes of a string on route, stores as something else.
func selfChanging(b *backend) map[string][]string {
	in := map[string][]string{
		"/raw": {"''", "''''", "ab''cd", "it''s", "'' ''", "O''Brien"},
	}
	switch b.dialect {
	case sqlguard.MySQL:
		in["/raw"] = append(in["/raw"], `\'`, `ab\'cd`, `a\\b`, `C:\new`, `\"`, `x\0y`)
	case sqlguard.Postgres:
		in["/raw-e"] = []string{`\'`, `ab\x27cd`, `a\\b`, `C:\new`, `\047\047`, `''`}
	}
	return in
}

func TestIntegrationValuesThatChangeInsideAStringAreBlocked(t *testing.T) {
	sinks := valueSinks(t)
	forEachBackend(t, func(t *testing.T, b *backend) {
		fx := newFixture(t, b)
		agent, events := ramparttest.NewAgent(t, rampart.Config{})
		g, err := sqlguard.New(agent, b.dialect)
		if err != nil {
			t.Fatal(err)
		}
		bare := &shop{fx: fx, db: b.openBare(t)}
		guarded := &shop{fx: fx, db: b.openGuarded(t, g, &recorder{})}
		off := newClient(t, agent.Handler(valueRoutes(bare)))
		on := newClient(t, agent.Handler(valueRoutes(guarded)))
		stored := func(t *testing.T, body string) string {
			t.Helper()
			id, err := strconv.ParseInt(body, 10, 64)
			if err != nil {
				t.Fatalf("no id in %q", body)
			}
			var s string
			if err := fx.admin.QueryRow("SELECT body FROM " + fx.notes + " WHERE id = " + strconv.FormatInt(id, 10)).Scan(&s); err != nil {
				t.Fatal(err)
			}
			return s
		}
		for route, inputs := range selfChanging(b) {
			for _, in := range inputs {
				t.Run(strings.TrimPrefix(route, "/")+"/"+in, func(t *testing.T) {
					form := url.Values{"text": {in}}
					// The bare application stores something else: the
					// database read the input's bytes as escapes.
					r := off.do(t, postForm(route, form))
					if r.status != http.StatusOK {
						t.Fatalf("unguarded: status %d %q, want the statement to run", r.status, r.body)
					}
					if got := stored(t, r.body); got == in {
						t.Fatalf("unguarded: stored %q, the input itself: it does not change its value", got)
					} else {
						t.Logf("unguarded: input %q stored as %q", in, got)
					}

					// Guarded, it is refused before the database.
					before := fx.count(t, fx.notes)
					r = on.do(t, postForm(route, form))
					checkBlocked(t, r)
					if n := fx.count(t, fx.notes); n != before {
						t.Errorf("%d rows after the blocked insert, want %d", n, before)
					}
					err := guarded.err(r.id)
					var be *rampart.BlockedError
					if !errors.As(err, &be) {
						t.Fatalf("the database call returned %v, want a *rampart.BlockedError", err)
					}
					e := events.Wait(t, ramparttest.Want{RequestID: r.id}.Match)
					if e.Kind != "sql_injection" || e.Input.Value != in || !strings.Contains(e.Reason, "inside a string") {
						t.Errorf("event kind %q input %q reason %q", e.Kind, e.Input.Value, e.Reason)
					}
					if !strings.Contains(strings.Join(sinks["value-insert"], " "), e.Location) || e.Location == "" {
						t.Errorf("event location %q, want one of %v", e.Location, sinks["value-insert"])
					}

					// Escaped by the application, it is stored exactly.
					escaped := "/escaped" + strings.TrimPrefix(route, "/raw")
					reported := agent.Stats().Events
					r = on.do(t, postForm(escaped, form))
					if r.status != http.StatusOK {
						t.Fatalf("escaped: status %d %q", r.status, r.body)
					}
					if got := stored(t, r.body); got != in {
						t.Errorf("escaped: stored %q, want %q", got, in)
					}
					if agent.Stats().Events != reported {
						t.Errorf("escaped: an event for request %s", r.id)
					}
				})
			}
		}
		want := 0
		for _, inputs := range selfChanging(b) {
			want += len(inputs)
		}
		if n := agent.Stats().Events; n != uint64(want) {
			t.Errorf("%d events, want %d: one per raw input, none for the escaped ones", n, want)
		}
	})
}

func TestIntegrationValuesSignedNumbersAreData(t *testing.T) {
	sinks := valueSinks(t)
	forEachBackend(t, func(t *testing.T, b *backend) {
		fx := newFixture(t, b)
		fx.exec(t, "INSERT INTO "+fx.users+" VALUES (-1, 'minus', 'minus@example.com', 'x', 0), (-3, 'minus3', 'm3@example.com', 'x', 5)")
		agent, events := ramparttest.NewAgent(t, rampart.Config{})
		g, err := sqlguard.New(agent, b.dialect)
		if err != nil {
			t.Fatal(err)
		}
		bare := &shop{fx: fx, db: b.openBare(t)}
		guarded := &shop{fx: fx, db: b.openGuarded(t, g, &recorder{})}
		off := newClient(t, agent.Handler(valueRoutes(bare)))
		on := newClient(t, agent.Handler(valueRoutes(guarded)))

		cases := []struct{ path, want string }{
			{"/by-id?id=-1", "minus\n"},
			{"/by-id?id=" + url.QueryEscape("+3"), "carol\n"},
			{"/by-id?id=-3", "minus3\n"},
			{"/above?min=-2.5", "minus3\nminus\nalice\nbob\ncarol\ndave\n"},
			{"/above?min=" + url.QueryEscape("+4.5"), "minus3\n"},
		}
		switch b.dialect {
		case sqlguard.SQLite: // LIMIT -1 is no limit
			cases = append(cases, struct{ path, want string }{"/page?limit=-1&offset=" + url.QueryEscape("+4"), "carol\ndave\n"})
		case sqlguard.Postgres: // a negative LIMIT is an error; a signed OFFSET is not
			cases = append(cases, struct{ path, want string }{"/page?limit=2&offset=" + url.QueryEscape("+3"), "bob\ncarol\n"})
		}
		// MariaDB accepts neither sign in LIMIT or OFFSET: WHERE covers it.
		for _, c := range cases {
			t.Run(c.path, func(t *testing.T) {
				r := off.do(t, get(c.path))
				if r.status != http.StatusOK || r.body != c.want {
					t.Fatalf("unguarded: %d %q, want 200 %q", r.status, r.body, c.want)
				}
				r = on.do(t, get(c.path))
				if r.status != http.StatusOK || r.body != c.want {
					t.Errorf("guarded: %d %q, want 200 %q", r.status, r.body, c.want)
				}
			})
		}
		if n := agent.Stats().Events; n != 0 {
			t.Fatalf("%d events for signed numbers, want 0", n)
		}

		// A signed number with more after it is still an injection.
		blocked := []struct{ path, input string }{
			{"/by-id?id=", "-1 OR 1=1"},
			{"/by-id?id=", "-1 OR -1=-1"},
			{"/above?min=", "-1 OR 1=1"},
		}
		for _, x := range blocked {
			t.Run("blocked/"+x.path+x.input, func(t *testing.T) {
				path, p := x.path+url.QueryEscape(x.input), x.input
				r := off.do(t, get(path))
				if r.status != http.StatusOK || rowCount(r.body) < 2 {
					t.Fatalf("unguarded: %d %q, want every row", r.status, r.body)
				}
				r = on.do(t, get(path))
				checkBlocked(t, r)
				e := events.Wait(t, ramparttest.Want{RequestID: r.id}.Match)
				if e.Input.Value != p || !strings.HasPrefix(e.Reason, "input adds") {
					t.Errorf("event %+v", e)
				}
				if strings.HasPrefix(path, "/by-id") && !strings.Contains(strings.Join(sinks["value-number"], " "), e.Location) {
					t.Errorf("event location %q, want %v", e.Location, sinks["value-number"])
				}
			})
		}
	})
}
