package control_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
)

// FuzzDashboardQueries sends arbitrary query strings to the dashboard's
// GET endpoints over a store with a few events, decisions and a policy:
// every answer is 200 or a JSON 4xx naming a request id, never a 5xx.
func FuzzDashboardQueries(f *testing.F) {
	e := newStoreEnv(f, backends[0].open(f), time.Time{})
	now := time.Now().UTC()
	var evs []store.Event
	for i, ip := range []string{"203.0.113.7", "2001:db8::1", ""} {
		evs = append(evs, store.Event{ID: "f-" + string(rune('a'+i)), Time: now.Add(-time.Minute), Kind: "sql_injection", Action: "blocked",
			Service: "shop", ActorIP: ip, ActorUser: "alice", TraceID: "abc", Data: json.RawMessage(`{"decision":"x"}`)})
	}
	if _, err := e.store.AppendEvents(f.Context(), evs); err != nil {
		f.Fatal(err)
	}
	if _, err := e.store.CreateDecision(f.Context(), store.Decision{Scope: store.ScopeCIDR, Value: "203.0.113.0/24", Action: store.ActionBlock}); err != nil {
		f.Fatal(err)
	}
	if _, err := e.store.PutPolicy(f.Context(), graphPolicy, store.AnyVersion); err != nil {
		f.Fatal(err)
	}
	paths := []string{"/v1/events", "/v1/stats/overview", "/v1/actors/timeline", "/v1/graph", "/v1/services/shop",
		"/v1/events/f-a", "/v1/policy/versions", "/v1/policy/diff"}
	for i, q := range []string{"", "range=7d&buckets=500&top=100", "actor=cidr:203.0.113.0/24&limit=1", "range=1h",
		"since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z", "related=100", "before=1&limit=1", "from=1&to=1",
		"actor=ip:2001:db8::1&cursor=MTIzOmFiYw", "kind=a&kind=b&attacks=true&actor=user:alice", "range=0.5s&buckets=1"} {
		f.Add(uint8(i), q)
	}
	f.Fuzz(func(t *testing.T, which uint8, raw string) {
		path := paths[int(which)%len(paths)]
		if _, err := url.ParseQuery(raw); err != nil || strings.ContainsAny(raw, "# \t\r\n") {
			return // not a query a client sends
		}
		if _, err := url.ParseRequestURI(path + "?" + raw); err != nil {
			return // nor a request line a server reads
		}
		req := httptest.NewRequest("GET", path+"?"+raw, nil)
		req.Header.Set("Authorization", "Bearer "+e.admin)
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, req)
		if w.Code == http.StatusOK {
			return
		}
		var eb control.ErrorBody
		if w.Code >= 500 || w.Code < 400 || json.Unmarshal(w.Body.Bytes(), &eb) != nil || eb.RequestID == "" || eb.Code == "" {
			t.Fatalf("GET %s?%s: %d %s", path, raw, w.Code, w.Body)
		}
	})
}
