package ssrfguard_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/ramparttest"
	"github.com/rampartsec/rampart/ssrfguard"
)

func TestNewValidatesTheConfig(t *testing.T) {
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	if _, err := ssrfguard.New(nil, ssrfguard.Config{}); err == nil || !strings.Contains(err.Error(), "agent") {
		t.Errorf("New(nil agent) = %v, want an error about the agent", err)
	}
	good := []string{"api.partner.com", "*.internal.example", "10.20.0.0/16", "192.168.1.7", "::1", "[fd00::1]", "fd00::/8", "api.partner.com.", "svc_name"}
	if _, err := ssrfguard.New(agent, ssrfguard.Config{Allow: good, Deny: good}); err != nil {
		t.Errorf("New with valid lists: %v", err)
	}
	for _, field := range []string{"Allow", "Deny"} {
		for _, bad := range []string{"", "foo bar", "http://example.com", "example.com:443", "10.0.0.0/33", "*", "*.", "a..b", "127.1", "0x7f.1", "fe80::1%eth0/64", "ex*ample.com", strings.Repeat("a", 64) + ".com"} {
			cfg := ssrfguard.Config{}
			list := []string{"ok.example", bad}
			if field == "Allow" {
				cfg.Allow = list
			} else {
				cfg.Deny = list
			}
			_, err := ssrfguard.New(agent, cfg)
			if err == nil {
				t.Errorf("Config.%s entry %q accepted", field, bad)
				continue
			}
			if want := "Config." + field + "[1]"; !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
		}
	}
}

func TestAllowAndDenyLists(t *testing.T) {
	w := newWorld(t)
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	port := w.canary.port
	tests := []struct {
		name    string
		cfg     ssrfguard.Config
		input   string // "" when no untrusted input is involved
		target  string
		blocked bool
	}{
		{"allowed CIDR lets a host from input reach it", ssrfguard.Config{Allow: []string{"127.0.0.0/8"}}, "x", "http://127.0.0.1:{port}/", false},
		{"allowed host lets a host from input reach it", ssrfguard.Config{Allow: []string{"loop.attacker.test"}}, "x", "http://loop.attacker.test:{port}/", false},
		{"allowed wildcard", ssrfguard.Config{Allow: []string{"*.attacker.test"}}, "x", "http://loop.attacker.test:{port}/", false},
		{"wildcard does not match the domain itself", ssrfguard.Config{Allow: []string{"*.loop.attacker.test"}}, "x", "http://loop.attacker.test:{port}/", true},
		{"an allowed address does not allow others", ssrfguard.Config{Allow: []string{"127.0.0.2"}}, "x", "http://127.0.0.1:{port}/", true},
		{"deny wins over allow", ssrfguard.Config{Allow: []string{"127.0.0.0/8"}, Deny: []string{"127.0.0.1"}}, "", "http://127.0.0.1:{port}/", true},
		{"denied host without input", ssrfguard.Config{Deny: []string{"loop.attacker.test"}}, "", "http://loop.attacker.test:{port}/", true},
		{"denied CIDR without input, reached by name", ssrfguard.Config{Deny: []string{"127.0.0.0/8"}}, "", "http://loop.attacker.test:{port}/", true},
		{"denied CIDR covers IPv4-mapped forms", ssrfguard.Config{Deny: []string{"127.0.0.0/8"}}, "", "http://[::ffff:127.0.0.1]:{port}/", true},
		{"no input: loopback is the service's business", ssrfguard.Config{}, "", "http://127.0.0.1:{port}/", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := w.guard(t, agent, tt.cfg).Client(&http.Client{Transport: realBase(), Timeout: time.Minute})
			target := strings.ReplaceAll(tt.target, "{port}", fmt.Sprint(port))
			ctx := context.Background()
			if tt.input != "" {
				ctx = rampart.WithUntrusted(ctx, "job", target)
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
			loc := nextLine()
			resp, err := client.Do(req)
			if tt.blocked {
				requireBlocked(t, resp, err, loc)
				return
			}
			if err != nil {
				t.Fatalf("not allowed: %v", err)
			}
			resp.Body.Close()
		})
	}
}

