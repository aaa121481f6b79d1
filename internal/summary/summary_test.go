package summary

import (
	"net/netip"
	"strconv"
	"testing"
)

type entry struct{ n int }

// One client varying its method makes at most 2×MaxClientKeys keys plus
// its folded ones, and never pushes another client into the overflow.
func TestAClientVaryingItsKeysIsFoldedAndOthersStayCounted(t *testing.T) {
	tab := New[entry](100)
	flooder := netip.MustParseAddr("203.0.113.9")
	for i := range 1000 {
		k := Key{IP: flooder, Route: "r" + strconv.Itoa(i%80), Method: "M" + strconv.Itoa(i), Status: 404}
		e := tab.Entry(k)
		if e == nil {
			t.Fatalf("request %d of the flooder overflowed", i)
		}
		e.n++
	}
	honest := tab.Entry(Key{IP: netip.MustParseAddr("192.0.2.1"), Route: "r", Method: "GET", Status: 200})
	if honest == nil {
		t.Fatal("an honest client was pushed into the overflow")
	}
	honest.n++
	keys, overflow := tab.Take()
	total, folded, bare := 0, 0, 0
	for k, e := range keys {
		total += e.n
		if k.Folded {
			folded++
			if k.Method != "" || k.Session != "" || k.Status != 400 {
				t.Errorf("folded key %+v keeps what the client varies", k)
			}
			if k.Route == "" {
				bare++
			}
		}
	}
	if total != 1001 || overflow != 0 || folded == 0 || bare != 1 || len(keys) > 2*MaxClientKeys+2 {
		t.Errorf("%d keys (%d folded, %d without route) counting %d requests, overflow %d", len(keys), folded, bare, total, overflow)
	}
}

// A host that takes a new address of its IPv6 /64 for every request is one
// client: its requests past MaxClientKeys keys are folded under the /64's
// first address, and it cannot fill the window and push the others into
// the overflow.
func TestAnIPv6HostRotatingItsAddressesIsFoldedPer64(t *testing.T) {
	tab := New[entry](1000)
	for i := range 20000 {
		ip := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 8: byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
		e := tab.Entry(Key{IP: ip, Route: "r", Method: "GET", Status: 404})
		if e == nil {
			t.Fatalf("request %d of the rotating host overflowed", i)
		}
		e.n++
	}
	other := tab.Entry(Key{IP: netip.MustParseAddr("2001:db8:9::1"), Route: "r", Method: "GET", Status: 200})
	if other == nil {
		t.Fatal("another IPv6 client was pushed into the overflow")
	}
	other.n++
	keys, overflow := tab.Take()
	total, folded := 0, 0
	for k, e := range keys {
		total += e.n
		if k.Folded {
			folded += e.n
			if k.IP != netip.MustParseAddr("2001:db8:1:2::") {
				t.Errorf("folded key %+v: want it under the /64's first address", k)
			}
		}
	}
	if total != 20001 || overflow != 0 || len(keys) > MaxClientKeys+2 || folded != 20000-MaxClientKeys {
		t.Errorf("%d keys counting %d requests (%d folded), overflow %d; want at most %d keys, nothing lost",
			len(keys), total, folded, overflow, MaxClientKeys+2)
	}
}

func TestAFullWindowOverflowsAndTakeStartsTheNext(t *testing.T) {
	tab := New[entry](2)
	for i := range 5 {
		if e := tab.Entry(Key{IP: netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})}); (e == nil) != (i >= 2) {
			t.Fatalf("client %d: entry %v", i, e)
		}
	}
	if keys, overflow := tab.Take(); len(keys) != 2 || overflow != 3 {
		t.Errorf("took %d keys and %d overflowed, want 2 and 3", len(keys), overflow)
	}
	if keys, overflow := tab.Take(); keys != nil || overflow != 0 {
		t.Errorf("an empty window took %d keys and %d overflowed", len(keys), overflow)
	}
	if tab.Entry(Key{IP: netip.AddrFrom4([4]byte{192, 0, 2, 9})}) == nil {
		t.Error("the next window has no room")
	}
}
