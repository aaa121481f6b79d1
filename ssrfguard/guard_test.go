package ssrfguard_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/corpus"
	"github.com/rampartsec/rampart/ramparttest"
	"github.com/rampartsec/rampart/ssrfguard"
)

// nextLine returns the file:line after the caller's line: write it right
// above the call whose location an event must name.
func nextLine() string {
	_, file, line, _ := runtime.Caller(1)
	return file + ":" + strconv.Itoa(line+1)
}

// world is this machine seen by a test: its DNS, a canary on loopback, an
// attacker's web server on loopback that the simulated network presents as
// 203.0.113.66, and the simulated network itself.
type world struct {
	resolver *net.Resolver
	canary   *canary
	attacker *httptest.Server
	sim      *simNet
}

func newWorld(t testing.TB) *world {
	t.Helper()
	dns := newDNSServer(t, worldDNS)
	w := &world{resolver: dns.Resolver(), canary: newCanary(t)}
	// The attacker's server redirects to the URL that ?to= carries in
	// base64 (so that the input does not name it), after ?hops= more
	// redirects to itself.
	w.attacker = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if n, _ := strconv.Atoi(q.Get("hops")); n > 0 {
			q.Set("hops", strconv.Itoa(n-1))
			http.Redirect(rw, r, "/r?"+q.Encode(), http.StatusFound)
			return
		}
		if to, err := base64.RawURLEncoding.DecodeString(q.Get("to")); err == nil && len(to) > 0 {
			http.Redirect(rw, r, string(to), http.StatusFound)
			return
		}
		rw.Write([]byte("attacker"))
	}))
	t.Cleanup(w.attacker.Close)
	w.sim = &simNet{resolver: w.resolver, routes: map[netip.Addr]string{attackerV4: w.attacker.Listener.Addr().String()}}
	return w
}

// realBase is a transport that dials for real; the guard installs its own
// net.Dialer (with the test resolver) in its clones. Use it only for targets
// on loopback.
func realBase() *http.Transport { return &http.Transport{} }

// plainRealBase is realBase without a guard: same resolver, no checks.
func (w *world) plainRealBase() *http.Transport {
	return &http.Transport{DialContext: (&net.Dialer{Resolver: w.resolver, Timeout: time.Minute}).DialContext}
}

// simBase dials through the simulated network.
func (w *world) simBase() *http.Transport { return &http.Transport{DialContext: w.sim.DialContext} }