func TestMetadataEndpointsAreDeniedWithoutInput(t *testing.T) {
	w := newWorld(t)
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	for _, target := range []string{
		"http://169.254.169.254/latest/meta-data/",
		"http://[fd00:ec2::254]/latest/meta-data/",
		"http://100.100.100.200/latest/meta-data/",
		"http://169.254.170.2/v2/credentials/",
		"http://169.254.170.23/v1/credentials",
		"http://[fd00:ec2::23]/v1/credentials",
		"http://metadata.google.internal/computeMetadata/v1/",
		"http://metadata/computeMetadata/v1/",
		"http://[::ffff:169.254.169.254]/",
	} {
		for _, cfg := range []ssrfguard.Config{{}, {Allow: []string{"169.254.0.0/16", "*.google.internal", "fd00::/8", "0.0.0.0/0", "::/0"}}} {
			client := w.guard(t, agent, cfg).Client(&http.Client{Transport: w.simBase()})
			loc := nextLine()
			resp, err := client.Get(target)
			requireBlocked(t, resp, err, loc)
		}
	}
	for _, d := range w.sim.Dialed() {
		t.Errorf("dialed %s", d)
	}

	// An exact allowed host that is not a metadata name does not open them.
	client := w.guard(t, agent, ssrfguard.Config{Allow: []string{"meta.attacker.test"}}).Client(&http.Client{Transport: w.simBase()})
	loc := nextLine()
	resp, err := client.Get("http://meta.attacker.test/latest/meta-data/")
	requireBlocked(t, resp, err, loc)

	// A client made for the cloud SDK names the endpoint exactly.
	for _, allow := range []string{"169.254.169.254", "metadata.google.internal"} {
		client := w.guard(t, agent, ssrfguard.Config{Allow: []string{allow}}).Client(&http.Client{Transport: w.simBase()})
		target := "http://" + allow + "/computeMetadata/v1/"
		_, err := client.Get(target)
		if !errors.Is(err, errUnreachable) {
			t.Errorf("Allow %s: %s: err = %v, want the simulated network's", allow, target, err)
		}
	}
}

