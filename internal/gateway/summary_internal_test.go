package gateway

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
)

// collected is a ship function that keeps what it is given.
type collected struct {
	mu  sync.Mutex
	evs []rampart.Event
}

func (c *collected) ship(ev rampart.Event, _ <-chan time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evs = append(c.evs, ev)
	return true
}

func TestGatewaySummariesCountEveryRequestWithinTheirBounds(t *testing.T) {
	var c collected
	// A window longer than the test: close reports it.
	s := newSummaries(time.Hour, 4, 4, c.ship)
	api := &route{cfg: &Route{Name: "api"}}
	alice := &exchange{clientIP: netip.MustParseAddr("192.0.2.7"), user: "alice", session: "5e5e", route: api}
	n := 0
	send := func(x *exchange, method, path string, status int) {
		s.summarize(x, httptest.NewRequest(method, path, nil), status)
		n++
	}
	for i := range 10 {
		send(alice, "GET", "/api/items/"+strconv.Itoa(i), 0) // 0: nothing written, a 200
		send(alice, "GET", "/api/items/"+strconv.Itoa(i%2), 200)
		send(alice, "GET", "/api/"+strings.Repeat("a", 300), 404)
	}
	send(alice, "GET", "/api/app.JS", 200)                          // a static asset: a key of its own
	anon := &exchange{clientIP: netip.MustParseAddr("2001:db8::1")} // no route matched
	send(anon, "GET", "/x", 404)
	send(anon, "DELETE", "/x", 404) // a fifth key: past the bound of 4
	send(anon, "DELETE", "/y", 404)
	s.close()

	total := 0
	byKey := map[string]rampart.Event{}
	for _, ev := range c.evs {
		if ev.Kind != rampart.KindRequestSummary || ev.Action != rampart.ActionObserved {
			t.Errorf("event %s/%s, want request_summary/observed", ev.Kind, ev.Action)
		}
		total += ev.Count
		byKey[ev.ActorIP+" "+ev.Method+" "+ev.Route+" "+strconv.Itoa(ev.Status)+" "+ev.Attrs["overflow"]+ev.Attrs["static"]] = ev
	}
	if total != n {
		t.Errorf("summaries count %d requests, want %d", total, n)
	}
	if len(c.evs) != 5 {
		t.Errorf("%d summaries, want 4 keys and the overflow", len(c.evs))
	}
	if st := byKey["192.0.2.7 GET api 200 true"]; st.Count != 1 || len(st.Paths) != 1 || st.Paths[0] != "/api/app.JS" {
		t.Errorf("static summary %+v, want the one request for app.JS, apart", st)
	}
	ok := byKey["192.0.2.7 GET api 200 "]
	if ok.Count != 20 || ok.ActorUser != "alice" || ok.SessionHash != "5e5e" {
		t.Errorf("alice's 200s: %+v", ok)
	}
	if len(ok.Paths) != 4 || ok.PathsOmitted != 6 {
		// ids 0-9 and 0-1 again: 10 distinct, 4 listed, 6 more counted.
		t.Errorf("paths %v, %d omitted; want 4 listed and 6 omitted", ok.Paths, ok.PathsOmitted)
	}
	if long := byKey["192.0.2.7 GET api 404 "]; long.Count != 10 || len(long.Paths) != 0 || long.PathsOmitted != 10 {
		t.Errorf("long paths: %+v, want counted, not listed", long)
	}
	if over := byKey["   0 true"]; over.Count != 2 || s.overflowed() != 2 {
		t.Errorf("overflow summary %+v (stats %d), want the 2 requests of the fifth key", over, s.overflowed())
	}
}

func TestGatewaySummariesOfANilGatewayDoNothing(t *testing.T) {
	var s *summaries
	s.summarize(&exchange{}, httptest.NewRequest("GET", "/", nil), 200)
	s.close()
	if s.overflowed() != 0 {
		t.Error("a nil summaries overflowed")
	}
}

// BenchmarkGatewaySummarize is the gateway's cost per request of its
// request summaries, over 1,000 clients (the window holds 1,000 keys).
//
//	go test -run '^$' -bench GatewaySummarize -benchmem ./internal/gateway/
func BenchmarkGatewaySummarize(b *testing.B) {
	s := newSummaries(time.Second, defaultSummaryMaxKeys, defaultSummaryMaxPaths, func(rampart.Event, <-chan time.Time) bool { return true })
	defer s.close()
	api := &route{cfg: &Route{Name: "api"}}
	xs := make([]*exchange, 1000)
	reqs := make([]*http.Request, len(xs))
	for i := range xs {
		xs[i] = &exchange{clientIP: netip.AddrFrom4([4]byte{10, 0, byte(i / 250), byte(i%250 + 1)}), route: api}
		reqs[i] = httptest.NewRequest("GET", "/api/items/"+strconv.Itoa(i%97), nil)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.summarize(xs[i%len(xs)], reqs[i%len(xs)], 200)
		i++
	}
}

func TestStaticPathsAreTheAssetsAPageLoads(t *testing.T) {
	for path, want := range map[string]bool{
		"/app.js": true, "/img/logo.PNG": true, "/fonts/a.woff2": true, "/favicon.ico": true,
		"/api/users/7": false, "/v1.2/users": false, "/report.pdf": false, "/": false, "/x.js/y": false,
	} {
		if got := staticPath(path); got != want {
			t.Errorf("staticPath(%q) = %v, want %v", path, got, want)
		}
	}
}
