package control

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/rampartsec/rampart/actor"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/sqlite"
)

// FuzzEventActor posts, as service orders, events naming any actor with
// any actor token: an actor is stored as verified only if it is exactly the
// one of a token minted for orders, or that one's address and session when
// the token carries no user (the user then claimed by orders), and
// otherwise as claimed by orders.
func FuzzEventActor(f *testing.F) {
	st, err := sqlite.Open(context.Background(), sqlite.Config{Dir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	td := spiffeid.RequireTrustDomainFromString("example.org")
	authority, err := ca.Generate(td, ca.Config{})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	ks, err := ca.NewKeySet(ca.KeySetConfig{}, now.Add(-time.Minute))
	if err != nil {
		f.Fatal(err)
	}
	_, hash := NewAdminToken()
	h, err := New(Config{Store: st, CA: authority, KeySet: ks, AdminTokenHash: hash, Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	signer, _ := actor.NewSigner(actor.SignerConfig{Issuer: "spiffe://example.org/svc/gateway", Audience: "spiffe://example.org/svc/orders",
		Now: func() time.Time { return now.Add(-time.Minute) }})
	if err := signer.SetKey(ks.Current().ID, ks.Current().Key); err != nil {
		f.Fatal(err)
	}
	alice := actor.Actor{IP: netip.MustParseAddr("203.0.113.7"), User: "alice", Session: strings.Repeat("5e", 32)}
	good, err := signer.Token(alice)
	if err != nil {
		f.Fatal(err)
	}
	anonymous := actor.Actor{IP: netip.MustParseAddr("198.51.100.8"), Session: strings.Repeat("ab", 32)}
	anon, err := signer.Token(anonymous)
	if err != nil {
		f.Fatal(err)
	}
	forWeb, _ := actor.NewAudience("spiffe://example.org/svc/web")
	other, _ := signer.TokenFor(alice, forWeb)
	parts := strings.Split(good, ".")
	for _, seed := range []struct{ token, ip, user, session string }{
		{good, "203.0.113.7", "alice", alice.Session},
		{good, "::ffff:203.0.113.7", "alice", alice.Session},
		{good, "198.51.100.66", "alice", alice.Session},
		{good, "203.0.113.7", "bob", alice.Session},
		{good, "203.0.113.7", "alice", ""},
		{other, "203.0.113.7", "alice", alice.Session},
		{parts[0] + "." + parts[1] + ".", "203.0.113.7", "alice", alice.Session},
		{"", "203.0.113.7", "alice", alice.Session},
		{"x.y.z", "", "", ""},
		{anon, "198.51.100.8", "", anonymous.Session},
		{anon, "198.51.100.8", "carol", anonymous.Session},
		{anon, "198.51.100.9", "carol", anonymous.Session},
	} {
		f.Add(seed.token, seed.ip, seed.user, seed.session)
	}
	// The property below is not vacuous: the real token verifies.
	real := h.attributeActors(context.Background(), "orders", []IncomingEvent{{ActorToken: good, Event: store.Event{
		ID: "e", Time: now, Kind: "k", Service: "orders", ActorIP: "203.0.113.7", ActorUser: "alice", SessionHash: alice.Session}}})
	if !real[0].ActorVerified {
		f.Fatalf("alice's own token does not back her event: %+v", real[0])
	}
	f.Fuzz(func(t *testing.T, token, ip, user, session string) {
		ev := store.Event{ID: "e", Time: now, Kind: "k", Service: "orders", ActorIP: ip, ActorUser: user, SessionHash: session}
		out := h.attributeActors(context.Background(), "orders", []IncomingEvent{{Event: ev, ActorToken: token}})
		got := out[0]
		hasActor := ip != "" || user != "" || session != ""
		if got.ActorVerified {
			addr, err := netip.ParseAddr(ip)
			switch {
			case token == good && err == nil && addr.Unmap() == alice.IP && user == alice.User && session == alice.Session:
				if got.ActorUserClaimedBy != "" {
					t.Fatalf("alice's own user came out claimed: %+v", got)
				}
			case token == anon && err == nil && addr.Unmap() == anonymous.IP && session == anonymous.Session:
				if want := map[bool]string{true: "orders"}[user != ""]; got.ActorUserClaimedBy != want {
					t.Fatalf("user %q of a token without user came out claimed by %q, want %q", user, got.ActorUserClaimedBy, want)
				}
			default:
				t.Fatalf("verified %q/%q/%q with token %q", ip, user, session, token)
			}
			if got.ActorClaimedBy != "" {
				t.Fatalf("a verified actor came out claimed: %+v", got)
			}
		}
		if hasActor && !got.ActorVerified && (got.ActorClaimedBy != "orders" || got.ActorUserClaimedBy != "") {
			t.Fatalf("unverified actor not claimed by orders: %+v", got)
		}
		if !hasActor && (got.ActorVerified || got.ActorClaimedBy != "" || got.ActorUserClaimedBy != "") {
			t.Fatalf("an event without actor came out %+v", got)
		}
	})
}
