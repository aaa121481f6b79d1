package rampart_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/controltest"
	"github.com/rampartsec/rampart/ramparttest"
)

// appTrace is the span an application's own tracing middleware would put
// in the request's context.
var appTrace = trace.NewSpanContext(trace.SpanContextConfig{
	TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
	SpanID:  trace.SpanID{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
})

// serveOnce runs h behind the agent's Handler on route and sends one request.
func serveOnce(t *testing.T, agent *rampart.Agent, route string, h http.HandlerFunc, method, target string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc(route, func(w http.ResponseWriter, r *http.Request) {
		h(w, r.WithContext(trace.ContextWithSpanContext(r.Context(), appTrace)))
	})
	srv := httptest.NewServer(agent.Handler(mux))
	defer srv.Close()
	req, _ := http.NewRequest(method, srv.URL+target, nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func checkRequestFields(t *testing.T, ev rampart.Event, route string) {
	t.Helper()
	if ev.Action != rampart.ActionObserved {
		t.Errorf("%s: action %q, want observed", ev.Kind, ev.Action)
	}
	if ev.Route != route || ev.Service != "test" || ev.ID == "" || ev.Time.IsZero() {
		t.Errorf("%s: route %q service %q id %q time %v", ev.Kind, ev.Route, ev.Service, ev.ID, ev.Time)
	}
	if ev.ActorIP != "127.0.0.1" { // outside the mesh: the peer
		t.Errorf("%s: actor ip %q, want 127.0.0.1", ev.Kind, ev.ActorIP)
	}
	if ev.TraceID != appTrace.TraceID().String() {
		t.Errorf("%s: trace %q, want the application's span's %s", ev.Kind, ev.TraceID, appTrace.TraceID())
	}
	if !strings.Contains(ev.Location, "business_test.go:") {
		t.Errorf("%s: location %q, want the line in this test that reported it", ev.Kind, ev.Location)
	}
}

func TestTrackLoginRecordsTheAttemptWithTheRequestsActorRouteAndTrace(t *testing.T) {
	agent, events := ramparttest.NewAgent(t, rampart.Config{})
	serveOnce(t, agent, "POST /login", func(w http.ResponseWriter, r *http.Request) {
		rampart.TrackLogin(r.Context(), rampart.Login{Name: "alice@example.com", User: "u-1", UserExists: true})
		rampart.TrackLogin(r.Context(), rampart.Login{Name: "alice@example.com", User: "u-1", UserExists: true, Success: true, MFA: true})
	}, "POST", "/login")

	fail, ok := events.Next(t), events.Next(t)
	if fail.Kind != rampart.KindLoginFailure || fail.Login != (rampart.Login{Name: "alice@example.com", User: "u-1", UserExists: true}) {
		t.Errorf("first: %s %+v, want a login_failure for alice", fail.Kind, fail.Login)
	}
	if ok.Kind != rampart.KindLoginSuccess || !ok.Login.Success || !ok.Login.MFA {
		t.Errorf("second: %s %+v, want a login_success with MFA", ok.Kind, ok.Login)
	}
	checkRequestFields(t, fail, "POST /login")
	checkRequestFields(t, ok, "POST /login")
	if fail.Method != "POST" || fail.RequestID == "" {
		t.Errorf("method %q request id %q", fail.Method, fail.RequestID)
	}
	// The JSON detection reads: login.name, login.exists, login.mfa.
	data, _ := json.Marshal(ok)
	for _, want := range []string{`"kind":"login_success"`, `"action":"observed"`, `"login":{"name":"alice@example.com","user":"u-1","success":true,"exists":true,"mfa":true}`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("JSON %s lacks %s", data, want)
		}
	}
}

func TestTrackLoginRedactsALoginNameThatIsASecretInput(t *testing.T) {
	agent, events := ramparttest.NewAgent(t, rampart.Config{})
	serveOnce(t, agent, "POST /login", func(w http.ResponseWriter, r *http.Request) {
		rampart.TrackLogin(r.Context(), rampart.Login{Name: r.URL.Query().Get("password")})
	}, "POST", "/login?password=hunter2secret")
	if ev := events.Next(t); ev.Login.Name != rampart.Redacted {
		t.Errorf("login name %q, want %q", ev.Login.Name, rampart.Redacted)
	}
}

func TestTrackEventIsBoundedAndRedacted(t *testing.T) {
	agent, events := ramparttest.NewAgent(t, rampart.Config{SecretNames: []string{"iban"}})
	attrs := map[string]string{
		"name":                   "not the name",
		"amount":                 "120.00",
		"card_token":             "tok_4242", // a secret by its key
		"iban":                   "FR7630006000011234567890189",
		"note":                   "pasted reset-8f3a9c in the note", // the request's secret input
		"long":                   strings.Repeat("é", 300),
		strings.Repeat("k", 100): "long key",
	}
	for i := range 40 {
		attrs["z"+string(rune('a'+i%26))+string(rune('a'+i/26))] = "filler"
	}
	name := strings.Repeat("checkout-", 20)
	serveOnce(t, agent, "POST /reset", func(w http.ResponseWriter, r *http.Request) {
		rampart.TrackEvent(r.Context(), name, attrs)
	}, "POST", "/reset?reset_token=reset-8f3a9c")

	ev := events.Next(t)
	if ev.Kind != rampart.KindBusiness {
		t.Fatalf("kind %q, want business", ev.Kind)
	}
	checkRequestFields(t, ev, "POST /reset")
	if len(ev.Attrs) != rampart.MaxEventAttrs {
		t.Errorf("%d attributes, want %d: %v", len(ev.Attrs), rampart.MaxEventAttrs, ev.Attrs)
	}
	if got := ev.Attrs["name"]; len(got) > rampart.MaxEventName || !strings.HasPrefix(got, "checkout-checkout-") {
		t.Errorf("name %q (%d bytes), want the name cut to %d", got, len(got), rampart.MaxEventName)
	}
	for k, v := range ev.Attrs {
		if len(k) > rampart.MaxEventAttrKey || len(v) > rampart.MaxEventAttrValue {
			t.Errorf("attribute %q=%q is longer than the bounds", k, v)
		}
	}
	want := map[string]string{"amount": "120.00", "card_token": rampart.Redacted, "iban": rampart.Redacted,
		"note": "pasted " + rampart.Redacted + " in the note"}
	for k, v := range want {
		if ev.Attrs[k] != v {
			t.Errorf("attrs[%q] = %q, want %q", k, ev.Attrs[k], v)
		}
	}
	if v := ev.Attrs["long"]; !strings.HasSuffix(v, "…") {
		t.Errorf("a long value is not marked as cut: %q", v)
	}
	if _, ok := attrs["zza"]; !ok { // given, but last in key order
		t.Fatal("the test lost its filler attributes")
	}
	if _, ok := ev.Attrs["zza"]; ok {
		t.Error("past the bound, the attributes kept are not the first in key order")
	}
}

func TestObjectAccessReportsOnlyForeignObjects(t *testing.T) {
	agent, events := ramparttest.NewAgent(t, rampart.Config{})
	serveOnce(t, agent, "GET /invoices/{id}", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		rampart.SetUser(ctx, "bob")
		rampart.ObjectAccess(ctx, "invoice", "1", "bob") // bob's own
		rampart.ObjectAccess(ctx, "invoice", "2", "")    // public
		rampart.ObjectAccess(ctx, "invoice", r.PathValue("id"), "carol")
		rampart.TrackEvent(ctx, "end", nil)
	}, "GET", "/invoices/7")

	events.Wait(t, func(ev rampart.Event) bool { return ev.Attrs["name"] == "end" })
	var foreign []rampart.Event
	for _, ev := range events.Events() {
		if ev.Kind == rampart.KindObjectAccess {
			foreign = append(foreign, ev)
		}
		if ev.ActorUser != "bob" {
			t.Errorf("%s: actor user %q, want bob (SetUser)", ev.Kind, ev.ActorUser)
		}
	}
	if len(foreign) != 1 || foreign[0].Object != (rampart.Object{Kind: "invoice", ID: "7", Owner: "carol"}) {
		t.Fatalf("object_access events %+v, want one for carol's invoice 7", foreign)
	}
	checkRequestFields(t, foreign[0], "GET /invoices/{id}")
}

func TestAnonymousActorReadingAnOwnedObjectIsASignal(t *testing.T) {
	agent, events := ramparttest.NewAgent(t, rampart.Config{})
	serveOnce(t, agent, "GET /invoices/{id}", func(w http.ResponseWriter, r *http.Request) {
		rampart.ObjectAccess(r.Context(), "invoice", "9", "carol")
	}, "GET", "/invoices/9")
	if ev := events.Next(t); ev.Kind != rampart.KindObjectAccess || ev.ActorUser != "" || ev.Object.Owner != "carol" {
		t.Errorf("%s user %q object %+v, want carol's object served to an anonymous actor", ev.Kind, ev.ActorUser, ev.Object)
	}
}

func TestSetUserNamesTheUserInTheRequestsSecurityEvents(t *testing.T) {
	agent, events := ramparttest.NewAgent(t, rampart.Config{Mode: rampart.ModeMonitor})
	serveOnce(t, agent, "GET /x", func(w http.ResponseWriter, r *http.Request) {
		rampart.SetUser(r.Context(), strings.Repeat("u", 1000))
		agent.Report(r.Context(), rampart.Finding{Kind: rampart.KindSQLInjection, Sink: "test"})
	}, "GET", "/x")
	if ev := events.Next(t); len(ev.ActorUser) > 256 || !strings.HasPrefix(ev.ActorUser, "uuu") {
		t.Errorf("actor user %q (%d bytes), want SetUser's cut to 256 bytes", ev.ActorUser, len(ev.ActorUser))
	}
}

// Outside a request there is no agent to report to: the calls do nothing,
// and fail nothing.
func TestBusinessCallsOutsideARequestDoNothing(t *testing.T) {
	agent, events := ramparttest.NewAgent(t, rampart.Config{SummaryWindow: 1 << 62})
	ctx := context.Background()
	rampart.SetUser(ctx, "bob")
	rampart.TrackLogin(ctx, rampart.Login{Name: "x"})
	rampart.TrackEvent(ctx, "checkout", map[string]string{"a": "b"})
	rampart.ObjectAccess(ctx, "invoice", "1", "carol")
	ctx = rampart.WithUntrusted(ctx, rampart.Source("queue"), "payload") // a queue job's context
	rampart.TrackEvent(ctx, "payout", nil)
	if s := agent.Stats(); s.Events != 0 {
		t.Fatalf("%d events outside a request, want none", s.Events)
	}
	serveOnce(t, agent, "GET /end", func(w http.ResponseWriter, r *http.Request) {
		rampart.TrackEvent(r.Context(), "end", nil)
	}, "GET", "/end")
	ev := events.Next(t)
	if ev.Attrs["name"] != "end" || ev.ActorUser != "" {
		t.Errorf("first event %+v, want end's, with no user", ev)
	}
}

// In the mesh, the events carry the actor token the service received: the
// control plane accepts the new kinds, and stores their actor as verified
// when the token backs it and as claimed by the service when SetUser
// named a user the token does not.
func TestBusinessEventsReachTheControlPlaneVerifiedOrClaimed(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	cp.ApplyPolicy(t, `
services:
  orders:
    allow:
      - callers: [gateway]
`)
	orders := startService(t, cp, "orders", func(a *rampart.Agent, mux *http.ServeMux) {
		mux.HandleFunc("GET /invoices/{id}", func(w http.ResponseWriter, r *http.Request) {
			rampart.ObjectAccess(r.Context(), "invoice", r.PathValue("id"), "carol")
			rampart.TrackLogin(r.Context(), rampart.Login{Name: "alice", Success: true})
		})
		mux.HandleFunc("GET /self", func(w http.ResponseWriter, r *http.Request) {
			rampart.SetUser(r.Context(), "mallory")
			rampart.TrackEvent(r.Context(), "checkout", map[string]string{"amount": "5"})
		})
	})
	gateway := cp.Join(t, "gateway")
	signer := cp.Signer(t, gateway)
	token, err := signer.TokenFor(alice, audience(t, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	anon := alice
	anon.User = ""
	anonToken, err := signer.TokenFor(anon, audience(t, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	for path, tok := range map[string]string{"/invoices/7": token, "/self": anonToken} {
		req, _ := http.NewRequest("GET", orders.url+path, nil)
		req.Header.Set("Rampart-Actor", tok)
		req.Header.Set("traceparent", traceparent)
		resp, err := client(t, gateway, "orders").Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// The token without user backs mallory's address and session; her
	// user is what orders claims.
	for _, c := range []struct {
		kind          string
		user          string
		verified      bool
		userClaimedBy string
	}{
		{"object_access", "alice", true, ""},
		{"login_success", "alice", true, ""},
		{"business", "mallory", true, "orders"},
	} {
		q := "service=orders&kind=" + url.QueryEscape(c.kind)
		cp.WaitEvent(t, q)
		got := storedEvents(t, cp, q)
		if len(got) != 1 {
			t.Fatalf("%s: %d events stored", c.kind, len(got))
		}
		e := got[0]
		if e.ActorUser != c.user || e.ActorIP != "203.0.113.7" || e.ActorVerified != c.verified {
			t.Errorf("%s: stored user %q ip %q verified %v; want %q, 203.0.113.7, verified %v", c.kind, e.ActorUser, e.ActorIP, e.ActorVerified, c.user, c.verified)
		}
		if !c.verified && e.ActorClaimedBy != "orders" {
			t.Errorf("%s: claimed by %q, want orders", c.kind, e.ActorClaimedBy)
		}
		if e.ActorUserClaimedBy != c.userClaimedBy {
			t.Errorf("%s: user claimed by %q, want %q", c.kind, e.ActorUserClaimedBy, c.userClaimedBy)
		}
		var data struct {
			TraceID string `json:"trace_id"`
			Route   string `json:"route"`
		}
		json.Unmarshal(e.Data, &data)
		if data.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || data.Route == "" {
			t.Errorf("%s: trace %q route %q, want the request's", c.kind, data.TraceID, data.Route)
		}
	}
}

// The control plane refuses an actor with control characters or invalid
// UTF-8, and with it the whole batch: SetUser's user never has them.
func TestSetUserKeepsTheUserPrintable(t *testing.T) {
	agent, events := ramparttest.NewAgent(t, rampart.Config{})
	serveOnce(t, agent, "GET /x", func(w http.ResponseWriter, r *http.Request) {
		rampart.SetUser(r.Context(), "bob\n\x00admin\xff")
		rampart.TrackEvent(r.Context(), "x", nil)
	}, "GET", "/x")
	if got, want := events.Next(t).ActorUser, "bob\uFFFD\uFFFDadmin\uFFFD"; got != want {
		t.Errorf("actor user %q, want %q", got, want)
	}
}

// A login or a summary is no security event: the default sink logs it at
// Info, under a message of its own, with the business fields.
func TestSlogSinkLogsObservedEventsAtInfo(t *testing.T) {
	var buf bytes.Buffer
	sink := rampart.NewSlogSink(slog.New(slog.NewJSONHandler(&buf, nil)))
	err := sink.WriteEvents(context.Background(), []rampart.Event{
		{Kind: rampart.KindLoginFailure, Action: rampart.ActionObserved, ActorIP: "192.0.2.1", Login: rampart.Login{Name: "alice", UserExists: true}},
		{Kind: rampart.KindSQLInjection, Action: rampart.ActionBlocked},
	})
	if err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	for dec := json.NewDecoder(&buf); dec.More(); {
		var line map[string]any
		if err := dec.Decode(&line); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
	}
	if len(lines) != 2 || lines[0]["level"] != "INFO" || lines[0]["msg"] != "rampart observed event" || lines[1]["level"] != "WARN" {
		t.Fatalf("logged %v", lines)
	}
	ev := lines[0]["event"].(map[string]any)
	login, _ := ev["login"].(map[string]any)
	if ev["actor_ip"] != "192.0.2.1" || login["name"] != "alice" || login["exists"] != true {
		t.Errorf("logged event %v, want its actor and login", ev)
	}
}
