package detect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFixtures runs every fixture under testdata/fixtures: each directory
// says what its scenarios must make of its input (see RunFixture).
func TestFixtures(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "fixtures", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 10 {
		t.Fatalf("found %d fixtures, expected the built-ins' at least", len(dirs))
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			diff, err := RunFixture(dir)
			if err != nil {
				t.Fatal(err)
			}
			if diff != "" {
				t.Errorf("alerts differ (- expected, + raised):\n%s", diff)
			}
		})
	}
}

// TestEveryBuiltinHasAFixture keeps the promise that each built-in
// scenario is tested on generated traffic.
func TestEveryBuiltinHasAFixture(t *testing.T) {
	for _, s := range Builtin() {
		data, err := os.ReadFile(filepath.Join("testdata", "fixtures", s.Name, "expected.jsonl"))
		if err != nil {
			t.Errorf("%s: %v", s.Name, err)
			continue
		}
		if !strings.Contains(string(data), `"scenario":"`+s.Name+`"`) {
			t.Errorf("%s: its fixture expects no alert of it", s.Name)
		}
	}
}

func TestRunFixtureShowsADiff(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("fixture.yaml", "builtin: [injection-escalation]\n")
	write("input.jsonl", `{"id":"a","time":"2026-03-02T08:00:00Z","kind":"sql_injection","actor":{"ip":"203.0.113.9"}}`+"\n")
	write("expected.jsonl", `{"scenario":"injection-escalation","key":"203.0.113.1","count":1,"first":"2026-03-02T08:00:00Z","last":"2026-03-02T08:00:00Z","evidence":["a"]}`+"\n")
	diff, err := RunFixture(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(diff, `- {"scenario":"injection-escalation","key":"203.0.113.1"`) ||
		!strings.Contains(diff, `+ {"scenario":"injection-escalation","key":"203.0.113.9"`) {
		t.Errorf("diff does not show the expected alert missing and the raised one added:\n%s", diff)
	}

	write("input.jsonl", `{"id":"a","time":"2026-03-02T08:00:00Z","kind":"sql_injection","actr":{}}`+"\n")
	if _, err := RunFixture(dir); err == nil || !strings.Contains(err.Error(), "input.jsonl:1") {
		t.Errorf("a misspelt field in input.jsonl: err = %v, want one naming the file and line", err)
	}
}
