package rampart_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/controltest"
	"github.com/rampartsec/rampart/internal/store"
)

// A service that authenticates its users itself calls SetUser in its
// middleware for every request with a session, the login form's included.
// An attacker who logs in to an account of its own and keeps that session
// cookie on every login attempt must not make its attempts unverifiable:
// the user SetUser names is the service's claim, which the actor token
// does not back, and an event whose actor is claimed is read by detection
// with no actor at all, its address included, so credential stuffing,
// brute force, enumeration and account takeover would see nothing of it.
// A login attempt's actor is the one the token names.
func TestASessionOfTheAttackersOwnDoesNotHideItsLoginAttempts(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	cp.ApplyPolicy(t, `
services:
  auth:
    allow:
      - callers: [gateway]
`)
	auth := startService(t, cp, "auth", func(a *rampart.Agent, mux *http.ServeMux) {
		mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
			if c, err := r.Cookie("session"); err == nil {
				rampart.SetUser(r.Context(), c.Value) // the service's own session
			}
			rampart.TrackLogin(r.Context(), rampart.Login{Name: r.FormValue("user")})
			w.WriteHeader(http.StatusUnauthorized)
		})
	})
	gateway := cp.Join(t, "gateway")
	anon := alice
	anon.User = "" // the gateway does not authenticate users here
	token, err := cp.Signer(t, gateway).TokenFor(anon, audience(t, "auth"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", auth.url+"/login", strings.NewReader(url.Values{"user": {"victim@example.com"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Rampart-Actor", token)
	req.AddCookie(&http.Cookie{Name: "session", Value: "mallory"})
	resp, err := client(t, gateway, "auth").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	q := "service=auth&kind=login_failure"
	cp.WaitEvent(t, q)
	got := storedEvents(t, cp, q)
	if len(got) != 1 {
		t.Fatalf("%d events stored", len(got))
	}
	if e := got[0]; !e.ActorVerified || e.ActorIP != "203.0.113.7" {
		t.Errorf("login failure stored with ip %q user %q verified %v (claimed by %q); want 203.0.113.7, verified",
			e.ActorIP, e.ActorUser, e.ActorVerified, e.ActorClaimedBy)
	}
	var stored store.Event
	if err := json.Unmarshal(cp.Events(t, q)[0], &stored); err != nil {
		t.Fatal(err)
	}
	if ev := control.DetectEvent(stored); ev.Actor.IP != "203.0.113.7" || ev.Actor.User != "" || ev.Login.Name != "victim@example.com" {
		t.Errorf("detection reads actor %+v login %+v, want 203.0.113.7, no user, failing for victim@example.com", ev.Actor, ev.Login)
	}
	// The session's user is kept as the service's claim: stored, marked
	// claimed, read by no scenario.
	if stored.ActorUser != "mallory" || stored.ActorUserClaimedBy != "auth" {
		t.Errorf("stored user %q claimed by %q, want mallory claimed by auth", stored.ActorUser, stored.ActorUserClaimedBy)
	}
}
