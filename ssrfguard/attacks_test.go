package ssrfguard_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/ramparttest"
	"github.com/rampartsec/rampart/ssrfguard"
)

// validate is what applications write to stop SSRF: resolve the host and
// refuse internal addresses. It resolves once; the connection resolves again.
func validate(ctx context.Context, w *world, host string) error {
	ips, err := w.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return err
	}
	for _, ip := range ips {
		if isInternal(ip) {
			return fmt.Errorf("%s resolves to internal %s", host, ip)
		}
	}
	return nil
}

// redirectTo encodes a redirect target for the attacker's server.
func redirectTo(u string) string { return base64.RawURLEncoding.EncodeToString([]byte(u)) }

func TestDNSRebindingIsCaughtWhereTheConnectionIsMade(t *testing.T) {
	// rebind.test answers 203.0.113.10 to the first A query and 127.0.0.1 to
	// the next ones. The first answer is only ever used by validate: nothing
	// dials it.
	for _, setup := range []string{"unguarded", "net.Dialer", "custom DialContext"} {
		t.Run(setup, func(t *testing.T) {
			w := newWorld(t) // a fresh DNS server: rebind.test starts public again
			agent, _ := ramparttest.NewAgent(t, rampart.Config{})
			guarded := setup != "unguarded"
			client := &http.Client{Transport: w.plainRealBase(), Timeout: time.Minute}
			switch setup {
			case "net.Dialer":
				client = w.guard(t, agent, ssrfguard.Config{}).Client(&http.Client{Transport: realBase()})
			case "custom DialContext":
				client = w.guard(t, agent, ssrfguard.Config{}).Client(&http.Client{Transport: w.simBase()})
			}
			target := fmt.Sprintf("http://rebind.test:%d/canary", w.canary.port)
			ctx := rampart.WithUntrusted(context.Background(), "job", target)
			if err := validate(ctx, w, "rebind.test"); err != nil {
				t.Fatalf("validation refused the first answer: %v", err)
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
			loc := nextLine()
			resp, err := client.Do(req)
			if !guarded {
				if err != nil {
					t.Fatalf("unguarded: %v", err)
				}
				resp.Body.Close()
				if w.canary.hits.Load() != 1 {
					t.Fatalf("unguarded: canary hits = %d, want the rebound request", w.canary.hits.Load())
				}
				return
			}
			be := requireBlocked(t, resp, err, loc)
			if want := "host from job input resolves to loopback 127.0.0.1"; be.Event.Reason != want {
				t.Errorf("reason = %q, want %q", be.Event.Reason, want)
			}
			if h := w.canary.hits.Load(); h != 0 {
				t.Errorf("canary hits = %d, want 0", h)
			}
			for _, d := range w.sim.Dialed() {
				t.Errorf("the simulated network was asked to dial %s", d)
			}
		})
	}
}

func TestRedirectFromAnUntrustedHostIsTainted(t *testing.T) {
	w := newWorld(t)
	port := w.canary.port
	targets := []string{
		fmt.Sprintf("http://127.0.0.1:%d/canary", port),
		fmt.Sprintf("http://localhost:%d/canary", port),
		fmt.Sprintf("http://[::1]:%d/canary", port),
		fmt.Sprintf("http://0x7f.1:%d/canary", port),
		fmt.Sprintf("http://loop.attacker.test:%d/canary", port),
		"http://meta.attacker.test/latest/meta-data/",
		"http://internal.attacker.test/admin",
	}
	for _, to := range targets {
		for _, hops := range []int{0, 3} {
			input := fmt.Sprintf("http://attacker.test/r?hops=%d&to=%s", hops, redirectTo(to))
			t.Run(fmt.Sprintf("unguarded/%d/%s", hops, to), func(t *testing.T) {
				if strings.Contains(to, "0x7f.1") {
					t.Skip("Go's resolver does not read 0x7f.1 as an address")
				}
				client := &http.Client{Transport: w.simBase(), Timeout: time.Minute}
				before, dialed := w.canary.hits.Load(), len(w.sim.Dialed())
				resp, err := client.Get(input)
				if err == nil {
					resp.Body.Close()
				}
				reached := w.canary.hits.Load() > before
				for _, d := range w.sim.Dialed()[dialed:] {
					if ap, err := netip.ParseAddrPort(d); err == nil && !ap.Addr().Unmap().IsLoopback() && isInternal(ap.Addr()) {
						reached = true
					}
				}
				if !reached {
					t.Errorf("the redirect did not reach an internal address (%v)", err)
				}
			})
			t.Run(fmt.Sprintf("guarded/%d/%s", hops, to), func(t *testing.T) {
				agent, _ := ramparttest.NewAgent(t, rampart.Config{})
				g := w.guard(t, agent, ssrfguard.Config{})
				client := g.Client(&http.Client{Transport: w.simBase(), Timeout: time.Minute})
				before, dialed := w.canary.hits.Load(), len(w.sim.Dialed())
				ctx := rampart.WithUntrusted(context.Background(), "job", input)
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, input, nil)
				loc := nextLine()
				resp, err := client.Do(req)
				if strings.Contains(to, "0x7f.1") && !ssrfguard.ReadsSpellings(g) {
					// A name to Go's resolver, unknown to DNS here: the
					// redirect leads nowhere.
					if err == nil || !isDNSError(err) || w.canary.hits.Load() != before {
						t.Fatalf("err = %v, canary hits %d: want the name not found", err, w.canary.hits.Load()-before)
					}
					return
				}
				be := requireBlocked(t, resp, err, loc)
				if !strings.HasPrefix(be.Event.Reason, "redirect from a host from job input to a host that") && !strings.Contains(be.Event.Reason, "metadata") {
					t.Errorf("reason = %q", be.Event.Reason)
				}
				if !strings.Contains(be.Event.Detail, " redirected from ") || !strings.Contains(be.Event.Detail, "⟦") {
					t.Errorf("detail = %q, want the first hop marked", be.Event.Detail)
				}
				if w.canary.hits.Load() != before {
					t.Error("the canary was reached")
				}
				for _, d := range w.sim.Dialed()[dialed:] {
					if ap, _ := netip.ParseAddrPort(d); ap.Addr() != attackerV4 {
						t.Errorf("dialed %s, want only the attacker's server", d)
					}
				}
			})
		}
	}
}

