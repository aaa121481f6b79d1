package ssrfguard_test

// Tests of Check and DialContext, the guard of clients that are not
// net/http's. Connections are made for real only to addresses of this
// machine (the canary, the service); addresses elsewhere are dialed over
// UDP, whose connect sends no packet, so that the guard's check of the
// dialed address is exercised and nothing leaves the loopback interface even
// if the guard let the dial through.

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/ramparttest"
	"github.com/rampartsec/rampart/ssrfguard"
)

// rawAddress returns the host:port that a request to target connects to,
// as a client that is not net/http would be handed it. ok is false for a
// host that is not ASCII: net/http maps it with IDNA before dialing, a raw
// dial sends it to the resolver as it is, so the transport's exploits that
// rely on the mapping are not exploits of a raw dial.
func rawAddress(t testing.TB, target string) (address string, ok bool) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	host := u.Hostname()
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			return "", false
		}
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443", "ws": "80", "wss": "443"}[u.Scheme]
	}
	return net.JoinHostPort(host, port), true
}

// requireRefused checks that a Check or a DialContext was refused by the
// guard, with an event located at location.
func requireRefused(t testing.TB, err error, location string) *rampart.BlockedError {
	t.Helper()
	if !errors.Is(err, rampart.ErrBlocked) {
		t.Fatalf("err = %v, want one wrapping rampart.ErrBlocked", err)
	}
	var be *rampart.BlockedError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want a *rampart.BlockedError in it", err)
	}
	if be.Event.Location != location {
		t.Errorf("event location = %q, want the call at %q", be.Event.Location, location)
	}
	if be.Event.Kind != rampart.KindSSRF || be.Event.Sink != "net" || be.Event.Reason == "" || be.Event.Detail == "" {
		t.Errorf("event = %+v, want kind ssrf, sink net, a reason and a detail", be.Event)
	}
	return be
}

// requireCanary reads the canary's answer through conn: the connection
// reached it.
func requireCanary(t testing.TB, conn net.Conn) {
	t.Helper()
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second)) // against a hang, not a measure
	if _, err := io.WriteString(conn, "GET /canary HTTP/1.0\r\nHost: canary\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "canary secret") {
		t.Fatalf("answer %q, want the canary's", b)
	}
}

// dialService is a web service behind the Rampart middleware whose GET
// /dial checks the address that dial hands it beside the request (not
// request input) and then dials it, both with the request's context; every
// other path answers 200 "self".
type dialService struct {
	srv     *httptest.Server
	calls   chan dialCall
	results chan dialResult
}

type dialCall struct{ network, address string }

type dialResult struct {
	checkErr, dialErr error
	checkLoc, dialLoc string
	dialed            bool
}

