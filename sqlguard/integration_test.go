package sqlguard_test

// Integration tests against real databases (see dbs_test.go for what they
// need). A small HTTP service, shop, builds SQL by concatenating request input
// into it. Over the bare driver, the exploits in testdata/exploits_*.txt
// really work, each proved by an oracle; through the guard, every one of them
// is refused before the statement reaches the driver, with the middleware's
// 403 and an event naming the vulnerable line. The benign inputs of
// testdata/benign.txt pass through parameterized and correctly escaped
// statements without a single event.
//
//	go test ./sqlguard/ -run Integration -count=1

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/corpus"
	"github.com/rampartsec/rampart/ramparttest"
	"github.com/rampartsec/rampart/sqlguard"
)

// shop is the application under test. Its database calls that concatenate
// input are each marked with a "sink" comment at the end of the line, which
// is where the events must point (see sinkLocations).
type shop struct {
	fx   *fixture
	db   *sql.DB
	errs sync.Map // X-Request-Id -> error returned by the database call
}

func (s *shop) routes() *http.ServeMux {
	fx := s.fx
	mux := http.NewServeMux()

	// Vulnerable: string, numeric and ORDER BY contexts, a login that can be
	// truncated by a comment, and Exec paths that run stacked statements.
	mux.HandleFunc("GET /users/by-name", func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("name")
		rows, err := s.db.QueryContext(r.Context(), "SELECT name, email FROM "+fx.users+" WHERE name = '"+name+"'") // sink:by-name
		s.writeRows(w, r, rows, err)
	})
	mux.HandleFunc("POST /users/search", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Name string `json:"name"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rows, err := s.db.QueryContext(r.Context(), "SELECT name, email FROM "+fx.users+" WHERE name = '"+req.Name+"'") // sink:search
		s.writeRows(w, r, rows, err)
	})
	mux.HandleFunc("GET /users/by-id", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		rows, err := s.db.QueryContext(r.Context(), "SELECT name, email FROM "+fx.users+" WHERE id = "+id) // sink:by-id
		s.writeRows(w, r, rows, err)
	})
	mux.HandleFunc("GET /users", func(w http.ResponseWriter, r *http.Request) {
		sort := r.URL.Query().Get("sort")
		rows, err := s.db.QueryContext(r.Context(), "SELECT name, email FROM "+fx.users+" ORDER BY "+sort) // sink:sort
		s.writeRows(w, r, rows, err)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		user, password := r.PostFormValue("user"), r.PostFormValue("password")
		var name string
		err := s.db.QueryRowContext(r.Context(), "SELECT name FROM "+fx.users+" WHERE name = '"+user+"' AND password = '"+password+"'").Scan(&name) // sink:login
		switch {
		case errors.Is(err, sql.ErrNoRows):
			http.Error(w, "bad credentials", http.StatusUnauthorized)
		case err != nil:
			s.fail(w, r, err)
		default:
			fmt.Fprintf(w, "welcome %s\n", name)
		}
	})
	mux.HandleFunc("POST /users/visit", func(w http.ResponseWriter, r *http.Request) {
		name := r.PostFormValue("name")
		res, err := s.db.ExecContext(r.Context(), "UPDATE "+fx.users+" SET visits = visits + 1 WHERE name = '"+name+"'") // sink:visit
		s.writeResult(w, r, res, err)
	})
	// Vulnerable through a transformation the application applies to its
	// input before concatenating it: escaping that is wrong for the dialect
	// (quotes doubled but backslashes kept, or MySQL-style backslashes on a
	// database that reads them literally), and decoding the value again.
	mux.HandleFunc("GET /users/by-name-doubled", func(w http.ResponseWriter, r *http.Request) {
		name := strings.ReplaceAll(r.URL.Query().Get("name"), "'", "''")
		rows, err := s.db.QueryContext(r.Context(), "SELECT name, email FROM "+fx.users+" WHERE name = '"+name+"'") // sink:doubled
		s.writeRows(w, r, rows, err)
	})
	mux.HandleFunc("GET /users/by-name-slashed", func(w http.ResponseWriter, r *http.Request) {
		name := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(r.URL.Query().Get("name"))
		rows, err := s.db.QueryContext(r.Context(), "SELECT name, email FROM "+fx.users+" WHERE name = '"+name+"'") // sink:slashed
		s.writeRows(w, r, rows, err)
	})
	mux.HandleFunc("GET /users/by-name-decoded", func(w http.ResponseWriter, r *http.Request) {
		name, err := url.QueryUnescape(r.URL.Query().Get("name"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rows, err := s.db.QueryContext(r.Context(), "SELECT name, email FROM "+fx.users+" WHERE name = '"+name+"'") // sink:decoded
		s.writeRows(w, r, rows, err)
	})
	mux.HandleFunc("POST /track", func(w http.ResponseWriter, r *http.Request) {
		res, err := s.db.ExecContext(r.Context(), "INSERT INTO "+fx.hits+" (ua) VALUES ('"+r.UserAgent()+"')") // sink:track
		s.writeResult(w, r, res, err)
	})

	// Safe: parameterized, and concatenated with correct escaping.
	mux.HandleFunc("POST /notes", func(w http.ResponseWriter, r *http.Request) {
		text := r.PostFormValue("text")
		var id int64
		var err error
		if fx.b.dialect == sqlguard.Postgres {
			err = s.db.QueryRowContext(r.Context(), "INSERT INTO "+fx.notes+" (body) VALUES ($1) RETURNING id", text).Scan(&id)
		} else {
			var res sql.Result
			if res, err = s.db.ExecContext(r.Context(), "INSERT INTO "+fx.notes+" (body) VALUES (?)", text); err == nil {
				id, err = res.LastInsertId()
			}
		}
		s.writeID(w, r, id, err)
	})
	mux.HandleFunc("POST /notes/escaped", func(w http.ResponseWriter, r *http.Request) {
		text := r.PostFormValue("text")
		var id int64
		var err error
		stmt := "INSERT INTO " + fx.notes + " (body) VALUES ('" + fx.b.quote(text) + "')"
		if fx.b.dialect == sqlguard.Postgres {
			err = s.db.QueryRowContext(r.Context(), stmt+" RETURNING id").Scan(&id)
		} else {
			var res sql.Result
			if res, err = s.db.ExecContext(r.Context(), stmt); err == nil {
				id, err = res.LastInsertId()
			}
		}
		s.writeID(w, r, id, err)
	})
	mux.HandleFunc("GET /notes/find", func(w http.ResponseWriter, r *http.Request) {
		rows, err := s.db.QueryContext(r.Context(), "SELECT id, body FROM "+fx.notes+" WHERE body = "+fx.b.placeholder(1)+" ORDER BY id", r.URL.Query().Get("text"))
		s.writeNotes(w, r, rows, err)
	})
	mux.HandleFunc("GET /notes/find-escaped", func(w http.ResponseWriter, r *http.Request) {
		rows, err := s.db.QueryContext(r.Context(), "SELECT id, body FROM "+fx.notes+" WHERE body = '"+fx.b.quote(r.URL.Query().Get("text"))+"' ORDER BY id")
		s.writeNotes(w, r, rows, err)
	})

	// Every query path of database/sql, each concatenating the same input.
	mux.HandleFunc("GET /paths/{path}", s.queryPath)
	return mux
}

// queryPath makes one kind of database/sql call, named by the path, with a
// statement that concatenates the name parameter. The "-noargs" variants
// take no bind arguments: with arguments, the MySQL driver answers
// driver.ErrSkip and database/sql prepares the statement instead, which the
// guard must not check (or report) twice.
func (s *shop) queryPath(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	ctx := r.Context()
	users, ph := s.fx.users, s.fx.b.placeholder(1)
	sel := "SELECT name FROM " + users + " WHERE id > " + ph + " AND name = '" + name + "' ORDER BY id"
	selNoArgs := "SELECT name FROM " + users + " WHERE name = '" + name + "' ORDER BY id"
	upd := "UPDATE " + users + " SET visits = visits + 1 WHERE id > " + ph + " AND name = '" + name + "'"
	updNoArgs := "UPDATE " + users + " SET visits = visits + 1 WHERE name = '" + name + "'"

	var (
		rows *sql.Rows
		row  *sql.Row
		res  sql.Result
		st   *sql.Stmt
		err  error
	)
	path := r.PathValue("path")
	scope, _, _ := strings.Cut(path, ".")
	var conn *sql.Conn
	var tx *sql.Tx
	switch scope {
	case "conn":
		if conn, err = s.db.Conn(ctx); err != nil {
			s.fail(w, r, err)
			return
		}
		defer conn.Close()
	case "tx":
		if strings.HasSuffix(path, "Context") {
			tx, err = s.db.BeginTx(ctx, nil)
		} else {
			tx, err = s.db.Begin()
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		defer tx.Rollback()
	}
	switch path {
	case "db.Query":
		rows, err = s.db.Query(sel, 0) // sink:db.Query
	case "db.QueryContext":
		rows, err = s.db.QueryContext(ctx, sel, 0) // sink:db.QueryContext
	case "db.QueryContext-noargs":
		rows, err = s.db.QueryContext(ctx, selNoArgs) // sink:db.QueryContext-noargs
	case "db.QueryRow":
		row = s.db.QueryRow(sel, 0) // sink:db.QueryRow
	case "db.QueryRowContext":
		row = s.db.QueryRowContext(ctx, sel, 0) // sink:db.QueryRowContext
	case "db.Exec":
		res, err = s.db.Exec(upd, 0) // sink:db.Exec
	case "db.ExecContext":
		res, err = s.db.ExecContext(ctx, upd, 0) // sink:db.ExecContext
	case "db.ExecContext-noargs":
		res, err = s.db.ExecContext(ctx, updNoArgs) // sink:db.ExecContext-noargs
	case "db.Prepare":
		if st, err = s.db.Prepare(sel); err == nil { // sink:db.Prepare
			rows, err = st.Query(0)
		}
	case "db.PrepareContext":
		if st, err = s.db.PrepareContext(ctx, sel); err == nil { // sink:db.PrepareContext
			rows, err = st.QueryContext(ctx, 0)
		}
	case "conn.QueryContext":
		rows, err = conn.QueryContext(ctx, sel, 0) // sink:conn.QueryContext
	case "conn.QueryRowContext":
		row = conn.QueryRowContext(ctx, sel, 0) // sink:conn.QueryRowContext
	case "conn.ExecContext":
		res, err = conn.ExecContext(ctx, upd, 0) // sink:conn.ExecContext
	case "conn.PrepareContext":
		if st, err = conn.PrepareContext(ctx, sel); err == nil { // sink:conn.PrepareContext
			rows, err = st.QueryContext(ctx, 0)
		}
	case "tx.Query":
		rows, err = tx.Query(sel, 0) // sink:tx.Query
	case "tx.QueryContext":
		rows, err = tx.QueryContext(ctx, sel, 0) // sink:tx.QueryContext
	case "tx.QueryRow":
		row = tx.QueryRow(sel, 0) // sink:tx.QueryRow
	case "tx.QueryRowContext":
		row = tx.QueryRowContext(ctx, sel, 0) // sink:tx.QueryRowContext
	case "tx.Exec":
		res, err = tx.Exec(upd, 0) // sink:tx.Exec
	case "tx.ExecContext":
		res, err = tx.ExecContext(ctx, upd, 0) // sink:tx.ExecContext
	case "tx.Prepare":
		if st, err = tx.Prepare(sel); err == nil { // sink:tx.Prepare
			rows, err = st.Query(0)
		}
	case "tx.PrepareContext":
		if st, err = tx.PrepareContext(ctx, sel); err == nil { // sink:tx.PrepareContext
			rows, err = st.QueryContext(ctx, 0)
		}
	default:
		http.NotFound(w, r)
		return
	}
	if st != nil {
		defer st.Close()
	}
	var out strings.Builder
	switch {
	case err != nil:
	case row != nil:
		var n string
		if err = row.Scan(&n); err == nil {
			out.WriteString(n + "\n")
		} else if errors.Is(err, sql.ErrNoRows) {
			err = nil
		}
	case rows != nil:
		out, err = readRows(rows)
	case res != nil:
		var n int64
		if n, err = res.RowsAffected(); err == nil {
			fmt.Fprintf(&out, "updated %d\n", n)
		}
	}
	if err == nil && tx != nil {
		err = tx.Commit()
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	io.WriteString(w, out.String())
}

// fail records err for the test and shows it to the client, as careless
// applications do: error-based extraction relies on it.
func (s *shop) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.errs.Store(r.Header.Get("X-Request-Id"), err)
	http.Error(w, "database error: "+err.Error(), http.StatusInternalServerError)
}

// err returns the error the database call of request id returned.
func (s *shop) err(id string) error {
	v, ok := s.errs.Load(id)
	if !ok {
		return nil
	}
	return v.(error)
}

// readRows returns one line per row, columns separated by tabs.
func readRows(rows *sql.Rows) (strings.Builder, error) {
	var out strings.Builder
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return out, err
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return out, err
		}
		for i, v := range vals {
			if i > 0 {
				out.WriteByte('\t')
			}
			out.WriteString(v.String)
		}
		out.WriteByte('\n')
	}
	return out, rows.Err()
}

func (s *shop) writeRows(w http.ResponseWriter, r *http.Request, rows *sql.Rows, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out, err := readRows(rows)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	io.WriteString(w, out.String())
}

func (s *shop) writeResult(w http.ResponseWriter, r *http.Request, res sql.Result, err error) {
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	fmt.Fprintf(w, "updated %d\n", n)
}

func (s *shop) writeID(w http.ResponseWriter, r *http.Request, id int64, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	fmt.Fprintf(w, "%d", id)
}

type note struct {
	ID   int64  `json:"id"`
	Body string `json:"body"`
}

func (s *shop) writeNotes(w http.ResponseWriter, r *http.Request, rows *sql.Rows, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer rows.Close()
	notes := []note{}
	for rows.Next() {
		var n note
		if err := rows.Scan(&n.ID, &n.Body); err != nil {
			s.fail(w, r, err)
			return
		}
		notes = append(notes, n)
	}
	if err := rows.Err(); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(notes)
}

// sinkLocations returns, for each "sink:NAME" marker in this file, the
// file:line an event must name for the call on that line.
func sinkLocations(t *testing.T) map[string]string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("runtime.Caller failed")
	}
	src, err := os.ReadFile(file)
	if err != nil { // built with -trimpath: the package directory is the working directory
		if src, err = os.ReadFile("integration_test.go"); err != nil {
			t.Fatal(err)
		}
	}
	marker := "// sink" + ":"
	locs := map[string]string{}
	for i, line := range strings.Split(string(src), "\n") {
		j := strings.LastIndex(line, marker)
		if j < 0 {
			continue
		}
		name := strings.TrimSpace(line[j+len(marker):])
		if _, dup := locs[name]; dup {
			t.Fatalf("sink marker %q appears twice", name)
		}
		locs[name] = file + ":" + strconv.Itoa(i+1)
	}
	return locs
}

// HTTP client.

type client struct {
	url  string
	hc   *http.Client
	seed uint32 // makes request ids unique across clients
	n    atomic.Int64
}

func newClient(t *testing.T, h http.Handler) *client {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &client{url: srv.URL, hc: srv.Client(), seed: rand.Uint32()}
}

type reply struct {
	id      string // X-Request-Id sent, which the middleware adopts
	status  int
	header  http.Header
	body    string
	elapsed time.Duration
	cpu     time.Duration // CPU time the process spent meanwhile; 0 where unknown
}

// request is what a test sends; the path may carry a raw query.
type request struct {
	method, path string
	ctype, body  string
	userAgent    string
}

func (c *client) do(t *testing.T, rq request) reply {
	t.Helper()
	req, err := http.NewRequest(rq.method, c.url+rq.path, strings.NewReader(rq.body))
	if err != nil {
		t.Fatalf("%s %s: %v", rq.method, rq.path, err)
	}
	id := fmt.Sprintf("it-%08x-%d", c.seed, c.n.Add(1))
	req.Header.Set("X-Request-Id", id)
	if rq.ctype != "" {
		req.Header.Set("Content-Type", rq.ctype)
	}
	if rq.userAgent != "" {
		req.Header.Set("User-Agent", rq.userAgent)
	}
	start := time.Now()
	cpuBefore, _ := processCPU()
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", rq.method, rq.path, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	elapsed := time.Since(start)
	cpuAfter, _ := processCPU()
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", rq.method, rq.path, err)
	}
	return reply{id: id, status: resp.StatusCode, header: resp.Header, body: string(b), elapsed: elapsed, cpu: cpuAfter - cpuBefore}
}

func get(path string) request { return request{method: "GET", path: path} }

func postForm(path string, v url.Values) request {
	return request{method: "POST", path: path, ctype: "application/x-www-form-urlencoded", body: v.Encode()}
}

// rowCount is the number of rows a query route returned, or the rows an
// Exec route reported updated.
func rowCount(body string) int {
	if n, ok := strings.CutPrefix(body, "updated "); ok {
		i, _ := strconv.Atoi(strings.TrimSpace(n))
		return i
	}
	return strings.Count(body, "\n")
}

// checkBlocked verifies the response is the middleware's 403, whose JSON
// body carries the request id.
func checkBlocked(t *testing.T, r reply) {
	t.Helper()
	if r.status != http.StatusForbidden {
		t.Errorf("status %d, want 403; body %.300q", r.status, r.body)
		return
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var body struct {
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Errorf("403 body is not JSON: %v: %q", err, r.body)
		return
	}
	if body.RequestID != r.id || body.Error == "" {
		t.Errorf("403 body %q: want an error and request_id %q", r.body, r.id)
	}
}

// checkEvent verifies the error the handler's database call returned and the
// event reported for request r.
func checkEvent(t *testing.T, s *shop, events *ramparttest.Recorder, r reply, action rampart.Action, value, location string) {
	t.Helper()
	if action == rampart.ActionBlocked {
		err := s.err(r.id)
		var be *rampart.BlockedError
		switch {
		case err == nil:
			t.Errorf("the handler's database call returned no error")
			return // nothing was reported: do not wait for an event
		case !errors.Is(err, rampart.ErrBlocked):
			t.Errorf("database call error %v does not wrap rampart.ErrBlocked", err)
			return
		case !errors.As(err, &be):
			t.Errorf("database call error %v is not a *rampart.BlockedError", err)
		case be.Event.Location != location:
			t.Errorf("BlockedError location %q, want %q", be.Event.Location, location)
		}
	}
	e := events.Wait(t, ramparttest.Want{RequestID: r.id}.Match)
	want := ramparttest.Want{Kind: rampart.KindSQLInjection, Action: action, Location: location} // the vulnerable call
	if e.Input.Name == "password" {
		value = rampart.Redacted // a secret's value never leaves the process
	}
	if len(value) <= rampart.MaxEventInput {
		want.Input.Value = value
	}
	if d := want.Diff(e); d != "" {
		t.Error(d)
	}
	if e.Sink == "" || !strings.Contains(e.Detail, "⟦") {
		t.Errorf("event sink %q detail %q: want the statement with the input marked", e.Sink, e.Detail)
	}
}

// Exploits.

// vulnContext is a vulnerable route and how a payload reaches it.
type vulnContext struct {
	sink   string // marker of the database call
	benign string // an ordinary value, for the timing baseline; "" if none is harmless
	// build returns the request carrying payload and the value the
	// handler concatenates (payload after transport decoding).
	build func(payload string) (request, string, error)
}

var vulnContexts = map[string]vulnContext{
	// name in the URL query, percent-encoded by the client.
	"str": {sink: "by-name", benign: "alice", build: func(p string) (request, string, error) {
		return get("/users/by-name?name=" + url.QueryEscape(p)), p, nil
	}},
	// the payload is written as it appears in the URL (URL-encoded).
	"str-raw": {sink: "by-name", benign: "alice", build: func(p string) (request, string, error) {
		v, err := url.ParseQuery("name=" + p)
		return get("/users/by-name?name=" + p), v.Get("name"), err
	}},
	// the payload is the inside of a JSON string, escapes included.
	"json": {sink: "search", benign: "alice", build: func(p string) (request, string, error) {
		var v string
		err := json.Unmarshal([]byte(`"`+p+`"`), &v)
		return request{method: "POST", path: "/users/search", ctype: "application/json", body: `{"name":"` + p + `"}`}, v, err
	}},
	"num": {sink: "by-id", benign: "1", build: func(p string) (request, string, error) {
		return get("/users/by-id?id=" + url.QueryEscape(p)), p, nil
	}},
	"order": {sink: "sort", benign: "name", build: func(p string) (request, string, error) {
		return get("/users?sort=" + url.QueryEscape(p)), p, nil
	}},
	"login": {sink: "login", benign: "alice", build: func(p string) (request, string, error) {
		return postForm("/login", url.Values{"user": {p}, "password": {"not-the-password"}}), p, nil
	}},
	// user is a lone backslash, which MySQL reads as escaping the quote
	// that follows: the password's quote then opens code.
	"login-bs": {sink: "login", build: func(p string) (request, string, error) {
		return postForm("/login", url.Values{"user": {`\`}, "password": {p}}), p, nil
	}},
	// The application doubles quotes but leaves backslashes (MySQL reads
	// \' as an escaped quote), escapes with backslashes (PostgreSQL and
	// SQLite read them literally), or percent-decodes the value once more.
	"doubled": {sink: "doubled", benign: "alice", build: func(p string) (request, string, error) {
		return get("/users/by-name-doubled?name=" + url.QueryEscape(p)), p, nil
	}},
	"slashed": {sink: "slashed", benign: "alice", build: func(p string) (request, string, error) {
		return get("/users/by-name-slashed?name=" + url.QueryEscape(p)), p, nil
	}},
	"decoded": {sink: "decoded", benign: "alice", build: func(p string) (request, string, error) {
		return get("/users/by-name-decoded?name=" + url.QueryEscape(p)), p, nil
	}},
	"exec": {sink: "visit", benign: "alice", build: func(p string) (request, string, error) {
		return postForm("/users/visit", url.Values{"name": {p}}), p, nil
	}},
	"header": {sink: "track", benign: "Mozilla/5.0 (X11; Linux x86_64)", build: func(p string) (request, string, error) {
		return request{method: "POST", path: "/track", userAgent: p}, p, nil
	}},
}

// Oracles: how an exploit proves it really worked.
var oracles = map[string]string{
	"rows":   "returns at least 2 rows where the value names at most one user",
	"secret": "returns the secret of another table (status 200)",
	"error":  "the database error shown (status 500) contains the secret",
	"true":   "the response depends on the secret: replacing s3cr3t by zzzzzz in the payload changes it",
	"auth":   "logs in although the password is wrong",
	"canary": "a stacked statement inserted a row into the canary table",
	"delay":  "the database delays the response (PostgreSQL and MySQL sleep 0.3s, SQLite computes for about 0.45s of CPU time)",
}

// payloadSleep is how long the time-based PostgreSQL and MySQL payloads
// sleep (pg_sleep(0.3), SLEEP(0.3)). A sleep lasts at least what it was
// asked, so an answer that comes sooner proves that the database did not
// sleep, whatever the load: a busy machine only makes answers later.
// sleepSlack allows for the resolution of the database's timer.
const (
	payloadSleep = 300 * time.Millisecond
	sleepSlack   = 10 * time.Millisecond
)

// exploit is an entry of testdata/exploits_<dialect>.txt: context, oracle
// and payload separated by tabs.
type exploit struct {
	corpus.Line
	context, oracle string
	payload         string // as written: {users} and the like stand for the fixture's tables
}

// readExploits returns the exploits written for d, each with a known
// context and oracle, no two the same.
func readExploits(tb testing.TB, d sqlguard.Dialect) []exploit {
	tb.Helper()
	var out []exploit
	seen := map[string]int{}
	for _, l := range corpus.Lines(tb, "testdata/exploits_"+d.String()+".txt") {
		f := l.Fields(tb, '\t', 3)
		x := exploit{Line: l, context: f[0], oracle: f[1], payload: f[2]}
		if _, ok := vulnContexts[x.context]; !ok {
			tb.Fatalf("%s: unknown context %q", l.Pos(), x.context)
		}
		if _, ok := oracles[x.oracle]; !ok {
			tb.Fatalf("%s: unknown oracle %q", l.Pos(), x.oracle)
		}
		if x.oracle == "true" && !strings.Contains(x.payload, "s3cr3t") {
			tb.Fatalf("%s: a %q payload must test the secret's prefix s3cr3t", l.Pos(), x.oracle)
		}
		if prev, dup := seen[x.context+"\t"+x.payload]; dup {
			tb.Fatalf("%s: same payload and context as line %d", l.Pos(), prev)
		}
		seen[x.context+"\t"+x.payload] = l.Number
		out = append(out, x)
	}
	return out
}

// minExploits is how many exploits each database must prove.
const minExploits = 40

func TestIntegrationExploits(t *testing.T) {
	locs := sinkLocations(t)
	forEachBackend(t, func(t *testing.T, b *backend) {
		fx := newFixture(t, b)
		fx.calibrateWork(t)
		exploits := readExploits(t, b.dialect)
		if len(exploits) < minExploits {
			t.Fatalf("%d exploits for %s, want at least %d", len(exploits), b.name, minExploits)
		}
		agent, events := ramparttest.NewAgent(t, rampart.Config{})
		g, err := sqlguard.New(agent, b.dialect)
		if err != nil {
			t.Fatal(err)
		}
		bare := &shop{fx: fx, db: b.openBare(t)}
		rec := &recorder{}
		guarded := &shop{fx: fx, db: b.openGuarded(t, g, rec)}
		// The unguarded application is wrapped in the middleware too, so that
		// the guard is the only difference.
		off := newClient(t, agent.Handler(bare.routes()))
		on := newClient(t, agent.Handler(guarded.routes()))

		for name, vc := range vulnContexts {
			if vc.benign == "" {
				vc = vulnContexts["str"]
			}
			rq, _, _ := vc.build(vc.benign)
			for _, c := range []*client{off, on} {
				if r := c.do(t, rq); r.status == http.StatusForbidden {
					t.Fatalf("%s: the benign %q blocked: %q", name, vc.benign, r.body)
				}
			}
		}
		if n := agent.Stats().Events; n != 0 {
			t.Fatalf("benign requests reported %d events", n)
		}

		worked, blocked := 0, 0
		for _, x := range exploits {
			name := fmt.Sprintf("%s:%d/%s/%s", b.name, x.Number, x.context, x.oracle)
			x.payload = fx.expand(x.payload)
			vc := vulnContexts[x.context]
			rq, value, err := vc.build(x.payload)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			t.Run(name, func(t *testing.T) {
				t.Run("works_without_the_guard", func(t *testing.T) {
					fx.exec(t, "DELETE FROM "+fx.canary)
					r := off.do(t, rq)
					if proveExploit(t, off, fx, x, r) {
						worked++
					}
				})
				t.Run("is_blocked_before_the_database", func(t *testing.T) {
					fx.exec(t, "DELETE FROM "+fx.canary)
					r := on.do(t, rq)
					checkBlocked(t, r)
					checkEvent(t, guarded, events, r, rampart.ActionBlocked, value, locs[vc.sink])
					if strings.Contains(r.body, fx.secret) {
						t.Errorf("the secret leaked: %q", r.body)
					}
					if q, reached := rec.reached(value); reached {
						t.Errorf("the statement reached the driver: %q", q)
					}
					// The statement did not reach the driver (above), so the
					// database neither slept nor computed: a time-based
					// exploit needs no clock here.
					if n := fx.count(t, fx.canary); n != 0 {
						t.Errorf("canary table has %d rows: a stacked statement ran", n)
					}
					if !t.Failed() {
						blocked++
					}
				})
			})
		}
		t.Logf("%s: %d exploits, %d proved against the bare driver, %d blocked by the guard", b.name, len(exploits), worked, blocked)
	})
}

// proveExploit checks x's oracle on r, the unguarded response. It reports
// whether the exploit was proved.
func proveExploit(t *testing.T, c *client, fx *fixture, x exploit, r reply) bool {
	t.Helper()
	if r.status == http.StatusForbidden {
		t.Fatalf("blocked without a guard: %q", r.body)
	}
	fail := func(format string, args ...any) bool {
		t.Errorf("exploit did not work (%s): "+format, append([]any{oracles[x.oracle]}, args...)...)
		t.Logf("status %d, %v, body %.500q", r.status, r.elapsed, r.body)
		return false
	}
	switch x.oracle {
	case "rows":
		if r.status != http.StatusOK || rowCount(r.body) < 2 {
			return fail("%d rows", rowCount(r.body))
		}
	case "secret":
		if r.status != http.StatusOK || !strings.Contains(r.body, fx.secret) {
			return fail("no secret")
		}
	case "error":
		if r.status != http.StatusInternalServerError || !strings.Contains(r.body, fx.secret) {
			return fail("no secret in an error")
		}
	case "auth":
		if r.status != http.StatusOK || !strings.HasPrefix(r.body, "welcome ") {
			return fail("not logged in")
		}
	case "canary":
		if n := fx.count(t, fx.canary); n == 0 {
			return fail("canary table empty")
		}
	case "delay":
		if fx.b.dialect != sqlguard.SQLite {
			if r.elapsed < payloadSleep-sleepSlack {
				return fail("answered in %v", r.elapsed)
			}
			break
		}
		// SQLite computes instead of sleeping: the request must have cost
		// the process at least half the CPU time the work was sized for
		// (a benign request costs a few milliseconds). Other goroutines
		// can only add to it; the load of the machine changes neither.
		if _, ok := processCPU(); !ok {
			t.Skip("the CPU time of the process is measured on Linux only")
		}
		if r.cpu < sqliteWork/2 {
			return fail("the request cost %v of CPU time, want at least %v", r.cpu, sqliteWork/2)
		}
		t.Logf("the request cost %v of CPU time, %v on the clock", r.cpu, r.elapsed)
	case "true":
		vc := vulnContexts[x.context]
		frq, _, err := vc.build(strings.ReplaceAll(x.payload, "s3cr3t", "zzzzzz"))
		if err != nil {
			t.Fatal(err)
		}
		f := c.do(t, frq)
		if r.status != http.StatusOK || f.status != http.StatusOK || r.body == f.body {
			return fail("true: %d %.200q; false: %d %.200q", r.status, r.body, f.status, f.body)
		}
	}
	return true
}

// Benign inputs.

const minBenign = 200

// readBenign returns the entries of testdata/benign.txt, no two the same.
func readBenign(tb testing.TB) []string {
	tb.Helper()
	var out []string
	seen := map[string]int{}
	for _, l := range corpus.Lines(tb, "testdata/benign.txt") {
		in := l.Fields(tb, '\t', 1)[0]
		if prev, dup := seen[in]; dup {
			tb.Fatalf("%s: duplicate of line %d", l.Pos(), prev)
		}
		seen[in] = l.Number
		out = append(out, in)
	}
	return out
}

func TestIntegrationBenign(t *testing.T) {
	inputs := readBenign(t)
	if len(inputs) < minBenign {
		t.Fatalf("%d benign inputs, want at least %d", len(inputs), minBenign)
	}
	forEachBackend(t, func(t *testing.T, b *backend) {
		fx := newFixture(t, b)
		agent, events := ramparttest.NewAgent(t, rampart.Config{})
		g, err := sqlguard.New(agent, b.dialect)
		if err != nil {
			t.Fatal(err)
		}
		db, err := g.Open(b.drv, b.dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		s := &shop{fx: fx, db: db}
		c := newClient(t, agent.Handler(s.routes()))

		failures := 0
		for _, in := range inputs {
			if failures >= 20 {
				t.Fatalf("stopping after %d failing inputs", failures)
			}
			ids := make([]int64, 0, 2)
			ok := true
			for _, path := range []string{"/notes", "/notes/escaped"} {
				r := c.do(t, postForm(path, url.Values{"text": {in}}))
				id, err := strconv.ParseInt(r.body, 10, 64)
				if r.status != http.StatusOK || err != nil {
					t.Errorf("POST %s text=%q: status %d body %.300q", path, in, r.status, r.body)
					ok = false
					continue
				}
				ids = append(ids, id)
			}
			for _, path := range []string{"/notes/find", "/notes/find-escaped"} {
				r := c.do(t, get(path+"?text="+url.QueryEscape(in)))
				var got []note
				if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &got) != nil {
					t.Errorf("GET %s text=%q: status %d body %.300q", path, in, r.status, r.body)
					ok = false
					continue
				}
				if len(got) != len(ids) {
					t.Errorf("GET %s text=%q: %d rows %v, want ids %v", path, in, len(got), got, ids)
					ok = false
					continue
				}
				for i, n := range got {
					if n.ID != ids[i] || n.Body != in {
						t.Errorf("GET %s text=%q: row %d is %+v, want id %d with the same text", path, in, i, n, ids[i])
						ok = false
					}
				}
			}
			if !ok {
				failures++
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		agent.Close(ctx)
		if n := agent.Stats().Events; n != 0 {
			for _, e := range events.Events() {
				t.Errorf("false positive: input %q in %s (%s)", e.Input.Value, e.Detail, e.Reason)
			}
			t.Fatalf("%d events for benign inputs, want 0", n)
		}
		t.Logf("%s: %d benign inputs round-tripped through 4 routes each, 0 events", b.name, len(inputs))
	})
}

// Query paths.

var queryPaths = []string{
	"db.Query", "db.QueryContext", "db.QueryContext-noargs", "db.QueryRow", "db.QueryRowContext",
	"db.Exec", "db.ExecContext", "db.ExecContext-noargs", "db.Prepare", "db.PrepareContext",
	"conn.QueryContext", "conn.QueryRowContext", "conn.ExecContext", "conn.PrepareContext",
	"tx.Query", "tx.QueryContext", "tx.QueryRow", "tx.QueryRowContext",
	"tx.Exec", "tx.ExecContext", "tx.Prepare", "tx.PrepareContext",
}

const pathExploit = "x' OR '1'='1"

// pathResult is what a query path answers for the benign name "alice" and
// for the exploit when it goes through.
func pathResult(path string, through bool) string {
	switch {
	case strings.Contains(path, "Exec"):
		if through {
			return "updated 4\n"
		}
		return "updated 1\n"
	case strings.Contains(path, "QueryRow"):
		return "alice\n" // the first row, also for the exploit
	case through:
		return "alice\nbob\ncarol\ndave\n"
	}
	return "alice\n"
}

func TestIntegrationQueryPaths(t *testing.T) {
	locs := sinkLocations(t)
	forEachBackend(t, func(t *testing.T, b *backend) {
		fx := newFixture(t, b)
		agent, events := ramparttest.NewAgent(t, rampart.Config{})
		g, err := sqlguard.New(agent, b.dialect)
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		s := &shop{fx: fx, db: b.openGuarded(t, g, rec)}
		c := newClient(t, agent.Handler(s.routes()))
		visits := func() int {
			var n int
			if err := fx.admin.QueryRow("SELECT SUM(visits) FROM " + fx.users).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		for _, path := range queryPaths {
			t.Run(path, func(t *testing.T) {
				loc, ok := locs[path]
				if !ok {
					t.Fatalf("no sink marker for %s", path)
				}
				r := c.do(t, get("/paths/"+path+"?name=alice"))
				if want := pathResult(path, false); r.status != http.StatusOK || r.body != want {
					t.Errorf("benign: status %d body %q, want 200 %q", r.status, r.body, want)
				}
				before := visits()
				r = c.do(t, get("/paths/"+path+"?name="+url.QueryEscape(pathExploit)))
				checkBlocked(t, r)
				checkEvent(t, s, events, r, rampart.ActionBlocked, pathExploit, loc)
				if q, reached := rec.reached(pathExploit); reached {
					t.Errorf("the statement reached the driver: %q", q)
				}
				if after := visits(); after != before {
					t.Errorf("visits went from %d to %d: the blocked statement ran", before, after)
				}
			})
		}
		if n, want := agent.Stats().Events, uint64(len(queryPaths)); n != want {
			t.Errorf("%d events, want %d (one per blocked exploit)", n, want)
		}
	})
}

func TestIntegrationMonitor(t *testing.T) {
	locs := sinkLocations(t)
	forEachBackend(t, func(t *testing.T, b *backend) {
		fx := newFixture(t, b)
		agent, events := ramparttest.NewAgent(t, rampart.Config{Mode: rampart.ModeMonitor})
		g, err := sqlguard.New(agent, b.dialect)
		if err != nil {
			t.Fatal(err)
		}
		s := &shop{fx: fx, db: b.openGuarded(t, g, &recorder{})}
		c := newClient(t, agent.Handler(s.routes()))
		sent := map[string]string{} // request id -> path
		for _, path := range queryPaths {
			r := c.do(t, get("/paths/"+path+"?name="+url.QueryEscape(pathExploit)))
			if want := pathResult(path, true); r.status != http.StatusOK || r.body != want {
				t.Errorf("%s: status %d body %q, want the exploit to go through: 200 %q", path, r.status, r.body, want)
			}
			sent[r.id] = path
		}
		// A stacked statement goes through too.
		r := c.do(t, postForm("/users/visit", url.Values{"name": {fx.expand("x'; INSERT INTO {canary} VALUES ('pwned')-- ")}}))
		if n := fx.count(t, fx.canary); r.status != http.StatusOK || n != 1 {
			t.Errorf("stacked insert in monitor mode: status %d body %q, canary rows %d, want 200 and 1", r.status, r.body, n)
		}
		sent[r.id] = "visit"
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := agent.Close(ctx); err != nil {
			t.Fatal(err)
		}
		byRequest := map[string][]rampart.Event{}
		for _, e := range events.Events() {
			byRequest[e.RequestID] = append(byRequest[e.RequestID], e)
		}
		for id, path := range sent {
			evs := byRequest[id]
			if len(evs) != 1 {
				t.Errorf("%s: %d events, want exactly 1", path, len(evs))
				continue
			}
			loc, ok := locs[path]
			if !ok {
				t.Fatalf("no sink marker for %s", path)
			}
			want := ramparttest.Want{Kind: rampart.KindSQLInjection, Action: rampart.ActionMonitored, Location: loc}
			if d := want.Diff(evs[0]); d != "" {
				t.Errorf("%s: %s", path, d)
			}
		}
		if n := agent.Stats().Events; n != uint64(len(sent)) {
			t.Errorf("%d events, want %d", n, len(sent))
		}
	})
}
