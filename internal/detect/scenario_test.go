package detect

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseErrorsNameFileLineAndField(t *testing.T) {
	const head = "name: s\ntype: leaky\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"an unknown field", head + "filtr: evt.kind == 'x'\n", "s.yaml:3: filtr: unknown field"},
		{"a misspelt event field in the filter", head + "filter: evt.kindd == 'x'\ngroupby: evt.actor.ip\ncapacity: 1\nleakspeed: 1s\n",
			"s.yaml:3: filter: expression"},
		{"a filter that is not a condition", head + "filter: evt.kind\ngroupby: evt.actor.ip\ncapacity: 1\nleakspeed: 1s\n",
			"s.yaml:3: filter: expression"},
		{"a groupby that is not a string", head + "filter: true\ngroupby: evt.status\ncapacity: 1\nleakspeed: 1s\n",
			"s.yaml:4: groupby: expression"},
		{"a count in a filter", head + "filter: count > 1\ngroupby: evt.actor.ip\ncapacity: 1\nleakspeed: 1s\n",
			"s.yaml:3: filter: expression"},
		{"a duration without a unit", head + "filter: true\ngroupby: evt.actor.ip\ncapacity: 1\nleakspeed: \"10\"\n",
			"s.yaml:6: leakspeed: bad duration"},
		{"a missing leakspeed", head + "filter: true\ngroupby: evt.actor.ip\ncapacity: 1\n", "leakspeed: required by type leaky"},
		{"a missing capacity", head + "filter: true\ngroupby: evt.actor.ip\nleakspeed: 1s\n", "capacity: required by type leaky"},
		{"a negative capacity", head + "filter: true\ngroupby: evt.actor.ip\ncapacity: -1\nleakspeed: 1s\n", "s.yaml:5: capacity: expected a non-negative integer"},
		{"an unknown type", "name: s\ntype: leaking\n", "s.yaml:2: type: \"leaking\""},
		{"a name with a space", "name: my scenario\n", "s.yaml:1: name:"},
		{"capacity on a trigger", "name: s\ntype: trigger\nfilter: true\ngroupby: evt.actor.ip\ncapacity: 3\n",
			"s.yaml:5: capacity: not used by type trigger"},
		{"a conditional without its condition", "name: s\ntype: conditional\nfilter: true\ngroupby: evt.actor.ip\nleakspeed: 1s\n",
			"condition: required by type conditional"},
		{"an unknown response action", head + "filter: true\ngroupby: evt.actor.ip\ncapacity: 1\nleakspeed: 1s\nresponse:\n  scope: ip\n  action: ban\n  ttl: 1h\n",
			"s.yaml:9: response.action: \"ban\""},
		{"a response without a ttl", head + "filter: true\ngroupby: evt.actor.ip\ncapacity: 1\nleakspeed: 1s\nresponse:\n  scope: ip\n  action: block\n",
			"response.ttl: required"},
		{"an unknown response field", head + "filter: true\ngroupby: evt.actor.ip\ncapacity: 1\nleakspeed: 1s\nresponse:\n  scope: ip\n  action: block\n  tll: 1h\n",
			"s.yaml:10: response.tll: unknown field"},
		{"an escalation below the ttl", head + "filter: true\ngroupby: evt.actor.ip\ncapacity: 1\nleakspeed: 1s\nresponse:\n  scope: ip\n  action: block\n  ttl: 1h\n  escalation:\n    max: 30m\n",
			"s.yaml:12: response.escalation.max"},
		{"a misspelt exception field", head + "filter: true\ngroupby: evt.actor.ip\ncapacity: 1\nleakspeed: 1s\nexceptions:\n  - name: x\n    fields: [evt.actor.ipp]\n    values: [[a]]\n",
			"s.yaml:9: exceptions[0].fields: expression"},
		{"an exception tuple of the wrong length", head + "filter: true\ngroupby: evt.actor.ip\ncapacity: 1\nleakspeed: 1s\nexceptions:\n  - name: x\n    fields: [evt.actor.ip, evt.route]\n    values:\n      - [a]\n",
			"s.yaml:11: exceptions[0].values: expected a list of 2 values"},
		{"a bad network in an exception", head + "filter: true\ngroupby: evt.actor.ip\ncapacity: 1\nleakspeed: 1s\nexceptions:\n  - name: x\n    fields: evt.actor.ip\n    comps: in_cidr\n    values: [10.0.0.0/33]\n",
			"s.yaml:11: exceptions[0].values"},
		{"members without a response", head + "filter: true\ngroupby: evt.actor.ip\ncapacity: 1\nleakspeed: 1s\nmembers:\n  min: 2\n",
			"s.yaml:7: members: needs a response"},
		{"broken YAML", "name: s\n  type: [leaky\n", "s.yaml:2"},
		{"a scenario given twice", head + "filter: true\ngroupby: evt.actor.ip\ncapacity: 1\nleakspeed: 1s\n---\n" + head + "filter: true\ngroupby: evt.actor.ip\ncapacity: 1\nleakspeed: 1s\n",
			"s.yaml:8: name: scenario \"s\" defined twice"},
		{"an empty file", "# nothing\n", "s.yaml: no scenario"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("s.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("no error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			var le *LoadError
			if !errors.As(err, &le) {
				t.Errorf("error %T, want a *LoadError", err)
			}
		})
	}
}

