package rampart_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/sqlite"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// controlPlane starts a real control plane API over SQLite and returns its
// URL, its store and the admin token.
func controlPlane(t *testing.T, wrap func(http.Handler) http.Handler) (string, store.Store, string) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	authority, err := ca.Generate(spiffeid.RequireTrustDomainFromString("rampart.test"), ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	token, hash := control.NewAdminToken()
	h, err := control.New(control.Config{Store: st, CA: authority, AdminTokenHash: hash, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var handler http.Handler = h
	if wrap != nil {
		handler = wrap(h)
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv.URL, st, token
}

func TestEventsReachTheControlPlaneOnceEachEvenWhenRetried(t *testing.T) {
	var failures atomic.Int32
	failures.Store(2) // the control plane is briefly unavailable
	url, st, token := controlPlane(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if failures.Add(-1) >= 0 {
				http.Error(w, `{"error":"overloaded"}`, http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	sink, err := rampart.ControlPlaneSink(rampart.ControlPlaneConfig{URL: url, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	a, err := rampart.New(rampart.Config{Service: "orders", Sinks: []rampart.Sink{sink}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := rampart.WithUntrusted(context.Background(), "job", "x' OR 1=1 --")
	var reported []rampart.Event
	for range 3 {
		var be *rampart.BlockedError
		if err := a.Report(ctx, rampart.Finding{Kind: "sql_injection", Input: rampart.Input{Source: "job", Value: "x' OR 1=1 --"}, Sink: "test"}); !errors.As(err, &be) {
			t.Fatalf("Report = %v", err)
		}
		reported = append(reported, be.Event)
	}
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.Delivered != 3 || st.SinkErrors != 0 {
		t.Fatalf("stats %+v: want 3 delivered after the retries", st)
	}
	// The same batch sent again (a retry after a lost answer) adds nothing.
	if err := sink.WriteEvents(context.Background(), reported); err != nil {
		t.Fatal(err)
	}
	got, err := st.QueryEvents(context.Background(), store.EventFilter{Service: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("control plane holds %d events, want 3", len(got))
	}
	for _, e := range got {
		var ev rampart.Event
		if err := json.Unmarshal(e.Data, &ev); err != nil || ev.Kind != "sql_injection" || ev.Input.Value != "x' OR 1=1 --" || !strings.Contains(ev.Location, "controlsink_test.go:") {
			t.Errorf("stored event %+v (data %s) lost what the agent reported", e, e.Data)
		}
		if e.Kind != "sql_injection" || e.Action != "blocked" {
			t.Errorf("indexed fields %+v", e)
		}
	}
}

func TestARefusedBatchIsAnErrorNotAnEndlessRetry(t *testing.T) {
	// The attempts are counted, not timed: a busy machine makes one attempt
	// slow, but only a retry makes two.
	var attempts atomic.Int32
	url, _, _ := controlPlane(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			attempts.Add(1)
			h.ServeHTTP(w, r)
		})
	})
	sink, err := rampart.ControlPlaneSink(rampart.ControlPlaneConfig{URL: url, Token: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = sink.WriteEvents(ctx, []rampart.Event{{ID: "e1", Time: time.Now(), Kind: "k", Action: rampart.ActionBlocked, Service: "s"}})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("WriteEvents with a wrong token = %v, want the 401", err)
	}
	if n := attempts.Load(); n != 1 {
		t.Errorf("a 401 was sent %d times, want once", n)
	}
	if _, err := rampart.ControlPlaneSink(rampart.ControlPlaneConfig{URL: "ftp://x"}); err == nil || !strings.Contains(err.Error(), "ControlPlaneConfig.URL") {
		t.Errorf("a bad URL gave %v", err)
	}
}