func TestMonitorModeReportsEveryAttemptAndLetsItThrough(t *testing.T) {
	w := newWorld(t)
	agent, events := ramparttest.NewAgent(t, rampart.Config{Mode: rampart.ModeMonitor})
	client := w.guard(t, agent, ssrfguard.Config{}).Client(&http.Client{Transport: realBase(), Timeout: time.Minute})
	targets := []string{
		fmt.Sprintf("http://127.0.0.1:%d/canary", w.canary.port),          // decided from the host
		fmt.Sprintf("http://loop.attacker.test:%d/canary", w.canary.port), // decided at the dial
	}
	var locs []string
	for _, target := range targets {
		for range 3 {
			ctx := rampart.WithUntrusted(context.Background(), "job", target)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
			locs = append(locs, nextLine())
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("monitor mode refused %s: %v", target, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	if err := agent.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h := w.canary.hits.Load(); h != 6 {
		t.Errorf("canary hits = %d, want 6 (nothing is refused, connections are not reused)", h)
	}
	evs := events.Events()
	if len(evs) != len(locs) {
		t.Fatalf("%d events, want one per request (%d)", len(evs), len(locs))
	}
	for i, ev := range evs {
		want := ramparttest.Want{Kind: rampart.KindSSRF, Action: rampart.ActionMonitored, Location: locs[i]}
		if d := want.Diff(ev); d != "" {
			t.Errorf("event %d: %s", i, d)
		}
	}
}

// TestMonitorModeReportsRequestsWhoseDialFails: a request to an internal
// port where nothing listens is reported in monitor mode like one that
// connects.
func TestMonitorModeReportsRequestsWhoseDialFails(t *testing.T) {
	w := newWorld(t)
	agent, events := ramparttest.NewAgent(t, rampart.Config{Mode: rampart.ModeMonitor})
	client := w.guard(t, agent, ssrfguard.Config{}).Client(&http.Client{Transport: realBase(), Timeout: time.Minute})
	target := "http://loop.attacker.test:" + closedPort(t) + "/" // decided at the dial
	ctx := rampart.WithUntrusted(context.Background(), "job", target)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	loc := nextLine()
	resp, err := client.Do(req)
	if err == nil {
		resp.Body.Close()
	} else if errors.Is(err, rampart.ErrBlocked) {
		t.Fatalf("monitor mode: %v, want the dial's own outcome", err)
	}
	if err := agent.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs := events.Events()
	if len(evs) != 1 {
		t.Fatalf("%d events, want the attempt reported once (request: %v)", len(evs), err)
	}
	want := ramparttest.Want{Kind: rampart.KindSSRF, Action: rampart.ActionMonitored, Location: loc}
	if d := want.Diff(evs[0]); d != "" {
		t.Error(d)
	}
}

// recordingRoundTripper is a RoundTripper that is not an *http.Transport: it
// answers 200 itself and records what it was asked.
type recordingRoundTripper struct {
	mu   sync.Mutex
	urls []string
}

func (r *recordingRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.urls = append(r.urls, req.URL.String())
	r.mu.Unlock()
	if req.Body != nil {
		req.Body.Close()
	}
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req, Header: http.Header{}}, nil
}

func TestOtherRoundTrippersAreCheckedBeforeTheCall(t *testing.T) {
	w := newWorld(t)
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	base := &recordingRoundTripper{}
	client := w.guard(t, agent, ssrfguard.Config{}).Client(&http.Client{Transport: base})
	tests := []struct {
		input, target string
		blocked       bool
	}{
		{"http://127.0.0.1/", "http://127.0.0.1/", true},
		{"0x7f.1", "http://0x7f.1/", true},
		{"localhost", "http://localhost/", true},
		{"http://internal.attacker.test/", "http://internal.attacker.test/", true}, // resolved by the guard
		{"", "http://169.254.169.254/", true},
		{"", "http://127.0.0.1/", false},
		{"https://example.com/", "https://example.com/", false},
		{"api", "http://api.internal/", false},
	}
	for _, tt := range tests {
		ctx := context.Background()
		if tt.input != "" {
			ctx = rampart.WithUntrusted(ctx, "job", tt.input)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tt.target, nil)
		loc := nextLine()
		resp, err := client.Do(req)
		if tt.blocked {
			requireBlocked(t, resp, err, loc)
		} else if err != nil {
			t.Errorf("%s: %v", tt.target, err)
		}
	}
	if got := len(base.urls); got != 3 {
		t.Errorf("the wrapped RoundTripper saw %v, want the 3 allowed requests", base.urls)
	}
}

func TestProxiedRequestsAreCheckedByTheTargetNotTheProxy(t *testing.T) {
	// The proxy itself is on loopback, an internal address: dialing it is
	// the operator's configuration, not the attacker's doing.
	w := newWorld(t)
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	var proxied atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		rw.Write([]byte("via proxy"))
	}))
	defer proxy.Close()
	proxyURL, _ := url.Parse(proxy.URL)
	base := &http.Transport{Proxy: http.ProxyURL(proxyURL)}
	client := w.guard(t, agent, ssrfguard.Config{}).Client(&http.Client{Transport: base, Timeout: time.Minute})

	for _, target := range []string{"http://example.com/feed", "http://partner.example/api"} {
		ctx := rampart.WithUntrusted(context.Background(), "job", target)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s through the proxy: %v", target, err)
		}
		resp.Body.Close()
	}
	for _, target := range []string{"http://internal.attacker.test/admin", "http://127.0.0.1/admin", "http://169.254.169.254/"} {
		ctx := rampart.WithUntrusted(context.Background(), "job", target)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		loc := nextLine()
		resp, err := client.Do(req)
		requireBlocked(t, resp, err, loc)
	}
	if n := proxied.Load(); n != 2 {
		t.Errorf("the proxy served %d requests, want the 2 public ones", n)
	}
}

