package rampart_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/ramparttest"
)

func collect(ctx context.Context) []rampart.Input {
	var out []rampart.Input
	for in := range rampart.Inputs(ctx) {
		out = append(out, in)
	}
	return out
}

func has(ins []rampart.Input, src rampart.Source, name, value string) bool {
	return slices.Contains(ins, rampart.Input{Source: src, Name: name, Value: value})
}

// serve runs one request through agent.Handler(mux) on a real server and
// returns the inputs the handler saw, the body it read, and the response.
func serve(t *testing.T, a *rampart.Agent, pattern string, req *http.Request) ([]rampart.Input, string, *http.Response) {
	t.Helper()
	var ins []rampart.Input
	var body string
	mux := http.NewServeMux()
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("handler could not read its body: %v", err)
		}
		body = string(b)
		ins = collect(r.Context())
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewServer(a.Handler(mux))
	defer srv.Close()
	req.URL.Scheme, req.URL.Host, req.Host = "http", srv.Listener.Addr().String(), ""
	req.RequestURI = ""
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return ins, body, resp
}

func TestMiddlewareCapturesEveryInputSource(t *testing.T) {
	a, _ := ramparttest.NewAgent(t, rampart.Config{Headers: []string{"X-Search"}})
	body := `{"user":{"name":"O'Brien","tags":["a\u0027b","ok"]},"n":12,"nested":[[{"deep":"v\"q"}]]}`
	req := httptest.NewRequest("POST", "/items/42/files/a/b.txt?q=1+OR+1%3D1&sort=name&h=0&empty=", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "sqlmap/1.8")
	req.Header.Set("Referer", "https://evil.example/')--")
	req.Header.Set("X-Search", "needle' --")
	req.Header.Set("X-Other", "any header")
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	req.AddCookie(&http.Cookie{Name: "session", Value: "abc123"})
	ins, gotBody, resp := serve(t, a, "POST /items/{id}/files/{path...}", req)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if gotBody != body {
		t.Errorf("handler read %q, want the body restored whole %q", gotBody, body)
	}
	for _, want := range []rampart.Input{
		{rampart.SourceQuery, "q", "1 OR 1=1"},
		{rampart.SourceQuery, "sort", "name"},
		{rampart.SourcePath, "id", "42"},
		{rampart.SourcePath, "path", "a/b.txt"},
		{rampart.SourceJSON, "user", "user"},
		{rampart.SourceJSON, "name", "O'Brien"},
		{rampart.SourceJSON, "tags", "a'b"},
		{rampart.SourceJSON, "tags", "ok"},
		{rampart.SourceJSON, "deep", `v"q`},
		{rampart.SourceCookie, "session", "abc123"},
		{rampart.SourceQuery, "h", "0"}, // one byte: "http://0/" reaches 0.0.0.0
		{rampart.SourceHeader, "User-Agent", "sqlmap/1.8"},
		{rampart.SourceHeader, "Referer", "https://evil.example/')--"},
		{rampart.SourceHeader, "X-Search", "needle' --"},
		{rampart.SourceHeader, "X-Other", "any header"},
	} {
		if !has(ins, want.Source, want.Name, want.Value) {
			t.Errorf("missing input %+v; got %+v", want, ins)
		}
	}
	for _, in := range ins {
		if in.Name == "Traceparent" {
			t.Errorf("captured a well-formed traceparent: %+v", in)
		}
		if in.Value == "" {
			t.Errorf("captured an empty input %+v", in)
		}
	}
}