func newDialService(t testing.TB, agent *rampart.Agent, g *ssrfguard.Guard) *dialService {
	t.Helper()
	s := &dialService{calls: make(chan dialCall, 1), results: make(chan dialResult, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /dial", func(w http.ResponseWriter, r *http.Request) {
		var c dialCall
		select {
		case c = <-s.calls:
		default:
			http.Error(w, "nothing to dial", http.StatusBadRequest)
			return
		}
		var res dialResult
		res.checkLoc = nextLine()
		res.checkErr = g.Check(r.Context(), c.network, c.address)
		res.dialLoc = nextLine()
		conn, err := g.DialContext(r.Context(), c.network, c.address)
		res.dialErr = err
		if err == nil {
			res.dialed = true
			conn.Close()
		}
		s.results <- res
		if res.checkErr != nil || res.dialErr != nil {
			http.Error(w, "refused", http.StatusBadGateway)
			return
		}
		w.Write([]byte("dialed"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("self")) })
	s.srv = httptest.NewServer(agent.Handler(mux))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *dialService) self() string { return s.srv.Listener.Addr().String() }

// dial asks the service to check and dial address, with input as the url
// query parameter and a Referer naming the service's own page.
func (s *dialService) dial(t testing.TB, input, network, address string) (dialResult, int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.srv.URL+"/dial?"+url.Values{"url": {input}}.Encode(), nil)
	req.Header.Set("Referer", "http://"+s.self()+"/home")
	s.calls <- dialCall{network, address}
	resp, err := http.DefaultClient.Do(req) // to the service on loopback
	if err != nil {
		t.Fatalf("service: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	select {
	case r := <-s.results: // sent before the handler answered
		return r, resp.StatusCode
	default:
		t.Fatalf("the service did not reach Check (status %d)", resp.StatusCode)
		return dialResult{}, 0
	}
}

func TestCheckAndDialContextRefuseEveryExploit(t *testing.T) {
	w := newWorld(t)
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	g := w.guard(t, agent, ssrfguard.Config{})
	libc := ssrfguard.ReadsSpellings(g)
	svc := newDialService(t, agent, g)
	tried := 0
	for _, e := range readExploits(t) {
		input, target := e.request(w.canary.port)
		address, ok := rawAddress(t, target)
		if !ok {
			continue
		}
		tried++
		// Exploits aimed at this machine dial the canary over TCP; the
		// others go over UDP, whose connect sends nothing.
		network := "udp"
		if e.class == "live" || e.class == "spelled" && (strings.Contains(e.input, "{port}") || e.how == "host") {
			network = "tcp"
		}
		if e.class == "spelled" && !libc && !stillAddress(target) {
			// Go's resolver sends 2130706433 and 0x7f.1 to DNS, which has
			// no answer for them here: DialContext, which dials with it,
			// reaches nothing. Check does not know which resolver the
			// client that dials after it uses: the C library (the default
			// resolver on many systems, while Config.Resolver is Go's)
			// connects to 127.0.0.1 for them, so Check refuses.
			t.Run("spelled-as-a-name/"+input, func(t *testing.T) {
				ctx := rampart.WithUntrusted(context.Background(), "job", input)
				loc := nextLine()
				err := g.Check(ctx, network, address)
				requireRefused(t, err, loc)
				conn, err := g.DialContext(ctx, network, address)
				if err == nil {
					conn.Close()
					t.Fatalf("DialContext connected to %s", address)
				}
				if errors.Is(err, rampart.ErrBlocked) || !isDNSError(err) {
					t.Errorf("DialContext = %v, want the name not found", err)
				}
			})
			continue
		}
		t.Run("job/"+input, func(t *testing.T) {
			ctx := rampart.WithUntrusted(context.Background(), "job", input)
			loc := nextLine()
			err := g.Check(ctx, network, address)
			be := requireRefused(t, err, loc)
			if be.Event.Input.Source != "job" || be.Event.Input.Value != input {
				if !strings.Contains(be.Event.Reason, "metadata") {
					t.Errorf("event input = %+v, want the job's", be.Event.Input)
				}
			}
			loc = nextLine()
			conn, err := g.DialContext(ctx, network, address)
			if err == nil {
				conn.Close()
				t.Fatalf("DialContext(%s, %s) connected", network, address)
			}
			requireRefused(t, err, loc)
		})
		t.Run("query/"+input, func(t *testing.T) {
			res, status := svc.dial(t, input, network, address)
			requireRefused(t, res.checkErr, res.checkLoc)
			requireRefused(t, res.dialErr, res.dialLoc)
			if status != http.StatusForbidden {
				t.Errorf("the service answered %d, want 403 from the middleware", status)
			}
		})
	}
	if tried < 60 {
		t.Errorf("%d exploits tried, want the corpus (at least 60)", tried)
	}
	t.Logf("%d exploits tried (the C library's spellings read as addresses: %v)", tried, libc)
	if h := w.canary.hits.Load(); h != 0 {
		t.Errorf("the canary saw %d connections, want none", h)
	}
}

func TestCheckLetsBenignAddressesThrough(t *testing.T) {
	w := newWorld(t)
	agent, events := ramparttest.NewAgent(t, rampart.Config{})
	g := w.guard(t, agent, ssrfguard.Config{})
	svc := newDialService(t, agent, g)
	lines := readBenign(t, svc.self(), w.canary.port)
	if len(lines) < 100 {
		t.Fatalf("%d benign lines in the corpus, want at least 100", len(lines))
	}
	for _, l := range lines {
		address, ok := rawAddress(t, l.target)
		if !ok {
			continue
		}
		if host, _, _ := net.SplitHostPort(address); ssrfguard.Spelled(host) {
			// A number as host (3232235777), a name to Go's resolver,
			// is an address to the C library: Check, which cannot know
			// the client's resolver, judges it as one (see
			// TestCheckReadsTheCLibrarysSpellingsWhateverTheResolver).
			continue
		}
		t.Run(l.input+"→"+address, func(t *testing.T) {
			// Only addresses of this machine are dialed over TCP.
			network := "udp"
			if onLoopback(l.target) {
				network = "tcp"
			}
			res, status := svc.dial(t, l.input, network, address)
			if res.checkErr != nil {
				t.Errorf("Check: %v", res.checkErr)
			}
			if errors.Is(res.dialErr, rampart.ErrBlocked) || status == http.StatusForbidden {
				t.Errorf("DialContext: blocked (%d): %v", status, res.dialErr)
			}
			if network == "tcp" && !res.dialed {
				t.Errorf("DialContext to %s failed: %v", address, res.dialErr)
			}
			if l.self {
				return // a self-call is one only inside a request to the service
			}
			ctx := rampart.WithUntrusted(context.Background(), "job", l.input)
			if err := g.Check(ctx, network, address); err != nil {
				t.Errorf("job: Check: %v", err)
			}
		})
	}
	if n := agent.Stats().Events; n != 0 {
		for _, ev := range events.Events() {
			t.Logf("event: %s | %s | %s", ev.Detail, ev.Reason, ev.Input.Value)
		}
		t.Errorf("%d events for benign addresses, want none", n)
	}
}

func TestHostNotFromInputIsAllowed(t *testing.T) {
	w := newWorld(t)
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	g := w.guard(t, agent, ssrfguard.Config{})
	port := strconv.Itoa(w.canary.port)
	contexts := map[string]context.Context{
		"no input":        context.Background(),
		"input elsewhere": rampart.WithUntrusted(context.Background(), "job", "http://example.com/", "localhost.example.com", "127.0.0.1:1"),
	}
	want := int64(0)
	for name, ctx := range contexts {
		for _, host := range []string{"127.0.0.1", "localhost", "loop.attacker.test", "[::1]"} {
			address := host + ":" + port
			if err := g.Check(ctx, "tcp", address); err != nil {
				t.Errorf("%s: Check(%s) = %v, want nil", name, address, err)
			}
			conn, err := g.DialContext(ctx, "tcp", address)
			if err != nil {
				t.Errorf("%s: DialContext(%s) = %v", name, address, err)
				continue
			}
			requireCanary(t, conn)
			want++
		}
	}
	if h := w.canary.hits.Load(); h != want {
		t.Errorf("canary hits = %d, want %d", h, want)
	}
	if n := agent.Stats().Events; n != 0 {
		t.Errorf("%d events, want none", n)
	}
}

func TestDialContextClosesTheRebindingWindowThatCheckLeaves(t *testing.T) {
	// rebind.test answers 203.0.113.10 to the first A query and 127.0.0.1 to
	// the next ones: Check sees the public address, the dial after it the
	// canary's.
	for _, dial := range []string{"net.Dialer", "Guard.DialContext"} {
		t.Run(dial, func(t *testing.T) {
			w := newWorld(t)
			dns := newDNSServer(t, worldDNS) // a fresh one: rebind.test starts public
			w.resolver = dns.Resolver()
			agent, _ := ramparttest.NewAgent(t, rampart.Config{})
			g := w.guard(t, agent, ssrfguard.Config{})
			address := "rebind.test:" + strconv.Itoa(w.canary.port)
			ctx := rampart.WithUntrusted(context.Background(), "job", "http://"+address+"/canary")
			if err := g.Check(ctx, "tcp", address); err != nil {
				t.Fatalf("Check refused the first answer: %v", err)
			}
			dns.mu.Lock()
			asked := dns.seen["rebind.test/1"]
			dns.mu.Unlock()
			if asked != 1 {
				// The dial below would get the public address, which no
				// test may dial.
				t.Fatalf("Check asked for rebind.test's address %d times, want once", asked)
			}
			if dial == "net.Dialer" {
				d := &net.Dialer{Resolver: w.resolver}
				conn, err := d.DialContext(ctx, "tcp", address)
				if err != nil {
					t.Fatalf("the dial after Check: %v", err)
				}
				requireCanary(t, conn)
				if h := w.canary.hits.Load(); h != 1 {
					t.Errorf("canary hits = %d, want the rebound connection", h)
				}
				return
			}
			loc := nextLine()
			conn, err := g.DialContext(ctx, "tcp", address)
			if err == nil {
				conn.Close()
				t.Fatal("DialContext connected")
			}
			be := requireRefused(t, err, loc)
			if want := "host from job input resolves to loopback 127.0.0.1"; be.Event.Reason != want {
				t.Errorf("reason = %q, want %q", be.Event.Reason, want)
			}
			if h := w.canary.hits.Load(); h != 0 {
				t.Errorf("canary hits = %d, want 0", h)
			}
		})
	}
}

func TestMetadataIsRefusedWithoutInput(t *testing.T) {
	w := newWorld(t)
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	for _, cfg := range []ssrfguard.Config{{}, {Allow: []string{"169.254.0.0/16", "*.google.internal", "*.attacker.test", "fd00::/8", "0.0.0.0/0", "::/0"}}} {
		g := w.guard(t, agent, cfg)
		for _, address := range []string{
			"169.254.169.254:80",
			"[fd00:ec2::254]:80",
			"100.100.100.200:80",
			"169.254.170.2:80",  // AWS ECS task metadata and credentials
			"169.254.170.23:80", // AWS EKS Pod Identity Agent
			"[fd00:ec2::23]:80", // the same over IPv6
			"[::ffff:169.254.169.254]:80",
			"metadata.google.internal:80",
			"meta.attacker.test:80", // a name that resolves to 169.254.169.254
		} {
			loc := nextLine()
			err := g.Check(context.Background(), "tcp", address)
			be := requireRefused(t, err, loc)
			if !strings.Contains(be.Event.Reason, "metadata") || be.Event.Input != (rampart.Input{}) {
				t.Errorf("%s: event %+v, want a metadata reason and no input", address, be.Event)
			}
			// Over UDP, so that nothing is sent even if the dial went through.
			loc = nextLine()
			conn, err := g.DialContext(context.Background(), "udp", address)
			if err == nil {
				conn.Close()
				t.Fatalf("DialContext(%s) connected", address)
			}
			requireRefused(t, err, loc)
		}
	}
}

func TestAllowAndDenyApplyToCheckAndDialContext(t *testing.T) {
	w := newWorld(t)
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	port := strconv.Itoa(w.canary.port)
	tainted := func(address string) context.Context {
		return rampart.WithUntrusted(context.Background(), "job", "http://"+address+"/")
	}
	tests := []struct {
		name    string
		cfg     ssrfguard.Config
		ctx     func(address string) context.Context
		address string
		refused bool
	}{
		{"Deny by network, no input", ssrfguard.Config{Deny: []string{"127.0.0.0/8"}}, func(string) context.Context { return context.Background() }, "127.0.0.1:" + port, true},
		{"Deny by network, a name", ssrfguard.Config{Deny: []string{"127.0.0.0/8", "::1"}}, func(string) context.Context { return context.Background() }, "loop.attacker.test:" + port, true},
		{"Deny by name", ssrfguard.Config{Deny: []string{"*.attacker.test"}}, func(string) context.Context { return context.Background() }, "loop.attacker.test:" + port, true},
		{"Allow by name, input", ssrfguard.Config{Allow: []string{"loop.attacker.test"}}, tainted, "loop.attacker.test:" + port, false},
		{"Allow by network, input", ssrfguard.Config{Allow: []string{"127.0.0.0/8"}}, tainted, "127.0.0.1:" + port, false},
		{"Deny overrides Allow", ssrfguard.Config{Allow: []string{"loop.attacker.test"}, Deny: []string{"127.0.0.1", "::1"}}, tainted, "loop.attacker.test:" + port, true},
	}
	want := int64(0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := w.guard(t, agent, tt.cfg)
			ctx := tt.ctx(tt.address)
			loc := nextLine()
			err := g.Check(ctx, "tcp", tt.address)
			if tt.refused {
				requireRefused(t, err, loc)
			} else if err != nil {
				t.Fatalf("Check = %v, want nil", err)
			}
			loc = nextLine()
			conn, err := g.DialContext(ctx, "tcp", tt.address)
			if tt.refused {
				if err == nil {
					conn.Close()
					t.Fatal("DialContext connected")
				}
				requireRefused(t, err, loc)
				return
			}
			if err != nil {
				t.Fatalf("DialContext = %v", err)
			}
			requireCanary(t, conn)
			want++
		})
	}
	if h := w.canary.hits.Load(); h != want {
		t.Errorf("canary hits = %d, want %d (the allowed dials only)", h, want)
	}
}

