package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/web"
)

// fill stores n events over the last hour, from 200 actors against 50
// services, and heartbeats of services services.
func fill(tb testing.TB, u *ui, n, services int) {
	tb.Helper()
	ctx := context.Background()
	now := u.clock.Now()
	kinds := []string{"sql_injection", "waf", "path_traversal", "request_summary", "ssrf"}
	for start := 0; start < n; start += store.MaxEventBatch {
		var batch []store.Event
		for i := start; i < min(n, start+store.MaxEventBatch); i++ {
			kind := kinds[i%len(kinds)]
			action := "blocked"
			if kind == "request_summary" {
				action = "observed"
			}
			batch = append(batch, store.Event{ID: fmt.Sprintf("e%06d", i), Time: now.Add(-time.Duration(i) * 300 * time.Millisecond),
				Kind: kind, Action: action, Service: fmt.Sprintf("svc-%03d", i%50), ActorIP: fmt.Sprintf("203.0.113.%d", i%200),
				Data: []byte(fmt.Sprintf(`{"input":{"source":"query","name":"q","value":"' OR %d=%d --"},"detail":"SELECT ⟦x⟧","location":"main.go:%d"}`, i, i, i))})
		}
		if _, err := u.st.AppendEvents(ctx, batch); err != nil {
			tb.Fatal(err)
		}
	}
	for i := range services {
		in := store.Instance{Service: fmt.Sprintf("svc-%03d", i), ID: "i1", Exposed: i%10 == 0,
			Peers: []string{fmt.Sprintf("spiffe://example.org/svc/svc-%03d", (i+1)%services)}}
		if err := u.st.Heartbeat(ctx, in); err != nil {
			tb.Fatal(err)
		}
	}
}

// TestPagesStayBoundedOnALargeDeployment checks that what a page shows and
// weighs does not grow with the deployment: 10,000 events and 1,000
// services give pages of one page of rows and a graph of a bounded number
// of nodes.
func TestPagesStayBoundedOnALargeDeployment(t *testing.T) {
	eachSource(t, func(t *testing.T, start func(testing.TB, func(*web.Config)) *ui) {
		if raceEnabled && strings.HasSuffix(t.Name(), "over_the_store") {
			// The bare store reads the window's events to count them,
			// which the race detector makes take a minute; the control
			// plane's sources count in the database.
			t.Skip("the bare store's aggregates are slow under the race detector; run without -race")
		}
		u := start(t, nil)
		fill(t, u, 10000, 1000)
		c := u.signIn()
		for _, tc := range []struct {
			path     string
			maxRows  int
			maxBytes int
		}{
			{"/ui/", 70, 200 << 10}, // bars, the latest attacks, decisions, services, changes
			{"/ui/events", 51, 200 << 10},
			{"/ui/events?attacks=1&service=svc-007", 51, 200 << 10},
			{"/ui/services", 101, 400 << 10},
			{"/ui/actor?scope=ip&value=203.0.113.9", 60, 200 << 10},
		} {
			resp, body := u.do(c, "GET", tc.path, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %s", tc.path, resp.Status)
			}
			if rows := strings.Count(body, "<tr") + strings.Count(body, "<li"); rows > tc.maxRows+20 {
				t.Errorf("%s: %d rows, want at most about %d", tc.path, rows, tc.maxRows)
			}
			if len(body) > tc.maxBytes {
				t.Errorf("%s: %d bytes, want at most %d", tc.path, len(body), tc.maxBytes)
			}
			t.Logf("%s: %d bytes", tc.path, len(body))
		}
		_, body := u.do(c, "GET", "/ui/services", nil)
		if n := strings.Count(body, `data-node=`); n > 61 {
			t.Errorf("the graph draws %d nodes of 1,000 services", n)
		}
		if !strings.Contains(body, "more services are in the table") {
			t.Error("the graph does not say it left services out")
		}
		// The overview counts every attack of the window.
		_, body = u.do(c, "GET", "/ui/live?window=1h", nil)
		if !strings.Contains(body, `id="stat-attacks">8000<`) {
			i := strings.Index(body, "stat-attacks")
			t.Errorf("the overview does not count 8,000 attacks: %.80s", body[max(0, i):])
		}
		// Paging through a filtered list reaches its end.
		pages, next := 0, "/ui/events?service=svc-007"
		for next != "" && pages < 100 {
			_, body := u.do(c, "GET", next, nil)
			pages++
			next = ""
			if i := strings.Index(body, `class="next" rel="next"`); i >= 0 {
				j := strings.LastIndex(body[:i], `href="`)
				next = strings.ReplaceAll(body[j+len(`href="`):i-2], "&amp;", "&")
				next = "/ui/events" + next
			}
		}
		if pages != 4 { // 200 events of svc-007, 50 a page
			t.Errorf("%d pages of svc-007's 200 events, want 4", pages)
		}
	})
}

func BenchmarkPages10kEvents1kServices(b *testing.B) {
	for _, source := range []struct {
		name  string
		start func(testing.TB, func(*web.Config)) *ui
	}{{"store", startUI}, {"control", startControlUI}, {"control-postgres", startPostgresUI}} {
		b.Run(source.name, func(b *testing.B) { benchmarkPages(b, source.start) })
	}
}

func benchmarkPages(b *testing.B, start func(testing.TB, func(*web.Config)) *ui) {
	u := start(b, nil)
	fill(b, u, 10000, 1000)
	c := u.signIn()
	for _, path := range []string{"/ui/", "/ui/events?attacks=1", "/ui/events?service=svc-007", "/ui/services", "/ui/actor?scope=ip&value=203.0.113.9"} {
		b.Run(strings.NewReplacer("/", "_", "?", "_", "&", "_", "=", "_").Replace(path), func(b *testing.B) {
			for b.Loop() {
				u.clock.Add(2 * time.Second) // past the overview's one-second cache
				resp, _ := u.do(c, "GET", path, nil)
				if resp.StatusCode != 200 {
					b.Fatal(resp.Status)
				}
			}
		})
	}
}