func TestRedirectFromAnAllowedHostIsStillTainted(t *testing.T) {
	// An allow-listed host with an open redirect must not become a way in.
	w := newWorld(t)
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	_, aport, _ := strings.Cut(w.attacker.Listener.Addr().String(), ":")
	client := w.guard(t, agent, ssrfguard.Config{Allow: []string{"attacker.loop.test"}}).Client(&http.Client{Transport: realBase(), Timeout: time.Minute})
	input := fmt.Sprintf("http://attacker.loop.test:%s/r?to=%s", aport, redirectTo(fmt.Sprintf("http://127.0.0.1:%d/canary", w.canary.port)))
	ctx := rampart.WithUntrusted(context.Background(), "job", input)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, input, nil)
	loc := nextLine()
	resp, err := client.Do(req)
	requireBlocked(t, resp, err, loc)
	if h := w.canary.hits.Load(); h != 0 {
		t.Errorf("canary hits = %d", h)
	}

	// Without untrusted input the same redirect is the service's own doing.
	resp, err = client.Get(input)
	if err != nil {
		t.Fatalf("trusted redirect: %v", err)
	}
	resp.Body.Close()
	if h := w.canary.hits.Load(); h != 1 {
		t.Errorf("canary hits = %d, want the trusted request", h)
	}
}

func TestSelfCallRule(t *testing.T) {
	// The service may call itself on the address and port it was reached
	// on, even when the host came from input (a Referer, a return URL): that
	// request could have been sent to it directly. Another port of the same
	// host is another service.
	w := newWorld(t)
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	client := w.guard(t, agent, ssrfguard.Config{}).Client(&http.Client{Transport: realBase(), Timeout: time.Minute})
	svc := newService(t, agent, client)
	self := svc.self()
	other := fmt.Sprintf("http://127.0.0.1:%d/canary", w.canary.port)

	res, status := svc.fetch(t, "http://"+self+"/admin", "http://"+self+"/admin")
	if res.err != nil || status != http.StatusOK {
		t.Errorf("self-call: %d %v", status, res.err)
	}
	res, status = svc.fetch(t, other, other)
	requireBlocked(t, nil, res.err, res.location)
	if status != http.StatusForbidden {
		t.Errorf("same host, another port, from input: %d", status)
	}
	// The service's own call to another port, with its own host in the
	// Referer only, is not from input.
	res, _ = svc.fetch(t, "books", other)
	if res.err != nil {
		t.Errorf("hardcoded call to another local service: %v", res.err)
	}
	// A job has no "self".
	ctx := rampart.WithUntrusted(context.Background(), "job", "http://"+self+"/admin")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+self+"/admin", nil)
	loc := nextLine()
	resp, err := client.Do(req)
	requireBlocked(t, resp, err, loc)
	if h := w.canary.hits.Load(); h != 1 {
		t.Errorf("canary hits = %d, want 1 (the hardcoded call)", h)
	}
}

