package fsguard_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/fsguard"
	"github.com/rampartsec/rampart/ramparttest"
)

// fileServer is a service that serves files by name from three routes, as
// vulnerable services do: the name from a path wildcard, the same decoded
// once more, and a query parameter. With guarded set it reads through a Guard;
// otherwise with os.ReadFile(filepath.Join(base, name)), absolute names
// taken as they are.
type fileServer struct {
	base    string
	dir     *fsguard.Guard // nil: unguarded
	guarded atomic.Int64   // line of the guarded call
}

func (s *fileServer) read(w http.ResponseWriter, r *http.Request, name string) {
	var data []byte
	var err error
	if s.dir != nil {
		s.guarded.Store(int64(here() + 1))
		data, err = s.dir.ReadFile(r.Context(), name)
	} else {
		full := name
		if !filepath.IsAbs(full) {
			full = filepath.Join(s.base, name)
		}
		data, err = os.ReadFile(full)
	}
	if errors.Is(err, rampart.ErrBlocked) {
		return // the middleware answers 403
	}
	if err != nil {
		http.Error(w, "no such file", http.StatusNotFound)
		return
	}
	w.Write(data)
}

func (s *fileServer) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /files/{name...}", func(w http.ResponseWriter, r *http.Request) {
		s.read(w, r, r.PathValue("name"))
	})
	mux.HandleFunc("GET /raw/{name...}", func(w http.ResponseWriter, r *http.Request) {
		name, err := url.PathUnescape(r.PathValue("name"))
		if err != nil {
			http.Error(w, "bad name", http.StatusBadRequest)
			return
		}
		s.read(w, r, name)
	})
	mux.HandleFunc("GET /download", func(w http.ResponseWriter, r *http.Request) {
		s.read(w, r, r.URL.Query().Get("file"))
	})
	return mux
}

