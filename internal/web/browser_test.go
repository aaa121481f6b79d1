package web_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/demo"
)

// chromium returns the browser to drive: $RAMPART_CHROMIUM, or Debian's
// chromium. Without one the browser tests skip, and fail under CI=true.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("RAMPART_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium: the browser tests need it in CI (apt-get install -y chromium)")
	}
	t.Skip("no chromium (apt-get install -y chromium, or RAMPART_CHROMIUM=path)")
	return ""
}

// screenshotDir is where the tests save their screenshots:
// $RAMPART_SCREENSHOTS, or a temporary directory.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("RAMPART_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runningDemo is the one-command demo, running in process: a control
// plane with the dashboard, the gateway, and the shop behind the SDK.
type runningDemo struct {
	gateway, control, dashboard, signIn, token string
	out                                        *syncBuffer
}

func startDemo(t *testing.T) *runningDemo {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	ready := make(chan string, 1)
	dash := make(chan demo.Dashboard, 1)
	done := make(chan error, 1)
	go func() {
		done <- demo.Run(ctx, demo.Config{Addr: "127.0.0.1:0", Mode: rampart.ModeBlock, Out: out, Ready: ready, DashboardReady: dash})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo.Run: %v", err)
		}
	})
	d := &runningDemo{out: out}
	select {
	case d.gateway = <-ready:
	case err := <-done:
		done <- err
		t.Fatalf("the demo stopped: %v\n%s", err, out.String())
	case <-time.After(3 * time.Minute):
		t.Fatalf("the demo did not start within 3 min:\n%s", out.String())
	}
	db := <-dash
	d.dashboard, d.signIn = db.URL, db.SignInLink
	d.control = strings.TrimSuffix(db.URL, "/ui/")
	m := regexp.MustCompile(`export RAMPART_TOKEN=(\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatal("the demo printed no admin token")
	}
	d.token = m[1]
	return d
}

// get sends a request to the gateway as a client at ip, and returns the
// status.
func (d *runningDemo) get(t *testing.T, ip, path string) int {
	t.Helper()
	req, err := http.NewRequest("GET", d.gateway+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", ip)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// waitStatus polls the gateway until it answers ip with want.
func (d *runningDemo) waitStatus(t *testing.T, ip, path string, want int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := d.get(t, ip, path)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway answers %s with %d, want %d, after 60 s; decisions: %.2000s", ip, got, want, d.api(t, "/v1/decisions"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// api GETs an admin endpoint of the control plane.
func (d *runningDemo) api(t *testing.T, path string) string {
	req, _ := http.NewRequest("GET", d.control+path, nil)
	req.Header.Set("Authorization", "Bearer "+d.token)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// postEvents stores events through the control plane's API, as the admin.
func (d *runningDemo) postEvents(t *testing.T, events []map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"events": events})
	req, _ := http.NewRequest("POST", d.control+"/v1/events", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // the demo's CA: the test checks the UI, not TLS
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /v1/events: %s %s", resp.Status, b)
	}
}

// browser is a headless Chromium with a fresh profile.
type browser struct {
	t       *testing.T
	ctx     context.Context
	dir     string
	dialogs atomic.Int64 // JavaScript dialogs opened: a script an attacker injected ran
}

// sentinel runs before every page's own scripts: it counts dialogs and
// CSP violations, which only an injected script or style would cause.
const sentinel = `(function(){
  var hit = function(){ document.documentElement.setAttribute('data-xss-ran', '1'); };
  window.alert = window.confirm = window.prompt = hit;
  window.__csp = 0;
  document.addEventListener('securitypolicyviolation', function(){ window.__csp++; });
})();`

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("ignore-certificate-errors", true), // the demo's own CA
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelB()
		cancelA()
	})
	b := &browser{t: t, ctx: ctx, dir: screenshotDir(t)}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: sentinel}); err != nil {
		t.Fatalf("browser: %v", err)
	}
	err := chromedp.Listen(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			b.dialogs.Add(1)
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	})
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return b
}

func (b *browser) run(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

func (b *browser) eval(expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
	defer cancel()
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](`String(`+expr+`)`))
	if err != nil {
		b.t.Fatalf("browser: %s: %v", expr, err)
	}
	return out
}

// waitFor evaluates expr in the page until it is true, for up to 60 s,
// through navigations (an evaluation cut by one is tried again).
func (b *browser) waitFor(expr string) {
	b.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!(`+expr+`)`))
		cancel()
		if err == nil && ok {
			return
		}
		if b.ctx.Err() != nil {
			break
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("browser: %s still false after 60 s (last error %v) at %s", expr, last, b.location())
}

