package rampart_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/controltest"
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
	sink, err := rampart.NewControlSink(rampart.ControlPlaneConfig{URL: url, Token: token, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close(context.Background()) })
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
	ctx60, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := sink.Flush(ctx60); err != nil {
		t.Fatal(err)
	}
	if st := sink.Stats(); st.Delivered != 6 || st.Failures != 2 || st.Undelivered() != 0 {
		t.Fatalf("sink stats %+v: want 6 delivered (3 twice) after 2 failures", st)
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

// syncLog is a log destination that tests read while the sink writes.
type syncLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), s)
}

// numbered returns n events of service, their times one millisecond apart
// in order, so that the store's (time, id) order is the order they were
// written in.
func numbered(service string, from, n int, t0 time.Time) []rampart.Event {
	evs := make([]rampart.Event, n)
	for i := range evs {
		evs[i] = rampart.Event{ID: fmt.Sprintf("%s-%06d", service, from+i), Time: t0.Add(time.Duration(from+i) * time.Millisecond),
			Kind: rampart.KindSQLInjection, Action: rampart.ActionBlocked, Service: service,
			Input: rampart.Input{Source: "query", Value: strings.Repeat("' OR 1=1 -- ", 20)}, Sink: "test"}
	}
	return evs
}

// storedIDs returns the ids of service's events in the control plane, in
// the store's order, and the events of kind events_dropped apart.
func storedIDs(t *testing.T, cp *controltest.ControlPlane, service string) (ids []string, drops []store.Event) {
	t.Helper()
	cursor := ""
	for {
		var page control.EventPage
		cp.MustDo(t, http.MethodGet, "/v1/events?since=2000-01-01T00:00:00Z&limit=1000&service="+service+cursor, nil, http.StatusOK, &page)
		for _, e := range page.Events {
			if e.Kind == string(rampart.KindEventsDropped) {
				drops = append(drops, e)
				continue
			}
			ids = append(ids, e.ID)
		}
		if page.Next == "" {
			return ids, drops
		}
		cursor = "&cursor=" + url.QueryEscape(page.Next)
	}
}

func adminSink(t *testing.T, cp *controltest.ControlPlane, cfg rampart.ControlPlaneConfig) *rampart.ControlSink {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cp.ClientTLS()
	cfg.URL, cfg.Token, cfg.Client = cp.URL, cp.AdminToken, &http.Client{Transport: tr, Timeout: 10 * time.Second}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	sink, err := rampart.NewControlSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sink.Close(ctx)
	})
	return sink
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 60 s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func flush(t *testing.T, sink *rampart.ControlSink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := sink.Flush(ctx); err != nil {
		t.Fatalf("%v (stats %+v)", err, sink.Stats())
	}
}

func wantIDs(t *testing.T, got []string, service string, from, to int) {
	t.Helper()
	if len(got) != to-from {
		t.Fatalf("the control plane holds %d events of %s, want %d", len(got), service, to-from)
	}
	for i, id := range got {
		if want := fmt.Sprintf("%s-%06d", service, from+i); id != want {
			t.Fatalf("event %d is %s, want %s (in the order written)", i, id, want)
		}
	}
}

