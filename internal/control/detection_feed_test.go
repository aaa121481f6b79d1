package control_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
)

// sdkBatch is the body of POST /v1/events that the SDK's control sink and
// the gateway post for evs: the indexed fields, and each event's own JSON
// as its data.
func sdkBatch(t *testing.T, evs ...rampart.Event) control.EventBatch {
	t.Helper()
	b := control.EventBatch{Events: make([]control.IncomingEvent, len(evs))}
	for i, ev := range evs {
		data, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		b.Events[i] = control.IncomingEvent{ActorToken: ev.ActorToken, Event: store.Event{ID: ev.ID, Time: ev.Time,
			Kind: string(ev.Kind), Action: string(ev.Action), Service: ev.Service, Route: ev.Route, ActorIP: ev.ActorIP,
			ActorUser: ev.ActorUser, SessionHash: ev.SessionHash, TraceID: ev.TraceID, Data: data}}
	}
	return b
}

var sdkSeq int

func sdkEvent(kind rampart.Kind, service, route, ip string) rampart.Event {
	sdkSeq++
	return rampart.Event{ID: fmt.Sprintf("sdk-%d-%d", sdkSeq, time.Now().UnixNano()), Time: time.Now().UTC(), Kind: kind,
		Action: rampart.ActionObserved, Service: service, Route: route, ActorIP: ip}
}

func login(service, ip, name, user string, success, exists bool) rampart.Event {
	kind := rampart.KindLoginFailure
	if success {
		kind = rampart.KindLoginSuccess
	}
	ev := sdkEvent(kind, service, "POST /login", ip)
	ev.Method, ev.Path = "POST", "/login"
	ev.Login = rampart.Login{Name: name, User: user, Success: success, UserExists: exists}
	return ev
}

func TestGatewaySummariesOfDistinct404PathsAreProbing(t *testing.T) {
	e := sqliteDetecting(t, control.DetectConfig{})
	summary := func(ip string, count int, paths []string) rampart.Event {
		ev := sdkEvent(rampart.KindRequestSummary, "gateway", "shop", ip)
		ev.Method, ev.Status, ev.Count, ev.Paths = "GET", 404, count, paths
		return ev
	}
	var a, b []string
	for i := range 16 {
		a, b = append(a, fmt.Sprintf("/.env%d", i)), append(b, fmt.Sprintf("/wp-admin/%d.php", i))
	}
	// A client that asks for the same 16 missing paths 300 times over is
	// not probing; posted first, it is processed before the prober.
	decode[control.EventBatchResult](t, e.do(t, "POST", "/v1/events",
		sdkBatch(t, summary("198.51.100.20", 300, a), summary("198.51.100.20", 300, a))), http.StatusOK)
	decode[control.EventBatchResult](t, e.do(t, "POST", "/v1/events",
		sdkBatch(t, summary("203.0.113.30", 16, a), summary("203.0.113.30", 16, b))), http.StatusOK)
	var ds []store.Decision
	eventually(t, "a probing decision", func() bool {
		ds = decisionsOf(t, e.env, "probing")
		return len(ds) > 0
	})
	if len(ds) != 1 || ds[0].Scope != store.ScopeIP || ds[0].Value != "203.0.113.30" || ds[0].Action != store.ActionBlock {
		t.Errorf("probing decisions %+v, want one block of 203.0.113.30", ds)
	}
}

func TestLoginFailuresForUnknownNamesFromManyAddressesAreCredentialStuffing(t *testing.T) {
	e := sqliteDetecting(t, control.DetectConfig{})
	var evs []rampart.Event
	for i := range 60 {
		ip := fmt.Sprintf("198.51.%d.%d", 100+i/200, 1+i%200)
		for j := range 2 {
			evs = append(evs, login("auth", ip, fmt.Sprintf("stale%d-%d@example.com", i, j), "", false, false))
		}
	}
	decode[control.EventBatchResult](t, e.do(t, "POST", "/v1/events", sdkBatch(t, evs...)), http.StatusOK)
	eventually(t, "a campaign of credential stuffing", func() bool {
		return len(decisionsOf(t, e.env, "credential-stuffing-distributed")) >= 50
	})
	for _, d := range decisionsOf(t, e.env, "credential-stuffing-distributed") {
		if d.Scope != store.ScopeIP || d.Action != store.ActionBlockSensitive {
			t.Errorf("decision %+v, want the address refused the sensitive routes", d)
		}
	}
}

func TestALoginAfterFailuresFromTheSameAddressMakesTheAccountReadOnly(t *testing.T) {
	e := sqliteDetecting(t, control.DetectConfig{})
	var evs []rampart.Event
	for range 6 {
		evs = append(evs, login("auth", "203.0.113.44", "carol@example.com", "u-carol", false, true))
	}
	evs = append(evs, login("auth", "203.0.113.44", "carol@example.com", "u-carol", true, true))
	decode[control.EventBatchResult](t, e.do(t, "POST", "/v1/events", sdkBatch(t, evs...)), http.StatusOK)
	var ds []store.Decision
	eventually(t, "an account-takeover decision", func() bool {
		ds = decisionsOf(t, e.env, "account-takeover")
		return len(ds) > 0
	})
	if len(ds) != 1 || ds[0].Scope != store.ScopeUser || ds[0].Value != "u-carol" || ds[0].Action != store.ActionReadOnly ||
		!slices.Contains(ds[0].Evidence, evs[len(evs)-1].ID) {
		t.Errorf("decisions %+v, want u-carol read-only on the success's evidence", ds)
	}
}
