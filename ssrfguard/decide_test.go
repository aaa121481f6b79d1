package ssrfguard

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"testing"

	"github.com/rampartsec/rampart"
)

func newTestGuard(t testing.TB, mode rampart.Mode, cfg Config) *Guard {
	t.Helper()
	a, err := rampart.New(rampart.Config{Service: "t", Mode: mode, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(context.Background()) })
	g, err := New(a, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestControlDecidesOnTheDialedAddress drives the net.Dialer's
// ControlContext directly, with public addresses that no test may dial.
func TestControlDecidesOnTheDialedAddress(t *testing.T) {
	g := newTestGuard(t, rampart.ModeBlock, Config{Allow: []string{"198.51.100.0/24"}, Deny: []string{"203.0.113.99"}})
	tainted := &dialState{taint: &taint{input: rampart.Input{Source: "query", Value: "x"}}}
	self := &dialState{taint: tainted.taint, self: netip.MustParseAddrPort("127.0.0.1:8080")}
	tests := []struct {
		st      *dialState
		addr    string // what the transport dials
		address string // what the dialer connects to
		refused bool
	}{
		{tainted, "example.com:443", "93.184.215.14:443", false},
		{tainted, "example.com:443", "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:443", false},
		{tainted, "example.com:443", "127.0.0.1:443", true},
		{tainted, "example.com:443", "[::1]:443", true},
		{tainted, "example.com:443", "10.1.2.3:443", true},
		{tainted, "example.com:443", "[::ffff:10.1.2.3]:443", true},
		{tainted, "example.com:443", "[fe80::1%eth0]:443", true},
		{tainted, "example.com:443", "198.51.100.7:443", false}, // Config.Allow
		{tainted, "example.com:443", "203.0.113.99:443", true},  // Config.Deny
		{nil, "example.com:443", "203.0.113.99:443", true},
		{nil, "example.com:443", "127.0.0.1:443", false},
		{nil, "example.com:80", "169.254.169.254:80", true},
		{nil, "metadata.google.internal:80", "93.184.215.14:80", true}, // refused by name before any address
		{self, "localhost:8080", "127.0.0.1:8080", false},
		{self, "localhost:8080", "[::1]:8080", false},
		{self, "localhost:9090", "127.0.0.1:9090", true},
		{self, "example.com:8080", "10.0.0.1:8080", true},
		{tainted, "localhost:80", "127.0.0.1:80", true}, // refused by name
	}
	for _, tt := range tests {
		c, err := g.newDialCheck(tt.st, tt.addr)
		if err == nil {
			err = c.control(context.Background(), "tcp", tt.address, nil)
		}
		var de *dialError
		if refused := errors.As(err, &de); refused != tt.refused || (err != nil && !refused) {
			t.Errorf("dial %s → %s (state %+v): err = %v, want refused=%v", tt.addr, tt.address, tt.st, err, tt.refused)
		}
	}
}

func TestMonitorModeDialRecordsAndProceeds(t *testing.T) {
	g := newTestGuard(t, rampart.ModeMonitor, Config{})
	st := &dialState{taint: &taint{input: rampart.Input{Source: "job"}}}
	c, err := g.newDialCheck(st, "evil.example:80")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.control(context.Background(), "tcp", "127.0.0.1:80", nil); err != nil {
		t.Fatalf("monitor mode refused the dial: %v", err)
	}
	v, addr := st.found()
	if v == nil || addr != "127.0.0.1:80" || v.category != "loopback" {
		t.Errorf("recorded %+v at %q, want the loopback address", v, addr)
	}
}

func TestCheckHostNeedsNoDNSForAddressesAndLocalhost(t *testing.T) {
	tn := &taint{input: rampart.Input{Source: "query"}}
	for _, libc := range []bool{true, false} {
		g := newTestGuard(t, rampart.ModeBlock, Config{})
		setSpellings(g, libc)
		internal := []string{"127.0.0.1.", "[::1]", "::ffff:127.0.0.1", "localhost", "a.b.localhost.", "10.0.0.1", "169.254.169.254", "0.0.0.0"}
		public := []string{"example.com", "8.8.8.8", "api.internal", "localhost.example.com", "40184", "0.0.156.248"}
		spelled := []string{"127.1", "0x7f.1", "2130706433", "0", "0177.0.0.1", "3232235777"}
		if libc {
			// The C library reads them as addresses, without DNS.
			internal = append(internal, spelled...)
			public = append(public, "134744072", "010.010.010.010")
		} else {
			// Go's resolver sends them to DNS, and the dial checks what
			// DNS answers.
			public = append(public, spelled...)
		}
		for _, h := range internal {
			if _, v := g.checkHost(h, 80, tn, netip.AddrPort{}); v == nil {
				t.Errorf("C library %v: checkHost(%q) from input: allowed", libc, h)
			}
		}
		for _, h := range public {
			if _, v := g.checkHost(h, 80, tn, netip.AddrPort{}); v != nil {
				t.Errorf("C library %v: checkHost(%q) from input: %s", libc, h, v.reason)
			}
		}
		for _, h := range []string{"127.0.0.1", "localhost", "10.0.0.1"} {
			if _, v := g.checkHost(h, 80, nil, netip.AddrPort{}); v != nil {
				t.Errorf("checkHost(%q) without input: %s", h, v.reason)
			}
		}
	}
}

// setSpellings fixes what g takes its resolver to read, instead of asking.
func setSpellings(g *Guard, libc bool) {
	g.spellingsOnce.Do(func() {})
	g.spellings = libc
}

func TestGosResolverDoesNotReadSpellings(t *testing.T) {
	if resolverReadsSpellings(&net.Resolver{PreferGo: true}) {
		t.Error("a PreferGo resolver reads 127.1 as an address")
	}
}
