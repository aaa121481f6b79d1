package rampart_test

import (
	"bytes"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/execguard"
	"github.com/rampartsec/rampart/fsguard"
	"github.com/rampartsec/rampart/ramparttest"
	"github.com/rampartsec/rampart/sqlguard"
	"github.com/rampartsec/rampart/ssrfguard"
)

// The tests of this file run a vulnerable application behind the
// middleware against a real SQLite database: the handler takes a name from
// the request the way ordinary Go code does, whatever the Content-Type
// says, and concatenates it into SQL. The users table has three rows, so
// an injection that runs answers 3 where a benign name answers 0 or 1.

const injection = `x' OR '1'='1`

// vulnerableApp serves POST and GET /search (the name read as ?via= says),
// /files/ and /docs/{rest...} (the name is a segment of r.URL.Path), over
// SQLite in memory.
func vulnerableApp(t *testing.T, a *rampart.Agent) http.Handler {
	t.Helper()
	return vulnerableAppOn(t, a, "sqlite")
}

// vulnerableAppOn is vulnerableApp over "sqlite" or "postgres" (the server
// at 127.0.0.1:5432, user postgres, database test; the test is skipped
// when it cannot be reached, and fails in CI).
func vulnerableAppOn(t *testing.T, a *rampart.Agent, database string) http.Handler {
	t.Helper()
	var db *sql.DB
	switch database {
	case "sqlite":
		g, err := sqlguard.New(a, sqlguard.SQLite)
		if err != nil {
			t.Fatal(err)
		}
		if db, err = g.Open(&sqlite.Driver{}, ":memory:"); err != nil {
			t.Fatal(err)
		}
	case "postgres":
		g, err := sqlguard.New(a, sqlguard.Postgres)
		if err != nil {
			t.Fatal(err)
		}
		if db, err = g.Open(stdlib.GetDefaultDriver(), "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&connect_timeout=3"); err != nil {
			t.Fatal(err)
		}
		if err := db.Ping(); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("PostgreSQL: %v", err)
			}
			t.Skipf("PostgreSQL at 127.0.0.1:5432 unavailable: %v", err)
		}
	}
	// One connection: the table is temporary (PostgreSQL) or in memory.
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	for _, stmt := range []string{
		`CREATE TEMP TABLE users (id INTEGER PRIMARY KEY, name TEXT)`,
		`INSERT INTO users (id, name) VALUES (1, 'alice'), (2, 'bob'), (3, 'carol')`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	count := func(w http.ResponseWriter, r *http.Request, name string) {
		// The bug: the name is concatenated into the SQL.
		var n int
		err := db.QueryRowContext(r.Context(), "SELECT count(*) FROM users WHERE name = '"+name+"'").Scan(&n)
		if errors.Is(err, rampart.ErrBlocked) {
			return // the middleware answers 403
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%d", n)
	}
	mux := http.NewServeMux()
	search := func(w http.ResponseWriter, r *http.Request) {
		name, err := nameFrom(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		count(w, r, name)
	}
	mux.HandleFunc("POST /search", search)
	mux.HandleFunc("GET /search", search)
	mux.HandleFunc("GET /files/", func(w http.ResponseWriter, r *http.Request) {
		// /files/<owner>/<name>: the owner segment, read from the path.
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/files/"), "/")
		count(w, r, parts[0])
	})
	mux.HandleFunc("GET /docs/{rest...}", func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(r.URL.Path, "/")
		count(w, r, parts[len(parts)-1])
	})
	return a.Handler(mux)
}

// nameFrom reads the name as the ?via= parameter says, the way handlers
// do: a JSON decoder never looks at the Content-Type.
func nameFrom(r *http.Request) (string, error) {
	switch r.URL.Query().Get("via") {
	case "json":
		var v struct{ Name string }
		err := json.NewDecoder(r.Body).Decode(&v)
		return v.Name, err
	case "jsonfilter": // {"filter": "{\"name\": ...}"}
		var v struct{ Filter string }
		if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
			return "", err
		}
		var f struct{ Name string }
		err := json.Unmarshal([]byte(v.Filter), &f)
		return f.Name, err
	case "form": // r.FormValue: urlencoded and multipart bodies
		return r.FormValue("name"), nil
	case "file": // the name of an uploaded file
		_, h, err := r.FormFile("upload")
		if err != nil {
			return "", err
		}
		return h.Filename, nil
	case "parsequery": // a body parsed as a form whatever its label
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return "", err
		}
		q, _ := url.ParseQuery(string(b))
		return q.Get("name"), nil
	case "raw":
		b, err := io.ReadAll(r.Body)
		return string(b), err
	case "base64":
		b, err := base64.StdEncoding.DecodeString(r.URL.Query().Get("q"))
		return string(b), err
	case "base64url":
		b, err := base64.RawURLEncoding.DecodeString(r.URL.Query().Get("q"))
		return string(b), err
	case "upload": // stores the body elsewhere; the name is in the query
		_, err := io.Copy(io.Discard, r.Body)
		return r.URL.Query().Get("name"), err
	case "header":
		return r.Header.Get("X-Tenant"), nil
	case "query":
		return r.URL.Query().Get("name"), nil
	}
	return "", errors.New("no via")
}

