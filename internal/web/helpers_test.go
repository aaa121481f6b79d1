package web_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/sqlite"
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
	t     *testing.T
	h     *web.Handler
	st    store.Store
	srv   *httptest.Server
	clock *clock
}

func startUI(t *testing.T, mod func(*web.Config)) *ui {
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
	return &ui{t: t, h: h, st: st, srv: srv, clock: c}
}

// client is a browser-like client: a cookie jar, no redirects followed,
// and the dashboard's origin on every request (as browsers send it).
func (u *ui) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	c := new(http.Client)
	*c = *u.srv.Client() // a copy: the server's client is shared
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
	req, err := http.NewRequest(method, u.srv.URL+path, body)
	if err != nil {
		u.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", u.srv.URL)
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

var _ = tls.VersionTLS12