// The issue: events written while the control plane was away were given
// up after ten seconds of retries. They now wait in the spool for as long
// as it has room, however many attempts fail.
func TestEventsWaitOutAnOutageAndArriveInOrderWithTheirIDs(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	var logs syncLog
	sink := adminSink(t, cp, rampart.ControlPlaneConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	t0 := time.Now().Add(-time.Minute)
	if err := sink.WriteEvents(t.Context(), numbered("orders", 0, 10, t0)); err != nil {
		t.Fatal(err)
	}
	flush(t, sink)
	cp.Stop()
	for i := 10; i < 300; i += 29 {
		if err := sink.WriteEvents(t.Context(), numbered("orders", i, min(29, 300-i), t0)); err != nil {
			t.Fatalf("WriteEvents while the control plane is away: %v", err)
		}
	}
	// Far more failed attempts than the old ten seconds allowed.
	waitFor(t, "6 failed attempts", func() bool { return sink.Stats().Failures >= 6 })
	if st := sink.Stats(); st.Spooled != 290 || st.Undelivered() != 0 {
		t.Fatalf("stats during the outage %+v: want the 290 events waiting, none lost", st)
	}
	cp.Restart(t)
	flush(t, sink)
	ids, drops := storedIDs(t, cp, "orders")
	wantIDs(t, ids, "orders", 0, 300)
	st := sink.Stats()
	if st.Delivered != 300 || st.Undelivered() != 0 || st.Spooled != 0 || len(drops) != 0 {
		t.Errorf("stats %+v, %d drop reports: want 300 delivered, nothing lost", st, len(drops))
	}
	if n := logs.count("cannot deliver events"); n != 1 {
		t.Errorf("the outage was logged %d times, want once", n)
	}
	if n := logs.count("takes events again"); n != 1 {
		t.Errorf("the end of the outage was logged %d times, want once", n)
	}
}

func TestTheNextSinkOnASpoolDeliversWhatTheLastOneLeft(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	dir := filepath.Join(t.TempDir(), "spool")
	cp.Stop()
	t0 := time.Now().Add(-time.Minute)
	first := adminSink(t, cp, rampart.ControlPlaneConfig{SpoolDir: dir})
	for i := 0; i < 500; i += 50 {
		if err := first.WriteEvents(t.Context(), numbered("billing", i, 50, t0)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := first.Close(ctx); err == nil {
		t.Fatal("Close delivered to a control plane that is away")
	}
	if st := first.Stats(); st.Spooled != 500 || st.Lost != 0 {
		t.Fatalf("stats at Close %+v: want the 500 kept in the spool", st)
	}
	cp.Restart(t)
	second := adminSink(t, cp, rampart.ControlPlaneConfig{SpoolDir: dir})
	if err := second.WriteEvents(t.Context(), numbered("billing", 500, 10, t0)); err != nil {
		t.Fatal(err)
	}
	flush(t, second)
	ids, _ := storedIDs(t, cp, "billing")
	wantIDs(t, ids, "billing", 0, 510)
	if st := second.Stats(); st.Delivered != 510 || st.Undelivered() != 0 {
		t.Errorf("stats of the second sink %+v: want all 510 delivered", st)
	}
}

// The counters never lie: every event written is delivered or counted as
// dropped, and the drops reach the control plane in an events_dropped event.
func TestAFullSpoolDropsTheOldestCountsThemAndReportsThem(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	var logs syncLog
	sink := adminSink(t, cp, rampart.ControlPlaneConfig{SpoolDir: filepath.Join(t.TempDir(), "spool"), SpoolMaxBytes: 64 << 10,
		Service: "search", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	cp.Stop()
	t0 := time.Now().Add(-time.Minute)
	const n = 2000
	for i := 0; i < n; i += 40 {
		if err := sink.WriteEvents(t.Context(), numbered("search", i, 40, t0)); err != nil {
			t.Fatal(err)
		}
	}
	st := sink.Stats()
	if st.Dropped == 0 || st.SpoolBytes > 64<<10 || uint64(st.Spooled)+st.Dropped != n {
		t.Fatalf("stats %+v: want drops, at most 64 KiB spooled, spooled + dropped = %d", st, n)
	}
	if c := logs.count("dropping the oldest events"); c != 1 {
		t.Errorf("the drops were logged %d times, want once", c)
	}
	cp.Restart(t)
	flush(t, sink)
	waitFor(t, "the drop report", func() bool { return sink.Stats().DropReports == 1 })
	final := sink.Stats()
	ids, drops := storedIDs(t, cp, "search")
	wantIDs(t, ids, "search", n-int(final.Delivered), n) // the newest
	if final.Delivered+final.Dropped != n || final.Undelivered() != final.Dropped {
		t.Fatalf("final stats %+v: delivered + dropped != %d written", final, n)
	}
	if len(drops) != 1 || !strings.Contains(string(drops[0].Data), fmt.Sprintf(`"count":%d`, final.Dropped)) {
		t.Fatalf("events_dropped events %+v, want one counting %d", drops, final.Dropped)
	}
}

// A batch the control plane refuses as invalid costs only its invalid
// events; a refusal that a fix can end (401) keeps the events until then.
func TestRefusalsDropOnlyInvalidEventsAndKeepTheRest(t *testing.T) {
	var unauthorized atomic.Int32
	unauthorized.Store(3)
	url, st, token := controlPlane(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if unauthorized.Add(-1) >= 0 {
				http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	sink, err := rampart.NewControlSink(rampart.ControlPlaneConfig{URL: url, Token: token, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close(t.Context())
	evs := numbered("cart", 0, 5, time.Now().Add(-time.Minute))
	evs[2].Kind = "" // the control plane requires a kind
	if err := sink.WriteEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	flush(t, sink)
	got, err := st.QueryEvents(t.Context(), store.EventFilter{Service: "cart"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("the control plane holds %d events, want the 4 valid ones", len(got))
	}
	if s := sink.Stats(); s.Delivered != 4 || s.Rejected != 1 || s.Failures != 3 || s.Undelivered() != 1 {
		t.Errorf("stats %+v: want 4 delivered, 1 rejected, after 3 refusals retried", s)
	}
	if _, err := rampart.NewControlSink(rampart.ControlPlaneConfig{URL: "ftp://x"}); err == nil || !strings.Contains(err.Error(), "ControlPlaneConfig.URL") {
		t.Errorf("a bad URL gave %v", err)
	}
	if _, err := rampart.NewControlSink(rampart.ControlPlaneConfig{URL: url, SpoolMaxBytes: 1000}); err == nil || !strings.Contains(err.Error(), "SpoolMaxBytes") {
		t.Errorf("a 1000-byte spool gave %v", err)
	}
}

func TestAMemorySpoolCountsWhatItLosesAtClose(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	cp.Stop()
	var logs syncLog
	sink := adminSink(t, cp, rampart.ControlPlaneConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err := sink.WriteEvents(t.Context(), numbered("tmp", 0, 7, time.Now())); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	sink.Close(ctx)
	if st := sink.Stats(); st.Lost != 7 || st.Undelivered() != 7 {
		t.Errorf("stats after Close %+v: want the 7 counted as lost", st)
	}
	if logs.count("events not delivered are lost") != 1 {
		t.Errorf("the loss was not logged:\n%s", logs.buf.String())
	}
	if err := sink.WriteEvents(t.Context(), numbered("tmp", 7, 2, time.Now())); err == nil || sink.Stats().Lost != 9 {
		t.Errorf("WriteEvents after Close = %v, stats %+v: want an error and 2 more lost", err, sink.Stats())
	}
}
