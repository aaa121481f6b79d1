package rampart_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/ramparttest"
)

// summaryMux answers GET /items/{id} with 200 (calling ObjectAccess for
// the item), POST /items with 201, GET /status/{code} with that code, and
// anything else with the mux's 404. A user query parameter becomes the
// request's user (SetUser), so that one client can act as many actors.
func summaryMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		rampart.ObjectAccess(r.Context(), "item", r.PathValue("id"), "")
		w.Write([]byte("ok"))
	})
	mux.HandleFunc("POST /items", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	mux.HandleFunc("GET /status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.PathValue("code"))
		w.WriteHeader(code)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u := r.URL.Query().Get("user"); u != "" {
			rampart.SetUser(r.Context(), u)
		}
		mux.ServeHTTP(w, r)
	})
}

// hit serves one request to h directly, from the client address remote.
func hit(h http.Handler, method, target, remote string) int {
	req := httptest.NewRequest(method, target, nil)
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

// summaries closes the agent, which ships the last window, and returns the
// request summaries delivered.
func summaries(t *testing.T, agent *rampart.Agent, events *ramparttest.Recorder) []rampart.Event {
	t.Helper()
	if err := agent.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var out []rampart.Event
	for _, ev := range events.Events() {
		if ev.Kind == rampart.KindRequestSummary {
			out = append(out, ev)
		}
	}
	return out
}

type summaryKey struct {
	ip, user, route, method string
	status                  int
}

func keyOf(ev rampart.Event) summaryKey {
	return summaryKey{ev.ActorIP, ev.ActorUser, ev.Route, ev.Method, ev.Status}
}

func TestSummariesCountEveryRequestOncePerKey(t *testing.T) {
	// A window longer than the test: Close ships it, so the test knows
	// when every request has been counted.
	agent, events := ramparttest.NewAgent(t, rampart.Config{SummaryWindow: time.Hour})
	h := agent.Handler(summaryMux())
	want := map[summaryKey]int{}
	n := 0
	send := func(method, target, remote string, key summaryKey) {
		t.Helper()
		if code := hit(h, method, target, remote); code != key.status {
			t.Fatalf("%s %s: %d, want %d", method, target, code, key.status)
		}
		want[key]++
		n++
	}
	for i := range 50 {
		send("GET", "/items/"+strconv.Itoa(i%5), "192.0.2.1:1000", summaryKey{"192.0.2.1", "", "GET /items/{id}", "GET", 200})
		send("GET", "/items/1?user=bob", "192.0.2.1:1000", summaryKey{"192.0.2.1", "bob", "GET /items/{id}", "GET", 200})
		send("POST", "/items", "[2001:db8::1]:443", summaryKey{"2001:db8::1", "", "POST /items", "POST", 201})
		send("GET", "/nothing/"+strconv.Itoa(i), "192.0.2.2:1000", summaryKey{"192.0.2.2", "", "", "GET", 404})
		if i%10 == 0 {
			send("GET", "/status/500", "192.0.2.2:1000", summaryKey{"192.0.2.2", "", "GET /status/{code}", "GET", 500})
		}
	}
	got := summaries(t, agent, events)
	total := 0
	gotKeys := map[summaryKey]int{}
	for _, ev := range got {
		total += ev.Count
		gotKeys[keyOf(ev)] += ev.Count
		if ev.Action != rampart.ActionObserved || ev.Service != "test" || ev.ID == "" || ev.Time.IsZero() {
			t.Errorf("summary %+v: want action observed, the service, an id and a time", keyOf(ev))
		}
	}
	if total != n {
		t.Errorf("summaries count %d requests, want %d", total, n)
	}
	if len(got) != len(want) {
		t.Errorf("%d summaries, want one per key: %d", len(got), len(want))
	}
	for k, c := range want {
		if gotKeys[k] != c {
			t.Errorf("key %+v: counted %d, want %d", k, gotKeys[k], c)
		}
	}
	for _, ev := range got {
		if ev.Route == "GET /items/{id}" && ev.ActorUser == "" {
			if len(ev.Objects) != 5 || ev.ObjectsOmitted != 0 {
				t.Errorf("objects %v (+%d), want the 5 distinct items", ev.Objects, ev.ObjectsOmitted)
			}
		}
	}
	if s := agent.Stats(); s.Summaries != uint64(len(want)) || s.SummaryOverflow != 0 {
		t.Errorf("stats %+v, want %d summaries and no overflow", s, len(want))
	}
}

func TestSummaryObjectsAreBounded(t *testing.T) {
	agent, events := ramparttest.NewAgent(t, rampart.Config{SummaryWindow: time.Hour, SummaryMaxObjects: 4})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /page", func(w http.ResponseWriter, r *http.Request) {
		for i := range 10 {
			rampart.ObjectAccess(r.Context(), "item", strconv.Itoa(i), "")
			rampart.ObjectAccess(r.Context(), "item", strconv.Itoa(i), "") // again: not a new object
		}
	})
	h := agent.Handler(mux)
	hit(h, "GET", "/page", "192.0.2.1:1")
	hit(h, "GET", "/page", "192.0.2.1:1")
	got := summaries(t, agent, events)
	if len(got) != 1 || got[0].Count != 2 {
		t.Fatalf("summaries %+v, want one of 2 requests", got)
	}
	if ev := got[0]; len(ev.Objects) != 4 || ev.ObjectsOmitted != 24 {
		// Each request keeps the 4 first distinct objects and counts
		// the 12 calls for the 6 others (a set of them would be
		// unbounded); the second's 4 are the same as the first's.
		t.Errorf("objects %v, %d omitted; want 4 listed, 24 omitted", ev.Objects, ev.ObjectsOmitted)
	}
	for i, o := range got[0].Objects {
		if o != (rampart.Object{Kind: "item", ID: strconv.Itoa(i)}) {
			t.Errorf("object %d: %+v", i, o)
		}
	}
}