func TestParseReadsEveryField(t *testing.T) {
	ss, err := Parse("s.yaml", []byte(`
name: full
description: every field
type: leaky
filter: evt.kind == "request"
groupby: evt.actor.ip
weight: float(evt.count) * 2
capacity: 7
leakspeed: 1m30s
blackhole: 10m
cancel_on: evt.status == 200
exceptions:
  - name: office
    fields: [evt.actor.ip, evt.route]
    comps: [in_cidr, startswith]
    values:
      - [198.51.100.0/24, "GET /internal"]
response:
  scope: range
  action: rate-limit
  rate_limit: 60
  ttl: 2h
  simulate: true
  escalation:
    factor: 3
    max: 7d
    memory: 1d
`))
	if err != nil {
		t.Fatal(err)
	}
	s := ss[0]
	r := s.Response
	if s.Name != "full" || s.Type != Leaky || s.Capacity != 7 || s.Leakspeed != 90*time.Second || s.Blackhole != 10*time.Minute ||
		s.Line != 2 || len(s.exceptions) != 1 || s.weight == nil || s.cancelOn == nil ||
		r.Scope != ScopeRange || r.Action != RateLimit || r.RateLimit != 60 || r.TTL != 2*time.Hour || !r.Simulate ||
		r.Escalation.Factor != 3 || r.Escalation.Max != 7*24*time.Hour || r.Escalation.Memory != 24*time.Hour {
		t.Errorf("parsed %+v, response %+v, escalation %+v", s, r, r.Escalation)
	}
}

func TestLoadDirRefusesADuplicateName(t *testing.T) {
	dir := t.TempDir()
	doc := "name: same\ntype: trigger\nfilter: true\ngroupby: evt.actor.ip\n"
	for _, f := range []string{"a.yaml", "b.yml"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "README.md"), []byte("not a scenario"), 0o644)
	_, err := LoadDir(dir)
	if err == nil || !strings.Contains(err.Error(), "b.yml:1: name") || !strings.Contains(err.Error(), "a.yaml:1") {
		t.Errorf("err = %v, want the second file naming the first", err)
	}
}

func TestBuiltinsLoadAndAreDocumented(t *testing.T) {
	for _, s := range Builtin() {
		src, ok := BuiltinSource(s.Name)
		if !ok {
			t.Errorf("%s: no source named after it", s.Name)
			continue
		}
		if !strings.HasPrefix(string(src), "# ") {
			t.Errorf("%s: its file does not open with a comment documenting its defaults", s.Name)
		}
		if s.Description == "" || s.Response == nil {
			t.Errorf("%s: no description or no response", s.Name)
		}
	}
}

func TestMergeReplacesByName(t *testing.T) {
	mine, err := Parse("mine.yaml", []byte("name: probing\ntype: trigger\nfilter: false\ngroupby: evt.actor.ip\n---\nname: extra\ntype: trigger\nfilter: false\ngroupby: evt.actor.ip\n"))
	if err != nil {
		t.Fatal(err)
	}
	all := Merge(Builtin(), mine)
	if len(all) != len(Builtin())+1 {
		t.Fatalf("%d scenarios, want the built-ins plus one", len(all))
	}
	for _, s := range all {
		if s.Name == "probing" && s.File != "mine.yaml" {
			t.Errorf("probing comes from %s, want mine.yaml", s.File)
		}
	}
}
