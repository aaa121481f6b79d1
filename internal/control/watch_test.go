package control_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
)

// TestAWatcherIsWokenByANewDecision: the watch asks to wait a minute, so
// that its answer holding the decision proves the decision woke it; how
// soon is logged (a figure of BENCHMARKS.md), not asserted.
func TestAWatcherIsWokenByANewDecision(t *testing.T) {
	e := newEnv(t)
	start := decode[control.WatchResult](t, e.do(t, "GET", "/v1/watch?timeout=0s", nil), http.StatusOK)

	type result struct {
		w    control.WatchResult
		at   time.Time
		resp response
	}
	done := make(chan result, 1)
	go func() { // no t.Fatal here: only the test's goroutine may call it
		var res result
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/watch?since=%d&timeout=1m", e.url, start.Revision), nil)
		req.Header.Set("Authorization", "Bearer "+e.admin)
		resp, err := http.DefaultClient.Do(req)
		res.at = time.Now()
		if err != nil {
			res.resp.body = []byte(err.Error())
			done <- res
			return
		}
		defer resp.Body.Close()
		res.resp.status = resp.StatusCode
		res.resp.body, _ = io.ReadAll(resp.Body)
		json.Unmarshal(res.resp.body, &res.w)
		done <- res
	}()
	// Give the watcher time to be waiting (if it is not yet, the change is
	// returned at once, and the test passes without proving the wake); it
	// must not return before the decision exists.
	select {
	case r := <-done:
		t.Fatalf("watch returned before any change: %d %s", r.resp.status, r.resp.body)
	case <-time.After(300 * time.Millisecond):
	}
	created := time.Now()
	d := decode[store.Decision](t, e.do(t, "POST", "/v1/decisions", control.DecisionRequest{
		Scope: store.ScopeIP, Value: "198.51.100.9", Action: store.ActionReadOnly,
	}), http.StatusCreated)

	select {
	case r := <-done:
		latency := r.at.Sub(created)
		t.Logf("decision propagation latency through the watch long poll: %v", latency)
		if r.resp.status != http.StatusOK {
			t.Fatalf("watch: %d %s", r.resp.status, r.resp.body)
		}
		if len(r.w.Changes) != 1 || r.w.Changes[0].Kind != store.ChangeDecision || r.w.Changes[0].Key != d.ID || r.w.Revision != d.Revision {
			t.Errorf("watch returned %+v, want the creation of %s at revision %d", r.w, d.ID, d.Revision)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("watcher not answered within 2 minutes")
	}
}

func TestAWatchWithoutChangesTimesOutEmpty(t *testing.T) {
	e := newEnv(t)
	start := decode[control.WatchResult](t, e.do(t, "GET", "/v1/watch?timeout=0s", nil), http.StatusOK)
	begin := time.Now()
	w := decode[control.WatchResult](t, e.do(t, "GET", fmt.Sprintf("/v1/watch?since=%d&timeout=200ms", start.Revision), nil), http.StatusOK)
	if len(w.Changes) != 0 || w.Revision != start.Revision {
		t.Errorf("got %+v, want no changes at revision %d", w, start.Revision)
	}
	// Not before the 200 ms it asked for, and long before the control
	// plane's own 25 s: the watcher's timeout was used. A busy machine only
	// makes it later.
	if d := time.Since(begin); d < 200*time.Millisecond || d >= control.DefaultWatchTimeout {
		t.Errorf("returned after %v, want after 200ms (the asked timeout), not %v", d, control.DefaultWatchTimeout)
	}
	for _, q := range []string{"since=-1", "since=x", "timeout=2m", "timeout=soon"} {
		wantError(t, e.do(t, "GET", "/v1/watch?"+q, nil), http.StatusBadRequest, "invalid")
	}
}

func TestAWatcherBehindGetsTheChangesAtOnce(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := range 3 {
		d := decode[store.Decision](t, e.do(t, "POST", "/v1/decisions", control.DecisionRequest{
			Scope: store.ScopeUser, Value: fmt.Sprint("user-", i), Action: store.ActionBlock,
		}), http.StatusCreated)
		ids = append(ids, d.ID)
	}
	w := decode[control.WatchResult](t, e.do(t, "GET", "/v1/watch?since=0", nil), http.StatusOK)
	var got []string
	for _, c := range w.Changes {
		if c.Kind == store.ChangeDecision {
			got = append(got, c.Key)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Errorf("decision changes %v, want %v", got, ids)
	}
}

func TestEndWatchesReleasesLongPolls(t *testing.T) {
	e := newEnv(t)
	h := e.h.(*control.Handler)
	done := make(chan response, 1)
	go func() {
		req, _ := http.NewRequest("GET", e.url+"/v1/watch?timeout=30s", nil)
		req.Header.Set("Authorization", "Bearer "+e.admin)
		var r response
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			r.status = resp.StatusCode
			r.body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		done <- r
	}()
	time.Sleep(200 * time.Millisecond) // the watch is waiting (if not, it finds the handler ending and returns: the test passes as well)
	h.EndWatches()
	select {
	case r := <-done:
		w := decode[control.WatchResult](t, r, http.StatusOK)
		if len(w.Changes) != 0 {
			t.Errorf("changes %+v, want none", w.Changes)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a long poll outlived EndWatches by 20 s (it asked for 30 s)")
	}
}