func (w *world) guard(t testing.TB, agent *rampart.Agent, cfg ssrfguard.Config) *ssrfguard.Guard {
	t.Helper()
	cfg.Resolver = w.resolver
	g, err := ssrfguard.New(agent, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// isInternal reports whether a dialed address is one no test may reach
// outside loopback.
func isInternal(ip netip.Addr) bool {
	ip = ip.WithZone("")
	if ip.Is6() && !ip.Is4In6() {
		b := ip.As16()
		if netip.MustParsePrefix("::/96").Contains(ip) || netip.MustParsePrefix("64:ff9b::/96").Contains(ip) || netip.MustParsePrefix("::ffff:0:0:0/96").Contains(ip) {
			ip = netip.AddrFrom4([4]byte(b[12:]))
		}
	}
	ip = ip.Unmap()
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() ||
		netip.MustParsePrefix("100.64.0.0/10").Contains(ip) || netip.MustParsePrefix("0.0.0.0/8").Contains(ip)
}

// service is a web service behind the Rampart middleware whose GET /fetch
// requests the URL that fetch hands it beside the request (every header is
// input) with the guarded client, the request's context
// passed on; every other path answers 200 "self".
type service struct {
	srv     *httptest.Server
	targets chan string // from fetch to the handler: not request input
	results chan fetchResult
}

type fetchResult struct {
	err      error
	location string // where the handler called client.Do
}

func newService(t testing.TB, agent *rampart.Agent, client *http.Client) *service {
	t.Helper()
	s := &service{targets: make(chan string, 1), results: make(chan fetchResult, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fetch", func(w http.ResponseWriter, r *http.Request) {
		var target string
		select {
		case target = <-s.targets:
		default:
		}
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, target, nil)
		if err != nil {
			s.results <- fetchResult{err: err}
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		loc := nextLine()
		resp, err := client.Do(req)
		s.results <- fetchResult{err: err, location: loc}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		w.Write([]byte("fetched"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("self")) })
	s.srv = httptest.NewServer(agent.Handler(mux))
	t.Cleanup(s.srv.Close)
	return s
}

// self returns the service's host:port.
func (s *service) self() string { return s.srv.Listener.Addr().String() }

// fetch asks the service to request target, with input as the url query
// parameter and a Referer naming the service's own page.
func (s *service) fetch(t testing.TB, input, target string) (fetchResult, int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.srv.URL+"/fetch?"+url.Values{"url": {input}}.Encode(), nil)
	s.targets <- target
	req.Header.Set("Referer", "http://"+s.self()+"/home")
	resp, err := http.DefaultClient.Do(req) // to the service on loopback
	if err != nil {
		t.Fatalf("service: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	select {
	case r := <-s.results:
		return r, resp.StatusCode
	default:
		t.Fatalf("the service did not reach client.Do (status %d)", resp.StatusCode)
		return fetchResult{}, 0
	}
}

// exploit is one line of testdata/exploits.txt.
type exploit struct {
	class, how, input string
}

func readExploits(t testing.TB) []exploit {
	t.Helper()
	var out []exploit
	for _, l := range corpus.Lines(t, "testdata/exploits.txt") {
		f := l.Fields(t, ' ', 3)
		if !slices.Contains([]string{"live", "spelled", "offline"}, f[0]) || !slices.Contains([]string{"url", "host", "hostport", "text"}, f[1]) {
			t.Fatalf("%s: unknown class %q or how %q", l.Pos(), f[0], f[1])
		}
		out = append(out, exploit{class: f[0], how: f[1], input: f[2]})
	}
	return out
}

var firstURL = regexp.MustCompile(`https?://[^\s"]+`)

// request returns the input with the canary's port filled in, and the URL
// that the vulnerable application builds from it.
func (e exploit) request(port int) (input, target string) {
	input = strings.ReplaceAll(e.input, "{port}", strconv.Itoa(port))
	switch e.how {
	case "url":
		target = input
	case "host":
		target = "http://" + input + ":" + strconv.Itoa(port) + "/canary"
	case "hostport":
		target = "http://" + input + "/canary"
	case "text":
		target = firstURL.FindString(input)
	default:
		panic("exploits.txt: unknown how " + e.how)
	}
	return input, target
}

// requireBlocked checks that a request was refused by the guard, with an
// event located at location.
func requireBlocked(t testing.TB, resp *http.Response, err error, location string) *rampart.BlockedError {
	t.Helper()
	if err == nil {
		resp.Body.Close()
		t.Fatalf("request was made (status %s), want it blocked", resp.Status)
	}
	if !errors.Is(err, rampart.ErrBlocked) {
		t.Fatalf("err = %v, want one wrapping rampart.ErrBlocked", err)
	}
	var be *rampart.BlockedError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want a *rampart.BlockedError in it", err)
	}
	if be.Event.Location != location {
		t.Errorf("event location = %q, want the client call at %q", be.Event.Location, location)
	}
	if be.Event.Kind != "ssrf" || be.Event.Sink != "net/http" || be.Event.Reason == "" || be.Event.Detail == "" {
		t.Errorf("event = %+v, want kind ssrf, sink net/http, a reason and a detail", be.Event)
	}
	return be
}

func TestExploitsReachTheirTargetsWithoutTheGuard(t *testing.T) {
	w := newWorld(t)
	exploits := readExploits(t)
	live := &http.Client{Transport: w.plainRealBase(), Timeout: time.Minute}
	offline := &http.Client{Transport: w.simBase(), Timeout: time.Minute}
	n := 0
	for _, e := range exploits {
		input, target := e.request(w.canary.port)
		ctx := rampart.WithUntrusted(context.Background(), "job", input)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			t.Fatal(err)
		}
		switch e.class {
		case "live":
			before := w.canary.hits.Load()
			resp, err := live.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			if w.canary.hits.Load() == before {
				t.Errorf("%s: the canary saw no connection (%v); the line is not a live exploit", input, err)
			}
			n++
		case "offline":
			before := len(w.sim.Dialed())
			resp, err := offline.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			dialed := w.sim.Dialed()[before:]
			reached := false
			for _, d := range dialed {
				if ap, err := netip.ParseAddrPort(d); err == nil && isInternal(ap.Addr()) {
					reached = true
				}
			}
			if !reached {
				t.Errorf("%s: the client dialed %v (%v), no internal address", input, dialed, err)
			}
			n++
		}
	}
	t.Logf("%d exploits reached an internal address with an unguarded client (the spelled ones need a C resolver)", n)
}

func TestGuardBlocksEveryExploit(t *testing.T) {
	w := newWorld(t)
	exploits := readExploits(t)
	if len(exploits) < 30 {
		t.Fatalf("%d exploits in the corpus, want at least 30", len(exploits))
	}
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	setups := []struct {
		name string
		base *http.Transport
		// dials for real: only targets on loopback may be tried, in case
		// the guard let one through.
		real bool
	}{
		{"net.Dialer", realBase(), true},
		{"custom DialContext", w.simBase(), false},
	}
	for _, setup := range setups {
		client := w.guard(t, agent, ssrfguard.Config{}).Client(&http.Client{Transport: setup.base, Timeout: time.Minute})
		svc := newService(t, agent, client)
		libc := ssrfguard.ReadsSpellings(w.guard(t, agent, ssrfguard.Config{}))
		for _, e := range exploits {
			if setup.real && e.class == "offline" {
				continue
			}
			input, target := e.request(w.canary.port)
			if e.class == "spelled" && !libc && !stillAddress(target) {
				// Go's resolver sends 2130706433 and 0x7f.1 to DNS, which
				// has no answer for them here (the C library would connect:
				// see TestGuardReadsSpellingsWhereTheCResolverDoes). The
				// request fails without reaching anything.
				t.Run(setup.name+"/spelled-as-a-name/"+input, func(t *testing.T) {
					ctx := rampart.WithUntrusted(context.Background(), "job", input)
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
					resp, err := client.Do(req)
					if err == nil {
						resp.Body.Close()
						t.Fatalf("%s answered %s", target, resp.Status)
					}
					if errors.Is(err, rampart.ErrBlocked) || !isDNSError(err) {
						t.Errorf("err = %v, want the name not found", err)
					}
				})
				continue
			}
			t.Run(setup.name+"/job/"+input, func(t *testing.T) {
				ctx := rampart.WithUntrusted(context.Background(), "job", input)
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
				if err != nil {
					t.Fatal(err)
				}
				loc := nextLine()
				resp, err := client.Do(req)
				be := requireBlocked(t, resp, err, loc)
				if be.Event.Input.Source != "job" || be.Event.Input.Value != input {
					if !strings.Contains(be.Event.Reason, "metadata") {
						t.Errorf("event input = %+v, want the job's", be.Event.Input)
					}
				}
			})
			t.Run(setup.name+"/query/"+input, func(t *testing.T) {
				res, status := svc.fetch(t, input, target)
				requireBlocked(t, nil, res.err, res.location)
				if status != http.StatusForbidden {
					t.Errorf("the service answered %d, want 403 from the middleware", status)
				}
			})
		}
	}
	if h := w.canary.hits.Load(); h != 0 {
		t.Errorf("the canary saw %d connections, want none", h)
	}
	for _, d := range w.sim.Dialed() {
		if ap, err := netip.ParseAddrPort(d); err != nil || isInternal(ap.Addr()) {
			t.Errorf("the simulated network was asked to dial %s", d)
		}
	}
}

// stillAddress reports whether the host of target is an address or a
// localhost name whatever the resolver: dotted decimal with a trailing dot,
// "localhost.".
func stillAddress(target string) bool {
	u, err := url.Parse(target)
	if err != nil {
		return false
	}
	h := strings.TrimSuffix(u.Hostname(), ".")
	_, err = netip.ParseAddr(h)
	return err == nil || h == "localhost"
}

func TestEventSaysWhatWasBlockedAndWhy(t *testing.T) {
	w := newWorld(t)
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	client := w.guard(t, agent, ssrfguard.Config{}).Client(&http.Client{Transport: realBase()})
	svc := newService(t, agent, client)
	tests := []struct{ input, target, reason, detail string }{
		{
			"http://127.0.0.1:{port}/canary", "=",
			"host from query input is loopback 127.0.0.1",
			"GET ⟦http://127.0.0.1:{port}/canary⟧ → 127.0.0.1",
		},
		{
			"127.0.0.1.", "http://127.0.0.1.:{port}/x",
			"host from query input is loopback 127.0.0.1",
			"GET http://⟦127.0.0.1.⟧:{port}/x → 127.0.0.1",
		},
		{
			"0.0.0.0", "http://0.0.0.0:{port}/x",
			"host from query input is unspecified 0.0.0.0",
			"GET http://⟦0.0.0.0⟧:{port}/x → 0.0.0.0",
		},
		{
			"http://loop.attacker.test:{port}/", "=",
			"host from query input resolves to loopback 127.0.0.1",
			"GET ⟦http://loop.attacker.test:{port}/⟧ → 127.0.0.1:{port}",
		},
		{
			"localhost", "http://localhost:{port}/",
			`host from query input is the loopback name "localhost"`,
			"GET http://⟦localhost⟧:{port}/",
		},
		{
			"", "http://169.254.169.254/latest/meta-data/",
			"169.254.169.254 is a cloud metadata endpoint",
			"GET http://169.254.169.254/latest/meta-data/ → 169.254.169.254",
		},
	}
	for _, tt := range tests {
		port := strconv.Itoa(w.canary.port)
		input := strings.ReplaceAll(tt.input, "{port}", port)
		target := strings.ReplaceAll(tt.target, "{port}", port)
		if target == "=" {
			target = input
		}
		res, _ := svc.fetch(t, input, target)
		be := requireBlocked(t, nil, res.err, res.location)
		if be.Event.Reason != tt.reason {
			t.Errorf("%s: reason = %q, want %q", target, be.Event.Reason, tt.reason)
		}
		if want := strings.ReplaceAll(tt.detail, "{port}", port); be.Event.Detail != want {
			t.Errorf("%s: detail = %q, want %q", target, be.Event.Detail, want)
		}
		if be.Event.Route != "GET /fetch" {
			t.Errorf("%s: route = %q, want the service's", target, be.Event.Route)
		}
	}
}

// benign is one line of testdata/benign.txt, with placeholders filled in.
type benign struct {
	input, target string
	self          bool // the target is the service itself
}

func readBenign(t testing.TB, self string, port int) []benign {
	t.Helper()
	_, selfPort, _ := net.SplitHostPort(self)
	r := strings.NewReplacer("{self}", self, "{selfport}", selfPort, "{port}", strconv.Itoa(port))
	var out []benign
	for _, l := range corpus.Lines(t, "testdata/benign.txt") {
		f := l.Fields(t, '\t', 2)
		input, target := f[0], f[1]
		if target == "=" {
			target = input
		}
		b := benign{input: r.Replace(input), target: r.Replace(target), self: strings.Contains(target, "{self")}
		out = append(out, b)
	}
	return out
}

func onLoopback(target string) bool {
	u, err := url.Parse(target)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.Unmap().IsLoopback()
}

func TestGuardLetsBenignRequestsThrough(t *testing.T) {
	w := newWorld(t)
	agent, events := ramparttest.NewAgent(t, rampart.Config{})
	setups := []struct {
		name string
		base *http.Transport
		real bool
	}{
		{"net.Dialer", realBase(), true},
		{"custom DialContext", w.simBase(), false},
	}
	total := 0
	for _, setup := range setups {
		client := w.guard(t, agent, ssrfguard.Config{}).Client(&http.Client{Transport: setup.base, Timeout: time.Minute})
		svc := newService(t, agent, client)
		lines := readBenign(t, svc.self(), w.canary.port)
		if len(lines) < 100 {
			t.Fatalf("%d benign lines in the corpus, want at least 100", len(lines))
		}
		for _, l := range lines {
			input, target := l.input, l.target
			if setup.real && !onLoopback(target) {
				continue // public targets are never dialed for real
			}
			total++
			t.Run(setup.name+"/"+input+"→"+target, func(t *testing.T) {
				res, status := svc.fetch(t, input, target)
				if errors.Is(res.err, rampart.ErrBlocked) || status == http.StatusForbidden {
					t.Fatalf("blocked (%d): %v", status, res.err)
				}
				if res.err != nil && !errors.Is(res.err, errUnreachable) && !isDNSError(res.err) {
					t.Errorf("request failed: %v", res.err)
				}
				if onLoopback(target) && res.err != nil {
					t.Errorf("a loopback target failed: %v", res.err)
				}
				if l.self {
					// A self-call is one only inside a request to the
					// service; a job that requests the service's address
					// from its payload is an SSRF like any other.
					return
				}
				// The same input handed to a queue worker.
				ctx := rampart.WithUntrusted(context.Background(), "job", input)
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				if errors.Is(err, rampart.ErrBlocked) {
					t.Errorf("job: blocked: %v", err)
				}
			})
		}
	}
	if n := agent.Stats().Events; n != 0 {
		for _, ev := range events.Events() {
			t.Logf("event: %s | %s | %s", ev.Detail, ev.Reason, ev.Input.Value)
		}
		t.Errorf("%d events for benign requests, want none", n)
	}
	t.Logf("%d benign requests, none blocked", total)
}

func isDNSError(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de)
}