func TestSummaryKeysAreBoundedAndTheRestCountedInAnOverflow(t *testing.T) {
	agent, events := ramparttest.NewAgent(t, rampart.Config{SummaryWindow: time.Hour, SummaryMaxKeys: 5})
	h := agent.Handler(summaryMux())
	const users, each = 8, 3
	for range each {
		for u := range users {
			hit(h, "GET", fmt.Sprintf("/items/1?user=u%d", u), "192.0.2.1:1")
		}
	}
	got := summaries(t, agent, events)
	total, overflow, keyed := 0, 0, 0
	for _, ev := range got {
		total += ev.Count
		if ev.Attrs["overflow"] == "true" {
			overflow += ev.Count
			if ev.ActorIP != "" || ev.ActorUser != "" {
				t.Errorf("the overflow summary names an actor: %+v", keyOf(ev))
			}
			continue
		}
		keyed++
	}
	if total != users*each || keyed != 5 || overflow != (users-5)*each {
		t.Errorf("%d requests counted, %d keyed summaries, %d in the overflow; want %d, 5, %d", total, keyed, overflow, users*each, (users-5)*each)
	}
	if s := agent.Stats(); s.SummaryOverflow != uint64(overflow) || s.Summaries != 6 {
		t.Errorf("stats %+v, want overflow %d, 6 summaries", s, overflow)
	}
}

// With a short window, summaries come from the agent's ticker while the
// traffic goes on; every request is still counted exactly once.
func TestSummariesOfShortWindowsAddUpToTheRequests(t *testing.T) {
	agent, events := ramparttest.NewAgent(t, rampart.Config{SummaryWindow: time.Millisecond})
	h := agent.Handler(summaryMux())
	const n = 2000
	for i := range n {
		hit(h, "GET", "/items/"+strconv.Itoa(i%7), "192.0.2.1:1")
	}
	windows := 0
	total := 0
	for _, ev := range summaries(t, agent, events) {
		total += ev.Count
		windows++
	}
	if total != n {
		t.Errorf("summaries count %d requests, want %d", total, n)
	}
	t.Logf("%d requests in %d summaries", n, windows)
}

