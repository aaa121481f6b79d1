package demo_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/demo"
	"github.com/rampartsec/rampart/internal/gateway/waf"
	"github.com/rampartsec/rampart/internal/store"
)

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

// start runs the demo until the test ends and returns the gateway's URL and
// the output, once the story is told.
func start(t *testing.T, mode rampart.Mode) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	began := time.Now()
	go func() {
		done <- demo.Run(ctx, demo.Config{Addr: "127.0.0.1:0", Mode: mode, Out: out, Ready: ready})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo.Run: %v", err)
		}
	})
	select {
	case base := <-ready:
		t.Logf("the story took %v", time.Since(began).Round(time.Millisecond))
		return base, out
	case err := <-done:
		done <- err // for the cleanup
		t.Fatalf("demo stopped before telling its story: %v\n%s", err, out.String())
	case <-time.After(10 * time.Minute): // a hang guard: under -race beside three busy loops the story took over 2 min
		t.Fatalf("demo did not tell its story within 10 min:\n%s", out.String())
	}
	return "", nil
}

// steps splits the story into its numbered steps; steps[0] is the
// introduction.
func steps(t *testing.T, out string) []string {
	t.Helper()
	parts := regexp.MustCompile(`(?m)^\d\. `).Split(out, -1)
	if len(parts) != 6 {
		t.Fatalf("want an introduction and 5 steps, got %d parts:\n%s", len(parts), out)
	}
	return parts
}

func contains(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(text, want) {
			t.Errorf("%s lacks %q:\n%s", what, want, text)
		}
	}
}

// cli is the control plane as the printed environment lines reach it.
type cli struct {
	addr, token string
	client      *http.Client
}

func cliFrom(t *testing.T, intro string) *cli {
	t.Helper()
	env := map[string]string{}
	for _, m := range regexp.MustCompile(`export (RAMPART_\w+)=(\S+)`).FindAllStringSubmatch(intro, -1) {
		env[m[1]] = m[2]
	}
	if env["RAMPART_ADDR"] == "" || env["RAMPART_TOKEN"] == "" || env["RAMPART_CA"] == "" {
		t.Fatalf("the introduction lacks the three environment lines:\n%s", intro)
	}
	pem, err := os.ReadFile(env["RAMPART_CA"])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	t.Cleanup(tr.CloseIdleConnections)
	return &cli{addr: env["RAMPART_ADDR"], token: env["RAMPART_TOKEN"], client: &http.Client{Transport: tr, Timeout: time.Minute}}
}

// storedEvent is an event as GET /v1/events returns it.
type storedEvent struct {
	Kind, Action, Service, ActorIP, ActorUser string
	Data                                      rampart.Event
}

func (c *cli) events(t *testing.T, query string) []storedEvent {
	t.Helper()
	req, _ := http.NewRequest("GET", "https://"+c.addr+"/v1/events?"+query, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page control.EventPage
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /v1/events?%s: %d %v", query, resp.StatusCode, err)
	}
	var out []storedEvent
	for _, e := range page.Events {
		se := storedEvent{Kind: e.Kind, Action: e.Action, Service: e.Service, ActorIP: e.ActorIP, ActorUser: e.ActorUser}
		if err := json.Unmarshal(e.Data, &se.Data); err != nil {
			t.Fatal(err)
		}
		out = append(out, se)
	}
	return out
}

