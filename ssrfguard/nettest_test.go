package ssrfguard_test

// Test networking. The rule of these tests: no packet leaves the loopback
// interface. Names are resolved by a DNS server on 127.0.0.1 (never by the
// system's), "public" addresses are documentation addresses that only the
// simulated network below "reaches", and it reaches them by connecting to
// listeners on 127.0.0.1.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// dnsServer answers A and AAAA queries over UDP on 127.0.0.1. answer returns
// the addresses for a name (lower case, no trailing dot) and query type,
// given how many queries of that name and type came before; nil means
// NXDOMAIN, empty means no data.
type dnsServer struct {
	conn   net.PacketConn
	answer func(name string, qtype uint16, seen int) []netip.Addr

	mu   sync.Mutex
	seen map[string]int
}

const (
	typeA    = 1
	typeAAAA = 28
)

func newDNSServer(t testing.TB, answer func(name string, qtype uint16, seen int) []netip.Addr) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{conn: pc, answer: answer, seen: map[string]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := s.respond(buf[:n]); resp != nil {
				pc.WriteTo(resp, from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return s
}

// Resolver returns a resolver that sends every query to s, whatever
// /etc/resolv.conf says. /etc/hosts is still read first, as Go does.
func (s *dnsServer) Resolver() *net.Resolver {
	addr := s.conn.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

func (s *dnsServer) respond(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	var labels []string
	i := 12
	for {
		if i >= len(q) {
			return nil
		}
		l := int(q[i])
		i++
		if l == 0 {
			break
		}
		if l > 63 || i+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i:i+l]))
		i += l
	}
	if i+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i : i+2])
	question := q[12 : i+4]
	name := strings.ToLower(strings.Join(labels, "."))

	s.mu.Lock()
	key := fmt.Sprint(name, "/", qtype)
	seen := s.seen[key]
	s.seen[key]++
	s.mu.Unlock()

	var addrs []netip.Addr
	found := true
	if qtype == typeA || qtype == typeAAAA {
		addrs = s.answer(name, qtype, seen)
		found = addrs != nil
	}
	resp := make([]byte, 12, 512)
	copy(resp, q[:2])
	flags := uint16(0x8580) | binary.BigEndian.Uint16(q[2:4])&0x0100 // QR, AA, RA, RD echoed
	if !found {
		flags |= 3 // NXDOMAIN
	}
	binary.BigEndian.PutUint16(resp[2:], flags)
	binary.BigEndian.PutUint16(resp[4:], 1)
	var n uint16
	resp = append(resp, question...)
	for _, a := range addrs {
		if a.Is4() != (qtype == typeA) {
			continue
		}
		resp = append(resp, 0xc0, 12) // pointer to the question's name
		resp = binary.BigEndian.AppendUint16(resp, qtype)
		resp = binary.BigEndian.AppendUint16(resp, 1) // IN
		resp = binary.BigEndian.AppendUint32(resp, 0) // TTL
		b := a.AsSlice()
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(b)))
		resp = append(resp, b...)
		n++
	}
	binary.BigEndian.PutUint16(resp[6:], n)
	return resp
}

// Addresses the test DNS hands out.
var (
	publicV4   = netip.MustParseAddr("203.0.113.10") // TEST-NET-3: "the internet"
	attackerV4 = netip.MustParseAddr("203.0.113.66") // the attacker's server, simulated
	internalV4 = netip.MustParseAddr("10.0.0.10")
	metadataV4 = netip.MustParseAddr("169.254.169.254")
	loopbackV4 = netip.MustParseAddr("127.0.0.1")
	loopbackV6 = netip.MustParseAddr("::1")
)

