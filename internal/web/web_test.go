package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/web"
)

func TestNothingIsReachableWithoutASession(t *testing.T) {
	eachSource(t, func(t *testing.T, start func(testing.TB, func(*web.Config)) *ui) {
		u := start(t, nil)
		ev := u.event("sql_injection", "blocked", "shop", "203.0.113.9", "", nil)
		c := u.client()
		for _, path := range []string{"/ui/", "/ui/events", "/ui/events/" + ev.ID, "/ui/actor?scope=ip&value=203.0.113.9",
			"/ui/decisions", "/ui/alerts", "/ui/scenarios", "/ui/services", "/ui/services/shop", "/ui/policy", "/ui/live", "/ui/nope"} {
			resp, body := u.do(c, "GET", path, nil)
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/login") {
				t.Errorf("GET %s without a session: %s %s, want a redirect to sign in", path, resp.Status, resp.Header.Get("Location"))
			}
			if strings.Contains(body, "sql injection") || strings.Contains(body, "blocked") {
				t.Errorf("GET %s without a session shows data", path)
			}
		}
		if resp, _ := u.do(c, "GET", "/ui/stream", nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("the stream without a session: %s, want 401", resp.Status)
		}
		for _, path := range []string{"/ui/decisions", "/ui/decisions/x/lift", "/ui/logout"} {
			resp, _ := u.do(c, "POST", path, url.Values{"csrf": {"x"}, "scope": {"ip"}, "value": {"203.0.113.9"}, "action": {"block"}, "ttl": {"1h"}})
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("POST %s without a session: %s, want 401", path, resp.Status)
			}
		}
		ds, _ := u.st.ListDecisions(context.Background(), true)
		if len(ds) != 0 {
			t.Errorf("a decision was made without a session: %+v", ds)
		}
		// The assets are the only thing served to anyone.
		if resp, _ := u.do(c, "GET", "/ui/static/app.css", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("the stylesheet: %s", resp.Status)
		}
	})
}

