package ramparttest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/ramparttest"
)

// The test of the package documentation, as written there.
func TestSearchRefusesAnInjection(t *testing.T) {
	agent, events := ramparttest.NewAgent(t, rampart.Config{})
	mux, err := searchMux(agent)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(agent.Handler(mux))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/search?q=" + url.QueryEscape("x' OR 1=1--"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("status %d, want 403", resp.StatusCode)
	}
	want := ramparttest.Want{
		Kind:   rampart.KindSQLInjection,
		Action: rampart.ActionBlocked,
		Input:  rampart.Input{Source: rampart.SourceQuery, Name: "q"},
	}
	if d := want.Diff(events.Next(t)); d != "" {
		t.Error(d)
	}
}

// report reports a finding of kind for value, as a guard does, in a
// context that marks value as untrusted.
func report(t *testing.T, a *rampart.Agent, kind rampart.Kind, value string) {
	t.Helper()
	ctx := rampart.WithUntrusted(context.Background(), "job", value)
	a.Report(ctx, rampart.Finding{Kind: kind, Input: rampart.Input{Source: "job", Value: value}, Sink: "test"})
}

func TestNewAgentFillsWhatATestLeavesOut(t *testing.T) {
	a, events := ramparttest.NewAgent(t, rampart.Config{Mode: rampart.ModeMonitor})
	if a.Service() != "test" || a.Mode() != rampart.ModeMonitor {
		t.Errorf("service %q mode %q, want test and the mode given", a.Service(), a.Mode())
	}
	report(t, a, rampart.KindSSRF, "http://169.254.169.254/")
	if ev := events.Next(t); ev.Service != "test" || ev.Action != rampart.ActionMonitored {
		t.Errorf("event %+v, want service test, monitored", ev)
	}
}

func TestNewAgentKeepsTheTestsOwnSinks(t *testing.T) {
	own := &ramparttest.Recorder{}
	sinks := make([]rampart.Sink, 1, 4) // room after it: NewAgent must not write there
	sinks[0] = own
	a, events := ramparttest.NewAgent(t, rampart.Config{Service: "orders", Sinks: sinks})
	if spare := sinks[:2][1]; spare != nil {
		t.Errorf("NewAgent wrote %T into the caller's slice", spare)
	}
	report(t, a, rampart.KindSQLInjection, "x' OR 1=1--")
	if ev := events.Next(t); ev.Service != "orders" {
		t.Errorf("service %q, want the one given", ev.Service)
	}
	if ev := own.Next(t); ev.Kind != rampart.KindSQLInjection {
		t.Errorf("the test's own sink got %+v", ev)
	}
}

func TestNewAgentClosesTheAgentWhenTheTestEnds(t *testing.T) {
	var a *rampart.Agent
	var events *ramparttest.Recorder
	t.Run("a test", func(t *testing.T) {
		a, events = ramparttest.NewAgent(t, rampart.Config{})
		report(t, a, rampart.KindSQLInjection, "queued")
	})
	// Close delivered what was queued, and refuses what comes after.
	if got := events.Events(); len(got) != 1 || got[0].Input.Value != "queued" {
		t.Errorf("after the test, recorded %+v, want the queued event", got)
	}
	report(t, a, rampart.KindSQLInjection, "late")
	if st := a.Stats(); st.Dropped != 1 {
		t.Errorf("stats %+v: the agent took an event after the test ended", st)
	}
}

func TestNextReturnsEachEventOnceInOrder(t *testing.T) {
	a, events := ramparttest.NewAgent(t, rampart.Config{})
	for _, v := range []string{"one", "two", "three"} {
		report(t, a, rampart.KindSQLInjection, v)
	}
	for _, want := range []string{"one", "two", "three"} {
		if ev := events.Next(t); ev.Input.Value != want {
			t.Fatalf("Next returned %q, want %q", ev.Input.Value, want)
		}
	}
	if n := len(events.Events()); n != 3 {
		t.Errorf("Events holds %d events after Next took them, want all 3", n)
	}
}

