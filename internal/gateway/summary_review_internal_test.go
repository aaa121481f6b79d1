package gateway

import (
	"fmt"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// A client that varies what it controls of a summary's key (the method is
// its text; a blocked client is still summarised, its 403s included) must
// not fill the window: every other client's requests would land in the
// overflow summary, which names no actor, and detection would not see
// them. Its own requests must stay attributed to it.
func TestOneClientVaryingItsKeysCannotPushOthersIntoTheOverflow(t *testing.T) {
	var c collected
	s := newSummaries(time.Hour, 200, 4, c.ship)
	api := &route{cfg: &Route{Name: "api"}}
	attacker := &exchange{clientIP: netip.MustParseAddr("198.51.100.66"), route: api}
	const flood, others = 1000, 50
	for i := range flood {
		s.summarize(attacker, httptest.NewRequest(fmt.Sprintf("X%04d", i), "/api/x", nil), 403+i%2)
	}
	for i := range others {
		x := &exchange{clientIP: netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), route: api}
		s.summarize(x, httptest.NewRequest("GET", "/api/items/1", nil), 200)
	}
	s.close()
	fromAttacker, fromOthers, folded := 0, 0, 0
	for _, ev := range c.evs {
		switch {
		case ev.Attrs["overflow"] == "true":
			t.Errorf("%d requests in the overflow summary, which names no actor", ev.Count)
		case ev.ActorIP == "198.51.100.66":
			fromAttacker += ev.Count
			if ev.Attrs["folded"] == "true" {
				folded++
				if ev.Status != 400 || ev.Method != "" || ev.Route != "api" {
					t.Errorf("folded summary %+v, want status class 400, route api, no method", ev)
				}
			}
		default:
			fromOthers += ev.Count
		}
	}
	if fromAttacker != flood || fromOthers != others || folded != 1 {
		t.Errorf("summaries attribute %d requests to the attacker (%d folded summaries) and %d to the others; want %d, 1, %d",
			fromAttacker, folded, fromOthers, flood, others)
	}
	if s.overflowed() != 0 {
		t.Errorf("%d requests overflowed", s.overflowed())
	}
}

// The control plane refuses an event whose actor user is over 256 bytes,
// and the whole batch with it (every client's summaries): the user of a
// token whose sub is longer is named by a cut that ends in a hash of the
// whole sub, distinct from any other user's, a victim's whose sub the
// long one starts with included.
func TestAUserWithALongSubDoesNotGetTheWindowRefused(t *testing.T) {
	var c collected
	s := newSummaries(time.Hour, 100, 4, c.ship)
	victim := strings.Repeat("v", 256)
	users := []string{victim, victim + "-attacker", victim + "-other"}
	for _, u := range users {
		s.summarize(&exchange{clientIP: netip.MustParseAddr("192.0.2.1"), user: u}, httptest.NewRequest("GET", "/", nil), 200)
	}
	s.close()
	names := map[string]bool{}
	for _, ev := range c.evs {
		if len(ev.ActorUser) > 256 || !utf8.ValidString(ev.ActorUser) {
			t.Errorf("summary user of %d bytes, valid UTF-8 %v: the control plane refuses it", len(ev.ActorUser), utf8.ValidString(ev.ActorUser))
		}
		names[ev.ActorUser] = true
	}
	if len(names) != 3 || !names[victim] {
		t.Errorf("%d distinct users named (victim's %v), want 3, the victim's as it is", len(names), names[victim])
	}
}

// Scraping does not count static assets, which the gateway tells by the
// path's extension. Servers that take a segment's ";" parameters off
// before routing (Tomcat, Spring, Jetty) serve /users/42;.css as user 42:
// a scraper must not pass its requests for static by such a suffix. An
// asset's own parameters (/app.css;jsessionid=...) keep it static.
func TestAPathParameterDoesNotMakeARequestStatic(t *testing.T) {
	for path, want := range map[string]bool{
		"/users/42;.css": false, "/users/42;x=1.png": false, "/users/42;/.js": false,
		"/app.css;jsessionid=0A1B": true, "/img/a.png;v=2": true,
	} {
		if got := staticPath(path); got != want {
			t.Errorf("staticPath(%q) = %v, want %v", path, got, want)
		}
	}
}

// The session is the hash of whatever session cookie the client sends, on
// an anonymous route too: a client that sends a new cookie with each
// request must not hold a key per request and fill the window either.
func TestOneClientVaryingItsSessionCannotPushOthersIntoTheOverflow(t *testing.T) {
	var c collected
	s := newSummaries(time.Hour, 200, 4, c.ship)
	api := &route{cfg: &Route{Name: "api"}}
	const flood = 1000
	for i := range flood {
		x := &exchange{clientIP: netip.MustParseAddr("198.51.100.66"), session: fmt.Sprintf("%064x", i), route: api}
		s.summarize(x, httptest.NewRequest("GET", "/api/x", nil), 200)
	}
	s.summarize(&exchange{clientIP: netip.MustParseAddr("192.0.2.1"), route: api}, httptest.NewRequest("GET", "/api/x", nil), 200)
	s.close()
	fromAttacker, other := 0, false
	for _, ev := range c.evs {
		switch {
		case ev.Attrs["overflow"] == "true":
			t.Errorf("%d requests in the overflow summary, which names no actor", ev.Count)
		case ev.ActorIP == "198.51.100.66":
			fromAttacker += ev.Count
		case ev.ActorIP == "192.0.2.1":
			other = true
		}
	}
	if fromAttacker != flood || !other {
		t.Errorf("summaries attribute %d requests to the attacker, the other client's summarised %v; want %d, true", fromAttacker, other, flood)
	}
}

// A folded summary keeps the route (a sensitive route's request stays
// visible as such) until the client holds twice the bound of keys; past
// that, its requests of further routes are folded by status class alone,
// so that one client's keys stay bounded however many routes it visits.
func TestAFoldedSummaryKeepsTheRouteWithinItsBound(t *testing.T) {
	var c collected
	s := newSummaries(time.Hour, 10000, 4, c.ship)
	ip := netip.MustParseAddr("198.51.100.66")
	const routes = 200
	for i := range routes {
		rt := &route{cfg: &Route{Name: fmt.Sprintf("r%03d", i)}}
		for m := range 3 {
			s.summarize(&exchange{clientIP: ip, route: rt}, httptest.NewRequest(fmt.Sprintf("M%d", m), "/", nil), 200)
		}
	}
	s.close()
	total, foldedRoutes, bare := 0, 0, 0
	for _, ev := range c.evs {
		total += ev.Count
		if ev.Attrs["folded"] == "true" {
			if ev.Route != "" {
				foldedRoutes++
			} else {
				bare += ev.Count
			}
		}
	}
	if total != routes*3 || len(c.evs) > 2*maxClientKeys+10 || foldedRoutes == 0 || bare == 0 {
		t.Errorf("%d requests in %d summaries (%d folded with their route, %d requests folded without); want %d in at most %d, both kinds of fold",
			total, len(c.evs), foldedRoutes, bare, routes*3, 2*maxClientKeys+10)
	}
}