// Over HTTP, through the middleware: the exploits read the secret from the
// unguarded service, and the guarded one answers 403 with an event naming
// the route, the input and the line of the guarded call.
func TestExploitsOverHTTP(t *testing.T) {
	l := newLayout(t)
	agent, events := ramparttest.NewAgent(t, rampart.Config{})
	d, err := fsguard.New(agent, l.base)
	must(t, err)
	defer d.Close()

	unguarded := &fileServer{base: l.base}
	guarded := &fileServer{base: l.base, dir: d}
	off := httptest.NewServer(agent.Handler(unguarded.mux()))
	defer off.Close()
	on := httptest.NewServer(agent.Handler(guarded.mux()))
	defer on.Close()

	exploits := []struct {
		target string
		source rampart.Source
		route  string
	}{
		{"/files/..%2f..%2foutside%2fsecret.txt", rampart.SourcePath, "GET /files/{name...}"},
		{"/files/%2e%2e/%2e%2e/outside/secret.txt", rampart.SourcePath, "GET /files/{name...}"},
		{"/files/up/secret.txt", rampart.SourcePath, "GET /files/{name...}"},
		{"/files/leak.txt", rampart.SourcePath, "GET /files/{name...}"},
		{"/raw/..%252f..%252foutside%252fsecret.txt", rampart.SourcePath, "GET /raw/{name...}"},
		{"/raw/%252e%252e%252f..%252fsrv%252fsecret.txt", rampart.SourcePath, "GET /raw/{name...}"},
		{"/download?file=../../outside/secret.txt", rampart.SourceQuery, "GET /download"},
		{"/download?file=" + url.QueryEscape(filepath.Join(l.outside, "secret.txt")), rampart.SourceQuery, "GET /download"},
		{"/download?file=..%2F..%2Foutside%2F.%2Fsecret.txt", rampart.SourceQuery, "GET /download"},
		{"/download?file=../files-private/key.txt", rampart.SourceQuery, "GET /download"},
	}
	for _, ex := range exploits {
		t.Run(ex.target, func(t *testing.T) {
			status, body, _ := get(t, off.URL+ex.target)
			if status != http.StatusOK || !strings.HasPrefix(body, secretPrefix) {
				t.Fatalf("unguarded: %d %q, want the secret: not an exploit", status, body)
			}
			status, body, hdr := get(t, on.URL+ex.target)
			if status != http.StatusForbidden || strings.Contains(body, secretPrefix) {
				t.Fatalf("guarded: %d %q, want 403 without the secret", status, body)
			}
			var answer struct {
				Error     string `json:"error"`
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal([]byte(body), &answer); err != nil || answer.RequestID == "" || answer.RequestID != hdr.Get("X-Request-Id") {
				t.Errorf("403 body %q, X-Request-Id %q: %v", body, hdr.Get("X-Request-Id"), err)
			}
			want := ramparttest.Want{
				Kind: rampart.KindPathTraversal, Route: ex.route, Input: rampart.Input{Source: ex.source}, RequestID: answer.RequestID,
				Location: "http_test.go:" + strconv.FormatInt(guarded.guarded.Load(), 10),
			}
			ev := events.Next(t)
			if diff := want.Diff(ev); diff != "" {
				t.Errorf("the event does not describe the request: %s", diff)
			}
			t.Logf("%s %s=%q: %s | %s", ev.Route, ev.Input.Source, ev.Input.Value, ev.Reason, ev.Detail)
		})
	}

	reported := agent.Stats().Events
	for _, target := range []string{
		"/files/public/readme.txt",
		"/files/alias/readme.txt",
		"/raw/public%252freadme.txt",
		"/download?file=docs/../public/readme.txt",
		"/download?file=" + url.QueryEscape("public/readme.txt"),
	} {
		status, body, _ := get(t, on.URL+target)
		if status != http.StatusOK || body != "public readme" {
			t.Errorf("guarded %s: %d %q, want the readme", target, status, body)
		}
	}
	if n := agent.Stats().Events - reported; n != 0 {
		t.Errorf("benign requests reported %d events", n)
	}
}

func get(t *testing.T, target string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	return resp.StatusCode, string(b), resp.Header
}

// A request whose inputs could not all be recorded fails closed in
// Guard.Check, as in every guard's check: what was not recorded may be in
// the name. The same name is allowed for a complete request.
func TestCheckFailsClosedOnAnIncompleteRequest(t *testing.T) {
	agent, _ := ramparttest.NewAgent(t, rampart.Config{MaxInputs: 10})
	l := newLayout(t)
	g, err := fsguard.New(agent, l.base)
	must(t, err)
	defer g.Close()

	checks := map[string]func(r *http.Request) error{
		"Guard.Check":   func(r *http.Request) error { return g.Check(r.Context(), "public/readme.txt") },
		"fsguard.Check": func(r *http.Request) error { return fsguard.Check(r.Context(), agent, l.base, "public/readme.txt") },
	}
	for name, check := range checks {
		t.Run(name, func(t *testing.T) {
			var many strings.Builder
			for i := range 11 {
				fmt.Fprintf(&many, "p%d=v%d&", i, i)
			}
			for _, tc := range []struct {
				query   string
				blocked bool
			}{{"a=1", false}, {many.String(), true}} {
				errs := make(chan error, 1)
				h := agent.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { errs <- check(r) }))
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/files?"+tc.query, nil))
				err := <-errs
				if errors.Is(err, rampart.ErrBlocked) != tc.blocked {
					t.Fatalf("%d query pairs: %v, want blocked %v", strings.Count(tc.query, "="), err, tc.blocked)
				}
				if !tc.blocked {
					continue
				}
				var be *rampart.BlockedError
				if !errors.As(err, &be) || be.Event.Kind != rampart.KindInputsTruncated || be.Event.Sink != "os" {
					t.Errorf("event %+v, want %s at os", be.Event, rampart.KindInputsTruncated)
				}
			}
		})
	}
}
