package control_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/controltest"
	"github.com/rampartsec/rampart/internal/store"
)

// wantJSONError checks that an answer of the real server is a JSON error
// with status, code and field, and a request id.
func wantJSONError(t *testing.T, status int, body []byte, wantStatus int, code, field string) {
	t.Helper()
	var eb control.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		t.Fatalf("status %d, body %q is not a JSON error: %v", status, body, err)
	}
	if status != wantStatus || eb.Code != code || eb.Field != field || eb.RequestID == "" || eb.Error == "" {
		t.Errorf("status %d body %s, want %d with code %q, field %q and a request id", status, body, wantStatus, code, field)
	}
}

func TestDuplicateJSONKeysAreRefusedAtAnyDepth(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	for _, c := range []struct {
		name, path, body, field string
	}{
		{"a token for the gateway hidden behind another service", "/v1/tokens",
			`{"service":"evil","service":"gateway"}`, "service"},
		{"the same key in another case", "/v1/tokens",
			`{"service":"evil","SERVICE":"gateway"}`, "SERVICE"},
		{"a key in mixed case", "/v1/tokens",
			`{"service":"orders","ttl":"1h","ttL":"168h"}`, "ttL"},
		{"the Kelvin sign folding to k", "/v1/events",
			`{"events":[{"id":"e1","time":"2026-01-02T03:04:05Z","kind":"sqli","\u212Aind":"ssrf","service":"shop"}]}`, "events[0].\u212aind"},
		{"a duplicate inside an event's data", "/v1/events",
			`{"events":[{"id":"e1","time":"2026-01-02T03:04:05Z","kind":"sqli","service":"shop","data":{"actor":{"ip":"192.0.2.1","ip":"203.0.113.5"}}}]}`,
			"events[0].data.actor.ip"},
		{"a duplicate in the second event", "/v1/events",
			`{"events":[{"id":"e1","time":"2026-01-02T03:04:05Z","kind":"sqli","service":"shop"},{"id":"e2","id":"e3","time":"2026-01-02T03:04:05Z","kind":"sqli","service":"shop"}]}`,
			"events[1].id"},
		{"a decision whose value is named twice", "/v1/decisions",
			`{"scope":"ip","value":"192.0.2.1","action":"block","value":"10.0.0.1"}`, "value"},
		{"a heartbeat for two services", "/v1/heartbeat",
			`{"service":"shop","id":"i1","service":"gateway"}`, "service"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body, err := cp.Do(http.MethodPost, c.path, json.RawMessage(c.body))
			if err != nil {
				t.Fatal(err)
			}
			wantJSONError(t, status, body, http.StatusBadRequest, control.CodeDuplicateKey, c.field)
		})
	}
	// Nothing was written: no event, no decision, no instance.
	if evs := cp.Events(t, ""); len(evs) != 0 {
		t.Errorf("events stored from refused bodies: %s", evs)
	}
	var ds control.DecisionList
	cp.MustDo(t, http.MethodGet, "/v1/decisions", nil, http.StatusOK, &ds)
	if len(ds.Decisions) != 0 {
		t.Errorf("decisions created from refused bodies: %+v", ds.Decisions)
	}
	var ins control.InstanceList
	cp.MustDo(t, http.MethodGet, "/v1/instances", nil, http.StatusOK, &ins)
	if len(ins.Instances) != 0 {
		t.Errorf("instances registered from refused bodies: %+v", ins.Instances)
	}
	// Keys that only look alike are different keys, and a body without
	// duplicates still works.
	cp.MustDo(t, http.MethodPost, "/v1/events", json.RawMessage(
		`{"events":[{"id":"e1","time":"2026-01-02T03:04:05Z","kind":"sqli","service":"shop","data":{"a":{"x":1},"b":{"x":2},"x":[{"x":1},{"x":2}]}}]}`),
		http.StatusOK, nil)
}

func TestDeeplyNestedJSONIsRefused(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	data := strings.Repeat(`{"a":`, control.MaxJSONDepth) + "1" + strings.Repeat("}", control.MaxJSONDepth)
	body := `{"events":[{"id":"e1","time":"2026-01-02T03:04:05Z","kind":"sqli","service":"shop","data":` + data + `}]}`
	status, resp, err := cp.Do(http.MethodPost, "/v1/events", json.RawMessage(body))
	if err != nil {
		t.Fatal(err)
	}
	var eb control.ErrorBody
	json.Unmarshal(resp, &eb)
	if status != http.StatusBadRequest || eb.Code != "invalid" || eb.RequestID == "" || !strings.Contains(eb.Error, "nested deeper") {
		t.Errorf("status %d %s, want 400 for nesting deeper than %d", status, resp, control.MaxJSONDepth)
	}
}

func TestADecisionOnEveryAddressNeedsForce(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	for _, value := range []string{
		"0.0.0.0/0", "::/0", "128.0.0.0/1", "10.0.0.0/7", "::ffff:0.0.0.0/96", "::ffff:10.0.0.0/103", "2001::/16", "2001:db8::/31",
	} {
		t.Run("refuses "+value, func(t *testing.T) {
			status, body, err := cp.Do(http.MethodPost, "/v1/decisions",
				control.DecisionRequest{Scope: store.ScopeCIDR, Value: value, Action: store.ActionBlock})
			if err != nil {
				t.Fatal(err)
			}
			wantJSONError(t, status, body, http.StatusBadRequest, control.CodeTooBroad, "value")
		})
	}
	var ds control.DecisionList
	cp.MustDo(t, http.MethodGet, "/v1/decisions", nil, http.StatusOK, &ds)
	if len(ds.Decisions) != 0 {
		t.Fatalf("refused decisions were stored: %+v", ds.Decisions)
	}
	for _, value := range []string{"10.0.0.0/8", "::ffff:10.0.0.0/104", "2001:db8::/32", "192.0.2.0/24"} {
		cp.MustDo(t, http.MethodPost, "/v1/decisions",
			control.DecisionRequest{Scope: store.ScopeCIDR, Value: value, Action: store.ActionBlock}, http.StatusCreated, nil)
	}
	for _, value := range []string{"0.0.0.0/0", "::/0"} {
		var d store.Decision
		cp.MustDo(t, http.MethodPost, "/v1/decisions",
			control.DecisionRequest{Scope: store.ScopeCIDR, Value: value, Action: store.ActionReadOnly, Force: true}, http.StatusCreated, &d)
		if d.Value != value {
			t.Errorf("forced decision on %s stored as %s", value, d.Value)
		}
	}
}
