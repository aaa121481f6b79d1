package rampart_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/actor"
	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/controltest"
	"github.com/rampartsec/rampart/sqlguard"
)

// The mesh of the end-to-end test: an edge (played by the test, as service
// "gateway") calls web, web calls orders, orders calls users. orders builds
// a SQL query by concatenation. "tester" may call every service directly.
// "reports" may call orders, but no request from the edge passes through
// it: it plays a compromised service replaying tokens it captured.
// Every route of web requires an actor (the edge calls it); so does
// orders' GET and POST, by its rule.
const meshPolicy = `
services:
  web:
    allow:
      - callers: [gateway, tester]
  orders:
    allow:
      - callers: [web, tester, reports]
        methods: [GET, POST]
        paths: ["/orders", "/orders/{id}"]
        actor: required
    sensitive:
      - methods: [POST]
        paths: ["/orders"]
  users:
    allow:
      - callers: [orders, tester]
        methods: [GET]
        paths: ["/users/me"]
`

type meshService struct {
	name  string
	url   string
	agent *rampart.Agent
	src   *identity.CASource
}

// startService joins the control plane as name and serves routes over mTLS
// on 127.0.0.1 behind the agent's Handler.
func startService(t *testing.T, cp *controltest.ControlPlane, name string, routes func(*rampart.Agent, *http.ServeMux)) *meshService {
	t.Helper()
	src := cp.Join(t, name)
	sink, err := rampart.ControlPlaneSink(rampart.ControlPlaneConfig{URL: cp.URL, Client: src.ControlPlaneClient()})
	if err != nil {
		t.Fatal(err)
	}
	agent, err := rampart.New(rampart.Config{
		Service: name, Identity: src, ControlPlane: cp.URL, Sinks: []rampart.Sink{sink},
		Logger: slog.New(slog.NewTextHandler(testLog{t}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := agent.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	routes(agent, mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: agent.Handler(mux), TLSConfig: agent.ServerTLSConfig(),
		ErrorLog: slogDiscard(), ReadHeaderTimeout: time.Minute}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() {
		srv.Close()
		agent.Close(context.Background())
	})
	return &meshService{name: name, url: "https://" + ln.Addr().String(), agent: agent, src: src}
}

func slogDiscard() *log.Logger { return log.New(io.Discard, "", 0) }

// seen is what users reports of the request that reached it.
type seen struct {
	IP      string `json:"ip"`
	User    string `json:"user"`
	Session string `json:"session"`
	Trace   string `json:"trace"`
	Caller  string `json:"caller"`
}

// mesh starts the control plane, the policy and the three services.
type mesh struct {
	cp                 *controltest.ControlPlane
	web, orders, users *meshService
	gateway, tester    *identity.CASource
	reports            *identity.CASource
	signer             *actor.Signer
}

func startMesh(t *testing.T, svidTTL time.Duration) *mesh {
	t.Helper()
	cp := controltest.Start(t, controltest.Config{SVIDTTL: svidTTL})
	cp.ApplyPolicy(t, meshPolicy)
	m := &mesh{cp: cp}
	m.users = startService(t, cp, "users", func(a *rampart.Agent, mux *http.ServeMux) {
		mux.HandleFunc("GET /users/me", func(w http.ResponseWriter, r *http.Request) {
			act, _ := actor.FromContext(r.Context())
			s := seen{User: act.User, Session: act.Session, Trace: r.Header.Get("traceparent"), Caller: r.TLS.PeerCertificates[0].URIs[0].String()}
			if act.IP.IsValid() {
				s.IP = act.IP.String()
			}
			json.NewEncoder(w).Encode(s)
		})
	})
	m.orders = startService(t, cp, "orders", func(a *rampart.Agent, mux *http.ServeMux) {
		g, err := sqlguard.New(a, sqlguard.SQLite)
		if err != nil {
			t.Fatal(err)
		}
		db, err := g.Open(&sqlite.Driver{}, ":memory:")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { db.Close() })
		if _, err := db.Exec(`CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT, owner TEXT);
			INSERT INTO orders (item, owner) VALUES ('lamp', 'alice'), ('secret-plans', 'admin')`); err != nil {
			t.Fatal(err)
		}
		users, err := a.Client("users")
		if err != nil {
			t.Fatal(err)
		}
		mux.HandleFunc("GET /orders", func(w http.ResponseWriter, r *http.Request) {
			// The bug: the search term is concatenated into the SQL.
			rows, err := db.QueryContext(r.Context(), "SELECT item FROM orders WHERE owner = 'alice' AND item LIKE '%"+r.URL.Query().Get("q")+"%'")
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			var items []string
			for rows.Next() {
				var item string
				rows.Scan(&item)
				items = append(items, item)
			}
			rows.Close()
			req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, m.users.url+"/users/me", nil)
			resp, err := users.Do(req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			var s seen
			json.NewDecoder(resp.Body).Decode(&s)
			json.NewEncoder(w).Encode(map[string]any{"items": items, "users_saw": s, "users_status": resp.StatusCode})
		})
		mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"created":true}`)
		})
	})
	m.web = startService(t, cp, "web", func(a *rampart.Agent, mux *http.ServeMux) {
		orders, err := a.Client("orders")
		if err != nil {
			t.Fatal(err)
		}
		relay := func(w http.ResponseWriter, r *http.Request, method string) {
			req, _ := http.NewRequestWithContext(r.Context(), method, m.orders.url+"/orders?"+r.URL.RawQuery, nil)
			resp, err := orders.Do(req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			w.WriteHeader(resp.StatusCode)
			io.Copy(w, resp.Body)
		}
		mux.HandleFunc("GET /shop", func(w http.ResponseWriter, r *http.Request) { relay(w, r, http.MethodGet) })
		mux.HandleFunc("POST /shop", func(w http.ResponseWriter, r *http.Request) { relay(w, r, http.MethodPost) })
	})
	m.gateway = cp.Join(t, "gateway")
	m.tester = cp.Join(t, "tester")
	m.reports = cp.Join(t, "reports")
	m.signer = cp.Signer(t, m.gateway)
	return m
}

// client returns an HTTP client with src's identity for the service name.
func client(t *testing.T, src identity.Source, service string) *http.Client {
	t.Helper()
	id, _ := identity.ServiceID(src.TrustDomain(), service)
	c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: identity.ClientTLSConfig(src, id)}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func (m *mesh) call(t *testing.T, c *http.Client, method, url, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if token != "" {
		req.Header.Set(actor.Header, token)
	}
	req.Header.Set("traceparent", traceparent)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

var alice = actor.Actor{IP: netip.MustParseAddr("203.0.113.7"), User: "alice", Session: strings.Repeat("5e", 32)}

// audience returns the actor-token audience of the services.
func audience(t testing.TB, services ...string) actor.Audience {
	t.Helper()
	var ids []string
	for _, s := range services {
		ids = append(ids, "spiffe://example.org/svc/"+s)
	}
	aud, err := actor.NewAudience(ids...)
	if err != nil {
		t.Fatal(err)
	}
	return aud
}

// webToken is the token the gateway mints for alice's requests to web: it
// names web and what the policy lets web reach.
func (m *mesh) webToken(t testing.TB) string {
	t.Helper()
	token, err := m.signer.TokenFor(alice, audience(t, "web", "orders", "users"))
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func TestZeroTrustMesh(t *testing.T) {
	m := startMesh(t, 0)
	gw := client(t, m.gateway, "web")
	token := m.webToken(t)

	t.Run("the allowed chain carries the actor to the last service", func(t *testing.T) {
		status, body := m.call(t, gw, "GET", m.web.url+"/shop?q=lamp", token)
		if status != 200 {
			t.Fatalf("status %d %v", status, body)
		}
		saw := body["users_saw"].(map[string]any)
		if saw["ip"] != "203.0.113.7" || saw["user"] != "alice" || saw["session"] != alice.Session {
			t.Errorf("users saw %v, want alice from 203.0.113.7", saw)
		}
		if saw["caller"] != "spiffe://example.org/svc/orders" {
			t.Errorf("users was called by %v", saw["caller"])
		}
		if tp, _ := saw["trace"].(string); !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") {
			t.Errorf("traceparent at users: %q", tp)
		}
		if items := body["items"].([]any); len(items) != 1 || items[0] != "lamp" {
			t.Errorf("items %v", items)
		}
	})

	t.Run("the inventory shows what each instance serves, calls and uses", func(t *testing.T) {
		if status, _ := m.call(t, gw, "GET", m.web.url+"/shop?q=lamp", token); status != 200 {
			t.Fatalf("status %d", status)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			var got struct {
				Instances []struct {
					Routes    []string `json:"routes"`
					Peers     []string `json:"peers"`
					Callers   []string `json:"callers"`
					DBDrivers []string `json:"db_drivers"`
					Exposed   bool     `json:"exposed"`
					GoVersion string   `json:"go_version"`
					Live      bool     `json:"live"`
				} `json:"instances"`
			}
			m.cp.MustDo(t, "GET", "/v1/instances?service=orders", nil, http.StatusOK, &got)
			if len(got.Instances) == 1 {
				in := got.Instances[0]
				if slices.Contains(in.Routes, "GET /orders") && slices.Equal(in.DBDrivers, []string{"sqlite"}) &&
					slices.Equal(in.Peers, []string{"spiffe://example.org/svc/users"}) && in.Exposed && in.Live && in.GoVersion != "" &&
					slices.Equal(in.Callers, []string{"web GET /orders"}) { // the call web made, by its SVID
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("orders' inventory after 60 s: %+v", got.Instances)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("a service the policy does not allow is refused with an event", func(t *testing.T) {
		// gateway may call web, not users.
		status, body := m.call(t, client(t, m.gateway, "users"), "GET", m.users.url+"/users/me", token)
		if status != http.StatusForbidden || body["request_id"] == nil {
			t.Fatalf("gateway → users: %d %v", status, body)
		}
		ev := m.cp.WaitEvent(t, "kind=authz_denied&service=users")
		if ev["caller"] != "spiffe://example.org/svc/gateway" || ev["path"] != "/users/me" || ev["actor_ip"] != "203.0.113.7" {
			t.Errorf("event %v", ev)
		}
		// Allowed service, route outside its rules.
		if status, _ := m.call(t, client(t, m.tester, "orders"), "DELETE", m.orders.url+"/orders/1", token); status != http.StatusForbidden {
			t.Errorf("DELETE not in the policy: %d", status)
		}
	})

	t.Run("clients without a valid SVID are refused at the handshake", func(t *testing.T) {
		before := m.web.agent.RefusedHandshakes()
		noCert := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		if _, err := noCert.Get(m.web.url + "/shop"); err == nil {
			t.Error("client without a certificate got through")
		}
		// The next clients skip verifying the server, so that the server
		// is the one that must refuse them.
		withCert := func(cert tls.Certificate) *http.Client {
			return &http.Client{Timeout: time.Minute, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true}}}
		}
		other := controltest.Start(t, controltest.Config{}) // same trust domain name, another CA
		svid, _ := other.Join(t, "gateway").GetX509SVID()
		if _, err := withCert(tlsCert(svid.Certificates, svid.PrivateKey)).Get(m.web.url + "/shop"); err == nil {
			t.Error("client with an SVID from another CA got through")
		}
		if _, err := withCert(expiredSVID(t, m.cp, "gateway")).Get(m.web.url + "/shop"); err == nil {
			t.Error("client with an expired SVID got through")
		}
		if got := m.web.agent.RefusedHandshakes() - before; got != 3 {
			t.Errorf("%d refused handshakes counted, want 3", got)
		}
		m.cp.WaitEvent(t, "kind=mtls_refused&service=web")
	})

	t.Run("forged, expired and foreign actor tokens are refused", func(t *testing.T) {
		forger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		fs, _ := actor.NewSigner(actor.SignerConfig{Audience: "spiffe://example.org/svc/web"})
		fs.SetKey(m.signer.KeyID(), forger) // the real kid, another key
		forged, _ := fs.Token(alice)
		past, _ := actor.NewSigner(actor.SignerConfig{Audience: "spiffe://example.org/svc/web", Lifetime: time.Minute,
			Now: func() time.Time { return time.Now().Add(-10 * time.Minute) }})
		foreign, _ := actor.NewSigner(actor.SignerConfig{Audience: "spiffe://example.org/svc/orders"})
		_, key := m.cp.SigningKey(t, m.gateway)
		past.SetKey(m.signer.KeyID(), key)
		foreign.SetKey(m.signer.KeyID(), key)
		expired, _ := past.Token(alice)
		other, _ := foreign.Token(alice)
		for name, tok := range map[string]string{"forged": forged, "expired": expired, "another service's": other, "garbage": "x.y.z"} {
			status, body := m.call(t, gw, "GET", m.web.url+"/shop?q=lamp", tok)
			if status != http.StatusUnauthorized {
				t.Errorf("%s token: %d %v", name, status, body)
			}
		}
		m.cp.WaitEvent(t, "kind=actor_token_invalid&service=web")
	})

	t.Run("SQL injection through the chain is blocked in orders and names the external actor", func(t *testing.T) {
		status, body := m.call(t, gw, "GET", m.web.url+"/shop?q="+url.QueryEscape("%' OR owner = 'admin' --"), token)
		if status != http.StatusForbidden {
			t.Fatalf("injection: %d %v", status, body)
		}
		if strings.Contains(fmt.Sprint(body), "secret-plans") {
			t.Fatal("the injection leaked the admin's order")
		}
		ev := m.cp.WaitEvent(t, "kind=sql_injection&service=orders")
		if ev["actor_ip"] != "203.0.113.7" || ev["actor_user"] != "alice" || ev["caller"] != "spiffe://example.org/svc/web" {
			t.Errorf("event names %v / %v / caller %v", ev["actor_ip"], ev["actor_user"], ev["caller"])
		}
		if ev["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Errorf("trace id %v", ev["trace_id"])
		}
	})

	t.Run("a call without an actor token is refused where the policy requires one", func(t *testing.T) {
		// web: the edge may call it, so every route requires an actor,
		// from every caller.
		status, body := m.call(t, client(t, m.tester, "web"), "GET", m.web.url+"/shop?q=lamp", "")
		if status != http.StatusUnauthorized || body["request_id"] == nil {
			t.Fatalf("tester → web without a token: %d %v, want 401 with a request id", status, body)
		}
		ev := m.cp.WaitEvent(t, "kind=actor_missing&service=web")
		if ev["caller"] != "spiffe://example.org/svc/tester" || ev["path"] != "/shop" {
			t.Errorf("event %v", ev)
		}
		// orders: its rule says actor: required, even for a service
		// the edge never passes through.
		if status, body := m.call(t, client(t, m.reports, "orders"), "GET", m.orders.url+"/orders?q=lamp", ""); status != http.StatusUnauthorized {
			t.Errorf("reports → orders without a token: %d %v", status, body)
		}
		// users: only services call it, no actor needed.
		if status, body := m.call(t, client(t, m.tester, "users"), "GET", m.users.url+"/users/me", ""); status != http.StatusOK {
			t.Errorf("tester → users without a token: %d %v, want 200", status, body)
		}
	})

	t.Run("a token replayed by a service it does not name is refused", func(t *testing.T) {
		// reports captured the token minted for web's requests (from a
		// log, say) and presents it to orders, which it may call: orders
		// is named in the token, but reports is not, so the token is
		// not reports' to present.
		status, body := m.call(t, client(t, m.reports, "orders"), "GET", m.orders.url+"/orders?q=lamp", token)
		if status != http.StatusUnauthorized || !strings.Contains(fmt.Sprint(body["error"]), "does not name") {
			t.Fatalf("reports replaying web's token to orders: %d %v, want 401", status, body)
		}
		ev := m.cp.WaitEvent(t, "kind=actor_token_invalid&service=orders")
		if ev["caller"] != "spiffe://example.org/svc/reports" || ev["actor_ip"] != nil {
			t.Errorf("event %v: want the caller named and no actor", ev)
		}
		// A token minted for another part of the mesh (reports') is
		// refused by web, which it does not name.
		forReports, _ := m.signer.TokenFor(alice, audience(t, "reports", "orders", "users"))
		if status, body := m.call(t, gw, "GET", m.web.url+"/shop?q=lamp", forReports); status != http.StatusUnauthorized {
			t.Errorf("gateway → web with a token for reports: %d %v", status, body)
		}
		// The same token, in the chain it was minted for, is good.
		if status, body := m.call(t, gw, "GET", m.web.url+"/shop?q=lamp", token); status != http.StatusOK {
			t.Errorf("gateway → web → orders → users: %d %v", status, body)
		}
	})

	t.Run("decisions reach every service within a second", func(t *testing.T) {
		// tester calls each service directly: its token names it.
		token, _ := m.signer.TokenFor(alice, audience(t, "web", "orders", "users", "tester"))
		tester := map[string]*http.Client{}
		paths := map[string]string{"web": "/shop?q=lamp", "orders": "/orders?q=lamp", "users": "/users/me"}
		svcURL := map[string]string{"web": m.web.url, "orders": m.orders.url, "users": m.users.url}
		for name := range paths {
			tester[name] = client(t, m.tester, name)
		}
		statusAll := func(method string) map[string]int {
			out := map[string]int{}
			for name, p := range paths {
				if method == "POST" && name != "orders" {
					continue
				}
				u := svcURL[name] + p
				if method == "POST" {
					u = svcURL[name] + "/orders"
				}
				out[name], _ = m.call(t, tester[name], method, u, token)
			}
			return out
		}
		waitAll := func(method string, want int) time.Duration {
			start := time.Now()
			for {
				got := statusAll(method)
				ok := true
				for _, s := range got {
					ok = ok && s == want
				}
				if ok {
					return time.Since(start)
				}
				if time.Since(start) > 60*time.Second {
					t.Fatalf("after %v: %v, want %d everywhere", time.Since(start), got, want)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		id := m.cp.AddDecision(t, controltest.Decision{Scope: "ip", Value: "203.0.113.7", Action: "block", Reason: "e2e"})
		// How fast is a figure of BENCHMARKS.md (propagation), not an
		// assertion: a busy machine may take seconds.
		d := waitAll("GET", http.StatusForbidden)
		t.Logf("block enforced by web, orders and users %v after it was created", d.Round(time.Millisecond))
		m.cp.WaitEvent(t, "kind=decision_enforced&service=users")
		m.cp.DeleteDecision(t, id)
		waitAll("GET", http.StatusOK)

		id = m.cp.AddDecision(t, controltest.Decision{Scope: "user", Value: "alice", Action: "read-only"})
		waitAll("POST", http.StatusForbidden)
		if got := statusAll("GET"); got["web"] != 200 || got["orders"] != 200 || got["users"] != 200 {
			t.Errorf("read-only refused a GET: %v", got)
		}
		m.cp.DeleteDecision(t, id)
		waitAll("POST", http.StatusCreated)

		id = m.cp.AddDecision(t, controltest.Decision{Scope: "cidr", Value: "203.0.113.0/24", Action: "block-sensitive"})
		waitAll("POST", http.StatusForbidden) // POST /orders is sensitive
		if got := statusAll("GET"); got["orders"] != 200 {
			t.Errorf("block-sensitive refused a GET: %v", got)
		}
		m.cp.DeleteDecision(t, id)
		waitAll("POST", http.StatusCreated)
	})
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func tlsCert(chain []*x509.Certificate, key crypto.Signer) tls.Certificate {
	c := tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, cert := range chain {
		c.Certificate = append(c.Certificate, cert.Raw)
	}
	return c
}

// expiredSVID makes, with the control plane's own CA key, an SVID for
// service that expired an hour ago.
func expiredSVID(t *testing.T, cp *controltest.ControlPlane, service string) tls.Certificate {
	t.Helper()
	authority, err := ca.Load(filepath.Join(cp.Dir, control.CADir))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(cp.Dir, control.CADir, ca.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(keyPEM)
	caKey, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	id, _ := identity.ServiceID(cp.TrustDomain, service)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		URIs:         []*url.URL{id.URL()},
		NotBefore:    time.Now().Add(-2 * time.Hour),
		NotAfter:     time.Now().Add(-time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, authority.Certificate(), key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tlsCert([]*x509.Certificate{leaf}, key)
}

// With 30-second SVIDs the services keep talking across several rotations,
// and keep serving on their last SVIDs while the control plane is down,
// until those expire.
func TestZeroTrustMeshAcrossRotations(t *testing.T) {
	if testing.Short() {
		t.Skip("SVID rotation: with 30-second SVIDs the mesh keeps serving across rotations and through a control-plane outage until the SVIDs expire; about 75 s, run without -short")
	}
	t.Parallel()
	const ttl = 30 * time.Second
	m := startMesh(t, ttl)
	gw := client(t, m.gateway, "web")
	token := m.webToken(t)
	ok := func() error {
		req, _ := http.NewRequest("GET", m.web.url+"/shop?q=lamp", nil)
		req.Header.Set(actor.Header, token)
		resp, err := gw.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var body struct {
			UsersSaw seen `json:"users_saw"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != 200 || body.UsersSaw.User != "alice" {
			return fmt.Errorf("status %d, users saw %+v", resp.StatusCode, body.UsersSaw)
		}
		return nil
	}
	start := time.Now()
	for time.Since(start) < 50*time.Second {
		if err := ok(); err != nil {
			t.Fatalf("after %v: %v", time.Since(start).Round(time.Second), err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, s := range []*meshService{m.web, m.orders, m.users} {
		if n := s.src.Renewals(); n < 3 {
			t.Errorf("%s renewed its SVID %d times in 50 s of 30 s SVIDs, want at least 3", s.name, n)
		}
	}
	// The gateway's own client identity renews too.
	m.cp.Stop()
	expiry := time.Now().Add(ttl)
	for _, src := range []*identity.CASource{m.web.src, m.orders.src, m.users.src, m.gateway} {
		svid, _ := src.GetX509SVID()
		expiry = minTime(expiry, svid.Certificates[0].NotAfter)
	}
	// Up to 5 s before the first expiry: a call a busy machine has slowed
	// must not reach the expiry with a handshake still to do.
	for time.Until(expiry) > 5*time.Second {
		if err := ok(); err != nil {
			t.Fatalf("with the control plane down, %v before the first expiry: %v", time.Until(expiry).Round(time.Millisecond), err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("served for %v with the control plane down", time.Since(expiry.Add(-ttl)).Round(time.Second))
	// Once an SVID has expired the mesh must stop talking. A busy machine
	// may still finish a call that was under way at the expiry, so poll
	// until a call fails rather than trying exactly once.
	time.Sleep(time.Until(expiry) + time.Second)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		gw.CloseIdleConnections()
		if err := ok(); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mesh still talks on SVIDs that expired %v ago", time.Since(expiry).Round(time.Second))
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