type attack struct {
	name   string
	method string
	target string
	ctype  string
	body   []byte
	header map[string]string
}

func (at attack) request(t *testing.T, base string) *http.Request {
	t.Helper()
	var body io.Reader
	if at.body != nil {
		body = bytes.NewReader(at.body)
	}
	method := at.method
	if method == "" {
		method = "POST"
	}
	req, err := http.NewRequest(method, base+at.target, body)
	if err != nil {
		t.Fatal(err)
	}
	if at.ctype != "" {
		req.Header.Set("Content-Type", at.ctype)
	}
	for k, v := range at.header {
		req.Header.Set(k, v)
	}
	return req
}

func jsonName(name string) []byte {
	b, _ := json.Marshal(map[string]string{"name": name})
	return b
}

func multipartBody(t *testing.T, field, value, file string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("note", "hello"); err != nil {
		t.Fatal(err)
	}
	if file != "" {
		fw, err := mw.CreateFormFile("upload", file)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(bytes.Repeat([]byte("file content "), 100))
	}
	if field != "" {
		if err := mw.WriteField(field, value); err != nil {
			t.Fatal(err)
		}
	}
	mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

// send runs one request on a real server and returns the status and body.
func send(t *testing.T, srv *httptest.Server, at attack) (int, string) {
	t.Helper()
	resp, err := srv.Client().Do(at.request(t, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// expectBlocked sends at and asserts a 403 and a blocked event of kind.
func expectBlocked(t *testing.T, srv *httptest.Server, events *ramparttest.Recorder, at attack, kind rampart.Kind) {
	t.Helper()
	events.Reset()
	code, body := send(t, srv, at)
	if code != http.StatusForbidden {
		t.Fatalf("%s: status %d body %q: the injection ran, want 403", at.name, code, body)
	}
	if d := (ramparttest.Want{Kind: kind, Action: rampart.ActionBlocked}).Diff(events.Next(t)); d != "" {
		t.Fatalf("%s: %s", at.name, d)
	}
}

func TestBodiesAreCapturedByContentNotByLabel(t *testing.T) {
	for _, database := range []string{"sqlite", "postgres"} {
		t.Run(database, func(t *testing.T) { testBodiesAreCapturedByContent(t, database) })
	}
}

func testBodiesAreCapturedByContent(t *testing.T, database string) {
	a, events := ramparttest.NewAgent(t, rampart.Config{})
	srv := httptest.NewServer(vulnerableAppOn(t, a, database))
	defer srv.Close()

	mpField, mpType := multipartBody(t, "name", injection, "")
	mpFile, mpFileType := multipartBody(t, "", "", injection)
	attacks := []attack{
		{name: "JSON without a Content-Type", target: "/search?via=json", body: jsonName(injection)},
		{name: "JSON as application/octet-stream", target: "/search?via=json", ctype: "application/octet-stream", body: jsonName(injection)},
		{name: "JSON as application/x-json", target: "/search?via=json", ctype: "application/x-json", body: jsonName(injection)},
		{name: "JSON with an unparseable type", target: "/search?via=json", ctype: "application/json; charset", body: jsonName(injection)},
		{name: "JSON as text/html", target: "/search?via=json", ctype: "text/html", body: jsonName(injection)},
		{name: "a multipart field read with r.FormValue", target: "/search?via=form", ctype: mpType, body: mpField},
		{name: "a multipart file name", target: "/search?via=file", ctype: mpFileType, body: mpFile},
		{name: "a form with an unparseable type", target: "/search?via=form", ctype: "application/x-www-form-urlencoded; charset", body: []byte("name=" + url.QueryEscape(injection))},
		{name: "an unlabelled body parsed as a form", target: "/search?via=parsequery", body: []byte("name=" + url.QueryEscape(injection))},
		{name: "a raw body as application/octet-stream", target: "/search?via=raw", ctype: "application/octet-stream", body: []byte(injection)},
	}
	for _, at := range attacks {
		t.Run(at.name, func(t *testing.T) {
			expectBlocked(t, srv, events, at, "sql_injection")
		})
	}
	t.Run("benign bodies of every kind still work", func(t *testing.T) {
		mpBenign, mpBenignType := multipartBody(t, "name", "alice", "photo.png")
		for _, at := range []attack{
			{target: "/search?via=json", ctype: "application/octet-stream", body: jsonName("alice")},
			{target: "/search?via=form", ctype: mpBenignType, body: mpBenign},
			{target: "/search?via=raw", body: []byte("bob")},
			{target: "/search?via=parsequery", body: []byte("name=carol")},
		} {
			if code, body := send(t, srv, at); code != http.StatusOK || body != "1" {
				t.Errorf("%s: status %d body %q, want 200 and 1 row", at.target, code, body)
			}
		}
	})
}

func TestInputsPastTheCapsFailClosed(t *testing.T) {
	for _, database := range []string{"sqlite", "postgres"} {
		t.Run(database, func(t *testing.T) { testInputsPastTheCapsFailClosed(t, database) })
	}
}

func testInputsPastTheCapsFailClosed(t *testing.T, database string) {
	a, events := ramparttest.NewAgent(t, rampart.Config{})
	srv := httptest.NewServer(vulnerableAppOn(t, a, database))
	defer srv.Close()

	emptyKeys := func(n int) []byte {
		var b bytes.Buffer
		b.WriteByte('{')
		for i := range n {
			fmt.Fprintf(&b, `"k%d":{},`, i)
		}
		b.WriteString(`"name":` + string(must(json.Marshal(injection))) + `}`)
		return b.Bytes()
	}
	padding := []byte(`{"pad":"` + strings.Repeat("A", 1<<20) + `","name":"` + injection + `"}`)
	var junk strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&junk, "j%d=x&", i)
	}
	junk.WriteString("name=" + url.QueryEscape(injection))

	t.Run("2,048 empty-object keys before the payload", func(t *testing.T) {
		expectBlocked(t, srv, events, attack{name: "keys", target: "/search?via=json", ctype: "application/json", body: emptyKeys(2048)}, "sql_injection")
	})
	t.Run("more keys than the cap before the payload", func(t *testing.T) {
		expectBlocked(t, srv, events, attack{name: "keys", target: "/search?via=json", ctype: "application/json", body: emptyKeys(16385) /* DefaultMaxInputs+1 */}, "inputs_truncated")
	})
	t.Run("1 MiB of padding before the payload", func(t *testing.T) {
		expectBlocked(t, srv, events, attack{name: "padding", target: "/search?via=json", ctype: "application/json", body: padding}, "inputs_truncated")
	})
	t.Run("3,000 junk query parameters before the payload, every time", func(t *testing.T) {
		// Query inputs used to be read from a map: the payload fell past the
		// cap in most requests but not all. Request order makes it the same
		// every time.
		for range 20 {
			expectBlocked(t, srv, events, attack{name: "junk", method: "GET", target: "/search?via=query&" + junk.String()}, "sql_injection")
		}
	})
	t.Run("a text upload longer than the capture is incomplete once read", func(t *testing.T) {
		upload := bytes.Repeat([]byte("id,name\n1,alice\n"), (2<<20)/16)
		expectBlocked(t, srv, events, attack{name: "csv", target: "/search?via=upload&name=alice", ctype: "text/csv", body: upload}, "inputs_truncated")
	})
	t.Run("a multipart upload longer than the capture is read from the parsed form", func(t *testing.T) {
		// The field after a 3 MiB file: past the capture, but net/http
		// parsed the whole form for r.FormValue, and the SDK reads it there.
		big := func(name string) ([]byte, string) {
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			fw, _ := mw.CreateFormFile("upload", "photo.jpg")
			fw.Write(bytes.Repeat([]byte{0xFF, 0xD8, 0x00, 0x10}, (3<<20)/4))
			mw.WriteField("name", name)
			mw.Close()
			return buf.Bytes(), mw.FormDataContentType()
		}
		body, ctype := big(injection)
		expectBlocked(t, srv, events, attack{name: "upload", target: "/search?via=form", ctype: ctype, body: body}, "sql_injection")
		body, ctype = big("alice")
		if code, got := send(t, srv, attack{target: "/search?via=form", ctype: ctype, body: body}); code != http.StatusOK || got != "1" {
			t.Fatalf("benign upload: status %d body %q, want 200 and 1 row", code, got)
		}
	})
	t.Run("a urlencoded form longer than the capture is read from the parsed form", func(t *testing.T) {
		body := []byte("comment=" + strings.Repeat("a", 2<<20) + "&name=" + url.QueryEscape(injection))
		expectBlocked(t, srv, events, attack{name: "form", target: "/search?via=form", ctype: "application/x-www-form-urlencoded", body: body}, "sql_injection")
	})
	t.Run("JSON nested in strings deeper than the SDK reads", func(t *testing.T) {
		doc := string(jsonName(injection))
		for range 4 {
			doc = string(must(json.Marshal(map[string]string{"filter": doc})))
		}
		expectBlocked(t, srv, events, attack{name: "deep", target: "/search?via=query&name=alice", ctype: "application/json", body: []byte(doc)}, "inputs_truncated")
	})
	t.Run("a benign request large but under the caps works", func(t *testing.T) {
		// A 512 KiB order of line items, and the name.
		body := benchJSONBody(512 << 10)
		body = append(append(body[:len(body)-1], `,"name":"alice"`...), '}')
		if code, got := send(t, srv, attack{target: "/search?via=json", ctype: "application/json", body: body}); code != http.StatusOK || got != "1" {
			t.Fatalf("status %d body %q, want 200 and 1 row", code, got)
		}
	})
	t.Run("a binary upload longer than the capture is not incomplete", func(t *testing.T) {
		upload := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{0xAB}, 2<<20)...)
		code, got := send(t, srv, attack{target: "/search?via=upload&name=alice", ctype: "application/octet-stream", body: upload})
		if code != http.StatusOK || got != "1" {
			t.Fatalf("status %d body %q, want 200 and 1 row", code, got)
		}
	})
}