func TestSignInMakesASessionCookieAndSignOutEndsIt(t *testing.T) {
	u := startUI(t, nil)
	c := u.client()
	resp, body := u.do(c, "POST", "/ui/login", url.Values{"token": {"wrong"}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong name or credential") {
		t.Fatalf("wrong token: %s", resp.Status)
	}
	if len(resp.Cookies()) != 0 {
		t.Fatal("a failed sign-in set a cookie")
	}
	u.clock.Add(time.Second)
	resp, _ = u.do(c, "POST", "/ui/login", url.Values{"token": {adminToken}, "next": {"/ui/services"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/services" {
		t.Fatalf("sign in: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-rampart-session" {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || !cookie.Secure || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" || len(cookie.Value) < 40 {
		t.Fatalf("session cookie %+v: want __Host-, HttpOnly, Secure, SameSite=Strict, path /, a long random value", cookie)
	}
	if resp, _ := u.do(c, "GET", "/ui/", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("overview with a session: %s", resp.Status)
	}
	csrf := u.csrf(c, "/ui/")
	u.clock.Add(time.Second)
	if resp, _ := u.do(c, "POST", "/ui/logout", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %s", resp.Status)
	}
	// The old cookie, replayed, is dead on the server.
	replay := u.client()
	replay.Jar.SetCookies(mustURL(u.url), []*http.Cookie{{Name: cookie.Name, Value: cookie.Value}})
	if resp, _ := u.do(replay, "GET", "/ui/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the signed-out session's cookie still works: %s", resp.Status)
	}
	var whats []string
	for _, e := range u.auditEvents() {
		var d struct{ Who string }
		json.Unmarshal(e.Data, &d)
		whats = append(whats, e.Route+":"+d.Who)
	}
	if strings.Join(whats, " ") != "sign_in_failed: sign_in:admin sign_out:admin" {
		t.Fatalf("audit events %v, want a failure, a sign-in and a sign-out by admin", whats)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestSessionsExpireOnTheServer(t *testing.T) {
	u := startUI(t, func(c *web.Config) { c.SessionTTL = 2 * time.Hour; c.IdleTimeout = 30 * time.Minute })
	c := u.signIn()
	u.clock.Add(20 * time.Minute)
	if resp, _ := u.do(c, "GET", "/ui/", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("after 20 min: %s", resp.Status)
	}
	u.clock.Add(31 * time.Minute)
	if resp, _ := u.do(c, "GET", "/ui/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after 31 idle minutes the session lives: %s", resp.Status)
	}
	c = u.signIn()
	for range 5 { // used, but past its life
		u.clock.Add(25 * time.Minute)
		u.do(c, "GET", "/ui/", nil)
	}
	if resp, _ := u.do(c, "GET", "/ui/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a session used past its TTL lives: %s", resp.Status)
	}
}

func TestSessionsAreBounded(t *testing.T) {
	u := startUI(t, func(c *web.Config) { c.MaxSessions = 3 })
	first := u.signIn()
	for range 3 {
		u.clock.Add(time.Second)
		u.signIn()
	}
	if resp, _ := u.do(first, "GET", "/ui/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the oldest of 4 sessions with room for 3 lives: %s", resp.Status)
	}
}

func TestFailedSignInsAreRateLimited(t *testing.T) {
	u := startUI(t, nil)
	c := u.client()
	for i := range 5 {
		if resp, _ := u.do(c, "POST", "/ui/login", url.Values{"token": {"guess"}}); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %s", i, resp.Status)
		}
	}
	resp, _ := u.do(c, "POST", "/ui/login", url.Values{"token": {adminToken}})
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after 5 failures the right token: %s, want 429 with Retry-After", resp.Status)
	}
	u.clock.Add(time.Minute)
	if resp, _ := u.do(c, "POST", "/ui/login", url.Values{"token": {adminToken}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a minute later: %s", resp.Status)
	}
}

func TestPeopleSignInWithTheirOwnCredential(t *testing.T) {
	sum := sha256.Sum256([]byte("alice-secret"))
	u := startUI(t, func(c *web.Config) { c.People = map[string][]byte{"alice": sum[:]} })
	c := u.client()
	if resp, _ := u.do(c, "POST", "/ui/login", url.Values{"name": {"bob"}, "token": {"alice-secret"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("alice's secret under bob's name: %s", resp.Status)
	}
	if resp, _ := u.do(c, "POST", "/ui/login", url.Values{"name": {"alice"}, "token": {"alice-secret"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("alice: %s", resp.Status)
	}
	_, body := u.do(c, "GET", "/ui/", nil)
	if !strings.Contains(body, `<span class="muted">alice</span>`) {
		t.Fatal("the page does not say who is signed in")
	}
}

func TestActionsNeedTheSessionsCSRFToken(t *testing.T) {
	eachSource(t, func(t *testing.T, start func(testing.TB, func(*web.Config)) *ui) {
		u := start(t, nil)
		c := u.signIn()
		form := url.Values{"scope": {"ip"}, "value": {"198.51.100.4"}, "action": {"block"}, "ttl": {"1h"}, "reason": {"test"}}
		other := u.signIn() // another session's token is no better than a forged one
		for name, token := range map[string]string{"none": "", "forged": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "another session's": u.csrf(other, "/ui/")} {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			f.Set("csrf", token)
			resp, body := u.do(c, "POST", "/ui/decisions", f)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "security token") {
				t.Errorf("%s CSRF token: %s, want 403", name, resp.Status)
			}
		}
		// From another site, even with the right token.
		req, _ := http.NewRequest("POST", u.url+"/ui/decisions", strings.NewReader(form.Encode()+"&csrf="+url.QueryEscape(u.csrf(c, "/ui/"))))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("a cross-site POST: %s, want 403", resp.Status)
		}
		if ds, _ := u.st.ListDecisions(context.Background(), true); len(ds) != 0 {
			t.Fatalf("refused actions made decisions: %+v", ds)
		}
		form.Set("csrf", u.csrf(c, "/ui/"))
		resp, _ = u.do(c, "POST", "/ui/decisions", form)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("with the right token: %s", resp.Status)
		}
		ds, _ := u.st.ListDecisions(context.Background(), true)
		if len(ds) != 1 || ds[0].Value != "198.51.100.4" || ds[0].Action != store.ActionBlock || ds[0].Origin != store.OriginManual {
			t.Fatalf("decisions %+v", ds)
		}
		if !strings.Contains(resp.Header.Get("Location"), url.QueryEscape(ds[0].ID)) {
			t.Errorf("the redirect %q does not name the decision %s", resp.Header.Get("Location"), ds[0].ID)
		}
		// Lift it, and see both actions audited.
		u.clock.Add(time.Second)
		resp, _ = u.do(c, "POST", "/ui/decisions/"+ds[0].ID+"/lift", url.Values{"csrf": {u.csrf(c, "/ui/")}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("lift: %s", resp.Status)
		}
		if ds, _ := u.st.ListDecisions(context.Background(), true); len(ds) != 0 {
			t.Fatalf("lifted, still there: %+v", ds)
		}
		var got []string
		for _, e := range u.auditEvents() {
			var d struct{ Who, Decision string }
			json.Unmarshal(e.Data, &d)
			if d.Decision != "" {
				got = append(got, e.Route+":"+d.Who+":"+d.Decision)
			}
		}
		want := "decision_created:admin:" + ds0(ds) + " decision_lifted:admin:" + ds0(ds)
		if strings.Join(got, " ") != want {
			t.Fatalf("audit %v, want %s", got, want)
		}
	})
}

func ds0(ds []store.Decision) string { return ds[0].ID }

func TestSignInLinksWorkOnceAndExpire(t *testing.T) {
	u := startUI(t, nil)
	link := u.h.SignInLink()
	c := u.client()
	resp, _ := u.do(c, "GET", link, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("the link: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	if resp, _ := u.do(c, "GET", "/ui/", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the link: %s", resp.Status)
	}
	if resp, _ := u.do(u.client(), "GET", link, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the link used twice: %s", resp.Status)
	}
	late := u.h.SignInLink()
	u.clock.Add(web.SignInLinkTTL + time.Second)
	if resp, _ := u.do(u.client(), "GET", late, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an expired link: %s", resp.Status)
	}
}

func TestSecurityHeaders(t *testing.T) {
	u := startUI(t, nil)
	for _, path := range []string{"/ui/login", "/ui/"} {
		resp, _ := u.do(u.signIn(), "GET", path, nil)
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "default-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP %q allows inline code", path, csp)
		}
		for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"} {
			if resp.Header.Get(h) != want {
				t.Errorf("%s: %s is %q", path, h, resp.Header.Get(h))
			}
		}
	}
}

func TestBadInputIsAClearError(t *testing.T) {
	eachSource(t, func(t *testing.T, start func(testing.TB, func(*web.Config)) *ui) {
		u := start(t, nil)
		c := u.signIn()
		for path, want := range map[string]int{
			"/ui/events/no-such-event":                               http.StatusNotFound,
			"/ui/events/" + strings.Repeat("x", 5000):                http.StatusNotFound,
			"/ui/alerts/no-such-alert":                               http.StatusNotFound,
			"/ui/services/no-such-service":                           http.StatusNotFound,
			"/ui/events?service=" + strings.Repeat("s", 100000):      http.StatusBadRequest,
			"/ui/events?since=yesterday":                             http.StatusBadRequest,
			"/ui/events?cursor=garbage":                              http.StatusBadRequest,
			"/ui/actor?scope=ip&value=not-an-ip":                     http.StatusBadRequest,
			"/ui/actor?scope=planet&value=mars":                      http.StatusBadRequest,
			"/ui/actor?scope=user&value=" + strings.Repeat("u", 300): http.StatusBadRequest,
			"/ui/nope": http.StatusNotFound,
		} {
			resp, body := u.do(c, "GET", path, nil)
			if resp.StatusCode != want {
				t.Errorf("GET %.60s: %s, want %d", path, resp.Status, want)
			}
			if !strings.Contains(body, `role="alert"`) {
				t.Errorf("GET %.60s: no message on the page", path)
			}
		}
		csrf := u.csrf(c, "/ui/")
		for _, f := range []url.Values{
			{"scope": {"ip"}, "value": {"1.2.3.4"}, "action": {"nuke"}, "ttl": {"1h"}},
			{"scope": {"ip"}, "value": {"1.2.3.4"}, "action": {"block"}, "ttl": {"-1h"}},
			{"scope": {"ip"}, "value": {"not an ip"}, "action": {"block"}, "ttl": {"1h"}},
			{"scope": {"cidr"}, "value": {"0.0.0.0/0"}, "action": {"block"}, "ttl": {"1h"}},
			{"scope": {"ip"}, "value": {"1.2.3.4"}, "action": {"block"}, "ttl": {"1h"}, "reason": {strings.Repeat("r", 600)}},
		} {
			f.Set("csrf", csrf)
			if resp, _ := u.do(c, "POST", "/ui/decisions", f); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("POST decision %v: %s, want 400", f, resp.Status)
			}
		}
		if resp, _ := u.do(c, "POST", "/ui/decisions/nope/lift", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusNotFound {
			t.Errorf("lift an unknown decision: %s", resp.Status)
		}
		if ds, _ := u.st.ListDecisions(context.Background(), true); len(ds) != 0 {
			t.Fatalf("bad forms made decisions: %+v", ds)
		}
	})
}

func TestAProposedPolicyIsCheckedThenAppliedOnce(t *testing.T) {
	eachSource(t, func(t *testing.T, start func(testing.TB, func(*web.Config)) *ui) {
		u := start(t, nil)
		ctx := context.Background()
		if _, err := u.st.PutPolicy(ctx, "services:\n  shop:\n    allow:\n      - callers: [gateway]\n", store.AnyVersion); err != nil {
			t.Fatal(err)
		}
		c := u.signIn()
		csrf := u.csrf(c, "/ui/policy")
		next := "services:\n  shop:\n    allow:\n      - callers: [gateway, billing]\n"
		resp, body := u.do(c, "POST", "/ui/policy", url.Values{"csrf": {csrf}, "base": {"1"}, "do": {"apply"}, "yaml": {"services: [oops"}})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="policy-problem"`) {
			t.Fatalf("a broken proposal: %s", resp.Status)
		}
		resp, body = u.do(c, "POST", "/ui/policy", url.Values{"csrf": {csrf}, "base": {"1"}, "do": {"dryrun"}, "yaml": {next}})
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="dryrun"`) {
			t.Fatalf("a dry run: %s", resp.Status)
		}
		if p, _ := u.st.Policy(ctx, 0); p.Version != 1 {
			t.Fatalf("a dry run stored version %d", p.Version)
		}
		resp, _ = u.do(c, "POST", "/ui/policy", url.Values{"csrf": {csrf}, "base": {"1"}, "do": {"apply"}, "yaml": {next}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("apply: %s", resp.Status)
		}
		if p, _ := u.st.Policy(ctx, 0); p.Version != 2 || p.YAML != next {
			t.Fatalf("after apply: version %d %q", p.Version, p.YAML)
		}
		// The same proposal from the same base again: another version came
		// in between, so it is refused, not stored over it.
		resp, body = u.do(c, "POST", "/ui/policy", url.Values{"csrf": {csrf}, "base": {"1"}, "do": {"apply"}, "yaml": {next + "  billing: {}\n"}})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Another version was stored") {
			t.Fatalf("a stale proposal: %s", resp.Status)
		}
		if p, _ := u.st.Policy(ctx, 0); p.Version != 2 {
			t.Fatalf("a stale proposal stored version %d", p.Version)
		}
		_, body = u.do(c, "GET", "/ui/policy", nil)
		if !strings.Contains(body, `<span class="dadd">&#43;       - callers: [gateway, billing]</span>`) {
			i := strings.Index(body, `id="diff"`)
			t.Errorf("the policy page shows no diff of version 2: %.400s", body[max(i, 0):])
		}
		var applied bool
		for _, e := range u.auditEvents() {
			applied = applied || e.Route == "policy_applied"
		}
		if !applied {
			t.Error("applying the policy was not audited")
		}
	})
}