func TestMonitorModeReportsChecksAndDials(t *testing.T) {
	w := newWorld(t)
	agent, events := ramparttest.NewAgent(t, rampart.Config{Mode: rampart.ModeMonitor})
	g := w.guard(t, agent, ssrfguard.Config{})
	port := strconv.Itoa(w.canary.port)
	var locs []string
	for _, address := range []string{
		"127.0.0.1:" + port,          // decided from the host
		"loop.attacker.test:" + port, // decided at the dial
	} {
		ctx := rampart.WithUntrusted(context.Background(), "job", address)
		locs = append(locs, nextLine())
		if err := g.Check(ctx, "tcp", address); err != nil {
			t.Fatalf("monitor mode: Check(%s) = %v", address, err)
		}
		locs = append(locs, nextLine())
		conn, err := g.DialContext(ctx, "tcp", address)
		if err != nil {
			t.Fatalf("monitor mode: DialContext(%s) = %v", address, err)
		}
		requireCanary(t, conn)
	}
	if err := agent.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h := w.canary.hits.Load(); h != 2 {
		t.Errorf("canary hits = %d, want 2 (nothing is refused)", h)
	}
	evs := events.Events()
	if len(evs) != len(locs) {
		t.Fatalf("%d events, want one per call (%d)", len(evs), len(locs))
	}
	for i, ev := range evs {
		want := ramparttest.Want{Kind: rampart.KindSSRF, Action: rampart.ActionMonitored, Sink: "net", Location: locs[i]}
		if d := want.Diff(ev); d != "" {
			t.Errorf("event %d: %s", i, d)
		}
	}
	if want := "tcp ⟦loop.attacker.test⟧:" + port + " → 127.0.0.1:" + port; evs[3].Detail != want {
		t.Errorf("detail of the dial = %q, want %q", evs[3].Detail, want)
	}
}

