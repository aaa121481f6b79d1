package detect

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzParse feeds the scenario loader arbitrary YAML: it must return a
// scenario or an error, never panic, and a scenario it returns must run.
// Seeds: the built-ins and testdata/seeds/*.yaml.
//
//	go test -run '^$' -fuzz FuzzParse -fuzztime 1m ./internal/detect/
func FuzzParse(f *testing.F) {
	for _, s := range Builtin() {
		src, _ := BuiltinSource(s.Name)
		f.Add(src)
	}
	seeds, _ := filepath.Glob(filepath.Join("testdata", "seeds", "*.yaml"))
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("name: x\ntype: trigger\nfilter: true\ngroupby: evt.actor.ip\n"))
	events := []Event{
		loginFailure("203.0.113.1", "a", false),
		loginSuccess("203.0.113.1", "a", "u-a", false),
		request("2001:db8::1", "u", "GET /x/{id}", "/x/1", 404),
		objectAccess("198.51.100.1", "u", "order", "o-1", "v"),
		{Kind: KindSQLInjection, Actor: Actor{IP: "not an ip"}, Attrs: map[string]string{"role": "x"}},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ss, err := Parse("fuzz.yaml", data)
		if err != nil {
			if _, ok := err.(*LoadError); !ok {
				t.Fatalf("error %T, want *LoadError: %v", err, err)
			}
			return
		}
		e, err := New(Config{Scenarios: ss, MaxKeys: 16})
		if err != nil {
			return // two documents of one name are caught by Parse; New may refuse what Parse allows
		}
		for i, ev := range events {
			ev.ID, ev.Time = "f", t0.Add(time.Duration(i)*time.Second)
			e.Process(ev)
			e.Process(ev)
		}
	})
}
