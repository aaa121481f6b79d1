package detect

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

const walk = `
name: walk
type: leaky
filter: evt.kind == "object_access"
groupby: evt.actor.ip
sequence: evt.object.id
capacity: 4
leakspeed: 1m
`

// A sequence scenario fills for a walk (steps of 1 or 2 one way), and not
// for repeats, jumps or going back and forth.
func TestSequenceCountsWalksOnly(t *testing.T) {
	cases := []struct {
		name  string
		ids   []string
		alert bool
	}{
		{"a walk up", []string{"o-10", "o-11", "o-12", "o-13", "o-14"}, true},
		{"a walk down, skipping", []string{"/orders/50", "/orders/48", "/orders/47", "/orders/45", "/orders/44"}, true},
		{"back and forth between neighbours", []string{"o-10", "o-11", "o-10", "o-11", "o-10", "o-11", "o-10", "o-11"}, false},
		{"the same id again and again", []string{"o-7", "o-7", "o-7", "o-7", "o-7", "o-7"}, false},
		{"jumps", []string{"o-3", "o-90", "o-14", "o-602", "o-35", "o-1000"}, false},
		{"ids without a number", []string{"o-a", "o-b", "o-c", "o-d", "o-e", "o-f"}, false},
		{"a walk broken by a jump starts again", []string{"o-1", "o-2", "o-3", "o-900", "o-4", "o-5"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := mustEngine(t, Config{Scenarios: mustParse(t, walk)})
			var alerts []Alert
			for i, id := range tc.ids {
				ev := at(time.Duration(i)*time.Second, KindObjectAccess, "203.0.113.9")
				ev.Object.ID = id
				alerts = append(alerts, e.Process(ev)...)
			}
			if got := len(alerts) > 0; got != tc.alert {
				t.Errorf("ids %v: alert %v, want %v", tc.ids, got, tc.alert)
			}
		})
	}
}

func TestSequenceIsExclusiveWithDistinctAndWeight(t *testing.T) {
	for _, extra := range []string{"distinct: evt.object.id", "weight: 2"} {
		_, err := Parse("x.yaml", []byte(walk+extra+"\n"))
		var le *LoadError
		if !errors.As(err, &le) || le.Field != "sequence" && le.Field != "weight" {
			t.Errorf("sequence with %q: %v, want a load error naming the field", extra, err)
		}
	}
	trig := "name: t\ntype: trigger\nfilter: evt.kind == \"x\"\ngroupby: evt.actor.ip\nsequence: evt.object.id\n"
	if _, err := Parse("t.yaml", []byte(trig)); err == nil {
		t.Error("sequence accepted on a trigger scenario")
	}
}

func TestTrailingNumber(t *testing.T) {
	for s, want := range map[string]int64{"1042": 1042, "o-1042": 1042, "/orders/7": 7, "a9b12": 12} {
		if n, ok := trailingNumber(s); !ok || n != want {
			t.Errorf("trailingNumber(%q) = %d, %v; want %d", s, n, ok, want)
		}
	}
	for _, s := range []string{"", "abc", "12a"} {
		if _, ok := trailingNumber(s); ok {
			t.Errorf("trailingNumber(%q): a number", s)
		}
	}
	if n, ok := trailingNumber(fmt.Sprint("x", "123456789012345678901234")); !ok || n != 789012345678901234 {
		t.Errorf("a long run of digits: %d, %v; want its last 18", n, ok)
	}
}

// The filter the engine runs without its kind conditions agrees with the
// whole filter on every event of every fixture whose kind the scenario
// runs for.
func TestFilterAfterKindsAgreesWithTheFilter(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join("testdata", "fixtures", "*", "input.jsonl"))
	var evs []Event
	for _, p := range dirs {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range splitLines(data) {
			var ev Event
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatal(err)
			}
			evs = append(evs, bound(ev))
		}
	}
	e := mustEngine(t, Config{})
	stripped := 0
	for _, s := range Builtin() {
		if s.filterRest == nil {
			continue
		}
		stripped++
		for i := range evs {
			if !slices.Contains(s.kinds, evs[i].Kind) {
				continue
			}
			env := eventEnv{Evt: &evs[i]}
			full, err1 := e.runBool(s.filter, &env)
			rest, err2 := e.runBool(s.filterRest, &env)
			if full != rest || (err1 == nil) != (err2 == nil) {
				t.Fatalf("%s on %s: filter %v (%v), without kinds %v (%v)", s.Name, evs[i].ID, full, err1, rest, err2)
			}
		}
	}
	if stripped < 10 {
		t.Errorf("%d built-ins run a filter without kinds, want most", stripped)
	}
	for src, want := range map[string]string{
		`evt.kind == "a" && evt.status > 3`:                       `(evt.status > 3)`,
		`evt.kind in ["a", "b"] && evt.x == 1 && evt.kind == "a"`: `(evt.x == 1)`,
		`(evt.kind == "a" || evt.kind == "b") && evt.y`:           `(evt.y)`,
		`evt.kind == "a" || evt.status > 3`:                       ``,
		`evt.kind == "a"`:                                         ``,
	} {
		if got, _ := filterAfterKinds(src); got != want {
			t.Errorf("filterAfterKinds(%q) = %q, want %q", src, got, want)
		}
	}
}