// TestThisMachinesOwnAddressesAreInternal: an address of one of this
// machine's interfaces reaches the machine itself, whatever range it is in:
// a service that listens on all interfaces answers on the public address of
// a server or on the global IPv6 address of a cloud instance as on loopback,
// with no firewall in between. A host from input may not reach it; the
// service's own calls may. Each address is served by a listener of the test,
// whose first connection must be the test's own, made after the refusals.
func TestThisMachinesOwnAddressesAreInternal(t *testing.T) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skipf("interface addresses: %v", err)
	}
	w := newWorld(t)
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	g := w.guard(t, agent, ssrfguard.Config{})
	tried := 0
	for _, a := range addrs {
		p, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, _ := netip.AddrFromSlice(p.IP)
		ip = ip.Unmap()
		if !ip.IsGlobalUnicast() {
			continue // loopback and link-local: tested elsewhere
		}
		ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
		if err != nil {
			t.Logf("%s: cannot listen: %v", ip, err)
			continue
		}
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				accepted <- c
			}
			close(accepted)
		}()
		address := ln.Addr().String()
		ctx := rampart.WithUntrusted(context.Background(), "job", "http://"+address+"/")
		loc := nextLine()
		err = g.Check(ctx, "tcp", address)
		requireRefused(t, err, loc)
		loc = nextLine()
		conn, err := g.DialContext(ctx, "tcp", address)
		if err == nil {
			conn.Close()
			t.Errorf("DialContext(%s) from input connected to this machine", address)
		} else {
			requireRefused(t, err, loc)
		}
		// Without input, the service's own call goes through.
		own, err := g.DialContext(context.Background(), "tcp", address)
		if err != nil {
			t.Fatalf("DialContext(%s) without input: %v", address, err)
		}
		c, ok := <-accepted
		ln.Close()
		if !ok {
			t.Fatalf("%s: the listener accepted nothing", address)
		}
		if c.RemoteAddr().String() != own.LocalAddr().String() {
			t.Errorf("%s: the first connection came from %s, not from the service's own call (%s)", address, c.RemoteAddr(), own.LocalAddr())
		}
		c.Close()
		own.Close()
		tried++
		t.Logf("refused from input: %s", address)
	}
	if tried == 0 {
		t.Skip("this machine has no global unicast address to listen on")
	}
}