func TestWaitFindsTheOldestMatchAndTakesNothing(t *testing.T) {
	a, events := ramparttest.NewAgent(t, rampart.Config{})
	report(t, a, rampart.KindSQLInjection, "first")
	report(t, a, rampart.KindSSRF, "second")
	report(t, a, rampart.KindSSRF, "third")
	ssrf := ramparttest.Want{Kind: rampart.KindSSRF}.Match
	for range 2 {
		if ev := events.Wait(t, ssrf); ev.Input.Value != "second" {
			t.Errorf("Wait returned %q, want the oldest match, second", ev.Input.Value)
		}
	}
	if ev := events.Next(t); ev.Input.Value != "first" {
		t.Errorf("after Wait, Next returned %q, want the first event", ev.Input.Value)
	}
	if ev := events.Wait(t, nil); ev.Input.Value != "first" {
		t.Errorf("Wait(nil) returned %q, want the oldest event", ev.Input.Value)
	}
}

func TestResetForgetsWhatWasRecorded(t *testing.T) {
	a, events := ramparttest.NewAgent(t, rampart.Config{})
	report(t, a, rampart.KindSQLInjection, "step one")
	report(t, a, rampart.KindSQLInjection, "step one, again")
	events.Wait(t, ramparttest.Want{Input: rampart.Input{Value: "step one, again"}}.Match)
	events.Reset()
	if n := len(events.Events()); n != 0 {
		t.Errorf("%d events after Reset", n)
	}
	report(t, a, rampart.KindSSRF, "step two")
	if ev := events.Next(t); ev.Input.Value != "step two" {
		t.Errorf("Next after Reset returned %q, want the next step's event", ev.Input.Value)
	}
}

func TestDiff(t *testing.T) {
	ev := rampart.Event{
		Kind: rampart.KindSQLInjection, Action: rampart.ActionBlocked,
		Input: rampart.Input{Source: rampart.SourceQuery, Name: "q", Value: "x' OR 1=1--"},
		Sink:  "database/sql", Route: "GET /search", RequestID: "req-1", Reason: "r", Location: "/home/ci/shop/search.go:42",
	}
	for _, tc := range []struct {
		name string
		want ramparttest.Want
		diff []string // lines after the event's
	}{
		{"the zero Want matches any event", ramparttest.Want{}, nil},
		{"every field set and equal matches", ramparttest.Want{
			Kind: rampart.KindSQLInjection, Action: rampart.ActionBlocked,
			Input: rampart.Input{Source: rampart.SourceQuery, Name: "q", Value: "x' OR 1=1--"},
			Sink:  "database/sql", Route: "GET /search", RequestID: "req-1", Reason: "r", Location: "shop/search.go:42",
		}, nil},
		{"the whole location matches", ramparttest.Want{Location: "/home/ci/shop/search.go:42"}, nil},
		{"each differing field is a line", ramparttest.Want{Kind: rampart.KindSSRF, Input: rampart.Input{Source: rampart.SourceQuery, Name: "id"}}, []string{
			`	kind: got "sql_injection", want "ssrf"`,
			`	input name: got "q", want "id"`,
		}},
		{"a location ends at a path separator", ramparttest.Want{Location: "arch.go:42"}, []string{
			`	location: got "/home/ci/shop/search.go:42", want …/arch.go:42`,
		}},
		{"a whole location that differs is shown whole", ramparttest.Want{Location: "/home/ci/shop/search.go:43"}, []string{
			`	location: got "/home/ci/shop/search.go:42", want "/home/ci/shop/search.go:43"`,
		}},
		{"action, value, sink, route, request id and reason", ramparttest.Want{Action: rampart.ActionMonitored, Input: rampart.Input{Value: "1"}, Sink: "os/exec", Route: "GET /", RequestID: "req-2", Reason: "other"}, []string{
			`	action: got "blocked", want "monitored"`,
			`	input value: got "x' OR 1=1--", want "1"`,
			`	sink: got "database/sql", want "os/exec"`,
			`	route: got "GET /search", want "GET /"`,
			`	request id: got "req-1", want "req-2"`,
			`	reason: got "r", want "other"`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.want.Diff(ev)
			if tc.diff == nil {
				if d != "" || !tc.want.Match(ev) {
					t.Errorf("Diff = %q, Match %v; want a match", d, tc.want.Match(ev))
				}
				return
			}
			want := `event sql_injection blocked, input query "q" = "x' OR 1=1--", sink "database/sql", route "GET /search", request "req-1", reason "r", at "/home/ci/shop/search.go:42"` +
				"\n" + strings.Join(tc.diff, "\n")
			if d != want || tc.want.Match(ev) {
				t.Errorf("Diff =\n%s\nwant\n%s", d, want)
			}
		})
	}
}
