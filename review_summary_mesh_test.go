package rampart_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/actor"
)

// The control plane refuses an event whose actor user is over 256 bytes,
// and with it the whole batch the event came in: the events of every
// other actor, attacks included. The gateway authenticates users by their
// token's sub, which it does not bound, so a user with a long sub (an
// identity provider that lets users pick it) must not make the service's
// business events or summaries refused: they are stored, the user cut
// (and so claimed, not verified: nothing is decided on a cut user).
func TestALongUserNameDoesNotGetTheServicesEventsRefused(t *testing.T) {
	cp, agent, addr := summarizingOrders(t, rampart.Config{}, func(mux *http.ServeMux) {
		mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
			rampart.TrackEvent(r.Context(), "checkout", nil)
			rampart.TrackLogin(r.Context(), rampart.Login{Name: "x", Success: true})
			rampart.ObjectAccess(r.Context(), "order", "1", "carol")
		})
	})

	gateway := cp.Join(t, "gateway")
	long := alice
	long.User = strings.Repeat("l", 300) + "@example.com"
	token, err := cp.Signer(t, gateway).TokenFor(long, audience(t, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "https://"+addr+"/orders/1", nil)
	req.Header.Set("Rampart-Actor", token)
	resp, err := client(t, gateway, "orders").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // a deadline for a busy machine
	defer cancel()
	if err := agent.Close(ctx); err != nil { // ships the window
		t.Fatal(err)
	}
	for _, kind := range []string{"request_summary", "business", "login_success", "object_access"} {
		got := storedEvents(t, cp, "service=orders&kind="+kind)
		if len(got) != 1 {
			t.Errorf("%s: %d events stored, want 1", kind, len(got))
			continue
		}
		e := got[0]
		if e.ActorIP != "203.0.113.7" || !strings.HasPrefix(e.ActorUser, "llll") || len(e.ActorUser) > 256 {
			t.Errorf("%s: stored ip %q user of %d bytes, want 203.0.113.7 and the user cut to 256 bytes", kind, e.ActorIP, len(e.ActorUser))
		}
		if kind != "request_summary" {
			continue
		}
		// The gateway counted this request already: a rate counted per
		// service would count it once per service it reached, and take a
		// browsing user for a scraper.
		var data struct {
			Attrs map[string]string `json:"attrs"`
		}
		json.Unmarshal(e.Data, &data)
		if data.Attrs["behind"] != "gateway" {
			t.Errorf("summary attrs %v, want behind: gateway", data.Attrs)
		}
	}
}

// In the mesh the session is the gateway's hash of whatever cookie the
// client sends: a client that sends a new one with each request must not
// hold a key per request, fill the window and push every other actor into
// the overflow summary, which names no actor. Its requests are folded into
// a summary of its own that the control plane still verifies.
func TestAClientVaryingItsSessionIsFoldedAndStaysVerified(t *testing.T) {
	cp, agent, addr := summarizingOrders(t, rampart.Config{SummaryMaxKeys: 40}, func(mux *http.ServeMux) {
		mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {})
	})

	gateway := cp.Join(t, "gateway")
	signer := cp.Signer(t, gateway)
	c := client(t, gateway, "orders")
	send := func(a actor.Actor) {
		token, err := signer.TokenFor(a, audience(t, "orders"))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("GET", "https://"+addr+"/orders/1", nil)
		req.Header.Set("Rampart-Actor", token)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	const flood = 100
	attacker := actor.Actor{IP: netip.MustParseAddr("198.51.100.66")}
	for i := range flood {
		attacker.Session = fmt.Sprintf("%064x", i)
		send(attacker)
	}
	send(alice)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // a deadline for a busy machine
	defer cancel()
	if err := agent.Close(ctx); err != nil { // ships the window
		t.Fatal(err)
	}
	fromAttacker, aliceSeen := 0, false
	for _, raw := range cp.Events(t, "service=orders&kind=request_summary") {
		var e struct {
			ActorIP       string `json:"actor_ip"`
			ActorVerified bool   `json:"actor_verified"`
			Data          struct {
				Count int               `json:"count"`
				Attrs map[string]string `json:"attrs"`
			} `json:"data"`
		}
		json.Unmarshal(raw, &e)
		switch {
		case e.Data.Attrs["overflow"] == "true":
			t.Errorf("%d requests in the overflow summary, which names no actor", e.Data.Count)
		case !e.ActorVerified:
			t.Errorf("summary stored unverified: %s", raw)
		case e.ActorIP == "198.51.100.66":
			fromAttacker += e.Data.Count
		case e.ActorIP == alice.IP.String():
			aliceSeen = true
		}
	}
	if fromAttacker != flood || !aliceSeen {
		t.Errorf("verified summaries count %d of the attacker's requests, alice's seen %v; want %d, true", fromAttacker, aliceSeen, flood)
	}
}