// TestAnAddressWrittenAnotherWayIsStillFromTheInput: a service that reads
// the host of its input as an address and dials it as Go writes it
// (netip.AddrPort.String, net.IP.String, Addr.Unmap) hands the guard another
// spelling than the input's: [0:0:0:0:0:0:0:1] becomes [::1],
// [::ffff:7f00:1] becomes [::ffff:127.0.0.1] or 127.0.0.1, a zone is
// dropped. It is the same address, and still from the input. An input that
// names another address, or text with colons that is no address, does not
// taint the service's own call.
func TestAnAddressWrittenAnotherWayIsStillFromTheInput(t *testing.T) {
	w := newWorld(t)
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	g := w.guard(t, agent, ssrfguard.Config{})
	port := strconv.Itoa(w.canary.port)
	for _, c := range []struct{ input, address string }{
		{"http://[0:0:0:0:0:0:0:1]:" + port + "/", "[::1]:" + port},
		{"[0000::0001]", "[::1]:" + port},
		{"http://[::1%25lo]:" + port + "/", "[::1]:" + port},
		{"fe80::1%lo ::1%lo", "[::1]:" + port},
		{"http://[::ffff:7f00:1]:" + port + "/", "[::ffff:127.0.0.1]:" + port},
		{"http://[::ffff:7f00:1]:" + port + "/", "127.0.0.1:" + port},
		{"http://[::FFFF:7F00:2]/", "127.0.0.2:" + port},
		{"127.0.0.1", "[::ffff:127.0.0.1]:" + port},
		{"http://127.0.0.1:" + port + "/", "[::ffff:7f00:1]:" + port},
		{"::1:" + port, "[::1]:" + port}, // split at the last colon
		{"0::1:0", "[::1]:" + port},
	} {
		ctx := rampart.WithUntrusted(context.Background(), "job", c.input)
		loc := nextLine()
		err := g.Check(ctx, "tcp", c.address)
		if !errors.Is(err, rampart.ErrBlocked) {
			t.Errorf("input %q: Check(%s) = %v, want refused", c.input, c.address, err)
			continue
		}
		requireRefused(t, err, loc)
		loc = nextLine()
		conn, err := g.DialContext(ctx, "tcp", c.address)
		if err == nil {
			conn.Close()
			t.Errorf("input %q: DialContext(%s) connected", c.input, c.address)
			continue
		}
		requireRefused(t, err, loc)
	}
	if h := w.canary.hits.Load(); h != 0 {
		t.Errorf("canary hits = %d, want 0", h)
	}
	for _, input := range []string{"http://[::2]/", "std::vector<int>", "a::b::c", "[::1]:1", "::1:1", "0:0:0:0:0:0:0:1:1"} {
		ctx := rampart.WithUntrusted(context.Background(), "job", input)
		if err := g.Check(ctx, "tcp", "[::1]:"+port); err != nil {
			t.Errorf("input %q: Check([::1]:%s) = %v, want the service's own call let through", input, port, err)
		}
	}
}

