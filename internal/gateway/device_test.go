package gateway_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/actor"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/controltest"
	"github.com/rampartsec/rampart/internal/store"
)

// deviceEnv is a control plane, service "shop" with a login handler that
// reports its attempts (rampart.TrackLogin: password "right" succeeds),
// and a gateway whose /login route is marked login.
type deviceEnv struct {
	cp     *controltest.ControlPlane
	url    string
	issuer *issuer
}

func newDeviceEnv(t *testing.T, detect *control.DetectConfig) *deviceEnv {
	t.Helper()
	cp := controltest.Start(t, controltest.Config{Detect: detect})
	cp.ApplyPolicy(t, policyYAML)
	shop := startLoginService(t, cp)
	is := startIssuer(t)
	_, u := startGateway(t, cp, fmt.Sprintf(`auth:
  allow_insecure_http: true
  issuers: [{issuer: %q, audience: shop}]
routes:
  - name: shop
    path_prefix: /
    upstream: %s
    service: shop
  - name: login
    path_prefix: /login
    upstream: %s
    service: shop
    login: true
`, is.url, shop, shop))
	return &deviceEnv{cp: cp, url: u, issuer: is}
}

// startLoginService runs service "shop" with a control-plane sink, whose
// POST /login reports its attempts (password "right" succeeds) and
// answers with the actor it saw; other paths answer with the actor too.
func startLoginService(t *testing.T, cp *controltest.ControlPlane) string {
	t.Helper()
	src := cp.Join(t, "shop")
	sink, err := rampart.ControlPlaneSink(rampart.ControlPlaneConfig{URL: cp.URL, Client: src.ControlPlaneClient()})
	if err != nil {
		t.Fatal(err)
	}
	agent, err := rampart.New(rampart.Config{Service: "shop", Identity: src, ControlPlane: cp.URL,
		Sinks: []rampart.Sink{sink}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := agent.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	answer := func(w http.ResponseWriter, r *http.Request) {
		a, _ := actor.FromContext(r.Context())
		json.NewEncoder(w).Encode(saw{ActorUser: a.User, ActorSession: a.Session, ActorDevice: a.Device, ActorIP: a.IP.String()})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", answer)
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		name, ok := r.PostForm.Get("name"), r.PostForm.Get("password") == "right"
		l := rampart.Login{Name: name, Success: ok, UserExists: true}
		if ok {
			l.User = name
		}
		rampart.TrackLogin(r.Context(), l)
		answer(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: agent.Handler(mux), TLSConfig: agent.ServerTLSConfig(), ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() {
		srv.Close()
		agent.Close(context.Background())
	})
	return "https://" + ln.Addr().String()
}

// client is a browser (a cookie jar) or, with jar false, a tool that
// keeps no cookies; ua is its User-Agent.
type client struct {
	t   *testing.T
	hc  *http.Client
	env *deviceEnv
	ua  string
	hdr map[string]string
}

func (e *deviceEnv) client(t *testing.T, jar bool, ua string) *client {
	c := &client{t: t, hc: &http.Client{Timeout: 10 * time.Second}, env: e, ua: ua, hdr: map[string]string{}}
	if jar {
		c.hc.Jar, _ = cookiejar.New(nil)
	}
	return c
}

func (c *client) do(method, path string, form url.Values) (int, saw, *http.Response) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.env.url+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", c.ua)
	for k, v := range c.hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var s saw
	data, _ := io.ReadAll(resp.Body)
	json.Unmarshal(data, &s)
	return resp.StatusCode, s, resp
}

// waitStatus repeats the request until it answers want, for up to a
// minute (a deadline for a busy machine, not an expectation of speed).
func (c *client) waitStatus(want int, method, path string, form url.Values) {
	c.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		status, _, _ := c.do(method, path, form)
		if status == want {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s %s: %d after a minute, want %d", method, path, status, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func deviceCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == "rampart_device" {
			return c
		}
	}
	return nil
}

// The gateway issues a signed device cookie, names the device in the
// actor token, and enforces a decision on a device: the browser that
// carries the cookie is refused, another browser behind the same address
// is not, and the refusal's event names the device.
func TestDeviceDecisionsAreEnforcedAtTheEdge(t *testing.T) {
	e := newDeviceEnv(t, nil)
	a := e.client(t, true, "Mozilla/5.0 (browser A)")
	b := e.client(t, true, "Mozilla/5.0 (browser A)") // the same browser model, another device

	status, first, resp := a.do("GET", "/api/items", nil)
	c := deviceCookie(resp)
	if status != 200 || c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.MaxAge <= 0 {
		t.Fatalf("first visit: %d, cookie %+v; want 200 and an HttpOnly, SameSite=Lax device cookie", status, c)
	}
	if !strings.HasPrefix(first.ActorDevice, "t-") {
		t.Errorf("first visit, no cookie returned yet: device %q, want a network-and-traits device (t-)", first.ActorDevice)
	}
	_, s1, resp := a.do("GET", "/api/items", nil)
	_, s2, _ := a.do("GET", "/api/items", nil)
	if !strings.HasPrefix(s1.ActorDevice, "c-") || s1.ActorDevice != s2.ActorDevice || deviceCookie(resp) != nil {
		t.Fatalf("with the cookie: devices %q, %q (cookie issued again: %v); want one stable cookie device",
			s1.ActorDevice, s2.ActorDevice, deviceCookie(resp) != nil)
	}
	b.do("GET", "/api/items", nil)
	_, sb, _ := b.do("GET", "/api/items", nil)
	if sb.ActorDevice == s1.ActorDevice || !strings.HasPrefix(sb.ActorDevice, "c-") {
		t.Fatalf("two browsers behind one address: devices %q and %q, want two", s1.ActorDevice, sb.ActorDevice)
	}

	// A cookie the gateway did not sign is no device: a client cannot
	// choose another's.
	forger := e.client(t, false, "Mozilla/5.0 (browser A)")
	forged := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	forger.hdr["Cookie"] = "rampart_device=" + forged
	_, sf, resp := forger.do("GET", "/api/items", nil)
	if !strings.HasPrefix(sf.ActorDevice, "t-") || deviceCookie(resp) == nil {
		t.Errorf("forged cookie: device %q, new cookie %v; want it ignored (t- device) and a real one issued", sf.ActorDevice, deviceCookie(resp) != nil)
	}

	id := e.cp.AddDecision(t, controltest.Decision{Scope: "device", Value: s1.ActorDevice, Action: "block"})
	// The service's agent enforces it too (the token names the device);
	// wait for the gateway's own refusal.
	deadline := time.Now().Add(time.Minute)
	for len(e.cp.Events(t, "kind=decision_enforced&service=gateway")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the gateway did not refuse the blocked device within a minute")
		}
		if status, _, _ := a.do("GET", "/api/items", nil); status != http.StatusForbidden && status != 200 {
			t.Fatalf("blocked device: %d", status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status, _, _ := a.do("GET", "/api/items", nil); status != http.StatusForbidden {
		t.Errorf("blocked device: %d, want 403", status)
	}
	if status, _, _ := b.do("GET", "/api/items", nil); status != 200 {
		t.Errorf("another browser behind the same address: %d, want 200", status)
	}
	ev := e.cp.WaitEvent(t, "kind=decision_enforced&service=gateway")
	if ev["device"] != s1.ActorDevice || ev["decision"] != id {
		t.Errorf("refusal event names device %v, decision %v; want %s, %s", ev["device"], ev["decision"], s1.ActorDevice, id)
	}
	e.cp.DeleteDecision(t, id)
	a.waitStatus(200, "GET", "/api/items", nil)
}

// A read-only user (what account takeover decides) keeps safe methods,
// loses writes, and can still sign in again on the login route, where the
// service sees no user to refuse; a block still refuses the login.
func TestReadOnlyUserSignsInAgainOnTheLoginRoute(t *testing.T) {
	e := newDeviceEnv(t, nil)
	alice := e.client(t, true, "Mozilla/5.0 (alice)")
	alice.hdr["Authorization"] = "Bearer " + e.issuer.token(t, nil)
	login := url.Values{"name": {"alice"}, "password": {"right"}}

	id := e.cp.AddDecision(t, controltest.Decision{Scope: "user", Value: "alice", Action: "read-only"})
	alice.waitStatus(http.StatusForbidden, "POST", "/api/cart", nil)
	if status, _, _ := alice.do("GET", "/api/items", nil); status != 200 {
		t.Errorf("read-only user GET: %d, want 200", status)
	}
	status, s, _ := alice.do("POST", "/login", login)
	if status != 200 {
		t.Fatalf("read-only user signing in again: %d, want 200", status)
	}
	if s.ActorUser != "" || s.ActorSession != "" || s.ActorIP != "127.0.0.1" || s.ActorDevice == "" {
		t.Errorf("the login route's actor: %+v; want the address and device, no user or session", s)
	}
	e.cp.DeleteDecision(t, id)

	e.cp.AddDecision(t, controltest.Decision{Scope: "user", Value: "alice", Action: "block"})
	alice.waitStatus(http.StatusForbidden, "POST", "/login", login)
}

// Account takeover through the whole chain: the gateway fingerprints the
// device, the service reports logins, the control plane's detector keys
// them on address, name and device. Five failures for alice from a tool
// behind the office address, then alice's own success from her browser
// behind the same address: no takeover (before devices, everyone behind
// the address was device "-" and alice's account was made read-only).
// Then the tool's own success: a takeover, and alice's account is made
// read-only at the edge.
func TestAccountTakeoverKeysOnTheGatewaysDevice(t *testing.T) {
	e := newDeviceEnv(t, &control.DetectConfig{})
	tool := e.client(t, false, "stuffer/1.0")
	victim := e.client(t, true, "Mozilla/5.0 (alice)")
	wrong := url.Values{"name": {"alice"}, "password": {"wrong"}}
	right := url.Values{"name": {"alice"}, "password": {"right"}}

	var toolDevice string
	for range 5 {
		status, s, _ := tool.do("POST", "/login", wrong)
		if status != 200 {
			t.Fatalf("tool's attempt: %d", status)
		}
		toolDevice = s.ActorDevice
	}
	victim.do("GET", "/", nil) // the login page: the browser gets its cookie
	_, vs, _ := victim.do("POST", "/login", right)
	if vs.ActorDevice == toolDevice || !strings.HasPrefix(vs.ActorDevice, "c-") {
		t.Fatalf("victim's device %q, tool's %q: want two devices", vs.ActorDevice, toolDevice)
	}
	e.cp.WaitEvent(t, "kind=login_success")

	if status, _, _ := tool.do("POST", "/login", right); status != 200 {
		t.Fatalf("tool's success: %d", status)
	}
	var alerts control.AlertList
	deadline := time.Now().Add(time.Minute)
	for len(alerts.Alerts) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no account-takeover alert a minute after the tool's success")
		}
		time.Sleep(50 * time.Millisecond)
		e.cp.MustDo(t, "GET", "/v1/alerts?scenario=account-takeover", nil, 200, &alerts)
	}
	if len(alerts.Alerts) != 1 {
		t.Fatalf("%d account-takeover alerts, want 1 (the tool's): %+v", len(alerts.Alerts), alerts.Alerts)
	}
	a := alerts.Alerts[0]
	if !strings.Contains(a.Key, toolDevice) || strings.Contains(a.Key, vs.ActorDevice) || a.Count != 6 {
		t.Errorf("alert key %q, count %d; want the tool's device %s and its 6 attempts", a.Key, a.Count, toolDevice)
	}
	if len(a.Decisions) != 1 || a.Decisions[0].Scope != "user" || a.Decisions[0].Value != "alice" ||
		a.Decisions[0].Action != store.ActionReadOnly || a.Decisions[0].ID == "" {
		t.Fatalf("decisions %+v, want alice read-only", a.Decisions)
	}

	// Enforced at the edge: alice's writes are refused, her sign-in is not.
	alice := e.client(t, true, "Mozilla/5.0 (alice)")
	alice.hdr["Authorization"] = "Bearer " + e.issuer.token(t, nil)
	alice.waitStatus(http.StatusForbidden, "POST", "/api/cart", nil)
	if status, _, _ := alice.do("POST", "/login", right); status != 200 {
		t.Errorf("alice signing in again after the takeover: %d, want 200", status)
	}
	// The refusal is reported (by the gateway, or by the service's agent
	// if its watch saw the decision first), naming the decision.
	names := func(raw json.RawMessage) bool { return strings.Contains(string(raw), a.Decisions[0].ID) }
	for deadline := time.Now().Add(time.Minute); !slices.ContainsFunc(e.cp.Events(t, "kind=decision_enforced"), names); {
		if time.Now().After(deadline) {
			t.Fatalf("no decision_enforced event names %s after a minute", a.Decisions[0].ID)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
