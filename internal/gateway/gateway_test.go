package gateway_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/actor"
	"github.com/rampartsec/rampart/internal/controltest"
	"github.com/rampartsec/rampart/internal/gateway"
)

// upstream is a service behind the gateway: it answers with what it saw.
type upstream struct {
	url   string
	agent *rampart.Agent
}

type saw struct {
	ActorIP       string              `json:"actor_ip"`
	ActorUser     string              `json:"actor_user"`
	ActorSession  string              `json:"actor_session"`
	Caller        string              `json:"caller"`
	Headers       map[string][]string `json:"headers"`
	Path          string              `json:"path"`
	Host          string              `json:"host"`
	BodyBytes     int                 `json:"body_bytes"`
	TraceParent   string              `json:"traceparent"`
	ForwardedFor  string              `json:"x_forwarded_for"`
	Authorization string              `json:"authorization"`
	ActorDevice   string              `json:"actor_device"`
}

// startUpstream runs service name as a member of the mesh.
func startUpstream(t testing.TB, cp *controltest.ControlPlane, name string, extra func(*http.ServeMux)) *upstream {
	t.Helper()
	src := cp.Join(t, name)
	agent, err := rampart.New(rampart.Config{Service: name, Identity: src, ControlPlane: cp.URL,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := agent.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		a, _ := actor.FromContext(r.Context())
		s := saw{ActorUser: a.User, ActorSession: a.Session, Headers: r.Header, Path: r.URL.Path, Host: r.Host,
			BodyBytes: int(n), TraceParent: r.Header.Get("traceparent"), ForwardedFor: r.Header.Get("X-Forwarded-For"),
			Authorization: r.Header.Get("Authorization"), ActorDevice: a.Device}
		if a.IP.IsValid() {
			s.ActorIP = a.IP.String()
		}
		if len(r.TLS.PeerCertificates) > 0 {
			s.Caller = r.TLS.PeerCertificates[0].URIs[0].String()
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s)
	})
	if extra != nil {
		extra(mux)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: agent.Handler(mux), TLSConfig: agent.ServerTLSConfig(), ReadHeaderTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() {
		srv.Close()
		agent.Close(context.Background())
	})
	return &upstream{url: "https://" + ln.Addr().String(), agent: agent}
}

// issuer is an OIDC issuer on loopback.
type issuer struct {
	url string
	key *ecdsa.PrivateKey
	kid string
}

func startIssuer(t testing.TB) *issuer {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	is := &issuer{key: key, kid: "issuer-key-1"}
	mux := http.NewServeMux()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	is.url = "http://" + ln.Addr().String()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": is.url, "jwks_uri": is.url + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: is.kid, Algorithm: "ES256", Use: "sig"}}})
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return is
}

func (is *issuer) token(t testing.TB, mod func(*jwt.Claims)) string {
	t.Helper()
	c := jwt.Claims{Issuer: is.url, Subject: "alice", Audience: jwt.Audience{"shop"},
		IssuedAt: jwt.NewNumericDate(time.Now()), Expiry: jwt.NewNumericDate(time.Now().Add(time.Hour))}
	if mod != nil {
		mod(&c)
	}
	sg, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: is.key, KeyID: is.kid}}, nil)
	tok, err := jwt.Signed(sg).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// startGateway runs a gateway with the YAML configuration yaml (listen and
