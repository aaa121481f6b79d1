package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
)

func TestDetectionFromTheCommandLine(t *testing.T) {
	// No -detect: detection is on by default.
	cp := initControlPlane(t)
	allow := filepath.Join(t.TempDir(), "allow")
	if err := os.WriteFile(allow, []byte("# the office\nip:198.51.100.0/24\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cp.stop = cp.serve(t, "-detect-allow", "user:ops", "-detect-allow-file", allow)
	t.Cleanup(func() { cp.stop() })

	now := time.Now().UTC().Format(time.RFC3339Nano)
	cp.post(t, "/v1/events", `{"events":[
		{"id":"ev-office","time":"`+now+`","kind":"sql_injection","action":"blocked","service":"shop","actor_ip":"198.51.100.4"},
		{"id":"ev-attack","time":"`+now+`","kind":"sql_injection","action":"blocked","service":"shop","actor_ip":"203.0.113.66"}]}`)

	var d store.Decision
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := cp.cli(t, "decisions", "list", "-o", "json")
		var list control.DecisionList
		if err != nil || json.Unmarshal([]byte(out), &list) != nil {
			t.Fatalf("decisions list: %q, %v", out, err)
		}
		if len(list.Decisions) > 0 {
			if len(list.Decisions) != 1 || list.Decisions[0].Value != "203.0.113.66" {
				t.Fatalf("decisions %+v, want one, against the attacker only (the office is allowlisted)", list.Decisions)
			}
			d = list.Decisions[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no decision within a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, err := cp.cli(t, "decisions", "explain", d.ID)
	if err != nil || !strings.Contains(out, "injection-escalation") || !strings.Contains(out, d.AlertID) || !strings.Contains(out, "ev-attack") {
		t.Errorf("decisions explain:\n%s%v", out, err)
	}
	out, err = cp.cli(t, "alerts")
	if err != nil || !strings.Contains(out, d.AlertID) || !strings.Contains(out, "block ip:203.0.113.66 1h0m0s") {
		t.Errorf("alerts:\n%s%v", out, err)
	}
	out, err = cp.cli(t, "alerts", "-o", "json", "-scenario", "brute-force")
	var alerts control.AlertList
	if err != nil || json.Unmarshal([]byte(out), &alerts) != nil || len(alerts.Alerts) != 0 {
		t.Errorf("alerts of another scenario: %q, %v", out, err)
	}
	out, err = cp.cli(t, "scenarios", "list")
	if err != nil || !strings.Contains(out, "injection-escalation") || !strings.Contains(out, "leading true") {
		t.Errorf("scenarios list:\n%s%v", out, err)
	}
	out, err = cp.cli(t, "scenarios", "replay", "-since", "1h")
	if err != nil || !strings.Contains(out, "203.0.113.66") || !strings.Contains(out, "2 events replayed, 1 alerts") {
		t.Errorf("scenarios replay:\n%s%v", out, err)
	}
}

func TestScenariosTestRunsFixturesOffline(t *testing.T) {
	fixtures := filepath.Join("..", "..", "internal", "detect", "testdata", "fixtures")
	out, err := (&controlPlane{}).runArgs(t, "scenarios", "test", fixtures)
	if err != nil || !strings.Contains(out, "ok    ") || strings.Contains(out, "FAIL") {
		t.Errorf("scenarios test on the built-in fixtures:\n%s%v", out, err)
	}
	// A fixture whose expectation is wrong fails, with a diff.
	bad := t.TempDir()
	src := filepath.Join(fixtures, "injection-escalation")
	for _, f := range []string{"input.jsonl", "fixture.yaml", "scenario.yaml"} {
		if data, err := os.ReadFile(filepath.Join(src, f)); err == nil {
			os.WriteFile(filepath.Join(bad, f), data, 0o600)
		}
	}
	os.WriteFile(filepath.Join(bad, "expected.jsonl"), nil, 0o600)
	out, err = (&controlPlane{}).runArgs(t, "scenarios", "test", bad)
	if err == nil || !strings.Contains(out, "FAIL") || !strings.Contains(out, "+") {
		t.Errorf("scenarios test on a wrong fixture: %v\n%s", err, out)
	}
}
