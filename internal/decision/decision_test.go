package decision

import (
	"net/netip"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func mustSet(t testing.TB, ds ...Decision) *Set {
	t.Helper()
	s, err := NewSet(ds)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRefusal(t *testing.T) {
	s := mustSet(t,
		Decision{ID: "1", Scope: ScopeIP, Value: "203.0.113.7", Action: Block},
		Decision{ID: "2", Scope: ScopeCIDR, Value: "198.51.100.0/24", Action: ReadOnly},
		Decision{ID: "3", Scope: ScopeUser, Value: "mallory", Action: BlockSensitive},
		Decision{ID: "4", Scope: ScopeSession, Value: "abcd", Action: Block, Expires: now.Add(-time.Second)},
		Decision{ID: "5", Scope: ScopeCIDR, Value: "2001:db8::/32", Action: Block},
		Decision{ID: "6", Scope: ScopeUser, Value: "eve", Action: RateLimit, RateLimit: 10},
	)
	ip := netip.MustParseAddr
	sens := func() bool { return true }
	notSens := func() bool { return false }
	cases := []struct {
		name      string
		sub       Subject
		method    string
		sensitive func() bool
		want      string // decision id, "" for none
	}{
		{"blocked IP", Subject{IP: ip("203.0.113.7")}, "GET", notSens, "1"},
		{"blocked IP written IPv4-mapped", Subject{IP: ip("::ffff:203.0.113.7")}, "GET", notSens, "1"},
		{"neighbour of the blocked IP", Subject{IP: ip("203.0.113.8")}, "GET", notSens, ""},
		{"read-only network reads", Subject{IP: ip("198.51.100.9")}, "GET", notSens, ""},
		{"read-only network HEAD", Subject{IP: ip("198.51.100.9")}, "HEAD", notSens, ""},
		{"read-only network writes", Subject{IP: ip("198.51.100.9")}, "POST", notSens, "2"},
		{"read-only network deletes", Subject{IP: ip("198.51.100.9")}, "DELETE", notSens, "2"},
		{"block-sensitive user, ordinary route", Subject{User: "mallory"}, "POST", notSens, ""},
		{"block-sensitive user, sensitive route", Subject{User: "mallory"}, "GET", sens, "3"},
		{"expired session decision", Subject{Session: "abcd"}, "GET", sens, ""},
		{"IPv6 network", Subject{IP: ip("2001:db8:1::5")}, "GET", notSens, "5"},
		{"rate-limit does not refuse here", Subject{User: "eve"}, "POST", sens, ""},
		{"anonymous, no IP", Subject{}, "POST", sens, ""},
		{"block wins over read-only for a GET", Subject{IP: ip("203.0.113.7"), User: "mallory"}, "GET", sens, "1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, ok := s.Refusal(tc.sub, tc.method, tc.sensitive, now)
			if got := map[bool]string{true: d.ID}[ok]; got != tc.want {
				t.Errorf("refused by %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSensitiveIsAskedOnlyWhenItMatters(t *testing.T) {
	s := mustSet(t, Decision{ID: "1", Scope: ScopeUser, Value: "mallory", Action: BlockSensitive})
	calls := 0
	s.Refusal(Subject{User: "alice"}, "GET", func() bool { calls++; return true }, now)
	if calls != 0 {
		t.Errorf("sensitive() called %d times for an actor with no decision", calls)
	}
}

func TestRateLimitPicksTheStrictest(t *testing.T) {
	s := mustSet(t,
		Decision{ID: "a", Scope: ScopeUser, Value: "eve", Action: RateLimit, RateLimit: 100},
		Decision{ID: "b", Scope: ScopeIP, Value: "10.0.0.1", Action: RateLimit},
	)
	d, ok := s.RateLimit(Subject{IP: netip.MustParseAddr("10.0.0.1"), User: "eve"}, 60, now)
	if !ok || d.ID != "b" || d.RateLimit != 60 {
		t.Fatalf("got %+v %v, want b at the default 60", d, ok)
	}
	if _, ok := s.RateLimit(Subject{User: "alice"}, 60, now); ok {
		t.Fatal("alice rate-limited")
	}
}

func TestNewSetRefusesWhatItCannotEnforce(t *testing.T) {
	for _, d := range []Decision{
		{Scope: ScopeIP, Value: "not-an-ip", Action: Block},
		{Scope: ScopeCIDR, Value: "10.0.0.0/99", Action: Block},
		{Scope: "country", Value: "XX", Action: Block},
		{Scope: ScopeUser, Value: "u", Action: "quarantine"},
	} {
		if _, err := NewSet([]Decision{d}); err == nil {
			t.Errorf("%+v accepted", d)
		}
	}
	var nilSet *Set
	if _, ok := nilSet.Refusal(Subject{User: "x"}, "GET", nil, now); ok || nilSet.Len() != 0 {
		t.Error("a nil set refused something")
	}
}

func BenchmarkRefusal(b *testing.B) {
	var ds []Decision
	for i := range 1000 {
		ds = append(ds, Decision{ID: "ip", Scope: ScopeIP, Value: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}).String(), Action: Block})
	}
	for i := range 50 {
		ds = append(ds, Decision{ID: "net", Scope: ScopeCIDR, Value: netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16+i%8).Masked().String(), Action: ReadOnly})
	}
	s := mustSet(b, ds...)
	sub := Subject{IP: netip.MustParseAddr("192.0.2.1"), User: "alice", Session: "abcd"}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.Refusal(sub, "POST", nil, now); ok {
			b.Fatal("refused")
		}
	}
}

// A device decision matches the requests whose actor carries that device,
// whatever their address, user or session, and no other.
func TestDeviceDecisions(t *testing.T) {
	s := mustSet(t,
		Decision{ID: "d1", Scope: ScopeDevice, Value: "c-aaaa", Action: Block},
		Decision{ID: "d2", Scope: ScopeDevice, Value: "c-bbbb", Action: ReadOnly},
		Decision{ID: "d3", Scope: ScopeDevice, Value: "c-cccc", Action: RateLimit, RateLimit: 30},
	)
	ip := netip.MustParseAddr("198.51.100.7")
	if d, ok := s.Refusal(Subject{IP: ip, User: "alice", Device: "c-aaaa"}, "GET", nil, now); !ok || d.ID != "d1" {
		t.Errorf("blocked device: %+v %v, want d1", d, ok)
	}
	if _, ok := s.Refusal(Subject{IP: ip, User: "alice", Device: "c-dddd"}, "POST", nil, now); ok {
		t.Error("the same address and user from another device refused")
	}
	if _, ok := s.Refusal(Subject{IP: ip, Device: "c-bbbb"}, "GET", nil, now); ok {
		t.Error("a read-only device refused a GET")
	}
	if d, ok := s.Refusal(Subject{IP: ip, Device: "c-bbbb"}, "POST", nil, now); !ok || d.ID != "d2" {
		t.Errorf("read-only device POST: %+v %v, want d2", d, ok)
	}
	if d, ok := s.Blocking(Subject{Device: "c-aaaa"}, nil, now); !ok || d.ID != "d1" {
		t.Errorf("Blocking of a blocked device: %+v %v", d, ok)
	}
	if d, ok := s.RateLimit(Subject{Device: "c-cccc"}, 120, now); !ok || d.RateLimit != 30 {
		t.Errorf("rate-limited device: %+v %v", d, ok)
	}
	if _, err := NewSet([]Decision{{ID: "x", Scope: "devices", Value: "c-a", Action: Block}}); err == nil {
		t.Error("an unknown scope was accepted")
	}
}
