package control

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/detect"
	"github.com/rampartsec/rampart/internal/store"
)

// stored is ev as the control plane stores what the SDK's control sink or
// a gateway posts: the indexed fields, and the event itself as Data.
func stored(t *testing.T, ev rampart.Event, verified bool) store.Event {
	t.Helper()
	data, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return store.Event{ID: ev.ID, Time: ev.Time, Kind: string(ev.Kind), Action: string(ev.Action), Service: ev.Service,
		Route: ev.Route, ActorIP: ev.ActorIP, ActorUser: ev.ActorUser, SessionHash: ev.SessionHash,
		ActorVerified: verified, Data: data}
}

func TestAGatewaySummaryIsOneRequestEventPerDistinctPathWithItsCountShared(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	sum := rampart.Event{ID: "s-1", Time: at, Kind: rampart.KindRequestSummary, Action: rampart.ActionObserved,
		Service: "gateway", Route: "shop", Method: "GET", Status: 404, Count: 10, ActorIP: "203.0.113.5",
		Paths: []string{"/a", "/b", "/a", "", "/c"}, PathsOmitted: 2}
	got := AppendDetectEvents(nil, stored(t, sum, true))
	if len(got) != 3 {
		t.Fatalf("%d events, want one per distinct path: %+v", len(got), got)
	}
	total := 0
	for i, ev := range got {
		if ev.Kind != detect.KindRequest || ev.ID != "s-1" || ev.Status != 404 || ev.Method != "GET" ||
			ev.Actor.IP != "203.0.113.5" || !ev.ActorVerified || ev.Path != []string{"/a", "/b", "/c"}[i] {
			t.Errorf("event %d = %+v", i, ev)
		}
		total += ev.Count
	}
	if total != 10 || got[1].Count != 1 || got[2].Count != 1 {
		t.Errorf("counts %d, %d, %d: want the summary's 10 shared, one for each path after the first",
			got[0].Count, got[1].Count, got[2].Count)
	}

	// A summary that lists more paths than requests is read as its Count of them.
	sum.Count, sum.Paths = 2, []string{"/a", "/b", "/c"}
	if got := AppendDetectEvents(nil, stored(t, sum, true)); len(got) != 2 || got[0].Count+got[1].Count != 2 {
		t.Errorf("2 requests over 3 paths read as %+v", got)
	}
	// The SDK's summary lists no paths: one event, its Count.
	sdk := rampart.Event{ID: "s-2", Time: at, Kind: rampart.KindRequestSummary, Action: rampart.ActionObserved,
		Service: "shop", Route: "GET /orders/{id}", Method: "GET", Status: 200, Count: 7, ActorIP: "203.0.113.5",
		Objects: []rampart.Object{{Kind: "order", ID: "1"}}}
	if got := AppendDetectEvents(nil, stored(t, sdk, true)); len(got) != 1 || got[0].Kind != detect.KindRequest ||
		got[0].Count != 7 || got[0].Route != "GET /orders/{id}" {
		t.Errorf("the SDK's summary read as %+v", got)
	}
	// Paths are bounded, whatever a poster lists.
	many := make([]string, 1000)
	for i := range many {
		many[i] = fmt.Sprintf("/p%d", i)
	}
	sum.Count, sum.Paths = 5000, many
	if got := AppendDetectEvents(nil, stored(t, sum, true)); len(got) != MaxSummaryPaths {
		t.Errorf("1000 paths read as %d events, want %d", len(got), MaxSummaryPaths)
	}
}

// run feeds the built-in scenarios the stored events and returns the
// alerts of scenario.
func run(t *testing.T, scenario string, evs []store.Event) []detect.Alert {
	t.Helper()
	eng, err := detect.New(detect.Config{Scenarios: detect.Builtin()})
	if err != nil {
		t.Fatal(err)
	}
	var in []detect.Event
	for _, e := range evs {
		in = AppendDetectEvents(in, e)
	}
	var out []detect.Alert
	for _, a := range eng.ProcessBatch(nil, in) {
		if a.Scenario == scenario {
			out = append(out, a)
		}
	}
	return out
}

func TestSummariesCountEachRequestForRatesAndEachPathOnceForDistinctPaths(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	summary := func(id string, count, status int, paths []string, attrs map[string]string) store.Event {
		return stored(t, rampart.Event{ID: id, Time: at, Kind: rampart.KindRequestSummary, Action: rampart.ActionObserved,
			Service: "gateway", Route: "shop", Method: "GET", Status: status, Count: count, ActorIP: "203.0.113.5",
			Paths: paths, Attrs: attrs}, true)
	}
	paths := func(prefix string, n int) []string {
		var ps []string
		for i := range n {
			ps = append(ps, fmt.Sprintf("/%s/%d", prefix, i))
		}
		return ps
	}

	// Scraping counts requests: 1,300 in one summary of 16 paths is over
	// the 1,200, though it is 16 events.
	if a := run(t, "scraping", []store.Event{summary("s-1", 1300, 200, paths("p", 16), nil)}); len(a) != 1 || a[0].Count <= 1200 {
		t.Errorf("scraping alerts %+v, want one counting over 1,200 requests", a)
	}
	if a := run(t, "scraping", []store.Event{summary("s-1", 1100, 200, paths("p", 16), nil)}); len(a) != 0 {
		t.Errorf("scraping alerts %+v for 1100 requests", a)
	}
	// Static assets are not scraping, whatever their paths look like.
	if a := run(t, "scraping", []store.Event{summary("s-1", 5000, 200, paths("assets", 16), map[string]string{"static": "true"})}); len(a) != 0 {
		t.Errorf("scraping alerts %+v for static assets", a)
	}

	// Probing counts distinct paths: 2 summaries of 16 distinct 404s are 32.
	if a := run(t, "probing", []store.Event{summary("s-1", 16, 404, paths("a", 16), nil), summary("s-2", 16, 404, paths("b", 16), nil)}); len(a) != 1 {
		t.Errorf("probing alerts %+v, want one", a)
	} else if a[0].Distinct <= 20 || len(a[0].Evidence) != 2 {
		t.Errorf("probing alert %+v, want over 20 distinct paths and the 2 summaries as evidence", a[0])
	}
	// The same 16 paths asked for again and again are 16, whatever the count.
	if a := run(t, "probing", []store.Event{summary("s-1", 500, 404, paths("a", 16), nil), summary("s-2", 500, 404, paths("a", 16), nil)}); len(a) != 0 {
		t.Errorf("probing alerts %+v for 16 distinct paths", a)
	}
}
