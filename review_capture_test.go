package rampart_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"modernc.org/sqlite"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/sqlguard"
)

// Bypasses of the input capture found by review: each sends an injection
// that a handler reads the way ordinary Go code does, to the vulnerable
// application over a real SQLite database, and expects it blocked.

func TestMultipartFieldWithEmptyFileNameIsAnInput(t *testing.T) {
	// net/http stores a part whose filename parameter is empty as a value,
	// which r.FormValue returns: its content is a field, not a file.
	a, events := newAgent(t, rampart.Config{})
	srv := httptest.NewServer(vulnerableApp(t, a))
	defer srv.Close()
	const boundary = "b0undary"
	for _, disp := range []string{
		`form-data; name="name"; filename=""`,
		`form-data; name="name"; filename*=UTF-8''`,
	} {
		body := "--" + boundary + "\r\n" +
			"Content-Disposition: " + disp + "\r\n\r\n" +
			injection + "\r\n--" + boundary + "--\r\n"
		expectBlocked(t, srv, events, attack{name: disp, target: "/search?via=form",
			ctype: "multipart/form-data; boundary=" + boundary, body: []byte(body)}, "sql_injection")
	}
}

func TestAValueSeenDeepIsStillDecodedWhereCodeDecodesIt(t *testing.T) {
	// Past 256 inputs identical values are recorded once. A value first met
	// at the deepest decoding, where it is not decoded again, must not hide
	// what it decodes to where the handler decodes it: here base64 of the
	// payload sits three base64 layers deep in one parameter, then plain in
	// the one the handler decodes.
	a, events := newAgent(t, rampart.Config{})
	srv := httptest.NewServer(vulnerableApp(t, a))
	defer srv.Close()
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	payload := b64(injection)
	var q strings.Builder
	q.WriteString("/search?via=base64")
	for i := range 150 {
		fmt.Fprintf(&q, "&f%d=v%d", i, i)
	}
	q.WriteString("&w=" + url.QueryEscape(b64(b64(b64(payload)))))
	q.WriteString("&q=" + url.QueryEscape(payload))
	expectBlocked(t, srv, events, attack{name: "deep first", method: "GET", target: q.String()}, "sql_injection")
}

// countApp serves GET /count over SQLite in memory: it concatenates the
// name the read function takes from the request into SQL and answers the
// number of rows (3 when an injection runs). wrap wraps the application
// inside the middleware, as a router or a standard library helper would.
func countApp(t *testing.T, a *rampart.Agent, wrap func(http.Handler) http.Handler, read func(*http.Request) string) http.Handler {
	t.Helper()
	g, err := sqlguard.New(a, sqlguard.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	db, err := g.Open(&sqlite.Driver{}, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	for _, stmt := range []string{
		`CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)`,
		`INSERT INTO users (id, name) VALUES (1, 'alice'), (2, 'bob'), (3, 'carol')`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/count", func(w http.ResponseWriter, r *http.Request) {
		var n int
		err := db.QueryRowContext(r.Context(), "SELECT count(*) FROM users WHERE name = '"+read(r)+"'").Scan(&n)
		if errors.Is(err, rampart.ErrBlocked) {
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%d", n)
	})
	return a.Handler(wrap(mux))
}

func TestQuerySemicolonsAllowedInsideTheMiddleware(t *testing.T) {
	// http.AllowQuerySemicolons rewrites ';' to '&' for the handler it
	// wraps: inside the middleware, a=1;name=<payload> is one pair to a
	// parser that splits on '&' only, and name=<payload> to the handler.
	a, events := newAgent(t, rampart.Config{})
	app := countApp(t, a, http.AllowQuerySemicolons, func(r *http.Request) string { return r.URL.Query().Get("name") })
	srv := httptest.NewServer(app)
	defer srv.Close()
	expectBlocked(t, srv, events, attack{name: "semicolon", method: "GET", target: "/count?a=1;name=" + url.QueryEscape(injection)}, "sql_injection")
	if code, body := send(t, srv, attack{method: "GET", target: "/count?a=1;name=bob"}); code != http.StatusOK || body != "1" {
		t.Fatalf("benign: status %d body %q, want 200 and 1 row", code, body)
	}
}

func TestTraceAndActorHeadersNothingVerifiedAreInputs(t *testing.T) {
	// Without an identity the agent verifies no actor token, and no one
	// verifies tracestate (free text) or a traceparent that is not one:
	// code that logs them into SQL reads attacker text.
	for _, h := range []string{"Tracestate", "Traceparent", "Rampart-Actor"} {
		t.Run(h, func(t *testing.T) {
			a, events := newAgent(t, rampart.Config{})
			srv := httptest.NewServer(countApp(t, a, func(h http.Handler) http.Handler { return h },
				func(r *http.Request) string { return r.Header.Get(h) }))
			defer srv.Close()
			expectBlocked(t, srv, events, attack{name: h, method: "GET", target: "/count", header: map[string]string{h: `x' OR 1<2--`}}, "sql_injection")
		})
	}
}