func TestSummaryConfigIsValidated(t *testing.T) {
	for _, cfg := range []rampart.Config{
		{Service: "s", SummaryWindow: -time.Second},
		{Service: "s", SummaryMaxKeys: -1},
		{Service: "s", SummaryMaxObjects: -1},
	} {
		if a, err := rampart.New(cfg); err == nil {
			a.Close(context.Background())
			t.Errorf("New(%+v) accepted a negative bound", cfg)
		}
	}
}

// TestSummaryEventsPerSecond shows the cost of summaries per second of
// traffic, by the summarising rule rather than by a clock: one window of
// 10,000 requests per second from 1,000 actors (each reading items and
// posting to a cart) gives one event per actor, route, method and status,
// whatever the number of requests. The events per second are those of the
// window over its length.
func TestSummaryEventsPerSecond(t *testing.T) {
	const (
		rate   = 10000 // requests per second
		actors = 1000
	)
	for _, window := range []time.Duration{time.Second, 5 * time.Second} {
		requests := rate * int(window/time.Second)
		if testing.Short() && window > time.Second {
			continue
		}
		agent, events := ramparttest.NewAgent(t, rampart.Config{SummaryWindow: time.Hour, QueueSize: 4096})
		h := agent.Handler(summaryMux())
		for i := range requests {
			remote := fmt.Sprintf("10.0.%d.%d:5000", (i%actors)/250, (i%actors)%250+1)
			if (i/actors)%10 == 9 { // one round in ten, each actor posts
				hit(h, "POST", "/items", remote)
			} else {
				hit(h, "GET", "/items/"+strconv.Itoa(i%97), remote)
			}
		}
		got := summaries(t, agent, events)
		total := 0
		for _, ev := range got {
			total += ev.Count
		}
		if total != requests || len(got) != 2*actors {
			t.Errorf("window %v: %d summaries counting %d requests, want %d summaries (two keys per actor) counting %d", window, len(got), total, 2*actors, requests)
		}
		t.Logf("window %v: %d req/s from %d actors → %d events per window = %.0f events/s (%.1f%% of the requests)",
			window, rate, actors, len(got), float64(len(got))/window.Seconds(), 100*float64(len(got))/float64(requests))
	}
}

// Requests served at once, windows ending while they run, ObjectAccess
// called from a goroutine of the handler: every request counted once (run
// with -race).
func TestSummariesOfConcurrentRequestsAddUp(t *testing.T) {
	agent, events := ramparttest.NewAgent(t, rampart.Config{SummaryWindow: time.Millisecond, QueueSize: 8192})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			rampart.ObjectAccess(r.Context(), "item", r.PathValue("id"), "")
			rampart.SetUser(r.Context(), "u"+r.PathValue("id"))
		}()
		<-done
	})
	h := agent.Handler(mux)
	const workers, each = 8, 250
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				hit(h, "GET", "/items/"+strconv.Itoa(i%5), "192.0.2."+strconv.Itoa(w+1)+":1")
			}
		})
	}
	wg.Wait()
	total := 0
	for _, ev := range summaries(t, agent, events) {
		total += ev.Count
		if len(ev.Objects) != 1 || "u"+ev.Objects[0].ID != ev.ActorUser {
			t.Errorf("summary of %s: objects %v, want the one item its user read", ev.ActorUser, ev.Objects)
		}
	}
	if total != workers*each {
		t.Errorf("summaries count %d requests, want %d", total, workers*each)
	}
	if d := agent.Stats().Dropped; d != 0 {
		t.Errorf("%d summaries dropped", d)
	}
}