// control_plane are filled in) and returns its base URL.
func startGateway(t testing.TB, cp *controltest.ControlPlane, yaml string) (*gateway.Gateway, string) {
	t.Helper()
	full := fmt.Sprintf("listen:\n  http: 127.0.0.1:0\ncontrol_plane:\n  url: %s\n  service: gateway\n%s", cp.URL, yaml)
	cfg, err := gateway.ParseConfig([]byte(full))
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(context.Background(), gateway.Options{Config: cfg, Identity: cp.Join(t, "gateway"),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		g.Serve(ctx, &gateway.Listeners{HTTP: ln}, 2*time.Second)
	}()
	t.Cleanup(func() {
		cancel()
		<-served
		g.Close()
	})
	select {
	case <-g.Ready():
	case <-time.After(time.Minute):
		t.Fatal("gateway not ready after a minute")
	}
	return g, "http://" + ln.Addr().String()
}

const policyYAML = `
services:
  shop:
    allow:
      - callers: [gateway]
    sensitive:
      - methods: [POST]
        paths: ["/api/checkout"]
`

type env struct {
	cp      *controltest.ControlPlane
	shop    *upstream
	gw      *gateway.Gateway
	url     string
	issuer  *issuer
	apiKey  string
	clients *http.Client
}

func newEnv(t *testing.T, routeExtra string) *env {
	t.Helper()
	cp := controltest.Start(t, controltest.Config{})
	cp.ApplyPolicy(t, policyYAML)
	shop := startUpstream(t, cp, "shop", nil)
	is := startIssuer(t)
	apiKey := "k-" + strings.Repeat("7", 40)
	sum := sha256.Sum256([]byte(apiKey))
	_, url := startGateway(t, cp, fmt.Sprintf(`trusted_proxies: [10.9.9.9/32]
auth:
  allow_insecure_http: true
  issuers: [{issuer: %q, audience: shop}]
  api_keys: [{name: partner, sha256: %x}]
routes:
  - name: shop
    path_prefix: /
    upstream: %s
    service: shop
  - name: account
    path_prefix: /account/
    upstream: %s
    service: shop
    auth: required
%s`, is.url, sum, shop.url, shop.url, routeExtra))
	return &env{cp: cp, shop: shop, url: url, issuer: is, apiKey: apiKey, clients: &http.Client{Timeout: time.Minute}}
}

func (e *env) do(t *testing.T, method, path string, body io.Reader, hdr map[string]string) (int, saw, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.clients.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var s saw
	data, _ := io.ReadAll(resp.Body)
	json.Unmarshal(data, &s)
	return resp.StatusCode, s, resp.Header
}

func TestProxyCarriesTheActorOverMTLS(t *testing.T) {
	e := newEnv(t, "")
	status, s, _ := e.do(t, "GET", "/api/items?q=lamp", nil, map[string]string{
		actor.Header:              "forged-by-the-client",
		"X-Forwarded-For":         "1.2.3.4",
		"X-Forwarded-Client-Cert": "By=spiffe://example.org/svc/admin",
		"traceparent":             "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	})
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	if s.Caller != "spiffe://example.org/svc/gateway" {
		t.Errorf("upstream called by %q, want the gateway's SVID", s.Caller)
	}
	// The peer (127.0.0.1) is not a trusted proxy: its XFF is ignored and
	// the actor is the connection's address.
	if s.ActorIP != "127.0.0.1" || s.ForwardedFor != "127.0.0.1" {
		t.Errorf("actor IP %q, X-Forwarded-For %q; want 127.0.0.1 (client XFF ignored)", s.ActorIP, s.ForwardedFor)
	}
	if _, ok := s.Headers["X-Forwarded-Client-Cert"]; ok {
		t.Error("a client-sent identity header reached the upstream")
	}
	if !strings.HasPrefix(s.TraceParent, "00-4bf92f3577b34da6a3ce929d0e0e4736-") || strings.Contains(s.TraceParent, "00f067aa0ba902b7") {
		t.Errorf("traceparent %q: want the client's trace with the gateway's span", s.TraceParent)
	}
	if s.Path != "/api/items" {
		t.Errorf("path %q", s.Path)
	}
	// Anonymous: no user.
	if s.ActorUser != "" {
		t.Errorf("anonymous request with user %q", s.ActorUser)
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t, "")
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	status, s, _ := e.do(t, "GET", "/account/me", nil, bearer(e.issuer.token(t, nil)))
	if status != 200 || s.ActorUser != "alice" || len(s.ActorSession) != 64 {
		t.Fatalf("valid JWT: %d, actor user %q session %q", status, s.ActorUser, s.ActorSession)
	}
	if s.Authorization != "" {
		t.Error("the user's bearer token was forwarded upstream")
	}
	if status, s, _ := e.do(t, "GET", "/account/me", nil, map[string]string{"X-Api-Key": e.apiKey}); status != 200 || s.ActorUser != "partner" {
		t.Errorf("API key: %d %q", status, s.ActorUser)
	}
	if status, _, h := e.do(t, "GET", "/account/me", nil, nil); status != 401 || h.Get("WWW-Authenticate") == "" {
		t.Errorf("no credentials on a required route: %d", status)
	}

	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pubDER, _ := x509.MarshalPKIXPublicKey(e.issuer.key.Public())
	claims := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(
		`{"iss":%q,"sub":"mallory","aud":["shop"],"exp":%d}`, e.issuer.url, time.Now().Add(time.Hour).Unix())))
	hs := func(secret []byte) string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"` + e.issuer.kid + `"}`))
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(h + "." + claims))
		return h + "." + claims + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	forged := func() string {
		sg, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: other, KeyID: e.issuer.kid}}, nil)
		tok, _ := jwt.Signed(sg).Claims(jwt.Claims{Issuer: e.issuer.url, Subject: "mallory", Audience: jwt.Audience{"shop"},
			Expiry: jwt.NewNumericDate(time.Now().Add(time.Hour))}).Serialize()
		return tok
	}()
	refused := map[string]string{
		"expired":               e.issuer.token(t, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(-time.Hour)) }),
		"wrong issuer":          e.issuer.token(t, func(c *jwt.Claims) { c.Issuer = "https://evil.example" }),
		"wrong audience":        e.issuer.token(t, func(c *jwt.Claims) { c.Audience = jwt.Audience{"bank"} }),
		"alg none":              base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + claims + ".",
		"HS256 with public key": hs(pubDER),
		"signed by another key": forged,
	}
	for name, tok := range refused {
		// Optional routes refuse bad credentials too: a presented
		// credential must be valid.
		for _, path := range []string{"/account/me", "/api/items"} {
			if status, s, _ := e.do(t, "GET", path, nil, bearer(tok)); status != 401 {
				t.Errorf("%s on %s: %d (user %q)", name, path, status, s.ActorUser)
			}
		}
	}
	if status, _, _ := e.do(t, "GET", "/account/me", nil, map[string]string{"X-Api-Key": "wrong"}); status != 401 {
		t.Errorf("wrong API key: %d", status)
	}
	e.cp.WaitEvent(t, "kind=auth_failed&service=gateway")
}

func TestWAFBlocksTheCRSAttackClasses(t *testing.T) {
	e := newEnv(t, "")
	attacks := map[string]string{
		"sqli": "/api/items?q=" + url.QueryEscape("1' UNION SELECT username, password FROM users--"),
		"xss":  "/api/items?q=" + url.QueryEscape("<script>alert(document.cookie)</script>"),
		"rce":  "/api/items?q=" + url.QueryEscape("; cat /etc/passwd"),
		"lfi":  "/api/items?file=" + url.QueryEscape("../../../../etc/passwd"),
	}
	for class, path := range attacks {
		status, s, h := e.do(t, "GET", path, nil, nil)
		if status != http.StatusForbidden || h.Get("X-Request-Id") == "" {
			t.Errorf("%s: %d (upstream saw %q)", class, status, s.Path)
		}
	}
	body := `{"comment": "<img src=x onerror=alert(1)>"}`
	if status, _, _ := e.do(t, "POST", "/api/comments", strings.NewReader(body), map[string]string{"Content-Type": "application/json"}); status != 403 {
		t.Errorf("XSS in a JSON body: %d", status)
	}
	for _, path := range []string{"/api/items?q=lamp&page=2", "/api/items?q=" + url.QueryEscape("O'Brien's lamp"), "/api/search?q=how+to+select+a+lamp"} {
		if status, _, _ := e.do(t, "GET", path, nil, nil); status != 200 {
			t.Errorf("benign %s: %d", path, status)
		}
	}
	if status, _, _ := e.do(t, "POST", "/api/orders", strings.NewReader(`{"item":"lamp","qty":2,"note":"leave at the door"}`),
		map[string]string{"Content-Type": "application/json"}); status != 200 {
		t.Errorf("benign JSON POST: %d", status)
	}
	ev := e.cp.WaitEvent(t, "kind=waf&service=gateway")
	if !strings.Contains(fmt.Sprint(ev["reason"]), "rules 9") || ev["actor_ip"] != "127.0.0.1" {
		t.Errorf("WAF event %v", ev)
	}
}

// TestDecisionsAreEnforcedAtTheEdge: a decision and its lifting reach the
// gateway through its watch. That the watch is woken by the change rather
// than answered at its timeout is proved where it is counted, by the control
// plane's watch tests (TestAWatcherIsWokenByANewDecision); here the wait is
// only a hang guard (on an idle machine it takes milliseconds, logged).
func TestDecisionsAreEnforcedAtTheEdge(t *testing.T) {
	e := newEnv(t, "")
	tok := e.issuer.token(t, nil)
	bearer := map[string]string{"Authorization": "Bearer " + tok}
	const within = time.Minute
	wait := func(want func(status int) bool, hdr map[string]string, method, path string) time.Duration {
		start := time.Now()
		for {
			status, _, _ := e.do(t, method, path, nil, hdr)
			if want(status) {
				return time.Since(start)
			}
			if time.Since(start) > within {
				t.Fatalf("%s %s: %d after %v", method, path, status, within)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	is := func(want int) func(int) bool { return func(status int) bool { return status == want } }
	id := e.cp.AddDecision(t, controltest.Decision{Scope: "ip", Value: "127.0.0.1", Action: "block"})
	t.Logf("IP block enforced %v after creation", wait(is(403), nil, "GET", "/api/items").Round(time.Millisecond))
	e.cp.DeleteDecision(t, id)
	wait(is(200), nil, "GET", "/api/items")

	id = e.cp.AddDecision(t, controltest.Decision{Scope: "user", Value: "alice", Action: "block"})
	wait(is(403), bearer, "GET", "/account/me")
	if status, _, _ := e.do(t, "GET", "/api/items", nil, nil); status != 200 {
		t.Errorf("an anonymous request was refused by alice's block: %d", status)
	}
	e.cp.DeleteDecision(t, id)
	wait(is(200), bearer, "GET", "/account/me")

	id = e.cp.AddDecision(t, controltest.Decision{Scope: "user", Value: "alice", Action: "block-sensitive"})
	wait(is(403), bearer, "POST", "/api/checkout")
	if status, _, _ := e.do(t, "POST", "/api/cart", nil, bearer); status != 200 {
		t.Errorf("block-sensitive refused a route that is not sensitive: %d", status)
	}
	e.cp.DeleteDecision(t, id)

	// A rate limit of 1 a minute (a burst of 1, one more request a minute
	// later), on 127.0.0.1. Anonymous requests are limited as the IP and
	// alice's as alice, each in its own bucket: alice's requests show when
	// the gateway has the decision (refused, by the limit or by the block
	// made after it) without spending the anonymous bucket, which then
	// lets one request through and refuses the next nine, however slowly
	// the machine sends them within the minute.
	e.cp.MustDo(t, "POST", "/v1/decisions", map[string]any{"scope": "ip", "value": "127.0.0.1", "action": "rate-limit", "rate_limit": 1}, 201, nil)
	id = e.cp.AddDecision(t, controltest.Decision{Scope: "user", Value: "alice", Action: "block"})
	wait(func(status int) bool { return status == 403 || status == 429 }, bearer, "GET", "/account/me")
	e.cp.DeleteDecision(t, id)
	codes := map[int]int{}
	var retryAfter string
	for range 10 {
		status, _, h := e.do(t, "GET", "/api/items", nil, nil)
		codes[status]++
		if status == 429 {
			retryAfter = h.Get("Retry-After")
		}
	}
	if codes[200] != 1 || codes[429] != 9 || retryAfter == "" {
		t.Errorf("1/min with a burst of 1: %v, Retry-After %q", codes, retryAfter)
	}
	e.cp.WaitEvent(t, "kind=rate_limited&service=gateway")
	e.cp.WaitEvent(t, "kind=decision_enforced&service=gateway")
}
