package ssrfguard_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/ramparttest"
	"github.com/rampartsec/rampart/ssrfguard"
)

// TestZeroAddressReachesThisHostAndIsBlocked: on this machine a connection
// to 0.0.0.0 reaches the services listening on loopback, so an input that
// names it is refused; the rest of 0.0.0.0/8 reaches nothing, and an input
// that names an address there is no event (the dial fails on its own).
func TestZeroAddressReachesThisHostAndIsBlocked(t *testing.T) {
	w := newWorld(t)
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	unguarded := &http.Client{Transport: w.plainRealBase(), Timeout: time.Minute}
	guarded := w.guard(t, agent, ssrfguard.Config{}).Client(&http.Client{Transport: realBase(), Timeout: time.Minute})
	do := func(c *http.Client, host string) (*http.Response, error, string) {
		target := fmt.Sprintf("http://%s:%d/canary", host, w.canary.port)
		ctx := rampart.WithUntrusted(context.Background(), "job", target)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		loc := nextLine()
		resp, err := c.Do(req)
		return resp, err, loc
	}

	before := w.canary.hits.Load()
	resp, err, _ := do(unguarded, "0.0.0.0")
	if err != nil {
		t.Fatalf("unguarded http://0.0.0.0: %v", err)
	}
	resp.Body.Close()
	if w.canary.hits.Load() != before+1 {
		t.Fatal("unguarded: 0.0.0.0 did not reach the canary on loopback")
	}
	resp, err, loc := do(guarded, "0.0.0.0")
	be := requireBlocked(t, resp, err, loc)
	if want := "host from job input is unspecified 0.0.0.0"; be.Event.Reason != want {
		t.Errorf("reason %q, want %q", be.Event.Reason, want)
	}
	if w.canary.hits.Load() != before+1 {
		t.Error("guarded: the canary was reached")
	}

	for _, host := range []string{"0.0.156.248", "0.1.2.3"} {
		_, err, _ := do(unguarded, host)
		if err == nil || w.canary.hits.Load() != before+1 {
			t.Fatalf("unguarded %s: err %v, canary hits %d: this machine connects to 0.0.0.0/8", host, err, w.canary.hits.Load()-before)
		}
		_, err, _ = do(guarded, host)
		if err == nil || errors.Is(err, rampart.ErrBlocked) {
			t.Errorf("guarded %s: err = %v, want the dial's own failure and no event", host, err)
		}
	}
	if n := agent.Stats().Events; n != 1 {
		t.Errorf("%d events, want 1 (0.0.0.0)", n)
	}
}

// TestBareNumbersInURLsAreNotEvents: with Go's resolver a number is not an
// address (Go looks an all-numeric name up in /etc/hosts only, and sends
// 0x7f.1 to DNS), so a value such as ?page=40184 that becomes the host of a
// URL is not read as 0.0.156.248 and reported: the request fails as the
// name is not found, and the guard stays silent.
func TestBareNumbersInURLsAreNotEvents(t *testing.T) {
	w := newWorld(t)
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	for _, setup := range []struct {
		name string
		base *http.Transport
	}{{"net.Dialer", realBase()}, {"custom DialContext", w.simBase()}} {
		g := w.guard(t, agent, ssrfguard.Config{})
		if ssrfguard.ReadsSpellings(g) {
			t.Fatal("the test resolver, Go's, reads numbers as addresses")
		}
		svc := newService(t, agent, g.Client(&http.Client{Transport: setup.base, Timeout: time.Minute}))
		for _, c := range []struct{ input, target string }{
			{"40184", "http://40184/products/40184?page=40184"},
			{"http://40184/", "http://40184/"},
			{"40184", fmt.Sprintf("http://40184:%d/canary", w.canary.port)},
			{"3232235777", "http://3232235777/"},
		} {
			res, status := svc.fetch(t, c.input, c.target)
			if errors.Is(res.err, rampart.ErrBlocked) || status == http.StatusForbidden || !isDNSError(res.err) {
				t.Errorf("%s: %s (input %q): status %d, err %v; want the name not found, no event", setup.name, c.target, c.input, status, res.err)
			}
		}
	}
	if n := agent.Stats().Events; n != 0 {
		t.Errorf("%d events, want none", n)
	}
	if h := w.canary.hits.Load(); h != 0 {
		t.Errorf("the canary was reached %d times", h)
	}
}
