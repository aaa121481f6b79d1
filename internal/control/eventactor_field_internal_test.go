package control

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/actor"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/sqlite"
)

// fieldEnv is a control plane whose actor-token keys sign the tokens a
// gateway would give the service auth, running detection over its store.
type fieldEnv struct {
	h      *Handler
	st     store.Store
	det    *Detector
	signer *actor.Signer
	admin  string
}

func newFieldEnv(t *testing.T) *fieldEnv {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	authority, err := ca.Generate(spiffeid.RequireTrustDomainFromString("example.org"), ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := ca.NewKeySet(ca.KeySetConfig{}, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	det, err := NewDetector(st, DetectConfig{})
	if err != nil {
		t.Fatal(err)
	}
	admin, hash := NewAdminToken()
	h, err := New(Config{Store: st, CA: authority, KeySet: ks, AdminTokenHash: hash, Detector: det,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := actor.NewSigner(actor.SignerConfig{Issuer: "spiffe://example.org/svc/gateway", Audience: "spiffe://example.org/svc/auth"})
	if err != nil {
		t.Fatal(err)
	}
	if err := signer.SetKey(ks.Current().ID, ks.Current().Key); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- det.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("detector: %v", err)
		}
		st.Close()
	})
	return &fieldEnv{h: h, st: st, det: det, signer: signer, admin: admin}
}

// token mints the actor token the gateway gives auth for a request of a.
func (f *fieldEnv) token(t *testing.T, ip, user, session string) string {
	t.Helper()
	tok, err := f.signer.Token(actor.Actor{IP: netip.MustParseAddr(ip), User: user, Session: session})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// post posts evs as the service auth does (POST /v1/events with its
// identity), each with its actor token, and returns them as stored.
func (f *fieldEnv) post(t *testing.T, evs ...rampart.Event) []store.Event {
	t.Helper()
	var batch EventBatch
	for _, ev := range evs {
		data, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		batch.Events = append(batch.Events, IncomingEvent{ActorToken: ev.ActorToken, Event: store.Event{ID: ev.ID, Time: ev.Time,
			Kind: string(ev.Kind), Action: string(ev.Action), Service: ev.Service, Route: ev.Route, ActorIP: ev.ActorIP,
			ActorUser: ev.ActorUser, SessionHash: ev.SessionHash, Data: data}})
	}
	body, err := json.Marshal(batch)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", "/v1/events", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	if err := f.h.postEvents(w, r, "auth"); err != nil || w.Code != http.StatusOK {
		t.Fatalf("POST /v1/events as auth: %v, %d %s", err, w.Code, w.Body)
	}
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	got, err := f.st.EventsByID(t.Context(), ids)
	if err != nil || len(got) != len(evs) {
		t.Fatalf("stored %d of %d events: %v", len(got), len(evs), err)
	}
	byID := map[string]store.Event{}
	for _, e := range got {
		byID[e.ID] = e
	}
	out := make([]store.Event, len(evs))
	for i, ev := range evs {
		out[i] = byID[ev.ID]
	}
	return out
}

func (f *fieldEnv) decisions(t *testing.T, origin string) []store.Decision {
	t.Helper()
	ds, err := f.st.ListDecisions(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Decision
	for _, d := range ds {
		if d.Origin == origin {
			out = append(out, d)
		}
	}
	return out
}

func waitFor(t *testing.T, what string, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("not within a minute: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var fieldSeq int

// authEvent is an event of the service auth about a request of the actor
// at ip with session, as the SDK reports it: the token's actor, and the
// user SetUser named when the token names none.
func authEvent(kind rampart.Kind, ip, user, session, token string) rampart.Event {
	fieldSeq++
	return rampart.Event{ID: fmt.Sprintf("auth-%d-%d", fieldSeq, time.Now().UnixNano()), Time: time.Now().UTC(), Kind: kind,
		Action: rampart.ActionObserved, Service: "auth", Route: "POST /login", Method: "POST", Path: "/login",
		ActorIP: ip, ActorUser: user, SessionHash: session, ActorToken: token}
}

var session = strings.Repeat("5e", 32)

func TestATokenBacksTheFieldsItCarriesAndTheServiceClaimsTheUserItNames(t *testing.T) {
	f := newFieldEnv(t)
	withUser := f.token(t, "203.0.113.7", "alice", session)
	noUser := f.token(t, "203.0.113.7", "", session)
	for _, c := range []struct {
		name                     string
		ev                       rampart.Event
		verified                 bool
		claimedBy, userClaimedBy string
		detectUser, detectIP     string
	}{
		{"a token naming the event's user backs it all",
			authEvent(rampart.KindLoginSuccess, "203.0.113.7", "alice", session, withUser), true, "", "", "alice", "203.0.113.7"},
		{"a token without user backs the address and session; SetUser's user is claimed",
			authEvent(rampart.KindLoginSuccess, "203.0.113.7", "bob", session, noUser), true, "", "auth", "", "203.0.113.7"},
		{"a token without user backs an event without user",
			authEvent(rampart.KindLoginFailure, "203.0.113.7", "", session, noUser), true, "", "", "", "203.0.113.7"},
		{"a token naming another user backs nothing",
			authEvent(rampart.KindLoginSuccess, "203.0.113.7", "bob", session, withUser), false, "auth", "", "", ""},
		{"a token without user backs nothing at another address",
			authEvent(rampart.KindLoginSuccess, "198.51.100.1", "bob", session, noUser), false, "auth", "", "", ""},
		{"a token without user backs nothing with another session",
			authEvent(rampart.KindLoginSuccess, "203.0.113.7", "bob", strings.Repeat("ab", 32), noUser), false, "auth", "", "", ""},
		{"a forged token backs nothing",
			authEvent(rampart.KindLoginSuccess, "203.0.113.7", "bob", session, noUser[:len(noUser)-4]+"AAAA"), false, "auth", "", "", ""},
		{"no token backs nothing",
			authEvent(rampart.KindLoginSuccess, "203.0.113.7", "bob", session, ""), false, "auth", "", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := f.post(t, c.ev)[0]
			if got.ActorVerified != c.verified || got.ActorClaimedBy != c.claimedBy || got.ActorUserClaimedBy != c.userClaimedBy ||
				got.ActorIP != c.ev.ActorIP || got.ActorUser != c.ev.ActorUser {
				t.Errorf("stored %+v; want verified %v, claimed by %q, user claimed by %q, the actor as posted",
					got, c.verified, c.claimedBy, c.userClaimedBy)
			}
			if d := DetectEvent(got); d.Actor.IP != c.detectIP || d.Actor.User != c.detectUser {
				t.Errorf("detection reads actor %+v, want ip %q user %q", d.Actor, c.detectIP, c.detectUser)
			}
		})
	}

	// The API shows the claim and filters on it.
	list := func(query string) []map[string]any {
		r := httptest.NewRequest("GET", "/v1/events?kind=login_success&"+query, nil)
		r.Header.Set("Authorization", "Bearer "+f.admin)
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		var page struct{ Events []map[string]any }
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &page) != nil {
			t.Fatalf("GET /v1/events?%s: %d %s", query, w.Code, w.Body)
		}
		return page.Events
	}
	if evs := list("actor_verified=true"); len(evs) != 2 {
		t.Errorf("actor_verified=true: %d login successes, want alice's and bob's claimed one", len(evs))
	} else if evs[1]["actor_user_claimed_by"] != "auth" || evs[0]["actor_user_claimed_by"] != nil {
		t.Errorf("actor_user_claimed_by in %v", evs)
	}
	if evs := list("actor_user_verified=true"); len(evs) != 1 || evs[0]["actor_user"] != "alice" {
		t.Errorf("actor_user_verified=true: %v, want alice's only", evs)
	}
}

// A service that authenticates its users itself: the gateway's tokens
// carry the address and the session, the service names the user with
// SetUser. Credential stuffing and account takeover key on the verified
// address; a user the service merely claims keys nothing.
func TestLoginsOfAServiceThatNamesItsUsersAreDetectedOnTheVerifiedAddress(t *testing.T) {
	f := newFieldEnv(t)

	// Stuffing from one address: failures for 30 names, each a login
	// attempt whose token carries no user; SetUser named the typed name.
	stuffer := f.token(t, "203.0.113.66", "", session)
	var evs []rampart.Event
	for i := range 30 {
		ev := authEvent(rampart.KindLoginFailure, "203.0.113.66", fmt.Sprintf("victim%d", i), session, stuffer)
		ev.Login = rampart.Login{Name: fmt.Sprintf("victim%d@example.com", i)}
		evs = append(evs, ev)
	}
	// Takeover: 6 failures then a success without MFA for carol, the
	// success's user named by SetUser.
	taker := f.token(t, "198.51.100.77", "", session)
	for range 6 {
		ev := authEvent(rampart.KindLoginFailure, "198.51.100.77", "", session, taker)
		ev.Login = rampart.Login{Name: "carol@example.com", UserExists: true}
		evs = append(evs, ev)
	}
	win := authEvent(rampart.KindLoginSuccess, "198.51.100.77", "u-carol", session, taker)
	win.Login = rampart.Login{Name: "carol@example.com", User: "u-carol", Success: true, UserExists: true}
	evs = append(evs, win)
	// Objects of others served to a user the service names: bola would
	// decide against that user, were it verified.
	reader := f.token(t, "192.0.2.10", "", session)
	for i := range 15 {
		ev := authEvent(rampart.KindObjectAccess, "192.0.2.10", "u-dave", session, reader)
		ev.Route = "GET /invoices/{id}"
		ev.Object = rampart.Object{Kind: "invoice", ID: fmt.Sprint(i), Owner: fmt.Sprintf("u-%d", i)}
		evs = append(evs, ev)
	}
	for _, e := range f.post(t, evs...) {
		if !e.ActorVerified || e.ActorClaimedBy != "" || (e.ActorUser != "" && e.ActorUserClaimedBy != "auth") {
			t.Fatalf("stored %+v, want the address verified and the user claimed by auth", e)
		}
	}
	// The same served to a user the token names: verified, decided. Posted
	// after the others, so once it is decided they were read.
	var erin []rampart.Event
	erinToken := f.token(t, "192.0.2.11", "u-erin", session)
	for i := range 15 {
		ev := authEvent(rampart.KindObjectAccess, "192.0.2.11", "u-erin", session, erinToken)
		ev.Route = "GET /invoices/{id}"
		ev.Object = rampart.Object{Kind: "invoice", ID: fmt.Sprint(i), Owner: fmt.Sprintf("u-%d", i)}
		erin = append(erin, ev)
	}
	f.post(t, erin...)
	waitFor(t, "bola against u-erin", func() bool { return len(f.decisions(t, "bola")) > 0 })

	waitFor(t, "credential stuffing from 203.0.113.66", func() bool { return len(f.decisions(t, "credential-stuffing-ip")) > 0 })
	if ds := f.decisions(t, "credential-stuffing-ip"); len(ds) != 1 || ds[0].Scope != store.ScopeIP || ds[0].Value != "203.0.113.66" {
		t.Errorf("credential-stuffing-ip decisions %+v, want one on 203.0.113.66", ds)
	}
	waitFor(t, "account takeover of u-carol", func() bool { return len(f.decisions(t, "account-takeover")) > 0 })
	if ds := f.decisions(t, "account-takeover"); len(ds) != 1 || ds[0].Scope != store.ScopeUser || ds[0].Value != "u-carol" ||
		ds[0].Action != store.ActionReadOnly {
		t.Errorf("account-takeover decisions %+v, want u-carol read-only", ds)
	}
	if ds := f.decisions(t, "bola"); len(ds) != 1 || ds[0].Value != "u-erin" {
		t.Errorf("bola decisions %+v, want one against u-erin and none against u-dave, whom the service only claims", ds)
	}
}
