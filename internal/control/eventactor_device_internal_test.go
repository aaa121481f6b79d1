package control

import (
	"context"
	"encoding/json"
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

// The device of an event (its data's "device", which the SDK copies from
// the actor token) is verified with the rest of the actor: a service that
// names another device than its token's gets the actor stored as claimed,
// so that it cannot make detection count, or decide on, a device of its
// choosing.
func TestATokenBacksTheDeviceItCarriesOnly(t *testing.T) {
	st, err := sqlite.Open(context.Background(), sqlite.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	authority, err := ca.Generate(spiffeid.RequireTrustDomainFromString("example.org"), ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ks, err := ca.NewKeySet(ca.KeySetConfig{}, now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	_, hash := NewAdminToken()
	h, err := New(Config{Store: st, CA: authority, KeySet: ks, AdminTokenHash: hash, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := actor.NewSigner(actor.SignerConfig{Issuer: "spiffe://example.org/svc/gateway", Audience: "spiffe://example.org/svc/orders",
		Now: func() time.Time { return now.Add(-time.Minute) }})
	if err := signer.SetKey(ks.Current().ID, ks.Current().Key); err != nil {
		t.Fatal(err)
	}
	a := actor.Actor{IP: netip.MustParseAddr("203.0.113.7"), User: "alice", Session: strings.Repeat("5e", 32), Device: "c-aaaa"}
	token, err := signer.Token(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, data string
		verified   bool
		device     string
	}{
		{"the token's device", `{"device":"c-aaaa","login":{"name":"alice"}}`, true, "c-aaaa"},
		{"no device named", `{"login":{"name":"alice"}}`, true, ""},
		{"another device", `{"device":"c-bbbb","login":{"name":"alice"}}`, false, ""},
		{"a device of another type", `{"device":42}`, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := h.attributeActors(context.Background(), "orders", []IncomingEvent{{ActorToken: token, Event: store.Event{
				ID: "e", Time: now, Kind: "login_failure", Service: "orders", ActorIP: "203.0.113.7", ActorUser: "alice",
				SessionHash: a.Session, Data: json.RawMessage(c.data)}}})
			if got[0].ActorVerified != c.verified {
				t.Fatalf("verified %v (claimed by %q), want %v", got[0].ActorVerified, got[0].ActorClaimedBy, c.verified)
			}
			if ev := DetectEvent(got[0]); ev.Actor.Device != c.device {
				t.Errorf("detection reads device %q, want %q", ev.Actor.Device, c.device)
			}
		})
	}
}
