package gateway_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/controltest"
)

// loadBalancer is a real reverse proxy on 127.0.0.1 in front of the gateway,
// as deployed load balancers behave: it appends the address of its peer to
// X-Forwarded-For and passes every other header, Forwarded included,
// through from the client untouched.
func loadBalancer(t *testing.T, gatewayURL string) string {
	t.Helper()
	u, err := url.Parse(gatewayURL)
	if err != nil {
		t.Fatal(err)
	}
	lb := httptest.NewServer(httputil.NewSingleHostReverseProxy(u))
	t.Cleanup(lb.Close)
	return lb.URL
}

// clientAt returns an HTTP client whose connections come from the loopback
// address local (Linux routes all of 127.0.0.0/8 to lo), so that the load
// balancer sees distinct clients.
func clientAt(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: time.Minute}
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{DialContext: d.DialContext}}
}

// TestForwardedHeaderCannotMakeTheLoadBalancerTheClient is issue 10, item
// 1: behind a trusted load balancer that appends to X-Forwarded-For, a
// client's own Forwarded header (disagreeing, "unknown", obfuscated,
// malformed) made the gateway take the balancer's address for the
// client's. An IP block on the client was bypassed, and the client's rate
// limit and attribution fell on the balancer.
func TestForwardedHeaderCannotMakeTheLoadBalancerTheClient(t *testing.T) {
	p := newProxyEnv(t)
	gw := serveGateway(t, p.cp, "trusted_proxies: [127.0.0.1/32]\nroutes:\n"+p.route("shop", "/", "")+
		p.route("limited", "/limited/", "    rate_limit: {rate: 0.001, burst: 2, per: ip}\n"), time.Second, true)
	lb := loadBalancer(t, gw.url)

	forged := []string{"for=198.51.100.9", "for=unknown", "for=_hidden", `for="`, "for=127.0.0.1"}
	get := func(c *http.Client, path, forwarded string) (int, saw) {
		t.Helper()
		req, _ := http.NewRequest("GET", lb+path, nil)
		if forwarded != "" {
			req.Header.Set("Forwarded", forwarded)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var s saw
		data, _ := io.ReadAll(resp.Body)
		json.Unmarshal(data, &s)
		return resp.StatusCode, s
	}

	// Attribution: the upstream's actor is the client, whatever it sent.
	mallory := clientAt("127.0.0.2")
	for _, f := range forged {
		if status, s := get(mallory, "/api/items", f); status != 200 || s.ActorIP != "127.0.0.2" || s.ForwardedFor != "127.0.0.2" {
			t.Errorf("Forwarded %q: %d, actor IP %q, X-Forwarded-For %q; want 200 and the client, 127.0.0.2", f, status, s.ActorIP, s.ForwardedFor)
		}
	}

	// An IP block on the client holds whatever Forwarded header it sends.
	p.cp.AddDecision(t, controltest.Decision{Scope: "ip", Value: "127.0.0.2", Action: "block", Reason: "issue 10 item 1"})
	deadline := time.Now().Add(time.Minute)
	for {
		if status, _ := get(mallory, "/api/items", ""); status == http.StatusForbidden {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the block on 127.0.0.2 was not enforced after a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, f := range forged {
		if status, s := get(mallory, "/api/items", f); status != http.StatusForbidden {
			t.Errorf("blocked client with Forwarded %q: %d (upstream saw actor %q), want 403", f, status, s.ActorIP)
		}
	}
	if ev := p.cp.WaitEvent(t, "kind=decision_enforced&service=gateway"); ev["actor_ip"] != "127.0.0.2" {
		t.Errorf("decision event names actor IP %v, want 127.0.0.2", ev["actor_ip"])
	}
	// Another client behind the same balancer is not blocked.
	if status, s := get(clientAt("127.0.0.3"), "/api/items", "for=127.0.0.2"); status != 200 || s.ActorIP != "127.0.0.3" {
		t.Errorf("unblocked client: %d, actor IP %q", status, s.ActorIP)
	}

	// A route's rate limit counts the client's requests, not the
	// balancer's: after one client spent its burst with forged headers,
	// another still has its own.
	eve := clientAt("127.0.0.4")
	codes := map[int]int{}
	for i := range 4 {
		status, _ := get(eve, "/limited/x", forged[i%len(forged)])
		codes[status]++
	}
	if codes[200] != 2 || codes[429] != 2 {
		t.Errorf("burst of 2 for 127.0.0.4: %v, want two 200 and two 429", codes)
	}
	if status, s := get(clientAt("127.0.0.5"), "/limited/x", "for=unknown"); status != 200 || s.ActorIP != "127.0.0.5" {
		t.Errorf("another client on the rate-limited route: %d, actor IP %q; want 200 for 127.0.0.5", status, s.ActorIP)
	}
	if ev := p.cp.WaitEvent(t, "kind=rate_limited&service=gateway"); ev["actor_ip"] != "127.0.0.4" {
		t.Errorf("rate-limit event names actor IP %v, want 127.0.0.4", ev["actor_ip"])
	}
}

// TestTrustedProxyWithoutAUsableAddressIsRefused: when the trusted proxy
// itself writes no usable address, the request is refused with 400 and the
// gateway's JSON error; it is never attributed to the proxy.
func TestTrustedProxyWithoutAUsableAddressIsRefused(t *testing.T) {
	p := newProxyEnv(t)
	routes := "routes:\n" + p.route("shop", "/", "")
	xffGateway := serveGateway(t, p.cp, "trusted_proxies: [127.0.0.1/32]\n"+routes, time.Second, true)
	fwdGateway := serveGateway(t, p.cp, "trusted_proxies: [127.0.0.1/32]\ntrusted_proxy_header: Forwarded\n"+routes, time.Second, true)
	client := &http.Client{Timeout: time.Minute}
	for _, c := range []struct {
		name, base, header, value string
	}{
		{"X-Forwarded-For unknown", xffGateway.url, "X-Forwarded-For", "198.51.100.9, unknown"},
		{"X-Forwarded-For garbage", xffGateway.url, "X-Forwarded-For", "not an address"},
		{"X-Forwarded-For empty element", xffGateway.url, "X-Forwarded-For", "198.51.100.9, "},
		{"Forwarded unknown", fwdGateway.url, "Forwarded", "for=198.51.100.9, for=unknown"},
		{"Forwarded obfuscated", fwdGateway.url, "Forwarded", "for=_hidden"},
		{"Forwarded without for", fwdGateway.url, "Forwarded", "proto=https"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", c.base+"/api/items", nil)
			req.Header.Set(c.header, c.value)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			errorJSON(t, c.name, resp, http.StatusBadRequest)
		})
	}
}