// worldDNS is the test's view of DNS: service names inside the cluster
// resolve to private addresses, a few attacker-controlled names resolve to
// internal ones, rebind.test answers a public address once and 127.0.0.1
// afterwards, and every other name is "public": a stable address in
// 203.0.113.0/24 and 2001:db8::/32.
func worldDNS(name string, qtype uint16, seen int) []netip.Addr {
	if numeric.MatchString(name) {
		// A C resolver reads these as addresses (0x7f.1, 2130706433): never
		// hand out a public address that a test might then dial.
		return nil
	}
	switch {
	case name == "rebind.test":
		if qtype == typeA && seen == 0 {
			return []netip.Addr{publicV4}
		}
		if qtype == typeA {
			return []netip.Addr{loopbackV4}
		}
		return []netip.Addr{}
	case name == "attacker.test":
		return []netip.Addr{attackerV4}
	case name == "localhost", name == "attacker.loop.test", name == "loop.attacker.test", strings.HasSuffix(name, ".localhost"), name == "localhost.localdomain":
		return []netip.Addr{loopbackV4}
	case name == "v6loop.attacker.test":
		return []netip.Addr{loopbackV6}
	case name == "meta.attacker.test", name == "metadata.google.internal", name == "metadata":
		return []netip.Addr{metadataV4}
	case name == "internal.attacker.test":
		return []netip.Addr{internalV4}
	case strings.HasSuffix(name, ".internal"), strings.HasSuffix(name, ".svc"), strings.HasSuffix(name, ".cluster.local"), strings.HasSuffix(name, ".corp"):
		h := fnv.New32a()
		h.Write([]byte(name))
		return []netip.Addr{netip.AddrFrom4([4]byte{10, 0, byte(h.Sum32() >> 8), byte(h.Sum32())})}
	case strings.HasSuffix(name, ".invalid"):
		return nil
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	sum := h.Sum32()
	v6 := netip.MustParseAddr("2001:db8::").As16()
	binary.BigEndian.PutUint32(v6[12:], sum)
	return []netip.Addr{netip.AddrFrom4([4]byte{203, 0, 113, byte(sum%200 + 20)}), netip.AddrFrom16(v6)}
}

var numeric = regexp.MustCompile(`^[0-9][0-9a-fx.]*$`)

// canary is an HTTP server listening on one port of several loopback
// addresses (127.0.0.1, ::1, 127.0.0.2 where available), counting every TCP
// connection it accepts: a hit is an SSRF that reached it.
type canary struct {
	port int
	hits atomic.Int64
}

func newCanary(t testing.TB) *canary {
	t.Helper()
	c := &canary{}
	var lns []net.Listener
	for attempt := 0; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c.port = ln.Addr().(*net.TCPAddr).Port
		lns = []net.Listener{ln}
		ok := true
		for _, a := range []string{"[::1]", "127.0.0.2"} {
			l, err := net.Listen("tcp", fmt.Sprintf("%s:%d", a, c.port))
			if err != nil {
				ok = false
				break
			}
			lns = append(lns, l)
		}
		if ok || attempt == 20 {
			break
		}
		for _, l := range lns {
			l.Close()
		}
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("canary secret"))
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				c.hits.Add(1)
			}
		},
	}
	var wg sync.WaitGroup
	for _, l := range lns {
		wg.Add(1)
		go func() { defer wg.Done(); srv.Serve(l) }()
	}
	t.Cleanup(func() { srv.Close(); wg.Wait() })
	return c
}

// simNet dials for an http.Transport (as its DialContext): loopback and
// unspecified addresses for real, the simulated public addresses in routes by
// connecting to the loopback listener that plays them, and nothing else:
// any other address is recorded and refused with errUnreachable.
type simNet struct {
	resolver *net.Resolver
	routes   map[netip.Addr]string

	mu     sync.Mutex
	dialed []string
}

var errUnreachable = errors.New("simnet: address outside this machine, not dialed")

func (n *simNet) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		ips, err := n.resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		ip = ips[0]
	}
	n.mu.Lock()
	n.dialed = append(n.dialed, net.JoinHostPort(ip.String(), port))
	n.mu.Unlock()
	var d net.Dialer
	if to, ok := n.routes[ip.Unmap()]; ok {
		return d.DialContext(ctx, network, to)
	}
	if u := ip.Unmap(); u.IsLoopback() || u.IsUnspecified() {
		return d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
	}
	return nil, errUnreachable
}

func (n *simNet) Dialed() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.dialed...)
}
