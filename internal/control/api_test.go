package control_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
)

func event(id, kind, service string, at time.Time) store.Event {
	return store.Event{ID: id, Time: at, Kind: kind, Action: "blocked", Service: service, ActorIP: "203.0.113.7",
		Data: []byte(`{"input":"' OR 1=1 --"}`)}
}

func TestEventsAreIngestedOnceAndQueried(t *testing.T) {
	e := newEnv(t)
	t0 := time.Now().Add(-time.Minute).UTC()
	batch := batchOf(
		event("e1", "sql_injection", "api", t0),
		event("e2", "ssrf", "api", t0.Add(time.Second)),
		event("e3", "sql_injection", "web", t0.Add(2*time.Second)),
	)
	got := decode[control.EventBatchResult](t, e.do(t, "POST", "/v1/events", batch), http.StatusOK)
	if got.Received != 3 || got.Inserted != 3 {
		t.Errorf("first batch: %+v, want 3 received and inserted", got)
	}
	got = decode[control.EventBatchResult](t, e.do(t, "POST", "/v1/events", batch), http.StatusOK)
	if got.Inserted != 0 {
		t.Errorf("retried batch inserted %d, want 0", got.Inserted)
	}

	page := decode[control.EventPage](t, e.do(t, "GET", "/v1/events?kind=sql_injection", nil), http.StatusOK)
	if len(page.Events) != 2 || page.Events[0].ID != "e1" || page.Events[1].ID != "e3" || page.Next != "" {
		t.Errorf("kind=sql_injection: %+v, want e1 and e3 and no next page", page)
	}
	if string(page.Events[0].Data) != `{"input":"' OR 1=1 --"}` {
		t.Errorf("data came back as %s", page.Events[0].Data)
	}
	page = decode[control.EventPage](t, e.do(t, "GET", "/v1/events?service=api&limit=1", nil), http.StatusOK)
	if len(page.Events) != 1 || page.Events[0].ID != "e1" || page.Next == "" {
		t.Fatalf("service=api&limit=1: %+v, want e1 and a next cursor", page)
	}
	page = decode[control.EventPage](t, e.do(t, "GET", "/v1/events?service=api&limit=1&cursor="+url.QueryEscape(page.Next), nil), http.StatusOK)
	if len(page.Events) != 1 || page.Events[0].ID != "e2" {
		t.Errorf("second page: %+v, want e2", page)
	}
	since := t0.Add(1500 * time.Millisecond).Format(time.RFC3339Nano)
	page = decode[control.EventPage](t, e.do(t, "GET", "/v1/events?since="+url.QueryEscape(since), nil), http.StatusOK)
	if len(page.Events) != 1 || page.Events[0].ID != "e3" {
		t.Errorf("since: %+v, want e3", page)
	}
	for _, q := range []string{"limit=-1", "limit=x", "since=yesterday", "cursor=!!", "colour=red", "limit=5000"} {
		wantError(t, e.do(t, "GET", "/v1/events?"+q, nil), http.StatusBadRequest, "invalid")
	}
}

func TestAnInvalidEventRefusesTheWholeBatch(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UTC()
	bad := event("e2", "sql_injection", "api", now)
	bad.ActorIP = "not-an-ip"
	eb := wantError(t, e.do(t, "POST", "/v1/events", batchOf(event("e1", "x", "api", now), bad)),
		http.StatusBadRequest, "invalid")
	if eb.Field != "events[1].actor_ip" {
		t.Errorf("field %q, want events[1].actor_ip", eb.Field)
	}
	if evs, _ := e.store.QueryEvents(context.Background(), store.EventFilter{}); len(evs) != 0 {
		t.Errorf("%d events stored from a refused batch", len(evs))
	}
}

func TestDecisionsAreCreatedListedAndDeleted(t *testing.T) {
	e := newEnv(t)
	d := decode[store.Decision](t, e.do(t, "POST", "/v1/decisions", control.DecisionRequest{
		Scope: store.ScopeCIDR, Value: "203.0.113.77/24", Action: store.ActionBlock, Reason: "scanner", TTL: "1h",
	}), http.StatusCreated)
	if d.ID == "" || d.Value != "203.0.113.0/24" || d.Origin != store.OriginManual || time.Until(d.Expires) < 59*time.Minute {
		t.Errorf("created %+v", d)
	}
	list := decode[control.DecisionList](t, e.do(t, "GET", "/v1/decisions", nil), http.StatusOK)
	if len(list.Decisions) != 1 || list.Decisions[0].ID != d.ID {
		t.Errorf("list: %+v", list)
	}
	got := decode[store.Decision](t, e.do(t, "GET", "/v1/decisions/"+d.ID, nil), http.StatusOK)
	if got.ID != d.ID {
		t.Errorf("get: %+v", got)
	}
	if r := e.do(t, "DELETE", "/v1/decisions/"+d.ID, nil); r.status != http.StatusNoContent {
		t.Errorf("delete: %d %s", r.status, r.body)
	}
	wantError(t, e.do(t, "DELETE", "/v1/decisions/"+d.ID, nil), http.StatusNotFound, "not_found")
	list = decode[control.DecisionList](t, e.do(t, "GET", "/v1/decisions", nil), http.StatusOK)
	if len(list.Decisions) != 0 {
		t.Errorf("after delete: %+v", list)
	}
}