func TestIncompleteInputsAreReportedInMonitorMode(t *testing.T) {
	a, events := ramparttest.NewAgent(t, rampart.Config{Mode: rampart.ModeMonitor})
	srv := httptest.NewServer(vulnerableApp(t, a))
	defer srv.Close()
	padding := []byte(`{"pad":"` + strings.Repeat("A", 1<<20) + `","name":"` + injection + `"}`)
	code, got := send(t, srv, attack{target: "/search?via=json", body: padding})
	if code != http.StatusOK || got != "3" {
		t.Fatalf("status %d body %q, want the call to go through in monitor mode", code, got)
	}
	want := ramparttest.Want{Kind: rampart.KindInputsTruncated, Action: rampart.ActionMonitored, Sink: "database/sql (sqlite)"}
	if d := want.Diff(events.Next(t)); d != "" {
		t.Fatal(d)
	}
	if s := a.Stats(); s.InputsTruncated != 1 {
		t.Errorf("Stats.InputsTruncated = %d, want 1", s.InputsTruncated)
	}
}

func TestMoreInputsThatCodeReads(t *testing.T) {
	for _, database := range []string{"sqlite", "postgres"} {
		t.Run(database, func(t *testing.T) { testMoreInputsThatCodeReads(t, database) })
	}
}