// signIn signs in with the admin token, on the sign-in form.
func (b *browser) signIn(d *runningDemo) {
	b.t.Helper()
	b.run(chromedp.Navigate(d.dashboard+"login"),
		chromedp.SendKeys(chromedp.CSS(`input[name=token]`), d.token),
		chromedp.Click(chromedp.CSS(`form button[type=submit]`)))
	b.waitFor(`location.pathname === '/ui/' && !!document.getElementById('live')`)
}

// reloadUntil reloads the page until expr is true in it, for up to 60 s.
func (b *browser) reloadUntil(expr string) {
	b.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		b.run(chromedp.Reload())
		if b.eval(`!!(`+expr+`)`) == "true" {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("browser: %s still false after 60 s of reloads at %s", expr, b.location())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (b *browser) location() string { return b.eval("location.pathname + location.search") }

// noInjection fails if a script an attacker put in the page ran or tried to.
func (b *browser) noInjection(where string) {
	b.t.Helper()
	if got := b.eval(`document.documentElement.getAttribute('data-xss-ran')`); got != "null" {
		b.t.Errorf("%s: an injected script ran", where)
	}
	if got := b.eval(`window.__csp`); got != "0" {
		b.t.Errorf("%s: %s CSP violations: something injected tried to run", where, got)
	}
	if got := b.eval(`document.scripts.length`); got != "1" {
		b.t.Errorf("%s: %s scripts in the page, want the dashboard's one", where, got)
	}
	if got := b.eval(`Array.from(document.querySelectorAll('*')).filter(e => Array.from(e.attributes).some(a => /^on|^style$|^srcdoc$/i.test(a.name))).length`); got != "0" {
		b.t.Errorf("%s: %s elements with event-handler or style attributes", where, got)
	}
	if n := b.dialogs.Load(); n != 0 {
		b.t.Errorf("%s: %d JavaScript dialogs opened", where, n)
	}
}

// shoot saves the page at a desktop's and at a phone's size.
func (b *browser) shoot(name string) {
	b.t.Helper()
	for _, size := range [][2]int64{{1280, 800}, {390, 844}} {
		b.run(chromedp.EmulateViewport(size[0], size[1]), chromedp.Sleep(150*time.Millisecond))
		ctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		cancel()
		if err != nil {
			b.t.Fatalf("screenshot: %v", err)
		}
		file := filepath.Join(b.dir, fmt.Sprintf("%s-%d.png", name, size[0]))
		if err := os.WriteFile(file, png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	b.run(chromedp.EmulateViewport(1280, 800))
}

// TestBrowser drives Chromium through the dashboard of the running demo:
// one demo (the control plane, the gateway, the shop), a fresh browser
// profile for each part.
func TestBrowser(t *testing.T) {
	t.Logf("browser: %s", chromium(t))
	d := startDemo(t)
	t.Run("the dashboard answers an attack end to end", func(t *testing.T) { answerAnAttack(t, d) })
	t.Run("XSS payloads in events do not run", func(t *testing.T) { xssDoesNotRun(t, d) })
}

func answerAnAttack(t *testing.T, d *runningDemo) {
	b := newBrowser(t)

	// Refused without a session: every page sends to the sign-in form.
	b.run(chromedp.Navigate(d.dashboard + "events?attacks=1"))
	if loc := b.location(); !strings.HasPrefix(loc, "/ui/login") {
		t.Fatalf("without a session the events page is at %s, want the sign-in page", loc)
	}
	b.shoot("login")
	// The one-time link signs in, and then works no more.
	b.run(chromedp.Navigate(d.signIn))
	if loc := b.location(); loc != "/ui/" {
		t.Fatalf("after the sign-in link: %s", loc)
	}
	b.run(chromedp.Click(chromedp.CSS(`.who button`)))
	b.waitFor(`location.pathname === '/ui/login'`)
	b.run(chromedp.Navigate(d.signIn))
	if got := b.eval(`document.querySelector('h1').textContent`); got != "401" {
		t.Fatalf("the sign-in link used twice: %q, want 401", got)
	}
	b.signIn(d)
	b.waitFor(`document.getElementById('live-status').dataset.state === 'connected'`)
	b.noInjection("the overview")
	b.shoot("overview")

	// Attacks appear live: a new attacker, through the real gateway, while
	// the page stays loaded.
	const ip = "198.51.100.77"
	b.eval(`window.__stayed = 1`)
	if got := d.get(t, ip, "/products?q="+url.QueryEscape(demo.InjectionQuery)); got != http.StatusForbidden {
		t.Fatalf("the WAF let the injection through: %d", got)
	}
	if got := d.get(t, ip, "/products?q="+url.QueryEscape(demo.BlindInjectionQuery)); got != http.StatusForbidden {
		t.Fatalf("the SDK let the blind injection through: %d", got)
	}
	b.waitFor(`document.getElementById('live').textContent.includes('` + ip + `')`)
	if b.eval(`window.__stayed`) != "1" || b.eval(`Number(document.body.dataset.liveUpdates) > 0`) != "true" {
		t.Fatal("the attack appeared by a reload, not live")
	}

	// The event: the chain from the actor to the line of code.
	b.run(chromedp.Navigate(d.dashboard + "events?kind=sql_injection&ip=" + ip))
	b.waitFor(`document.querySelector('table.events tbody a') !== null`)
	b.shoot("events")
	b.run(chromedp.Click(chromedp.CSS(`table.events tbody td a`)))
	b.waitFor(`!!document.getElementById('chain')`)
	chain := b.eval(`document.getElementById('chain').textContent`)
	for _, want := range []string{ip, "Gateway", "shop", "Code"} {
		if !strings.Contains(chain, want) {
			t.Errorf("the chain %q lacks %q", chain, want)
		}
	}
	code := b.eval(`document.querySelector('[data-chain=code]').textContent`)
	if !regexp.MustCompile(`examples/shop/[a-z_]+\.go:\d+$`).MatchString(code) {
		t.Errorf("the code location is %q, want a line of the shop", code)
	}
	if got := b.eval(`document.querySelector('#statement mark').textContent`); !strings.Contains(got, "EXISTS(SELECT 1 FROM users") {
		t.Errorf("the input marked in the statement is %q", got)
	}
	b.noInjection("the event")
	b.shoot("event")

	// Detection answered those injections on its own: the actor's page
	// shows the scenario's decision.
	b.run(chromedp.Navigate(d.dashboard + "actor?scope=ip&value=" + ip))
	b.waitFor(`document.getElementById('actor-decisions').textContent.includes('injection-escalation')`)

	// Block another actor from its page; the real gateway refuses it.
	const other = "198.51.100.88"
	d.waitStatus(t, other, "/products?q=case", http.StatusOK)
	b.run(chromedp.Navigate(d.dashboard + "actor?scope=ip&value=" + other))
	b.waitFor(`!!document.getElementById('respond')`)
	b.run(chromedp.SendKeys(chromedp.CSS(`input[name=reason]`), "scraping the catalogue"),
		chromedp.Click(chromedp.CSS(`#decide`)))
	b.waitFor(`!!document.getElementById('flash')`)
	flash := b.eval(`document.getElementById('flash').textContent`)
	id := regexp.MustCompile(`Decision (\S+) made: block`).FindStringSubmatch(flash)
	if id == nil {
		t.Fatalf("after blocking, the page says %q", flash)
	}
	if b.eval(`!!document.querySelector('[data-decision="`+id[1]+`"]')`) != "true" {
		t.Fatalf("decision %s is not on the actor's page", id[1])
	}
	d.waitStatus(t, other, "/products?q=case", http.StatusForbidden)
	if got := d.get(t, "198.51.100.78", "/products?q=case"); got != http.StatusOK {
		t.Fatalf("another address is refused too: %d", got)
	}
	// The page shows when the gateway enforced it.
	b.reloadUntil(`document.querySelector('[data-decision="` + id[1] + `"]').textContent.includes('enforced by gateway')`)
	b.shoot("actor")

	// A forged CSRF token is refused, and changes nothing.
	b.eval(`document.querySelector('#respond input[name=csrf]').value = 'forged'`)
	b.run(chromedp.Click(chromedp.CSS(`#decide`)))
	b.waitFor(`document.querySelector('h1') && document.querySelector('h1').textContent === '403'`)
	b.run(chromedp.Navigate(d.dashboard + "decisions?state=active"))
	if n := b.eval(`document.querySelectorAll('[data-lift]').length`); n != "1" && !strings.Contains(b.eval(`document.body.innerText`), id[1]) {
		t.Fatalf("after a forged action there are %s decisions", n)
	}

	// Lift it; the gateway serves the actor again.
	b.run(chromedp.Navigate(d.dashboard+"actor?scope=ip&value="+other),
		chromedp.Click(chromedp.CSS(`button[data-lift="`+id[1]+`"]`)))
	b.waitFor(`!!document.getElementById('flash') && document.getElementById('flash').textContent.includes('lifted')`)
	d.waitStatus(t, other, "/products?q=case", http.StatusOK)

	// The service graph: the Internet, the gateway, the shop.
	b.run(chromedp.Navigate(d.dashboard + "services"))
	b.waitFor(`!!document.querySelector('#graph g[data-node="shop"]')`)
	for _, node := range []string{"internet", "gateway", "shop"} {
		if b.eval(`!!document.querySelector('#graph g[data-node="`+node+`"]')`) != "true" {
			t.Errorf("the graph has no node %s", node)
		}
	}
	if n := b.eval(`document.querySelectorAll('#graph path.edge-line').length`); n < "2" {
		t.Errorf("the graph has %s edges, want internet→gateway→shop", n)
	}
	b.shoot("services")

	// The other pages, for the record.
	for _, p := range []struct{ name, path, ready string }{
		{"decisions", "decisions?state=all", "table.decisions"},
		{"alerts", "alerts", "table"},
		{"scenarios", "scenarios", "table"},
		{"service", "services/shop", "h1"},
		{"policy", "policy", "#policy-yaml"},
		{"attacker", "actor?scope=ip&value=" + demo.AttackerIP, "#timeline"},
	} {
		b.run(chromedp.Navigate(d.dashboard + p.path))
		b.waitFor(`!!document.querySelector('` + p.ready + `')`)
		b.noInjection(p.name)
		b.shoot(p.name)
	}
	t.Logf("screenshots in %s", b.dir)
}

func xssDoesNotRun(t *testing.T, d *runningDemo) {
	b := newBrowser(t)
	b.signIn(d)

	payloads := xssPayloads(t)
	// Some through the real gateway, each from its own address: the WAF
	// reports them with what it matched.
	for i, p := range payloads[:12] {
		d.get(t, fmt.Sprintf("198.18.0.%d", i+1), "/products?q="+url.QueryEscape(p))
	}
	// All of them as a service's events would carry them.
	var events []map[string]any
	now := time.Now().UTC()
	for i, p := range payloads {
		id, ip, user := fmt.Sprintf("xss-%d", i), fmt.Sprintf("198.19.%d.%d", i/250, i%250+1), cleanText(p, 256)
		at := now.Add(-time.Duration(i) * time.Millisecond)
		// As an agent posts it: the fields the store indexes, and the
		// whole event as data.
		events = append(events, map[string]any{
			"id": id, "time": at, "kind": "sql_injection", "action": "blocked", "service": "shop", "actor_ip": ip, "actor_user": user,
			"data": map[string]any{
				"id": id, "time": at, "kind": "sql_injection", "action": "blocked", "service": "shop", "actor_ip": ip, "actor_user": user,
				"input": map[string]any{"source": "query", "name": "q", "value": p}, "detail": "SELECT 1 WHERE q = '⟦" + p + "⟧'",
				"reason": p, "location": p + ":1", "path": "/" + p, "caller": "spiffe://rampart.local/svc/" + p,
			},
		})
	}
	d.postEvents(t, events)
	b.waitFor(`document.getElementById('live').textContent.includes('198.19.')`)
	b.noInjection("the overview, live")
	for _, path := range []string{"events", "events?kind=waf", "events?attacks=1&service=shop"} {
		b.run(chromedp.Navigate(d.dashboard + path))
		b.noInjection(path)
	}
	for i := 0; i < len(payloads); i += 4 {
		b.run(chromedp.Navigate(d.dashboard + fmt.Sprintf("events/xss-%d", i)))
		b.noInjection(fmt.Sprintf("the event of payload %d", i))
		if got := b.eval(`document.getElementById('input-value').textContent`); got != payloads[i] {
			t.Errorf("payload %d is shown as %q", i, got)
		}
		b.run(chromedp.Navigate(d.dashboard + "actor?" + url.Values{"scope": {"user"}, "value": {cleanText(payloads[i], 256)}}.Encode()))
		b.noInjection(fmt.Sprintf("the actor of payload %d", i))
	}
}

// cleanText is s without the control characters the store refuses in
// the fields it indexes, cut to n bytes.
func cleanText(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, s)
	return truncateBytes(s, n)
}
