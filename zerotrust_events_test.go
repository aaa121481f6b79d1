package rampart_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/controltest"
)

// storedEnvelope is an event as GET /v1/events returns it.
type storedEnvelope struct {
	ID             string `json:"id"`
	ActorIP        string `json:"actor_ip"`
	ActorUser      string `json:"actor_user"`
	ActorVerified  bool   `json:"actor_verified"`
	ActorClaimedBy string `json:"actor_claimed_by"`
	// ActorUserClaimedBy: the token backs the address and session, the
	// service named the user.
	ActorUserClaimedBy string          `json:"actor_user_claimed_by"`
	ActorToken         string          `json:"actor_token"`
	Data               json.RawMessage `json:"data"`
}

func storedEvents(t *testing.T, cp *controltest.ControlPlane, query string) []storedEnvelope {
	t.Helper()
	var out []storedEnvelope
	for _, raw := range cp.Events(t, query) {
		var e storedEnvelope
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// TestAServiceCannotFrameAnActor runs orders behind the real SDK and control
// plane: an event that orders' agent reports about alice's request carries
// the actor token orders received and is stored with its actor verified.
// Then orders, compromised, posts events of its own naming an innocent IP
// — without a token, with alice's token, with a token not meant for it,
// and claiming actor_verified itself — and each is stored as claimed by
// orders, not verified, and left out of what detectors read.
func TestAServiceCannotFrameAnActor(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	cp.ApplyPolicy(t, `
services:
  orders:
    allow:
      - callers: [gateway]
`)
	orders := startService(t, cp, "orders", func(a *rampart.Agent, mux *http.ServeMux) {
		mux.HandleFunc("GET /report", func(w http.ResponseWriter, r *http.Request) {
			a.Report(r.Context(), rampart.Finding{Kind: "framing_test", Sink: "test", Detail: "reported by the agent"})
			w.WriteHeader(http.StatusNoContent)
		})
	})
	gateway := cp.Join(t, "gateway")
	signer := cp.Signer(t, gateway)
	aliceToken, err := signer.TokenFor(alice, audience(t, "orders"))
	if err != nil {
		t.Fatal(err)
	}

	// The real path: a request with alice's token, an event from the agent.
	req, _ := http.NewRequest("GET", orders.url+"/report", nil)
	req.Header.Set("Rampart-Actor", aliceToken)
	resp, err := client(t, gateway, "orders").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden { // the finding blocks, in block mode
		t.Fatalf("GET /report: %d, want 403", resp.StatusCode)
	}
	cp.WaitEvent(t, "kind=framing_test&service=orders")
	got := storedEvents(t, cp, "kind=framing_test&service=orders")
	if len(got) != 1 || !got[0].ActorVerified || got[0].ActorClaimedBy != "" || got[0].ActorIP != "203.0.113.7" {
		t.Fatalf("the agent's event about alice: %+v, want alice, verified", got)
	}
	if got[0].ActorToken != "" || bytes.Contains(got[0].Data, []byte(aliceToken)) {
		t.Error("the actor token was stored with the event")
	}

	// orders, compromised, posts with its own SVID.
	forWeb, _ := signer.TokenFor(alice, audience(t, "web"))
	now := time.Now().UTC().Format(time.RFC3339Nano)
	post := func(id, actorIP, user, token string) {
		t.Helper()
		ev := map[string]any{"id": id, "time": now, "kind": "framing", "action": "blocked", "service": "orders",
			"actor_ip": actorIP, "actor_user": user, "session_hash": alice.Session, "actor_verified": true, "data": map[string]any{}}
		if token != "" {
			ev["actor_token"] = token
		}
		body, _ := json.Marshal(map[string]any{"events": []any{ev}})
		resp, err := orders.src.ControlPlaneClient().Post(cp.URL+"/v1/events", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			msg, _ := io.ReadAll(resp.Body)
			t.Fatalf("POST /v1/events %s: %d %s", id, resp.StatusCode, msg)
		}
	}
	post("no-token", "198.51.100.66", "", "")
	post("alices-token", "198.51.100.66", "", aliceToken)
	post("alices-token-other-user", "203.0.113.7", "bob", aliceToken)
	post("token-for-web", "203.0.113.7", "alice", forWeb)
	post("garbage-token", "203.0.113.7", "alice", "x.y.z")
	post("matching", "203.0.113.7", "alice", aliceToken) // a compromised service may still name, verified, an actor it really served
	byID := map[string]storedEnvelope{}
	for _, e := range storedEvents(t, cp, "kind=framing&service=orders") {
		byID[e.ID] = e
	}
	for _, id := range []string{"no-token", "alices-token", "alices-token-other-user", "token-for-web", "garbage-token"} {
		e, ok := byID[id]
		if !ok {
			t.Errorf("%s: not stored", id)
			continue
		}
		if e.ActorVerified || e.ActorClaimedBy != "orders" {
			t.Errorf("%s: actor_verified %v, claimed by %q; want claimed by orders", id, e.ActorVerified, e.ActorClaimedBy)
		}
	}
	if e := byID["matching"]; !e.ActorVerified || e.ActorClaimedBy != "" {
		t.Errorf("matching: %+v, want verified", e)
	}
	// What a detector reads: only verified actors; the innocent IP is not
	// among them.
	var verified []string
	for _, e := range storedEvents(t, cp, "actor_verified=true&service=orders") {
		verified = append(verified, e.ID+"/"+e.ActorIP)
	}
	if got := fmt.Sprint(verified); len(verified) != 2 || bytes.Contains([]byte(got), []byte("198.51.100.66")) {
		t.Errorf("events with a verified actor: %v, want the agent's and matching, alice's only", got)
	}
}

// A security event of an actor whose user is longer than the control plane
// stores must still be stored: before, the batch holding it was refused
// whole, with every other actor's events.
func TestASecurityEventOfALongUserIsNotRefused(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	cp.ApplyPolicy(t, "services:\n  orders:\n    allow:\n      - callers: [gateway]\n")
	var agent *rampart.Agent
	orders := startService(t, cp, "orders", func(a *rampart.Agent, mux *http.ServeMux) {
		agent = a
		mux.HandleFunc("GET /search", func(w http.ResponseWriter, r *http.Request) {
			a.Report(r.Context(), rampart.Finding{Kind: rampart.KindSQLInjection, Sink: "test", Detail: "x"})
		})
	})
	gateway := cp.Join(t, "gateway")
	long := alice
	long.User = strings.Repeat("l", 300)
	token, err := cp.Signer(t, gateway).TokenFor(long, audience(t, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("GET", orders.url+"/search", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Rampart-Actor", token)
	resp, err := client(t, gateway, "orders").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := agent.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := storedEvents(t, cp, "service=orders&kind=sql_injection")
	if len(got) != 1 {
		t.Fatalf("%d sql_injection events stored, want 1", len(got))
	}
	if got[0].ActorVerified {
		t.Errorf("a cut user was stored as verified: %+v", got[0])
	}
}
