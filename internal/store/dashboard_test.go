package store_test

import (
	"net/netip"
	"testing"

	"github.com/rampartsec/rampart/internal/store"
)

// FuzzParseActor: an actor it accepts is canonical (parsing its text
// again gives it back) and its events and decisions are consistent: a
// network's key range holds exactly its addresses.
func FuzzParseActor(f *testing.F) {
	for _, s := range []string{"ip:203.0.113.7", "ip:::ffff:10.0.0.1", "cidr:10.1.2.3/8", "range:2001:db8::/32",
		"cidr:::ffff:0.0.0.0/96", "user:alice", "session:ab12", "device:x", "ip:", ":", "cidr:1.2.3.4/33", "ip:fe80::1%eth0"} {
		f.Add(s, "10.1.2.3")
	}
	f.Fuzz(func(t *testing.T, s, probe string) {
		a, err := store.ParseActor(s)
		if err != nil {
			return
		}
		b, err := store.ParseActor(a.String())
		if err != nil || b != a {
			t.Fatalf("ParseActor(%q) = %v, which parses again as %v, %v", s, a, b, err)
		}
		if a.Scope != store.ScopeCIDR {
			return
		}
		ip, err := netip.ParseAddr(probe)
		if err != nil || ip.Zone() != "" {
			return
		}
		lo, hi, err := store.ActorIPKeyRange(a.Value)
		if err != nil {
			t.Fatalf("ActorIPKeyRange(%q): %v", a.Value, err)
		}
		key := store.ActorIPKey(ip.String())
		in := lo <= key && key <= hi
		if want := netip.MustParsePrefix(a.Value).Contains(ip.Unmap()); in != want {
			t.Fatalf("%s in %s: key range says %v, the network %v", ip, a.Value, in, want)
		}
	})
}