// TestCheckReadsTheCLibrarysSpellingsWhateverTheResolver: Check vets an
// address that a client dials afterwards with its own resolver, commonly the
// C library's (the default on many systems, and whatever Config.Resolver
// is), which connects to 127.0.0.1 for 0x7f.1 or 2130706433 (see
// TestSpelledHostsReachTheCanaryThroughTheCResolver). So Check judges them
// as addresses even with Go's resolver in Config.Resolver, as the transport
// does for a resolver it does not see. DialContext dials with
// Config.Resolver, which finds no such name: nothing to refuse. A bare
// number that reads as an address of 0.0.0.0/8 leads nowhere, and is not
// refused.
func TestCheckReadsTheCLibrarysSpellingsWhateverTheResolver(t *testing.T) {
	w := newWorld(t)
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	g := w.guard(t, agent, ssrfguard.Config{})
	if ssrfguard.ReadsSpellings(g) {
		t.Skip("the test resolver reads the C library's spellings")
	}
	port := strconv.Itoa(w.canary.port)
	for _, c := range []struct{ input, address, reason string }{
		{"http://0x7f.1:" + port + "/", "0x7f.1:" + port, `host from job input is "0x7f.1", loopback 127.0.0.1`},
		{"2130706433", "2130706433:" + port, `host from job input is "2130706433", loopback 127.0.0.1`},
		{"3232235777", "3232235777:80", `host from job input is "3232235777", private 192.168.1.1`},
		{"x", "0251.0376.0251.0376:80", "169.254.169.254 is a cloud metadata endpoint"},
	} {
		ctx := rampart.WithUntrusted(context.Background(), "job", c.input)
		loc := nextLine()
		err := g.Check(ctx, "tcp", c.address)
		if !errors.Is(err, rampart.ErrBlocked) {
			t.Errorf("input %q: Check(%s) = %v, want refused", c.input, c.address, err)
			continue
		}
		if be := requireRefused(t, err, loc); be.Event.Reason != c.reason {
			t.Errorf("input %q: reason %q, want %q", c.input, be.Event.Reason, c.reason)
		}
	}
	ctx := rampart.WithUntrusted(context.Background(), "job", "40184")
	if err := g.Check(ctx, "tcp", "40184:80"); err != nil {
		var be *rampart.BlockedError
		if !errors.As(err, &be) || !strings.Contains(be.Event.Reason, "this network") {
			t.Errorf("Check(40184:80) = %v, want nil: 0.0.156.248 leads nowhere (unless this machine has an address in 0.0.0.0/8)", err)
		}
	}
}

// TestAnAnswerWithOneInternalAddressIsRefusedByCheckAndNeverDialed: a name
// from input whose DNS answer holds a public address and an internal one
// (or whose A answer is public and AAAA answer loopback) is refused by
// Check, as the client may dial any of them; DialContext, which checks each
// address it connects to, never connects to the internal one. The dials are
// over UDP, whose connect sends nothing to the public address.
func TestAnAnswerWithOneInternalAddressIsRefusedByCheckAndNeverDialed(t *testing.T) {
	dns := newDNSServer(t, func(name string, qtype uint16, seen int) []netip.Addr {
		switch name {
		case "mixed.attacker.test":
			return []netip.Addr{publicV4, loopbackV4, netip.MustParseAddr("2001:db8::10"), loopbackV6}
		case "v6loop-v4public.attacker.test":
			return []netip.Addr{publicV4, loopbackV6}
		}
		return worldDNS(name, qtype, seen)
	})
	w := newWorld(t)
	w.resolver = dns.Resolver()
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	g := w.guard(t, agent, ssrfguard.Config{})
	port := strconv.Itoa(w.canary.port)
	for _, host := range []string{"mixed.attacker.test", "v6loop-v4public.attacker.test"} {
		address := host + ":" + port
		ctx := rampart.WithUntrusted(context.Background(), "job", "http://"+address+"/")
		loc := nextLine()
		err := g.Check(ctx, "udp", address)
		requireRefused(t, err, loc)
		for range 3 {
			conn, err := g.DialContext(ctx, "udp", address)
			if err != nil {
				if !errors.Is(err, rampart.ErrBlocked) {
					t.Errorf("DialContext(%s) = %v", address, err)
				}
				continue
			}
			ra := conn.RemoteAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
			conn.Close()
			if ra != publicV4 && ra != netip.MustParseAddr("2001:db8::10") {
				t.Errorf("DialContext(%s) connected to %s", address, ra)
			}
		}
	}
}

// closedPort returns a port of 127.0.0.1 on which nothing listens: a dial
// to it fails (unless another process takes it meanwhile, in which case the
// dial succeeds and is reported all the same).
func closedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}

// TestMonitorModeReportsDialsThatFail: in monitor mode what would have been
// refused is reported, whether or not the connection then succeeds. A dial
// to an internal port where nothing listens is an attempt all the same (an
// attacker mapping the internal network sees which ports answer), and it is
// reported from the caller.
func TestMonitorModeReportsDialsThatFail(t *testing.T) {
	w := newWorld(t)
	agent, events := ramparttest.NewAgent(t, rampart.Config{Mode: rampart.ModeMonitor})
	g := w.guard(t, agent, ssrfguard.Config{})
	address := "loop.attacker.test:" + closedPort(t) // decided at the dial
	ctx := rampart.WithUntrusted(context.Background(), "job", address)
	loc := nextLine()
	conn, err := g.DialContext(ctx, "tcp", address)
	if err == nil {
		conn.Close()
	} else if errors.Is(err, rampart.ErrBlocked) {
		t.Fatalf("monitor mode: DialContext = %v, want the dial's own outcome", err)
	}
	if err := agent.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs := events.Events()
	if len(evs) != 1 {
		t.Fatalf("%d events, want the attempt reported once (dial: %v)", len(evs), err)
	}
	want := ramparttest.Want{Kind: rampart.KindSSRF, Action: rampart.ActionMonitored, Location: loc}
	if d := want.Diff(evs[0]); d != "" {
		t.Error(d)
	}
	if !strings.Contains(evs[0].Detail, "→ 127.0.0.1:") {
		t.Errorf("detail %q, want the dial to 127.0.0.1", evs[0].Detail)
	}
}

