package detect_test

import (
	"fmt"
	"time"

	"github.com/rampartsec/rampart/internal/detect"
)

// An engine with the built-in scenarios sees one address fail to log in
// as twenty-one different users within ten seconds, and asks for the
// address to be blocked.
func ExampleEngine() {
	e, err := detect.New(detect.Config{Scenarios: detect.Builtin()})
	if err != nil {
		panic(err)
	}
	start := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	for i := range 30 {
		alerts := e.Process(detect.Event{
			ID:    fmt.Sprintf("ev-%02d", i),
			Time:  start.Add(time.Duration(i) * 500 * time.Millisecond),
			Kind:  detect.KindLoginFailure,
			Route: "POST /login",
			Actor: detect.Actor{IP: "203.0.113.66"},
			Login: detect.Login{Name: fmt.Sprintf("user%02d@example.com", i), Exists: true},
		})
		for _, a := range alerts {
			d := a.Decisions[0]
			fmt.Printf("%s after %d events: %s %s %s for %s\n", a.Scenario, a.Count, d.Action, d.Scope, d.Value, d.TTL)
		}
	}
	// Output:
	// credential-stuffing-ip after 21 events: block ip 203.0.113.66 for 1h0m0s
}

// A scenario of one's own: read from YAML, checked at load.
func ExampleParse() {
	_, err := detect.Parse("mine.yaml", []byte(`
name: checkout-burst
type: leaky
filter: evt.kind == "business" && evt.attrs.name == "checkout"
groupby: evt.actor.usr
capacity: 10
leakspeed: 1m
`))
	fmt.Println(err)
	// Output:
	// mine.yaml:5: groupby: expression "evt.actor.usr": type detect.Actor has no field usr (1:11)
}