func TestMiddlewareCapturesFormBodiesAndRestoresThem(t *testing.T) {
	a, _ := ramparttest.NewAgent(t, rampart.Config{})
	body := "user=admin%27--&pw=x"
	req := httptest.NewRequest("POST", "/login", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	ins, got, _ := serve(t, a, "POST /login", req)
	if got != body {
		t.Errorf("body %q, want %q", got, body)
	}
	if !has(ins, rampart.SourceForm, "user", "admin'--") {
		t.Errorf("form value missing: %+v", ins)
	}
}

func TestMalformedJSONIsNeverAnErrorForTheApp(t *testing.T) {
	a, _ := ramparttest.NewAgent(t, rampart.Config{})
	body := `{"a": "one' OR 1=1", "b": [1, 2, {"c": "tru` // truncated
	req := httptest.NewRequest("POST", "/x", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	ins, got, resp := serve(t, a, "POST /x", req)
	if resp.StatusCode != http.StatusNoContent || got != body {
		t.Fatalf("status %d body %q", resp.StatusCode, got)
	}
	if !has(ins, rampart.SourceJSON, "a", "one' OR 1=1") || !has(ins, rampart.SourceJSON, "c", "tru") {
		t.Errorf("strings of a truncated document not captured: %+v", ins)
	}
}

func TestBodiesLongerThanTheLimitReachTheHandlerWhole(t *testing.T) {
	a, _ := ramparttest.NewAgent(t, rampart.Config{MaxBodyBytes: 64})
	payload := `{"early":"in the first 64 bytes","late":"` + strings.Repeat("x", 200) + `","tail":"after the limit"}`
	req := httptest.NewRequest("POST", "/x", strings.NewReader(payload))
	req.Header.Set("Content-Type", "application/json")
	ins, got, _ := serve(t, a, "POST /x", req)
	if got != payload {
		t.Fatalf("handler got %d bytes, want all %d", len(got), len(payload))
	}
	if !has(ins, rampart.SourceJSON, "early", "in the first 64 bytes") {
		t.Errorf("value within the limit not captured: %+v", ins)
	}
	for _, in := range ins {
		if in.Value == "after the limit" {
			t.Errorf("captured past MaxBodyBytes: %+v", in)
		}
	}
}

func TestWithUntrustedMarksInputWithoutARequest(t *testing.T) {
	ctx := rampart.WithUntrusted(context.Background(), "job", "http://169.254.169.254/", "x")
	ctx2 := rampart.WithUntrusted(ctx, "job-meta", "tenant-7")
	got := collect(ctx2)
	want := []rampart.Input{{Source: "job-meta", Value: "tenant-7"}, {Source: "job", Value: "http://169.254.169.254/"}, {Source: "job", Value: "x"}}
	if !slices.Equal(got, want) {
		t.Errorf("Inputs = %+v, want %+v", got, want)
	}
	if n := len(collect(ctx)); n != 2 {
		t.Errorf("a derived context changed its parent: parent has %d inputs", n)
	}
	if n := len(collect(context.Background())); n != 0 {
		t.Errorf("background context has %d inputs", n)
	}
}

func TestInputsWithoutAContextComeFromTheRequestsGoroutine(t *testing.T) {
	a, _ := ramparttest.NewAgent(t, rampart.Config{})
	var sameGoroutine, otherGoroutine []rampart.Input
	h := a.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sameGoroutine = collect(context.Background()) // like db.Query without a context
		var wg sync.WaitGroup
		wg.Go(func() { otherGoroutine = collect(context.Background()) })
		wg.Wait()
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/?id=1%20OR%201=1", nil))
	if !has(sameGoroutine, rampart.SourceQuery, "id", "1 OR 1=1") {
		t.Errorf("inputs on the serving goroutine = %+v", sameGoroutine)
	}
	if len(otherGoroutine) != 0 {
		t.Errorf("another goroutine saw the request's inputs: %+v", otherGoroutine)
	}
	if after := collect(context.Background()); len(after) != 0 {
		t.Errorf("inputs outlived the request: %+v", after)
	}
}

// reportLine is the line of the Report call in blockingHandler, the line an
// event must name.
var reportLine int

func blockingHandler(a *rampart.Agent, writeFirst bool, gotErr *error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if writeFirst {
			w.WriteHeader(http.StatusAccepted)
		}
		_, _, line, _ := runtime.Caller(0)
		reportLine = line + 2
		err := a.Report(r.Context(), rampart.Finding{Kind: "sql_injection", Input: rampart.Input{Source: rampart.SourceQuery, Name: "q", Value: "x' OR 1=1--"}, Sink: "test", Detail: "d"})
		*gotErr = err
		if err != nil {
			http.Error(w, "database error: "+err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "served")
	})
}

func TestBlockedCallsAnswer403WithARequestID(t *testing.T) {
	a, events := ramparttest.NewAgent(t, rampart.Config{})
	var err error
	srv := httptest.NewServer(a.Handler(blockingHandler(a, false, &err)))
	defer srv.Close()
	resp, herr := http.Get(srv.URL + "/search?q=x%27%20OR%201=1--")
	if herr != nil {
		t.Fatal(herr)
	}
	defer resp.Body.Close()
	if !errors.Is(err, rampart.ErrBlocked) {
		t.Fatalf("Report returned %v, want an error wrapping ErrBlocked", err)
	}
	var be *rampart.BlockedError
	if !errors.As(err, &be) || be.Event.Kind != "sql_injection" {
		t.Fatalf("error %T %v carries no event", err, err)
	}
	var body struct {
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d content type %q, want 403 JSON", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if got := resp.Header.Get(rampart.RefusalHeader); got != "sql_injection" {
		t.Errorf("%s: %q, want the event kind, sql_injection", rampart.RefusalHeader, got)
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("403 body is not JSON: %v", err)
	}
	if body.Error == "" || body.RequestID == "" || body.RequestID != resp.Header.Get("X-Request-Id") {
		t.Errorf("403 body %+v, header request id %q", body, resp.Header.Get("X-Request-Id"))
	}
	ev := events.Next(t)
	want := ramparttest.Want{Kind: rampart.KindSQLInjection, Action: rampart.ActionBlocked, Location: fmt.Sprintf("rampart_test.go:%d", reportLine)}
	if d := want.Diff(ev); d != "" {
		t.Errorf("%s\n(the location is the line of the call)", d)
	}
	if ev.RequestID != body.RequestID || ev.Method != "GET" || ev.Path != "/search" || ev.Service != "test" {
		t.Errorf("event %+v does not describe the request", ev)
	}
	if ev.ID == "" || ev.Time.IsZero() || ev.RemoteAddr == "" {
		t.Errorf("event lacks id, time or remote address: %+v", ev)
	}
}

func TestAResponseAlreadyStartedIsLeftAlone(t *testing.T) {
	a, _ := ramparttest.NewAgent(t, rampart.Config{})
	var err error
	rec := httptest.NewRecorder()
	a.Handler(blockingHandler(a, true, &err)).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if !errors.Is(err, rampart.ErrBlocked) {
		t.Fatalf("err = %v", err)
	}
	if rec.Code != http.StatusAccepted {
		t.Errorf("status %d, want the handler's 202 which was sent before the block", rec.Code)
	}
}

func TestMonitorModeReportsAndLetsTheCallThrough(t *testing.T) {
	a, events := ramparttest.NewAgent(t, rampart.Config{Mode: rampart.ModeMonitor})
	var err error
	rec := httptest.NewRecorder()
	a.Handler(blockingHandler(a, false, &err)).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if err != nil || rec.Code != http.StatusOK || rec.Body.String() != "served" {
		t.Fatalf("err %v status %d body %q, want the call through", err, rec.Code, rec.Body)
	}
	if d := (ramparttest.Want{Action: rampart.ActionMonitored}).Diff(events.Next(t)); d != "" {
		t.Error(d)
	}
}

func TestClientRequestIDsAreKeptOnlyWhenWellFormed(t *testing.T) {
	a, _ := ramparttest.NewAgent(t, rampart.Config{})
	var err error
	h := a.Handler(blockingHandler(a, false, &err))
	for _, tc := range []struct{ sent, want string }{
		{"req-123.abc_X", "req-123.abc_X"},
		{"bad id\"}", ""},
		{strings.Repeat("a", 200), ""},
	} {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("X-Request-Id", tc.sent)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := rec.Header().Get("X-Request-Id")
		if tc.want != "" && got != tc.want || tc.want == "" && (got == tc.sent || len(got) != 32) {
			t.Errorf("sent %q, response id %q", tc.sent, got)
		}
	}
}

// slowSink blocks until released, so the queue fills.
type slowSink struct {
	release chan struct{}
	mu      sync.Mutex
	got     int
}

func (s *slowSink) WriteEvents(_ context.Context, evs []rampart.Event) error {
	<-s.release
	s.mu.Lock()
	s.got += len(evs)
	s.mu.Unlock()
	return nil
}

func TestAFullQueueDropsAndCountsWithoutBlockingTheRequest(t *testing.T) {
	sink := &slowSink{release: make(chan struct{})}
	a, err := rampart.New(rampart.Config{Service: "t", Mode: rampart.ModeMonitor, QueueSize: 4, Sinks: []rampart.Sink{sink}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := rampart.WithUntrusted(context.Background(), "job", "v")
	// The sink is stuck until the loop is over: a Report that waited for
	// it would never return.
	for range 100 {
		if err := a.Report(ctx, rampart.Finding{Kind: "k"}); err != nil {
			t.Fatal(err)
		}
	}
	st := a.Stats()
	// The sink holds one batch (up to 64 events) and the queue 4; the rest
	// must have been dropped rather than waited for.
	if st.Events != 100 || st.Dropped < 100-4-64 {
		t.Errorf("stats %+v: want 100 events and at least 32 dropped", st)
	}
	close(sink.release)
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st = a.Stats()
	sink.mu.Lock()
	got := sink.got
	sink.mu.Unlock()
	if uint64(got) != st.Events-st.Dropped || st.Delivered != uint64(got) {
		t.Errorf("sink got %d, stats %+v: every event not dropped must be delivered by Close", got, st)
	}
	if err := a.Report(ctx, rampart.Finding{Kind: "k"}); err != nil || a.Stats().Dropped != st.Dropped+1 {
		t.Errorf("after Close, Report = %v and drops %d, want nil and counted", err, a.Stats().Dropped)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		cfg  rampart.Config
		want string
	}{
		{rampart.Config{}, "Config.Service"},
		{rampart.Config{Service: "s", Mode: "log"}, "Config.Mode"},
		{rampart.Config{Service: "s", QueueSize: -1}, "Config.QueueSize"},
		{rampart.Config{Service: "s", Headers: []string{"Bad Header"}}, "Config.Headers[0]"},
		{rampart.Config{Service: "s", Sinks: []rampart.Sink{nil}}, "Config.Sinks[0]"},
	} {
		_, err := rampart.New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
	a, err := rampart.New(rampart.Config{Service: "s", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	if a.Mode() != rampart.ModeBlock {
		t.Errorf("zero Mode = %q, want block (secure default)", a.Mode())
	}
}

func TestTheDefaultSinkWritesOneJSONLinePerEvent(t *testing.T) {
	var buf syncBuffer
	a, err := rampart.New(rampart.Config{Service: "s", Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := rampart.WithUntrusted(context.Background(), "job", "v")
	a.Report(ctx, rampart.Finding{Kind: "sql_injection", Input: rampart.Input{Source: "job", Value: strings.Repeat("é", 1000)}})
	a.Report(ctx, rampart.Finding{Kind: "sql_injection"})
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), buf.String())
	}
	var rec struct {
		Event struct {
			Kind  string `json:"kind"`
			Input struct {
				Value string `json:"value"`
			} `json:"input"`
		} `json:"event"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("line is not JSON: %v\n%s", err, lines[0])
	}
	if rec.Event.Kind != "sql_injection" || len(rec.Event.Input.Value) > rampart.MaxEventInput || !strings.HasSuffix(rec.Event.Input.Value, "…") {
		t.Errorf("event line %s: want the kind and the value truncated to %d bytes", lines[0], rampart.MaxEventInput)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestNestedHandlersRestoreTheOuterRequestForContextlessCalls(t *testing.T) {
	a, _ := ramparttest.NewAgent(t, rampart.Config{})
	var afterInner []rampart.Input
	inner := a.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	outer := a.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.ServeHTTP(w, httptest.NewRequest("GET", "/inner?x=inner-value", nil))
		afterInner = collect(context.Background())
	}))
	outer.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/outer?x=outer-value", nil))
	if !has(afterInner, rampart.SourceQuery, "x", "outer-value") {
		t.Errorf("after the inner handler returned, contextless inputs = %+v, want the outer request's", afterInner)
	}
}

func TestChunkedBodiesAreCapturedAndRestored(t *testing.T) {
	a, _ := ramparttest.NewAgent(t, rampart.Config{})
	body := `{"q":"chunked' OR 1=1"}`
	// A reader of unknown length makes the client send a chunked body.
	req := httptest.NewRequest("POST", "/x", io.MultiReader(strings.NewReader(body)))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	ins, got, _ := serve(t, a, "POST /x", req)
	if got != body || !has(ins, rampart.SourceJSON, "q", "chunked' OR 1=1") {
		t.Errorf("body %q inputs %+v", got, ins)
	}
}
