package control_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/postgres"
	"github.com/rampartsec/rampart/internal/store/sqlite"
)

// The time from the POST of an attack's decisive event to its decision
// on a watch client (what a gateway waits for), over 50 attackers:
// reported, not asserted (go test -run DetectionLatency -v
// ./internal/control/).
func TestDetectionLatency(t *testing.T) {
	t.Run("sqlite, one control plane", func(t *testing.T) {
		e := sqliteDetecting(t, control.DetectConfig{})
		measureLatency(t, e, e, 50)
	})
	t.Run("postgres, posted to the replica that does not lead, watched there", func(t *testing.T) {
		dsn := postgresDSN(t)
		c := newCA(t)
		admin, hash := control.NewAdminToken()
		var rs []*detecting
		for range 2 {
			s, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn})
			if err != nil {
				t.Fatal(err)
			}
			rs = append(rs, startDetecting(t, s, c, admin, hash, control.DetectConfig{}))
		}
		var follower *detecting
		eventually(t, "a leader", func() bool {
			for i, r := range rs {
				if r.det.Stats().Leading {
					follower = rs[1-i]
					return true
				}
			}
			return false
		})
		measureLatency(t, follower, follower, 50)
	})
}

func measureLatency(t *testing.T, poster, watcher *detecting, runs int) {
	var lat []time.Duration
	for i := range runs {
		start := decode[control.WatchResult](t, watcher.do(t, "GET", "/v1/watch?since=latest", nil), http.StatusOK)
		got := make(chan error, 1)
		var at time.Time
		go func() {
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/watch?since=%d&timeout=30s", watcher.url, start.Revision), nil)
			req.Header.Set("Authorization", "Bearer "+watcher.admin)
			resp, err := http.DefaultClient.Do(req)
			at = time.Now()
			if err != nil {
				got <- err
				return
			}
			defer resp.Body.Close()
			var w control.WatchResult
			body, _ := io.ReadAll(resp.Body)
			if err := json.Unmarshal(body, &w); err != nil {
				got <- err
				return
			}
			if !slices.ContainsFunc(w.Changes, func(c store.Change) bool { return c.Kind == store.ChangeDecision }) {
				got <- fmt.Errorf("watch returned %s, want a decision", body)
				return
			}
			got <- nil
		}()
		ev := attack("sql_injection", fmt.Sprintf("192.0.2.%d", i+1))
		posted := time.Now()
		decode[control.EventBatchResult](t, poster.do(t, "POST", "/v1/events", batchOf(ev)), http.StatusOK)
		if err := <-got; err != nil {
			t.Fatal(err)
		}
		lat = append(lat, at.Sub(posted))
	}
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	t.Logf("POST of the decisive event → decision on the watch, %d runs: p50 %v, p99 %v, max %v",
		len(lat), p(0.50), p(0.99), lat[len(lat)-1])
}

// BenchmarkDetectorBacklog measures how fast a leader catches up on stored
// events: read from the event log, converted, run through the built-in
// scenarios, the cursor advanced (go test -run '^$' -bench DetectorBacklog
// ./internal/control/). The events are ordinary requests of 1,000 actors,
// which the scenarios count without alerting.
func BenchmarkDetectorBacklog(b *testing.B) {
	const n = 50_000
	for b.Loop() {
		b.StopTimer()
		s, err := sqlite.Open(context.Background(), sqlite.Config{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		at := time.Now().Add(-time.Minute).UTC()
		batch := make([]store.Event, 0, store.MaxEventBatch)
		for i := range n {
			batch = append(batch, store.Event{ID: fmt.Sprintf("req-%d", i), Time: at.Add(time.Duration(i) * time.Microsecond),
				Kind: "request", Service: "shop", Route: "GET /items/{id}", ActorIP: fmt.Sprintf("10.0.%d.%d", i/250%4, i%250),
				ActorVerified: true, Data: []byte(`{"method":"GET","path":"/items/7","status":200}`)})
			if len(batch) == cap(batch) {
				if _, err := s.AppendEvents(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		det, err := control.NewDetector(s, control.DetectConfig{})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.StartTimer()
		go func() { done <- det.Run(ctx) }()
		for det.Stats().Events < n {
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		if st := det.Stats(); st.Alerts != 0 {
			b.Fatalf("%d alerts on ordinary requests", st.Alerts)
		}
		cancel()
		<-done
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