// TestCaseMappedInputIsStillTheHost: a service that case-maps the URL it
// was given (strings.ToLower, strings.ToUpper) turns four non-ASCII letters
// into ASCII ones: K (U+212A KELVIN SIGN) and İ (U+0130) lower to k and i,
// ſ (U+017F LONG S) and ı (U+0131 DOTLESS I) upper to S and I. The host it
// requests is then in the input only through that mapping, and the input
// chose it all the same.
func TestCaseMappedInputIsStillTheHost(t *testing.T) {
	w := newWorld(t)
	agent, events := ramparttest.NewAgent(t, rampart.Config{})
	g := w.guard(t, agent, ssrfguard.Config{})
	port := w.canary.port
	for _, tc := range []struct {
		host    string // as the input writes it
		mapping func(string) string
		// live: the mapped host is on this machine, and the request is
		// made for real against the canary; otherwise it is internal
		// elsewhere, and dialed on the simulated network.
		live bool
	}{
		{"loop.attac\u212Aer.test", strings.ToLower, true},
		{"localho\u017Ft", strings.ToUpper, true},
		{"\u0131p.localhost", strings.ToUpper, true},
		{"\u0130p.localhost", strings.ToLower, true},
		{"\u212Aubernetes.default.svc", strings.ToLower, false},
	} {
		input := fmt.Sprintf("http://%s:%d/canary", tc.host, port)
		target := tc.mapping(input)
		base, plain := w.simBase(), w.simBase()
		if tc.live {
			base, plain = realBase(), w.plainRealBase()
		}
		t.Run(target+"/unguarded", func(t *testing.T) {
			// The exploit is real: the mapped URL reaches an internal address.
			hits, dialed := w.canary.hits.Load(), len(w.sim.Dialed())
			resp, err := (&http.Client{Transport: plain, Timeout: time.Minute}).Get(target)
			if err == nil {
				resp.Body.Close()
			}
			reached := w.canary.hits.Load() > hits
			for _, d := range w.sim.Dialed()[dialed:] {
				if ap, err := netip.ParseAddrPort(d); err == nil && isInternal(ap.Addr()) {
					reached = true
				}
			}
			if !reached {
				t.Fatalf("%s reached no internal address (%v)", target, err)
			}
		})
		t.Run(target+"/guarded", func(t *testing.T) {
			hits, dialed := w.canary.hits.Load(), len(w.sim.Dialed())
			ctx := rampart.WithUntrusted(context.Background(), "job", input)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
			if err != nil {
				t.Fatal(err)
			}
			client := g.Client(&http.Client{Transport: base, Timeout: time.Minute})
			loc := nextLine()
			resp, err := client.Do(req)
			requireBlocked(t, resp, err, loc)
			u, err := url.Parse(target)
			if err != nil {
				t.Fatal(err)
			}
			loc = nextLine()
			err = g.Check(ctx, "tcp", u.Host)
			requireRefused(t, err, loc)
			want := ramparttest.Want{Kind: rampart.KindSSRF, Action: rampart.ActionBlocked, Input: rampart.Input{Source: "job", Value: input}}
			for range 2 {
				if d := want.Diff(events.Next(t)); d != "" {
					t.Error(d)
				}
			}
			if h := w.canary.hits.Load(); h != hits {
				t.Errorf("the canary saw %d connections, want none", h-hits)
			}
			if d := w.sim.Dialed()[dialed:]; len(d) != 0 {
				t.Errorf("the simulated network was asked to dial %v", d)
			}
		})
	}
}