func TestOnlyTheDashboardsOwnMessagesAreFlashed(t *testing.T) {
	u := startUI(t, nil)
	c := u.signIn()
	_, body := u.do(c, "GET", "/ui/decisions?done="+url.QueryEscape("Your session expired: call +1 555 0100."), nil)
	if strings.Contains(body, "555 0100") {
		t.Error("a message from a crafted link is shown")
	}
	_, body = u.do(c, "GET", "/ui/decisions?done="+url.QueryEscape("Decision 0a1b2c lifted."), nil)
	if !strings.Contains(body, `id="flash">Decision 0a1b2c lifted.<`) {
		t.Error("the dashboard's own message is not shown")
	}
}

func TestAnActorPageShowsTheRangesThatHoldIt(t *testing.T) {
	eachSource(t, func(t *testing.T, start func(testing.TB, func(*web.Config)) *ui) {
		u := start(t, nil)
		ev := u.event("waf", "blocked", "gateway", "198.51.100.9", "", map[string]any{"reason": "CRS anomaly score 10; rules 942100"})
		d, err := u.st.CreateDecision(context.Background(), store.Decision{Scope: store.ScopeCIDR, Value: "198.51.100.0/24",
			Action: store.ActionReadOnly, Reason: "a scraping range", Expires: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		c := u.signIn()
		_, body := u.do(c, "GET", "/ui/actor?scope=ip&value=198.51.100.9", nil)
		if !strings.Contains(body, `data-decision="`+d.ID+`"`) || !strings.Contains(body, "on cidr 198.51.100.0/24") {
			t.Error("the address's page does not show the range's decision")
		}
		_, body = u.do(c, "GET", "/ui/actor?scope=cidr&value=198.51.100.77/24", nil)
		if !strings.Contains(body, ev.ID) || !strings.Contains(body, `data-decision="`+d.ID+`"`) {
			t.Error("the range's page does not show its address's event and its decision")
		}
	})
}

func TestTheOverviewSaysWhichDecisionsWereLifted(t *testing.T) {
	u := startControlUI(t, nil)
	c := u.signIn()
	d, err := u.st.CreateDecision(context.Background(), store.Decision{Scope: store.ScopeIP, Value: "192.0.2.80",
		Action: store.ActionBlock, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := u.do(c, "POST", "/ui/decisions/"+d.ID+"/lift", url.Values{"csrf": {u.csrf(c, "/ui/")}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("lift: %s", resp.Status)
	}
	u.clock.Add(2 * time.Second) // past the overview's cache
	if _, body := u.do(c, "GET", "/ui/live", nil); !strings.Contains(body, "decision "+d.ID+" lifted") {
		t.Error("the overview's changes do not say the decision was lifted")
	}
}