func TestSelfCallsAreAllowedInsideARequestOnly(t *testing.T) {
	w := newWorld(t)
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	g := w.guard(t, agent, ssrfguard.Config{})
	svc := newDialService(t, agent, g)
	self := svc.self()
	// The service's own address, named by the input, inside a request
	// served on it: the attacker could have sent that request directly.
	res, status := svc.dial(t, "http://"+self+"/cart", "tcp", self)
	if res.checkErr != nil || res.dialErr != nil || !res.dialed || status != http.StatusOK {
		t.Errorf("self-call: Check %v, DialContext %v, status %d; want both allowed", res.checkErr, res.dialErr, status)
	}
	// Another port of the same machine is another service.
	canary := "127.0.0.1:" + strconv.Itoa(w.canary.port)
	res, status = svc.dial(t, "http://"+canary+"/", "tcp", canary)
	requireRefused(t, res.checkErr, res.checkLoc)
	requireRefused(t, res.dialErr, res.dialLoc)
	if status != http.StatusForbidden {
		t.Errorf("the service answered %d, want 403", status)
	}
	// A job has no self.
	ctx := rampart.WithUntrusted(context.Background(), "job", "http://"+self+"/cart")
	loc := nextLine()
	err := g.Check(ctx, "tcp", self)
	requireRefused(t, err, loc)
	if h := w.canary.hits.Load(); h != 0 {
		t.Errorf("canary hits = %d, want 0", h)
	}
}

// TestSelfIsTheTCPServiceNotAUDPSocketOnItsPort: the self rule opens the
// address and port the request came in on, which is a TCP port; a UDP socket
// on the same port number belongs to another service (a statsd or DNS
// daemon), and a host from input may not reach it. The canary is a UDP
// socket on the service's own address and port: after the service's dial,
// the test sends it a datagram of its own, which must be the first it gets.
func TestSelfIsTheTCPServiceNotAUDPSocketOnItsPort(t *testing.T) {
	w := newWorld(t)
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	g := w.guard(t, agent, ssrfguard.Config{})
	results := make(chan dialResult, 1)
	var self string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /dial", func(rw http.ResponseWriter, r *http.Request) {
		var res dialResult
		res.checkLoc = nextLine()
		res.checkErr = g.Check(r.Context(), "udp", self)
		res.dialLoc = nextLine()
		conn, err := g.DialContext(r.Context(), "udp", self)
		res.dialErr = err
		if err == nil {
			res.dialed = true
			conn.Write([]byte("forged"))
			conn.Close()
		}
		results <- res
	})
	srv := httptest.NewServer(agent.Handler(mux))
	t.Cleanup(srv.Close)
	self = srv.Listener.Addr().String()
	udp, err := net.ListenPacket("udp", self)
	if err != nil {
		t.Skipf("no UDP socket on the service's own port: %v", err)
	}
	t.Cleanup(func() { udp.Close() })

	resp, err := http.Get(srv.URL + "/dial?url=" + url.QueryEscape("http://"+self+"/"))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	var res dialResult
	select {
	case res = <-results: // sent before the handler answered
	default:
		t.Fatalf("the service did not dial (status %d)", resp.StatusCode)
	}
	requireRefused(t, res.checkErr, res.checkLoc)
	requireRefused(t, res.dialErr, res.dialLoc)

	marker, err := net.Dial("udp", self)
	if err != nil {
		t.Fatal(err)
	}
	defer marker.Close()
	if _, err := marker.Write([]byte("marker")); err != nil {
		t.Fatal(err)
	}
	udp.SetReadDeadline(time.Now().Add(30 * time.Second)) // against a hang, not a measure
	buf := make([]byte, 64)
	n, _, err := udp.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:n]); got != "marker" {
		t.Errorf("the UDP socket on the service's port got %q first, want the test's marker", got)
	}
}

// TestPortZeroInTheInputDoesNotUntaintItsHost: an input that names a host
// with a port different from the one dialed is taken for a URL the service
// built itself (a Referer of localhost:3000 and a call to localhost:9090).
// Port 0 is no service's port: a client that reads it as "no port" dials its
// default, so 127.0.0.1:0 in the input still chose the host.
func TestPortZeroInTheInputDoesNotUntaintItsHost(t *testing.T) {
	w := newWorld(t)
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	g := w.guard(t, agent, ssrfguard.Config{})
	port := strconv.Itoa(w.canary.port)
	for _, c := range []struct{ input, address string }{
		{"127.0.0.1:0", "127.0.0.1:" + port},
		{"http://127.0.0.1:0/", "127.0.0.1:" + port},
		{"http://localhost:00/", "localhost:" + port},
		{"redis://[::1]:0", "[::1]:" + port},
		{"loop.attacker.test:0", "loop.attacker.test:" + port},
	} {
		ctx := rampart.WithUntrusted(context.Background(), "job", c.input)
		loc := nextLine()
		err := g.Check(ctx, "tcp", c.address)
		requireRefused(t, err, loc)
		loc = nextLine()
		conn, err := g.DialContext(ctx, "tcp", c.address)
		if err == nil {
			conn.Close()
			t.Errorf("input %q: DialContext(%s) connected", c.input, c.address)
			continue
		}
		requireRefused(t, err, loc)
	}
	if h := w.canary.hits.Load(); h != 0 {
		t.Errorf("canary hits = %d, want 0", h)
	}
}

