package web_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/sqlite"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/web"
)

const adminToken = "test-admin-token-0123456789"

// clock is a settable clock for the dashboard.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// ui is a dashboard over a real SQLite store, served over TLS.
type ui struct {
	t     testing.TB
	h     *web.Handler
	st    store.Store
	url   string       // the server's, https://127.0.0.1:port
	base  *http.Client // trusts the server's certificate
	clock *clock
}

func startUI(t testing.TB, mod func(*web.Config)) *ui {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sum := sha256.Sum256([]byte(adminToken))
	c := &clock{t: time.Now().UTC()}
	cfg := web.Config{Store: st, AdminTokenHash: sum[:], Now: c.Now}
	if mod != nil {
		mod(&cfg)
	}
	h, err := web.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(h)
	t.Cleanup(func() {
		h.EndStreams()
		srv.Close()
	})
	return &ui{t: t, h: h, st: st, url: srv.URL, base: srv.Client(), clock: c}
}

// startControlUI is startUI served by a real control plane, 'rampart
// server' in process: its store, its API's aggregates (web.ControlData),
// its HTTPS listener.
func startControlUI(t testing.TB, mod func(*web.Config)) *ui {
	t.Helper()
	return startControlUIOn(t, "", mod)
}

// startPostgresUI is startControlUI over PostgreSQL (a fresh schema of
// the database at 127.0.0.1:5432, or RAMPART_TEST_POSTGRES); it skips
// without one, and fails under CI=true.
func startPostgresUI(t testing.TB, mod func(*web.Config)) *ui {
	t.Helper()
	return startControlUIOn(t, storetest.PostgresSchema(t, "rampart_web_test_"), mod)
}

func startControlUIOn(t testing.TB, postgresDSN string, mod func(*web.Config)) *ui {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := control.InitWith(context.Background(), dir, "example.org", control.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Now().UTC()}
	u := &ui{t: t, clock: c}
	srv, err := control.StartServer(context.Background(), control.ServerConfig{Dir: dir, Addr: "127.0.0.1:0", PostgresDSN: postgresDSN,
		Dashboard: func(dc control.DashboardConfig) (http.Handler, error) {
			cfg := web.FromControl(dc)
			sum := sha256.Sum256([]byte(adminToken))
			cfg.AdminTokenHash, cfg.Now = sum[:], c.Now // the test's token and clock
			if mod != nil {
				mod(&cfg)
			}
			h, err := web.New(cfg)
			u.h, u.st = h, dc.Store
			return h, err
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	pem, err := os.ReadFile(filepath.Join(dir, control.CADir, ca.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	u.url = srv.URL()
	u.base = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	return u
}

// eachSource runs fn over a dashboard on a bare store (web.StoreData) and
// over one served by a control plane (web.ControlData), on SQLite and on
// PostgreSQL.
func eachSource(t *testing.T, fn func(t *testing.T, start func(testing.TB, func(*web.Config)) *ui)) {
	t.Run("over the store", func(t *testing.T) { fn(t, startUI) })
	t.Run("over the control plane", func(t *testing.T) { fn(t, startControlUI) })
	t.Run("over the control plane on PostgreSQL", func(t *testing.T) { fn(t, startPostgresUI) })
}

// client is a browser-like client: a cookie jar, no redirects followed,
// and the dashboard's origin on every request (as browsers send it).
func (u *ui) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	c := new(http.Client)
	*c = *u.base // a copy: the server's client is shared
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func (u *ui) do(c *http.Client, method, path string, form url.Values) (*http.Response, string) {
	u.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u.url+path, body)
	if err != nil {
		u.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", u.url)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	resp, err := c.Do(req)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// signIn returns a client with a session.
func (u *ui) signIn() *http.Client {
	u.t.Helper()
	c := u.client()
	resp, body := u.do(c, "POST", "/ui/login", url.Values{"token": {adminToken}})
	if resp.StatusCode != http.StatusSeeOther {
		u.t.Fatalf("sign in: %s\n%s", resp.Status, body)
	}
	return c
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token the page at path carries.
func (u *ui) csrf(c *http.Client, path string) string {
	u.t.Helper()
	_, body := u.do(c, "GET", path, nil)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		u.t.Fatalf("no CSRF token on %s", path)
	}
	return m[1]
}

var seq int

// event stores a security event as the SDK would report it.
func (u *ui) event(kind, action, service, ip, user string, data map[string]any) store.Event {
	u.t.Helper()
	seq++
	id := fmt.Sprintf("ev-%d-%d", time.Now().UnixNano(), seq)
	doc := map[string]any{"id": id, "kind": kind, "action": action, "service": service, "actor_ip": ip, "actor_user": user}
	for k, v := range data {
		doc[k] = v
	}
	raw, _ := json.Marshal(doc)
	ev := store.Event{ID: id, Time: u.clock.Now().Add(-time.Second), Kind: kind, Action: action, Service: service,
		ActorIP: ip, ActorUser: user, TraceID: str(data["trace_id"]), Data: raw}
	if _, err := u.st.AppendEvents(context.Background(), []store.Event{ev}); err != nil {
		u.t.Fatal(err)
	}
	return ev
}

func str(v any) string { s, _ := v.(string); return s }

// auditEvents returns the audit events stored, oldest first.
func (u *ui) auditEvents() []store.Event {
	u.t.Helper()
	evs, err := u.st.QueryEvents(context.Background(), store.EventFilter{Kind: web.AuditKind, Limit: 1000})
	if err != nil {
		u.t.Fatal(err)
	}
	return evs
}
