package controlsync_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/controlsync"
)

// TestAResetReloadsEverySource serves a watch API that answers a reset to
// the first watch, as the control plane does to a watcher behind the
// changes it keeps, and checks that every source loads again, whatever
// its kinds, and that the watch goes on from the reset's revision.
func TestAResetReloadsEverySource(t *testing.T) {
	var mu sync.Mutex
	var sinces []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/watch" {
			http.NotFound(w, r)
			return
		}
		since := r.URL.Query().Get("since")
		mu.Lock()
		sinces = append(sinces, since)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch since {
		case "latest":
			fmt.Fprint(w, `{"changes":[],"revision":5}`)
		case "5":
			fmt.Fprint(w, `{"changes":[{"revision":9,"kind":"reset","op":"","key":""}],"revision":9}`)
		default: // nothing new: a long poll that times out
			select {
			case <-r.Context().Done():
			case <-time.After(50 * time.Millisecond):
			}
			fmt.Fprintf(w, `{"changes":[],"revision":%s}`, since)
		}
	}))
	defer srv.Close()
	client, err := controlsync.NewClient(srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	var decisions, policy atomic.Int32
	load := func(n *atomic.Int32) func(context.Context, *controlsync.Client) error {
		return func(context.Context, *controlsync.Client) error { n.Add(1); return nil }
	}
	s := controlsync.New(controlsync.Config{Client: client, WatchTimeout: time.Second, Sources: []controlsync.Source{
		{Name: "decisions", Kinds: []string{"decision"}, Load: load(&decisions)},
		{Name: "policy", Kinds: []string{"policy"}, Load: load(&policy)},
	}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()

	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		watchedOn := len(sinces) >= 3 && sinces[2] == "9"
		got := fmt.Sprint(sinces)
		mu.Unlock()
		if watchedOn && decisions.Load() == 2 && policy.Load() == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("loads: decisions %d, policy %d, want 2 each (at start and after the reset); watches since %s, want latest 5 9…",
				decisions.Load(), policy.Load(), got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
