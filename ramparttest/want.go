package ramparttest

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart"
)

// Want is what a test expects of an event, field by field; a field left
// zero matches anything, so a test names only what it asserts. The parts of
// Input (Source, Name, Value) are compared one by one. RequestID picks the
// event of one request among those of a test that sends many: the
// middleware adopts the X-Request-Id a client sends, when well formed, and
// returns the id in that header of its response. Location is the end of
// the event's file:line, which starts with a directory that differs from
// machine to machine: "search.go:42" matches ".../service/search.go:42".
type Want struct {
	Kind      rampart.Kind
	Action    rampart.Action
	Input     rampart.Input
	Sink      string
	Route     string
	RequestID string
	Reason    string
	Location  string
}

// Match reports whether ev is what w describes. It is the matcher to give
// Recorder.Wait: events.Wait(t, ramparttest.Want{Kind: k}.Match).
func (w Want) Match(ev rampart.Event) bool { return w.Diff(ev) == "" }

// Diff returns "" when ev is what w describes and otherwise, for t.Error,
// the event on one line followed by each field that differs, got beside
// want, one a line.
func (w Want) Diff(ev rampart.Event) string {
	var diffs []string
	check := func(field, got, want string) {
		if want != "" && got != want {
			diffs = append(diffs, fmt.Sprintf("\t%s: got %q, want %q", field, got, want))
		}
	}
	check("kind", string(ev.Kind), string(w.Kind))
	check("action", string(ev.Action), string(w.Action))
	check("input source", string(ev.Input.Source), string(w.Input.Source))
	check("input name", ev.Input.Name, w.Input.Name)
	check("input value", ev.Input.Value, w.Input.Value)
	check("sink", ev.Sink, w.Sink)
	check("route", ev.Route, w.Route)
	check("request id", ev.RequestID, w.RequestID)
	check("reason", ev.Reason, w.Reason)
	if w.Location != "" && ev.Location != w.Location && !strings.HasSuffix(ev.Location, "/"+w.Location) {
		want := "…/" + w.Location
		if path.IsAbs(w.Location) {
			want = strconv.Quote(w.Location)
		}
		diffs = append(diffs, fmt.Sprintf("\tlocation: got %q, want %s", ev.Location, want))
	}
	if len(diffs) == 0 {
		return ""
	}
	return "event " + describe(ev) + "\n" + strings.Join(diffs, "\n")
}
