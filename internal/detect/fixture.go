package detect

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// A fixture is a directory that says what a set of scenarios must make of
// a stream of events:
//
//	scenario.yaml   scenarios to load (optional)
//	fixture.yaml    optional: builtin: [names] (or [all]), allow: ["ip:…"], max_keys: N
//	input.jsonl     one Event a line, in time order
//	expected.jsonl  one Alert a line, in the order the engine raises them
//
// A fixture needs scenario.yaml, a builtin list, or both.
type fixtureConfig struct {
	Builtin []string `yaml:"builtin"`
	Allow   []string `yaml:"allow"`
	MaxKeys int      `yaml:"max_keys"`
}

// RunFixture runs the fixture in dir and returns a readable diff of the
// expected alerts (-) against those raised (+), "" when they agree. The
// error is for a fixture that cannot run (a missing file, a scenario that
// does not load, a line that does not parse), and names the file and
// line.
func RunFixture(dir string) (diff string, err error) {
	got, err := fixtureAlerts(dir)
	if err != nil {
		return "", err
	}
	wantPath := filepath.Join(dir, "expected.jsonl")
	wantData, err := os.ReadFile(wantPath)
	if err != nil {
		return "", fmt.Errorf("detect: fixture: %w", err)
	}
	var want []string
	for i, line := range splitLines(wantData) {
		var a Alert
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil {
			return "", fmt.Errorf("detect: fixture: %s:%d: %w", wantPath, i+1, err)
		}
		want = append(want, alertLine(a))
	}
	var have []string
	for _, a := range got {
		have = append(have, alertLine(a))
	}
	return lineDiff(want, have), nil
}

// FixtureAlerts runs the fixture in dir and returns the alerts raised,
// for writing a new fixture's expected.jsonl.
func FixtureAlerts(dir string) ([]Alert, error) { return fixtureAlerts(dir) }

func fixtureAlerts(dir string) ([]Alert, error) {
	var cfg fixtureConfig
	if data, err := os.ReadFile(filepath.Join(dir, "fixture.yaml")); err == nil {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			return nil, fmt.Errorf("detect: fixture: %s: %w", filepath.Join(dir, "fixture.yaml"), err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("detect: fixture: %w", err)
	}
	var scenarios []*Scenario
	for _, name := range cfg.Builtin {
		if name == "all" {
			scenarios = Merge(scenarios, Builtin())
			continue
		}
		i := slices.IndexFunc(builtins(), func(s *Scenario) bool { return s.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("detect: fixture: %s: no built-in scenario %q", filepath.Join(dir, "fixture.yaml"), name)
		}
		scenarios = Merge(scenarios, builtins()[i:i+1])
	}
	sp := filepath.Join(dir, "scenario.yaml")
	if _, err := os.Stat(sp); err == nil {
		ss, err := LoadFile(sp)
		if err != nil {
			return nil, err
		}
		scenarios = Merge(scenarios, ss)
	}
	if len(scenarios) == 0 {
		return nil, fmt.Errorf("detect: fixture %s: no scenario (scenario.yaml or fixture.yaml builtin)", dir)
	}
	var allow []Allow
	for _, s := range cfg.Allow {
		a, err := ParseAllow(s)
		if err != nil {
			return nil, fmt.Errorf("detect: fixture: %s: %w", filepath.Join(dir, "fixture.yaml"), err)
		}
		allow = append(allow, a)
	}
	// A fixed hash: an estimate past 64 distinct values is then the same
	// on every machine, which a fixture's expected alerts need.
	e, err := New(Config{Scenarios: scenarios, Allow: allow, MaxKeys: cfg.MaxKeys, FixedHash: true})
	if err != nil {
		return nil, err
	}
	inPath := filepath.Join(dir, "input.jsonl")
	f, err := os.Open(inPath)
	if err != nil {
		return nil, fmt.Errorf("detect: fixture: %w", err)
	}
	defer f.Close()
	var alerts []Alert
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		var ev Event
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev); err != nil {
			return nil, fmt.Errorf("detect: fixture: %s:%d: %w", inPath, n, err)
		}
		alerts = append(alerts, e.Process(ev)...)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("detect: fixture: %s: %w", inPath, err)
	}
	return alerts, nil
}

func splitLines(data []byte) []string {
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// alertLine is an alert's canonical JSON, so that expected files may
// order and space their fields as they like.
func alertLine(a Alert) string {
	b, _ := json.Marshal(a)
	return string(b)
}

// lineDiff is a unified-style diff of two line lists ("" if equal), by
// longest common subsequence: fixtures hold tens of alerts, not
// thousands.
func lineDiff(want, have []string) string {
	if slices.Equal(want, have) {
		return ""
	}
	n, m := len(want), len(have)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if want[i] == have[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var b strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && want[i] == have[j]:
			fmt.Fprintf(&b, "  %s\n", want[i])
			i++
			j++
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			fmt.Fprintf(&b, "+ %s\n", have[j])
			j++
		default:
			fmt.Fprintf(&b, "- %s\n", want[i])
			i++
		}
	}
	return b.String()
}