// trackedBody records whether it was closed.
type trackedBody struct {
	io.Reader
	closed atomic.Bool
}

func (b *trackedBody) Close() error { b.closed.Store(true); return nil }

func TestRoundTripperContract(t *testing.T) {
	w := newWorld(t)
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	for _, base := range []http.RoundTripper{realBase(), &recordingRoundTripper{}} {
		rt := w.guard(t, agent, ssrfguard.Config{}).Transport(base)
		t.Run(fmt.Sprintf("%T", base), func(t *testing.T) {
			// The request is not modified, whether it is sent or refused.
			for _, target := range []string{fmt.Sprintf("http://127.0.0.1:%d/canary", w.canary.port), "http://127.0.0.1:1/"} {
				body := &trackedBody{Reader: strings.NewReader("payload")}
				ctx := rampart.WithUntrusted(context.Background(), "job", "127.0.0.1:1")
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, target, body)
				req.Header.Set("X-Custom", "1")
				before := *req
				beforeURL := *req.URL
				beforeHeader := req.Header.Clone()
				resp, err := rt.RoundTrip(req)
				if err == nil {
					resp.Body.Close()
				}
				if !reflect.DeepEqual(*req.URL, beforeURL) || !reflect.DeepEqual(req.Header, beforeHeader) ||
					req.Context() != before.Context() || req.Close != before.Close || req.Host != before.Host || req.Body != before.Body {
					t.Errorf("%s: RoundTrip modified the request", target)
				}
				if strings.HasSuffix(target, ":1/") {
					if !errors.Is(err, rampart.ErrBlocked) {
						t.Errorf("%s: err = %v, want blocked", target, err)
					}
					if !body.closed.Load() {
						t.Errorf("%s: the body of a refused request was not closed", target)
					}
				} else if err != nil {
					t.Errorf("%s: %v", target, err)
				}
			}
		})
		if c, ok := rt.(interface{ CloseIdleConnections() }); !ok {
			t.Errorf("%T has no CloseIdleConnections", rt)
		} else {
			c.CloseIdleConnections()
		}
	}
}

func TestHTTPSAndHTTP2KeepWorking(t *testing.T) {
	w := newWorld(t)
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprint(rw, r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	base := srv.Client().Transport.(*http.Transport) // trusts the test certificate
	client := w.guard(t, agent, ssrfguard.Config{}).Client(&http.Client{Transport: base})
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "HTTP/2.0" {
		t.Errorf("served over %s, want HTTP/2.0", body)
	}

	ctx := rampart.WithUntrusted(context.Background(), "job", srv.URL)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	loc := nextLine()
	resp, err = client.Do(req)
	requireBlocked(t, resp, err, loc)
}

func TestConcurrentRequestsAreRaceFree(t *testing.T) {
	w := newWorld(t)
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	client := w.guard(t, agent, ssrfguard.Config{}).Client(&http.Client{Transport: realBase(), Timeout: time.Minute})
	good := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { rw.Write([]byte("ok")) }))
	defer good.Close()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			target := good.URL
			ctx := context.Background()
			if i%2 == 1 {
				target = fmt.Sprintf("http://localhost:%d/canary", w.canary.port)
				ctx = rampart.WithUntrusted(ctx, "job", target)
			}
			for range 10 {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
				resp, err := client.Do(req)
				if i%2 == 1 {
					if !errors.Is(err, rampart.ErrBlocked) {
						t.Errorf("not blocked: %v", err)
					}
					continue
				}
				if err != nil {
					t.Errorf("trusted request: %v", err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if h := w.canary.hits.Load(); h != 0 {
		t.Errorf("canary hits = %d", h)
	}
}