// get decodes the admin API's answer to GET path into out.
func (c *cli) get(t *testing.T, path string, out any) {
	t.Helper()
	req, _ := http.NewRequest("GET", "https://"+c.addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", path, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

func get(t *testing.T, u string, attacker bool) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if attacker {
		req.Header.Set("X-Forwarded-For", demo.AttackerIP)
		req.Header.Set("X-API-Key", demo.AttackerAPIKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestTheDemoTellsTheStoryAndTheControlPlaneHoldsEachEvent(t *testing.T) {
	base, out := start(t, rampart.ModeBlock)
	s := steps(t, out.String())
	contains(t, "the introduction", s[0], "Gateway        "+base, "Control plane  https://127.0.0.1:", "Dashboard      https://127.0.0.1:", "/ui/login/link?token=",
		"export RAMPART_ADDR=", "export RAMPART_TOKEN=rat_", "export RAMPART_CA=", "rampart events")
	contains(t, "step 1 (the WAF)", s[1],
		"curl -H 'X-Forwarded-For: 203.0.113.7' -H 'X-API-Key: "+demo.AttackerAPIKey+"' '"+base+"/products?q="+url.QueryEscape(demo.InjectionQuery)+"'",
		`HTTP 403 {"error":"request blocked by the web application firewall"`,
		"stored it: waf, blocked by gateway", "actor     203.0.113.7, user mallory", "location  the edge, route shop", "942190")
	contains(t, "step 2 (the SDK)", s[2],
		"curl '"+base+"/products?q=Travel+case+%28black%29'", `HTTP 200 [{"id":6,"name":"Travel case (black)"`,
		"/products?q="+url.QueryEscape(demo.BlindInjectionQuery)+"'", `HTTP 403 {"error":"request refused by a security policy"`,
		"stored it: sql_injection, blocked by shop", "actor     203.0.113.7, user mallory",
		"caller    spiffe://rampart.local/svc/gateway", "examples/shop/shop.go:", "route GET /products", "query     SELECT id, name")
	contains(t, "step 3 (the decision)", s[3], `HTTP 403 {"error":"request refused by a security decision"`,
		"stored it: decision_enforced, blocked by gateway", "actor     203.0.113.7, user mallory",
		"on ip 203.0.113.7 ("+demo.InjectionScenario+": ", "origin    "+demo.InjectionScenario+" (scenario",
		"decision  block on ip 203.0.113.7", "alert     ", "evidence  waf, blocked by gateway",
		"sql_injection, blocked by shop", "user mallory (verified)",
		"Everyone else is still served", `HTTP 200 [{"id":5,"name":"Moka pot"`,
		"rampart decisions add -ttl 10m", "the attacker is served again")
	if strings.Contains(s[3], "Detection did not answer") {
		t.Errorf("step 3 fell back to the operator's decision:\n%s", s[3])
	}
	contains(t, "step 4 (the SSRF)", s[4], "-d '{\"url\":\"http://billing.internal:", "HTTP 202 ", `"status":"blocked"`,
		"reached 0 times", "stored it: ssrf, blocked by shop", "examples/shop/worker.go:", `input     json url = "http://billing.internal:`,
		"actor     203.0.113.7, user mallory")
	contains(t, "step 5 (credential stuffing)", s[5],
		"curl -H 'X-Forwarded-For: "+demo.StuffingAddr(0)+"' -X POST", "'"+base+"/login'",
		`HTTP 401 {"error":"wrong email or password"}`,
		`HTTP 403 {"error":"request refused by a security decision"`, "stored it: decision_enforced, blocked by gateway",
		"origin    "+demo.StuffingScenario+" (scenario", "decision  block-sensitive on ip 198.18.",
		`on shop "POST /login"`, "evidence  login_failure, observed by shop", "user anonymous (verified)",
		strconv.Itoa(demo.StuffingAddrs)+" of the "+strconv.Itoa(demo.StuffingAddrs)+" addresses are refused the login",
		"curl -H 'X-Forwarded-For: "+demo.HonestIP+"' -X POST", `HTTP 200 {"user":"ana@example.com"}`)
	if m := regexp.MustCompile(`refused the attacker ([\d.]+) ms after`).FindStringSubmatch(s[3]); m == nil {
		t.Errorf("step 3 gives no propagation time:\n%s", s[3])
	} else if n, err := strconv.ParseFloat(m[1], 64); err != nil || n <= 0 {
		t.Errorf("step 3 gives the propagation time %q", m[1]) // how fast is a figure of BENCHMARKS.md, not an assertion
	}

	// The printed CLI lines reach the control plane, which holds every
	// event of the story under the attacker's IP.
	cp := cliFrom(t, s[0])
	// Keyed by kind and service: the shop may learn of the decision before
	// the gateway and enforce it too, which is right, so each (kind,
	// service) pair is looked for on its own.
	type kindService struct{ kind, service string }
	byKind := map[kindService]storedEvent{}
	for _, e := range cp.events(t, "actor_ip="+demo.AttackerIP) {
		byKind[kindService{e.Kind, e.Service}] = e
	}
	for _, want := range []kindService{{"waf", "gateway"}, {"sql_injection", "shop"}, {"decision_enforced", "gateway"}, {"ssrf", "shop"}} {
		e, ok := byKind[want]
		if !ok || e.Action != "blocked" || e.ActorUser != demo.AttackerUser {
			t.Errorf("%s event from %s by %s (%s): got %+v", want.kind, want.service, demo.AttackerIP, demo.AttackerUser, e)
		}
	}
	sqli := byKind[kindService{"sql_injection", "shop"}].Data
	if !strings.HasSuffix(strings.SplitN(sqli.Location, ":", 2)[0], "examples/shop/shop.go") || sqli.Input.Value != demo.BlindInjectionQuery {
		t.Errorf("the SDK's event names %s and input %q", sqli.Location, sqli.Input.Value)
	}
	// The blind injection passed the WAF: no WAF event for its request.
	for _, e := range cp.events(t, "kind=waf") {
		if e.Data.RequestID == sqli.RequestID {
			t.Errorf("the WAF matched the blind injection: %+v", e.Data)
		}
	}
	if ssrf := cp.events(t, "kind=ssrf&service=shop"); len(ssrf) != 1 || ssrf[0].Action != "blocked" || !strings.Contains(ssrf[0].Data.Location, "examples/shop/worker.go:") {
		t.Errorf("SSRF events: %+v", ssrf)
	}

	// The control plane stored the alerts and made the decisions, with
	// their scenario as origin; none names the honest customer's address.
	var injection control.AlertList
	cp.get(t, "/v1/alerts?scenario="+demo.InjectionScenario, &injection)
	if !slices.ContainsFunc(injection.Alerts, func(a store.Alert) bool {
		return a.Key == demo.AttackerIP && slices.ContainsFunc(a.Decisions, func(d store.AlertDecision) bool {
			return d.ID != "" && d.Scope == "ip" && d.Value == demo.AttackerIP && d.Action == store.ActionBlock
		})
	}) {
		t.Errorf("no %s alert blocked %s: %+v", demo.InjectionScenario, demo.AttackerIP, injection.Alerts)
	}
	var stuffing control.AlertList
	cp.get(t, "/v1/alerts?scenario="+demo.StuffingScenario, &stuffing)
	alerts := map[string]bool{}
	for _, a := range stuffing.Alerts {
		alerts[a.ID] = true
	}
	if len(alerts) == 0 {
		t.Errorf("no %s alert", demo.StuffingScenario)
	}
	var decisions control.DecisionList
	cp.get(t, "/v1/decisions", &decisions)
	refused := map[string]bool{}
	for _, d := range decisions.Decisions {
		if p, err := netip.ParsePrefix(d.Value); d.Value == demo.HonestIP || err == nil && p.Contains(netip.MustParseAddr(demo.HonestIP)) {
			t.Errorf("a decision names the honest customer's address: %+v", d)
		}
		if d.Origin == demo.StuffingScenario {
			if d.Scope != store.ScopeIP || d.Action != store.ActionBlockSensitive || !alerts[d.AlertID] || len(d.Evidence) == 0 {
				t.Errorf("a %s decision: %+v", demo.StuffingScenario, d)
			}
			refused[d.Value] = true
		}
	}
	for i := range demo.StuffingAddrs {
		if !refused[demo.StuffingAddr(i)] {
			t.Errorf("no %s decision for %s", demo.StuffingScenario, demo.StuffingAddr(i))
		}
	}
	if len(refused) != demo.StuffingAddrs {
		t.Errorf("%s decided %d addresses, want the run's %d", demo.StuffingScenario, len(refused), demo.StuffingAddrs)
	}

	// The printed curl lines work again: the UNION is refused at the edge,
	// honest searches are served.
	if code, body := get(t, base+"/products?q="+url.QueryEscape(demo.InjectionQuery), true); code != http.StatusForbidden || strings.Contains(body, "sk_live") {
		t.Errorf("injection answered %d %s, want 403 without secrets", code, body)
	}
	if code, body := get(t, base+"/products?q=moka", false); code != http.StatusOK || !strings.Contains(body, "Moka pot") {
		t.Errorf("search answered %d %s", code, body)
	}
	// The shop itself answers only mTLS clients.
	shopURL := regexp.MustCompile(`Service shop   (https://\S+)`).FindStringSubmatch(s[0])
	if shopURL == nil {
		t.Fatalf("no shop URL in the introduction:\n%s", s[0])
	}
	direct := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 5 * time.Second}
	if resp, err := direct.Get(shopURL[1] + "/products?q=moka"); err == nil {
		resp.Body.Close()
		t.Errorf("the shop answered a client without an SVID: %s", resp.Status)
	}
}

func TestInMonitorModeTheAttacksReallyLand(t *testing.T) {
	base, out := start(t, rampart.ModeMonitor)
	s := steps(t, out.String())
	contains(t, "step 1", s[1], "HTTP 200 ", "sk_live_ana_7f3c9e", "stored it: waf, monitored by gateway")
	contains(t, "step 2", s[2], `HTTP 200 [{"id":5,"name":"Moka pot"`, "stored it: sql_injection, monitored by shop", `input     query q = "pot%`)
	contains(t, "step 3", s[3], "Alert ", "scenario  "+demo.InjectionScenario, "key       "+demo.AttackerIP,
		"decision  block on ip "+demo.AttackerIP+" for 1h0m0s, simulated", "on ip 203.0.113.7 (SQL injection)", "the attacker is served again")
	contains(t, "step 4", s[4], `"status":"done"`, "reached 1 times", "stored it: ssrf, monitored by shop")
	contains(t, "step 5", s[5], `HTTP 401 {"error":"wrong email or password"}`, "scenario  "+demo.StuffingScenario,
		"block-sensitive on ip 198.18.", ", simulated", "nothing is refused", `HTTP 200 {"user":"ana@example.com"}`)
	if strings.Contains(s[5], "HTTP 403") {
		t.Errorf("a login was refused in monitor mode:\n%s", s[5])
	}
	// The blind injection is an oracle: no customer's key starts with
	// sk_live_z.
	miss := strings.Replace(demo.BlindInjectionQuery, "sk_live_a", "sk_live_z", 1)
	if code, body := get(t, base+"/products?q="+url.QueryEscape(miss), true); code != http.StatusOK || strings.TrimSpace(body) != "[]" {
		t.Errorf("the oracle's other answer: %d %s", code, body)
	}
}

func TestAnInitializedDataDirectoryNeedsItsAdminToken(t *testing.T) {
	dir := t.TempDir()
	if _, err := control.Init(t.Context(), dir, demo.TrustDomain); err != nil {
		t.Fatal(err)
	}
	err := demo.Run(t.Context(), demo.Config{Addr: "127.0.0.1:0", DataDir: dir, Once: true})
	if err == nil || !strings.Contains(err.Error(), "RAMPART_TOKEN") {
		t.Errorf("Run over an initialized directory without its token: %v", err)
	}
}

// The story's step 2 rests on what the Core Rule Set does with the search
// terms: the exclusion of rule 942100 on /products is what lets the blind
// injection, and the product name, through; the UNION is still refused.
func TestOnlyTheExcludedRuleCatchesTheBlindInjection(t *testing.T) {
	plain, err := waf.New(waf.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tuned, err := waf.New(waf.Config{Exclusions: []waf.Exclusion{{PathPrefix: "/products", RuleIDs: []int{demo.ExcludedRule}}}})
	if err != nil {
		t.Fatal(err)
	}
	inspect := func(f *waf.Firewall, q string) (bool, []int) {
		r := httptest.NewRequest("GET", "http://127.0.0.1:8080/products?q="+url.QueryEscape(q), nil)
		r.Header.Set("User-Agent", "curl/8.5.0")
		r.Header.Set("Accept", "*/*")
		r.Header.Set("X-Forwarded-For", demo.AttackerIP)
		r.Header.Set("X-API-Key", demo.AttackerAPIKey)
		v, err := f.Inspect(r, demo.AttackerIP, waf.WholeBody)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int
		for _, m := range v.Matches {
			ids = append(ids, m.RuleID)
		}
		return v.Blocked, ids
	}
	for _, q := range []string{demo.BlindInjectionQuery, demo.FalsePositiveQuery} {
		if blocked, ids := inspect(plain, q); !blocked || !slices.Contains(ids, demo.ExcludedRule) {
			t.Errorf("without the exclusion %q: blocked %v by %v, want blocked by %d", q, blocked, ids, demo.ExcludedRule)
		}
		if blocked, ids := inspect(tuned, q); blocked {
			t.Errorf("with the exclusion %q is blocked by %v", q, ids)
		}
	}
	if blocked, ids := inspect(tuned, demo.InjectionQuery); !blocked {
		t.Errorf("with the exclusion the UNION passes (rules %v)", ids)
	}
}