func testMoreInputsThatCodeReads(t *testing.T, database string) {
	a, events := ramparttest.NewAgent(t, rampart.Config{})
	srv := httptest.NewServer(vulnerableAppOn(t, a, database))
	defer srv.Close()
	filter, _ := json.Marshal(map[string]string{"filter": string(jsonName(injection))})
	for _, at := range []attack{
		{name: "a JSON document in a JSON string", target: "/search?via=jsonfilter", ctype: "application/json", body: filter},
		{name: "a base64 query value", method: "GET", target: "/search?via=base64&q=" + url.QueryEscape(base64.StdEncoding.EncodeToString([]byte(injection)))},
		{name: "a base64url query value", method: "GET", target: "/search?via=base64url&q=" + base64.RawURLEncoding.EncodeToString([]byte(injection))},
		{name: "a segment under a subtree pattern ending in /", method: "GET", target: "/files/" + url.PathEscape(injection) + "/report.pdf"},
		{name: "a segment under a {rest...} wildcard", method: "GET", target: "/docs/a/b/" + url.PathEscape(injection)},
		{name: "any request header", method: "GET", target: "/search?via=header", header: map[string]string{"X-Tenant": injection}},
	} {
		t.Run(at.name, func(t *testing.T) {
			expectBlocked(t, srv, events, at, "sql_injection")
		})
	}
	t.Run("benign values of the same shapes work", func(t *testing.T) {
		filter, _ := json.Marshal(map[string]string{"filter": `{"name":"alice"}`})
		for _, at := range []attack{
			{target: "/search?via=jsonfilter", body: filter},
			{method: "GET", target: "/search?via=base64&q=" + base64.StdEncoding.EncodeToString([]byte("bob"))},
			{method: "GET", target: "/files/carol/report.pdf"},
			{method: "GET", target: "/search?via=header", header: map[string]string{"X-Tenant": "alice"}},
		} {
			if code, body := send(t, srv, at); code != http.StatusOK || body != "1" {
				t.Errorf("%s: status %d body %q, want 200 and 1 row", at.target, code, body)
			}
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestEveryGuardFailsClosedOnAnIncompleteRequest sends a request with more
// input values than the cap and makes a benign call through each guard: a
// query, a command, a file name, an outbound request. Each is refused with
// an inputs_truncated event, and each is allowed for a complete request.
func TestEveryGuardFailsClosedOnAnIncompleteRequest(t *testing.T) {
	a, events := ramparttest.NewAgent(t, rampart.Config{MaxInputs: 100})
	sg, err := sqlguard.New(a, sqlguard.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sg.Open(&sqlite.Driver{}, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	eg, err := execguard.New(a)
	if err != nil {
		t.Fatal(err)
	}
	ssrf, err := ssrfguard.New(a, ssrfguard.Config{})
	if err != nil {
		t.Fatal(err)
	}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer upstream.Close()
	client := ssrf.Client(upstream.Client())
	fg, err := fsguard.New(a, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer fg.Close()

	calls := map[string]func(*http.Request) error{
		"database/sql": func(r *http.Request) error {
			var n int
			return db.QueryRowContext(r.Context(), "SELECT 1").Scan(&n)
		},
		"os/exec": func(r *http.Request) error {
			return eg.Check(r.Context(), "date", "+%s")
		},
		"os": func(r *http.Request) error {
			return fg.Check(r.Context(), "report.txt")
		},
		"net/http": func(r *http.Request) error {
			req, _ := http.NewRequestWithContext(r.Context(), "GET", upstream.URL, nil)
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			return err
		},
	}
	for sink, call := range calls {
		t.Run(sink, func(t *testing.T) {
			errs := make(chan error, 1)
			h := a.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				errs <- call(r)
			}))
			var many strings.Builder
			for i := range 101 {
				fmt.Fprintf(&many, "p%d=v%d&", i, i)
			}
			events.Reset()
			for _, tc := range []struct {
				target  string
				blocked bool
			}{{"/x?a=1", false}, {"/x?" + many.String(), true}} {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", tc.target, nil))
				err := <-errs
				if got := errors.Is(err, rampart.ErrBlocked); got != tc.blocked {
					t.Fatalf("%d inputs: blocked %v (%v), want %v", strings.Count(tc.target, "="), got, err, tc.blocked)
				}
				if !tc.blocked {
					continue
				}
				if rec.Code != http.StatusForbidden {
					t.Errorf("status %d, want 403", rec.Code)
				}
				ev := events.Next(t)
				if ev.Kind != rampart.KindInputsTruncated || ev.Sink == "" || !strings.Contains(ev.Sink, sink) {
					t.Errorf("event %s from %q, want inputs_truncated from %s", ev.Kind, ev.Sink, sink)
				}
			}
		})
	}
}

func TestEveryHeaderIsAnInputWhateverConfigHeadersLists(t *testing.T) {
	a, _ := ramparttest.NewAgent(t, rampart.Config{Headers: []string{"x-one", "X-Two", "X-Three", "X-Four"}})
	req := httptest.NewRequest("GET", "/x", nil)
	req.Header = http.Header{"X-Tenant": {"acme' --"}}
	ins, _, _ := serve(t, a, "GET /x", req)
	if !has(ins, rampart.SourceHeader, "X-Tenant", "acme' --") {
		t.Errorf("a header not in Config.Headers is missing: %+v", ins)
	}
}