func TestCheckRejectsWhatNetDialWould(t *testing.T) {
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	w := newWorld(t)
	g := w.guard(t, agent, ssrfguard.Config{})
	for _, tt := range []struct{ network, address string }{
		{"unix", "/run/docker.sock"},
		{"ip4:icmp", "127.0.0.1"},
		{"", "127.0.0.1:80"},
		{"tcp", "127.0.0.1"},
		{"tcp", "example.com"},
		{"tcp", "[::1"},
		{"tcp", ":80"}, // this machine, to net.Dial
		{"tcp", "example.com:no-such-service"},
	} {
		ctx := rampart.WithUntrusted(context.Background(), "job", tt.address)
		err := g.Check(ctx, tt.network, tt.address)
		if err == nil || errors.Is(err, rampart.ErrBlocked) {
			t.Errorf("Check(%q, %q) = %v, want an error that is not a refusal", tt.network, tt.address, err)
		}
		conn, err := g.DialContext(ctx, tt.network, tt.address)
		if err == nil {
			conn.Close()
			t.Errorf("DialContext(%q, %q) connected", tt.network, tt.address)
		} else if errors.Is(err, rampart.ErrBlocked) {
			t.Errorf("DialContext(%q, %q) = %v, want an error that is not a refusal", tt.network, tt.address, err)
		}
	}
	// A service name for the port is read as net.Dial reads it.
	ctx := rampart.WithUntrusted(context.Background(), "job", "127.0.0.1:80")
	loc := nextLine()
	err := g.Check(ctx, "tcp", "127.0.0.1:http")
	requireRefused(t, err, loc)
	if n := agent.Stats().Events; n != 1 {
		t.Errorf("%d events, want the one refusal", n)
	}
}

func TestIncompleteInputsFailClosed(t *testing.T) {
	w := newWorld(t)
	agent, _ := ramparttest.NewAgent(t, rampart.Config{MaxInputs: 4})
	g := w.guard(t, agent, ssrfguard.Config{})
	svc := newDialService(t, agent, g)
	canary := "127.0.0.1:" + strconv.Itoa(w.canary.port)
	// Many distinct inputs: more than the agent records. The canary's
	// address is not among those recorded, and may be among the others.
	q := url.Values{}
	for i := range 20 {
		q.Set("p"+strconv.Itoa(i), "value-"+strconv.Itoa(i))
	}
	req, _ := http.NewRequest(http.MethodGet, svc.srv.URL+"/dial?"+q.Encode(), nil)
	svc.calls <- dialCall{"tcp", canary}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var res dialResult
	select {
	case res = <-svc.results:
	default:
		t.Fatalf("the service did not reach Check (status %d)", resp.StatusCode)
	}
	for _, err := range []error{res.checkErr, res.dialErr} {
		var be *rampart.BlockedError
		if !errors.As(err, &be) || be.Event.Kind != rampart.KindInputsTruncated || be.Event.Sink != "net" {
			t.Errorf("err = %v, want an inputs_truncated refusal from sink net", err)
		}
	}
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("status %d, want 403", resp.StatusCode)
	}
	if h := w.canary.hits.Load(); h != 0 {
		t.Errorf("canary hits = %d, want 0", h)
	}
}

// BenchmarkCheck is the cost of Check for a connection the service makes by
// itself, the common case: to an address (no DNS) and to a name, resolved by
// a DNS server on loopback (the A and AAAA queries of each call included),
// without input and beside a typical request's inputs, none of them the
// host. host=name-from-input is a webhook's host, from input and public.
//
//	go test -run '^$' -bench Check -count 6 ./ssrfguard
func BenchmarkCheck(b *testing.B) {
	dns := newDNSServer(b, worldDNS)
	// An agent that drops its events, which a ramparttest.Recorder would
	// keep: a benchmark may report many.
	agent, err := rampart.New(rampart.Config{Service: "bench", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { agent.Close(context.Background()) })
	g, err := ssrfguard.New(agent, ssrfguard.Config{Resolver: dns.Resolver()})
	if err != nil {
		b.Fatal(err)
	}
	elsewhere := rampart.WithUntrusted(context.Background(), "query", ssrfguard.BenchInputs...)
	cases := []struct {
		name, address string
		ctx           context.Context
	}{
		{"host=address/input=none", "10.0.0.10:8080", context.Background()},
		{"host=address/input=elsewhere", "10.0.0.10:8080", elsewhere},
		{"host=name/input=none", "orders.internal:8080", context.Background()},
		{"host=name/input=elsewhere", "orders.internal:8080", elsewhere},
		{"host=name-from-input", "hooks.partner.example:443", rampart.WithUntrusted(elsewhere, "json", "https://hooks.partner.example/cb")},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := g.Check(c.ctx, "tcp", c.address); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
