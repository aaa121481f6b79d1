// Package ramparttest lets the tests of a service protected by Rampart see
// the security events its agent reports, as net/http/httptest lets them see
// what a handler answers. NewAgent starts an agent whose events go to a
// Recorder; the Recorder waits for the events a test expects; a Want says
// what the test expects of one, and its Diff says how an event differs.
//
// A test of a guarded route (the package's example shows searchMux):
//
//	func TestSearchRefusesAnInjection(t *testing.T) {
//		agent, events := ramparttest.NewAgent(t, rampart.Config{})
//		mux, err := searchMux(agent) // the service's routes, guarded by agent
//		if err != nil {
//			t.Fatal(err)
//		}
//		srv := httptest.NewServer(agent.Handler(mux))
//		defer srv.Close()
//		resp, err := http.Get(srv.URL + "/search?q=" + url.QueryEscape("x' OR 1=1--"))
//		if err != nil {
//			t.Fatal(err)
//		}
//		resp.Body.Close()
//		if resp.StatusCode != http.StatusForbidden {
//			t.Errorf("status %d, want 403", resp.StatusCode)
//		}
//		want := ramparttest.Want{
//			Kind:   rampart.KindSQLInjection,
//			Action: rampart.ActionBlocked,
//			Input:  rampart.Input{Source: rampart.SourceQuery, Name: "q"},
//		}
//		if d := want.Diff(events.Next(t)); d != "" {
//			t.Error(d)
//		}
//	}
//
// The agent delivers events from a goroutine of its own, after the guarded
// call has returned, so a test never reads them at once: Recorder.Next and
// Recorder.Wait wait for them, up to a deadline (30 seconds) long enough
// never to fail a correct test on a loaded machine, and a failing one lists
// what was recorded.
package ramparttest

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
)

// closeTimeout bounds the Close of NewAgent's cleanup: sinks have 10
// seconds per batch, so a longer wait means one of them is stuck.
const closeTimeout = 30 * time.Second

// NewAgent starts an agent for the test t and returns it with the Recorder
// of its events. It fills in what a test rarely cares about: Service is
// "test" when empty and a nil Logger discards the agent's own messages. The
// Recorder is added to cfg.Sinks, so a test can still give sinks of its own.
// A Config that rampart.New refuses fails the test. The agent is closed when
// the test ends, which delivers the events still queued.
func NewAgent(t testing.TB, cfg rampart.Config) (*rampart.Agent, *Recorder) {
	t.Helper()
	if cfg.Service == "" {
		cfg.Service = "test"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	rec := &Recorder{}
	cfg.Sinks = append(slices.Clip(cfg.Sinks), rec)
	a, err := rampart.New(cfg)
	if err != nil {
		t.Fatalf("ramparttest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if err := a.Close(ctx); err != nil {
			t.Errorf("ramparttest: %v", err)
		}
	})
	return a, rec
}