func TestInvalidDecisionsNameTheField(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		body  string
		field string
	}{
		{`{"scope":"planet","value":"earth","action":"block"}`, "scope"},
		{`{"scope":"ip","value":"999.1.1.1","action":"block"}`, "value"},
		{`{"scope":"ip","value":"10.0.0.1","action":"obliterate"}`, "action"},
		{`{"scope":"ip","value":"10.0.0.1","action":"block","ttl":"forever"}`, "ttl"},
		{`{"scope":"ip","value":"10.0.0.1","action":"block","id":"mine"}`, "id"},
		{`{"scope":"ip","value":"10.0.0.1","action":"block","rate_limit":"lots"}`, "rate_limit"},
		{`{"scope":"ip","value":"10.0.0.1","action":"rate-limit","rate_limit":100000000000}`, "rate_limit"},
	} {
		t.Run(tc.field, func(t *testing.T) {
			eb := wantError(t, e.do(t, "POST", "/v1/decisions", tc.body), http.StatusBadRequest, "invalid")
			if eb.Field != tc.field {
				t.Errorf("field %q, want %q (%s)", eb.Field, tc.field, eb.Error)
			}
		})
	}
	if ds, _ := e.store.ListDecisions(context.Background(), true); len(ds) != 0 {
		t.Errorf("%d decisions stored from refused requests", len(ds))
	}
}

func TestJoinTokensAreCreatedForValidServiceNames(t *testing.T) {
	e := newEnv(t)
	tok := decode[control.TokenResponse](t, e.do(t, "POST", "/v1/tokens", control.TokenRequest{Service: "payments", TTL: "10m"}), http.StatusCreated)
	if !strings.HasPrefix(tok.Token, "rjt_") || tok.Service != "payments" || time.Until(tok.Expires) > 10*time.Minute {
		t.Errorf("token %+v", tok)
	}
	for _, body := range []control.TokenRequest{{Service: "Payments"}, {Service: ""}, {Service: "a/b"}, {Service: "api", TTL: "-1m"}, {Service: "api", TTL: "9999h"}} {
		eb := wantError(t, e.do(t, "POST", "/v1/tokens", body), http.StatusBadRequest, "invalid")
		if eb.Field == "" {
			t.Errorf("%+v: no field in %+v", body, eb)
		}
	}
}

func TestBadRequestsAreClearJSONErrorsAndWriteNothing(t *testing.T) {
	e := newEnv(t)
	valid := `{"scope":"ip","value":"10.0.0.1","action":"block"}`
	huge := `{"scope":"ip","value":"10.0.0.1","action":"block","reason":"` + strings.Repeat("x", 2<<20) + `"}`
	for _, tc := range []struct {
		name        string
		body        string
		auth        string
		contentType string
		status      int
		code        string
	}{
		{"malformed JSON", `{"scope":`, "admin", "application/json", 400, "invalid"},
		{"two JSON values", valid + valid, "admin", "application/json", 400, "invalid"},
		{"an empty body", ``, "admin", "application/json", 400, "invalid"},
		{"an oversized body", huge, "admin", "application/json", 413, "too_large"},
		{"a wrong content type", valid, "admin", "text/plain", 415, "unsupported_media_type"},
		{"no content type", valid, "admin", "", 415, "unsupported_media_type"},
		{"no admin token", valid, "", "application/json", 401, "unauthorized"},
		{"a wrong admin token", valid, "Bearer rat_wrong", "application/json", 401, "unauthorized"},
		{"a basic auth header", valid, "Basic YWRtaW46YWRtaW4=", "application/json", 401, "unauthorized"},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			auth := tc.auth
			if auth == "admin" {
				auth = "Bearer " + e.admin
			}
			r := e.doWith(t, "POST", "/v1/decisions", tc.body, auth, tc.contentType)
			wantError(t, r, tc.status, tc.code)
			if tc.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	if ds, _ := e.store.ListDecisions(context.Background(), true); len(ds) != 0 {
		t.Errorf("%d decisions stored from refused requests", len(ds))
	}
	for _, path := range []string{"/v1/events", "/v1/decisions", "/v1/services", "/v1/watch?timeout=0s"} {
		wantError(t, e.doWith(t, "GET", path, nil, "", ""), http.StatusUnauthorized, "unauthorized")
	}
	wantError(t, e.do(t, "GET", "/v1/nothing-here", nil), http.StatusNotFound, "not_found")
	r := e.do(t, "PUT", "/v1/events", nil)
	wantError(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "POST") || !strings.Contains(allow, "GET") {
		t.Errorf("Allow: %q", allow)
	}
}

func TestServicesListTheInventory(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i, svc := range []string{"web", "api"} {
		err := e.store.Heartbeat(ctx, store.Instance{Service: svc, ID: fmt.Sprint("i", i), Exposed: svc == "web",
			Modules: []store.Module{{Path: "github.com/lib/pq", Version: "v1.10.9"}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	list := decode[control.ServiceList](t, e.do(t, "GET", "/v1/services", nil), http.StatusOK)
	if len(list.Services) != 2 || list.Services[0].Name != "api" || list.Services[1].Name != "web" {
		t.Errorf("services: %+v", list)
	}
	list = decode[control.ServiceList](t, e.do(t, "GET", "/v1/services?exposed=true", nil), http.StatusOK)
	if len(list.Services) != 1 || list.Services[0].Name != "web" {
		t.Errorf("exposed services: %+v", list)
	}
	wantError(t, e.do(t, "GET", "/v1/services?exposed=maybe", nil), http.StatusBadRequest, "invalid")
}
