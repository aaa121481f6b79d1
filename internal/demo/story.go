package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/examples/shop"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/web"
)

// tell prints what runs where, then plays the attacker's story against it.
func (d *demo) tell(ctx context.Context) error {
	monitor := d.cfg.Mode == rampart.ModeMonitor
	w := d.out
	wafMode := "blocking"
	if monitor {
		wafMode = "detection only"
	}
	where := "temporary, deleted on exit"
	if d.cfg.DataDir != "" {
		where = "kept"
	}
	fmt.Fprintf(w, "Rampart demo: the whole product in one process, on loopback.\n\n")
	fmt.Fprintf(w, "  Gateway        %s\n", d.gatewayURL)
	fmt.Fprintf(w, "                 WAF: OWASP CRS (Coraza), paranoia level 1, %s; route / -> shop over mTLS\n", wafMode)
	fmt.Fprintf(w, "  Control plane  %s  (trust domain %s; data in %s, %s)\n", d.control.URL(), d.control.TrustDomain().Name(), d.dataDir, where)
	fmt.Fprintf(w, "  Service shop   %s  (examples/shop, SQLite, behind the SDK in %s mode)\n", d.shopURL, d.agent.Mode())
	fmt.Fprintf(w, "                 mTLS only; policy version %d lets the gateway alone call it\n", d.policyVersion)
	detection := "deciding on their own"
	if monitor {
		detection = "simulated in monitor mode: recorded, not enforced"
	}
	fmt.Fprintf(w, "  Detection      the built-in scenarios over the stored events, %s\n", detection)
	fmt.Fprintf(w, "  Dashboard      %s\n", d.dashboardURL())
	fmt.Fprintf(w, "                 sign in: %s%s\n", d.control.URL(), d.ui.SignInLink())
	fmt.Fprintf(w, "                 (that link works once, for %v; then sign in with RAMPART_TOKEN below)\n\n", web.SignInLinkTTL)
	fmt.Fprintf(w, "  Use the CLI against this control plane from another terminal:\n")
	fmt.Fprintf(w, "    export RAMPART_ADDR=%s\n", d.control.Addr())
	fmt.Fprintf(w, "    export RAMPART_TOKEN=%s\n", d.adminToken)
	fmt.Fprintf(w, "    export RAMPART_CA=%s\n", d.caFile)
	fmt.Fprintf(w, "    go run ./cmd/rampart events -since 1h\n\n")
	fmt.Fprintf(w, "  The attacker is at %s and uses the API key of the partner account %q. The gateway\n", AttackerIP, AttackerUser)
	fmt.Fprintf(w, "  believes X-Forwarded-For from 127.0.0.1, its load balancer here, so the curl lines say\n")
	fmt.Fprintf(w, "  where they come from with it.\n\n")

	if err := d.stepWAF(ctx, monitor); err != nil {
		return err
	}
	if err := d.stepSDK(ctx, monitor); err != nil {
		return err
	}
	if err := d.stepDecision(ctx, monitor); err != nil {
		return err
	}
	if err := d.stepSSRF(ctx, monitor); err != nil {
		return err
	}
	return d.stepStuffing(ctx, monitor)
}

// stepWAF is step 1: the classic injection, stopped at the edge.
func (d *demo) stepWAF(ctx context.Context, monitor bool) error {
	verdict := "blocked at the edge by the Core Rule Set"
	if monitor {
		verdict = "reported by the WAF (detection only) and the SDK (monitor mode): it leaks the keys"
	}
	fmt.Fprintf(d.out, "1. A classic SQL injection through the search, a UNION that reads every API key:\n   %s.\n", verdict)
	start := time.Now()
	a, err := d.step(ctx, attack(http.MethodGet, "/products?q="+url.QueryEscape(InjectionQuery), ""))
	if err != nil {
		return err
	}
	return d.showEvent(ctx, "waf", "gateway", a.traceID, start)
}

// stepSDK is step 2: an injection that the tuned WAF lets through, stopped
// at the query.
func (d *demo) stepSDK(ctx context.Context, monitor bool) error {
	fmt.Fprintf(d.out, "\n2. Defence in depth. The gateway turns CRS rule %d (libinjection) off under /products,\n", ExcludedRule)
	fmt.Fprintf(d.out, "   because product names trip it:\n")
	if _, err := d.step(ctx, user(http.MethodGet, "/products?q="+url.QueryEscape(FalsePositiveQuery), "")); err != nil {
		return err
	}
	verdict := "the SDK blocks it at the query, in the shop's code"
	if monitor {
		verdict = "the SDK reports it at the query (monitor mode), and the answer leaks"
	}
	fmt.Fprintf(d.out, "   A blind injection that only that rule caught now passes the edge;\n   %s:\n", verdict)
	start := time.Now()
	a, err := d.step(ctx, attack(http.MethodGet, "/products?q="+url.QueryEscape(BlindInjectionQuery), ""))
	if err != nil {
		return err
	}
	d.injectedAt = a.at
	if monitor {
		fmt.Fprintf(d.out, "   (A product in the answer means that some API key starts with \"sk_live_a\": the keys\n")
		fmt.Fprintf(d.out, "   can be read one character at a time.)\n")
	}
	return d.showEvent(ctx, "sql_injection", "shop", a.traceID, start)
}

// stepSSRF is step 4: SSRF through the queue worker, stopped at the dial.
func (d *demo) stepSSRF(ctx context.Context, monitor bool) error {
	_, port, _ := strings.Cut(d.internalAddr, ":")
	body := fmt.Sprintf(`{"url":"http://%s:%s/admin/api-keys"}`, InternalHost, port)
	verdict := "the SDK refuses the worker's connection at the address it dials"
	if monitor {
		verdict = "the SDK reports the worker's connection (monitor mode), which goes through"
	}
	fmt.Fprintf(d.out, "\n4. Server-side request forgery through the queue worker: a feed import from %s,\n", InternalHost)
	fmt.Fprintf(d.out, "   the internal billing service (the shop's network resolves it to 127.0.0.1; the demo\n")
	fmt.Fprintf(d.out, "   plays that DNS). No WAF knows a network's internal names, so it passes the edge;\n")
	fmt.Fprintf(d.out, "   %s:\n", verdict)
	start := time.Now()
	a, err := d.step(ctx, attack(http.MethodPost, "/imports", body))
	if err != nil {
		return err
	}
	var im shop.Import
	if a.status != http.StatusAccepted || json.Unmarshal([]byte(a.body), &im) != nil {
		return fmt.Errorf("demo: POST /imports: HTTP %d %s", a.status, a.body)
	}
	status := attack(http.MethodGet, fmt.Sprintf("/imports/%d", im.ID), "")
	done, err := d.until(ctx, status, func(a answer) bool {
		return a.status != http.StatusOK || !strings.Contains(a.body, `"status":"queued"`)
	})
	if err != nil {
		return err
	}
	d.printCurl(status, done)
	fmt.Fprintf(d.out, "   The internal service was reached %d times.\n", d.internalHits.Load())
	return d.showEvent(ctx, "ssrf", "shop", "", start)
}

// request is one curl of the story.
type request struct {
	method, path, body string
	attacker           bool   // sent from AttackerIP with AttackerAPIKey
	from               string // else, if not "", sent from this address
}

func attack(method, path, body string) request { return request{method, path, body, true, ""} }
func user(method, path, body string) request   { return request{method, path, body, false, ""} }

// from is a request from ip, without an API key.
func from(ip, method, path, body string) request { return request{method, path, body, false, ip} }

func (r request) curl(base string) string {
	var b strings.Builder
	b.WriteString("curl")
	if r.attacker {
		fmt.Fprintf(&b, " -H 'X-Forwarded-For: %s' -H 'X-API-Key: %s'", AttackerIP, AttackerAPIKey)
	} else if r.from != "" {
		fmt.Fprintf(&b, " -H 'X-Forwarded-For: %s'", r.from)
	}
	if r.method != http.MethodGet {
		b.WriteString(" -X " + r.method)
	}
	if r.body != "" {
		fmt.Fprintf(&b, " -H 'Content-Type: application/json' -d '%s'", r.body) // no ' in the story's bodies
	}
	fmt.Fprintf(&b, " '%s%s'", base, r.path)
	return b.String()
}

// answer is the gateway's answer to a request.
type answer struct {
	status  int
	body    string
	traceID string    // of the request, see send
	at      time.Time // when the answer arrived
}

func (d *demo) send(ctx context.Context, r request) (answer, error) {
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, d.gatewayURL+r.path, body)
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("User-Agent", "curl/8.5.0") // the CRS scores some clients' user agents
	req.Header.Set("Accept", "*/*")
	if r.attacker {
		req.Header.Set("X-Forwarded-For", AttackerIP)
		req.Header.Set("X-API-Key", AttackerAPIKey)
	} else if r.from != "" {
		req.Header.Set("X-Forwarded-For", r.from)
	}
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	// A trace of its own, which the gateway continues and the shop joins,
	// lets the story find the request's events. (The curl lines leave it
	// out: the gateway starts a trace when there is none.)
	var trace [16]byte
	rand.Read(trace[:])
	traceID := hex.EncodeToString(trace[:])
	req.Header.Set("Traceparent", "00-"+traceID+"-"+traceID[:16]+"-01")
	resp, err := d.client.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("demo: %s %s: %w", r.method, r.path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return answer{}, fmt.Errorf("demo: %s %s: %w", r.method, r.path, err)
	}
	return answer{status: resp.StatusCode, body: strings.TrimSpace(string(data)), traceID: traceID, at: time.Now()}, nil
}

// step sends r and prints it with its answer.
func (d *demo) step(ctx context.Context, r request) (answer, error) {
	a, err := d.send(ctx, r)
	if err != nil {
		return a, err
	}
	d.printCurl(r, a)
	return a, nil
}

func (d *demo) printCurl(r request, a answer) {
	fmt.Fprintf(d.out, "   $ %s\n", r.curl(d.gatewayURL))
	fmt.Fprintf(d.out, "   HTTP %d %s\n", a.status, truncate(a.body, 160))
}

// until sends r again and again until its answer satisfies ok.
func (d *demo) until(ctx context.Context, r request, ok func(answer) bool) (answer, error) {
	return d.within(ctx, detectionWait, time.Millisecond, r, ok)
}

// within is until with a deadline of its own, sending r every pause.
func (d *demo) within(ctx context.Context, limit, pause time.Duration, r request, ok func(answer) bool) (answer, error) {
	deadline := time.Now().Add(limit)
	for {
		a, err := d.send(ctx, r)
		if err != nil || ok(a) {
			return a, err
		}
		if time.Now().After(deadline) {
			return a, fmt.Errorf("demo: %s %s still answers HTTP %d %s after %s: %w", r.method, r.path, a.status, truncate(a.body, 160), limit, errStill)
		}
		select {
		case <-ctx.Done():
			return a, ctx.Err()
		case <-time.After(pause):
		}
	}
}

// errStill is the error of within when its deadline passes.
var errStill = errors.New("deadline passed")

// showEvent waits for the control plane to store the event of kind from
// service in the trace traceID (any, if ""), sent after since, and prints
// it.
func (d *demo) showEvent(ctx context.Context, kind, service, traceID string, since time.Time) error {
	q := url.Values{"kind": {kind}, "service": {service}, "order": {"desc"}, "limit": {"1"},
		"since": {since.Add(-time.Second).UTC().Format(time.RFC3339Nano)}}
	if traceID != "" {
		q.Set("trace_id", traceID)
	}
	deadline := time.Now().Add(detectionWait)
	for {
		var page control.EventPage
		if err := d.call(ctx, http.MethodGet, "/v1/events?"+q.Encode(), nil, &page); err != nil {
			return err
		}
		for _, e := range page.Events {
			var ev rampart.Event
			if json.Unmarshal(e.Data, &ev) == nil {
				d.printEvent(e, ev)
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: the control plane has no %s event from %s after %v", kind, service, detectionWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (d *demo) printEvent(e store.Event, ev rampart.Event) {
	w := d.out
	fmt.Fprintf(w, "   Event, as the control plane stored it: %s, %s by %s\n", e.Kind, e.Action, e.Service)
	fmt.Fprintf(w, "     actor     %s\n", actorOf(e))
	if ev.Caller != "" {
		fmt.Fprintf(w, "     caller    %s (the actor comes from its signed actor token)\n", ev.Caller)
	}
	fmt.Fprintf(w, "     location  %s\n", locationOf(e, ev))
	if ev.Reason != "" {
		fmt.Fprintf(w, "     reason    %s\n", truncate(ev.Reason, 160))
	}
	if ev.Input.Value != "" {
		name := string(ev.Input.Source)
		if ev.Input.Name != "" {
			name += " " + ev.Input.Name
		}
		fmt.Fprintf(w, "     input     %s = %q\n", name, truncate(ev.Input.Value, 160))
	}
	if e.Kind == "sql_injection" && ev.Detail != "" {
		fmt.Fprintf(w, "     query     %s\n", truncate(ev.Detail, 240))
	}
	fmt.Fprintf(w, "     dashboard %s (the chain from the actor to the line)\n", d.control.URL()+web.Prefix+"events/"+url.PathEscape(e.ID))
}

func actorOf(e store.Event) string {
	if e.ActorIP == "" && e.ActorUser == "" {
		return "unknown (a background job: no request, no actor token)"
	}
	user := "anonymous"
	if e.ActorUser != "" {
		user = e.ActorUser
	}
	return fmt.Sprintf("%s, user %s", e.ActorIP, user)
}

func locationOf(e store.Event, ev rampart.Event) string {
	switch {
	case ev.Location != "" && ev.Route != "":
		return ev.Location + ", route " + ev.Route
	case ev.Location != "":
		return ev.Location
	case e.Service == "gateway":
		return "the edge, route " + e.Route
	}
	return "-"
}

// follow prints the events the control plane stores until ctx is done.
func (d *demo) follow(ctx context.Context) error {
	fmt.Fprintf(d.out, "\nIn the dashboard (%s): the Overview charts these attacks and adds new ones live;\n", d.dashboardURL())
	fmt.Fprintf(d.out, "each event page draws the chain from the attacker through the gateway to the shop's line of\n")
	fmt.Fprintf(d.out, "code; the attacker's page (%s) shows its timeline and the decisions\n",
		d.control.URL()+web.Prefix+"actor?"+url.Values{"scope": {"ip"}, "value": {AttackerIP}}.Encode())
	fmt.Fprintf(d.out, "about it, with buttons to block it, make it read-only or lift a decision; Services draws the\n")
	fmt.Fprintf(d.out, "service graph, Policy the policy and its versions.\n")
	fmt.Fprintf(d.out, "\nThe demo keeps serving: try the curl lines above, or your own. New security events appear\n")
	fmt.Fprintf(d.out, "below as the control plane stores them. Press Ctrl-C to stop.\n\n")
	q := url.Values{"order": {"asc"}, "limit": {"100"}, "since": {time.Now().UTC().Format(time.RFC3339Nano)}}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.control.Done():
			return fmt.Errorf("demo: the control plane stopped: %w", d.control.Err())
		case <-tick.C:
		}
		var page control.EventPage
		if err := d.call(ctx, http.MethodGet, "/v1/events?"+q.Encode(), nil, &page); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			d.log.Warn("demo: cannot read the events", "err", err)
			continue
		}
		for _, e := range page.Events {
			var ev rampart.Event
			json.Unmarshal(e.Data, &ev)
			fmt.Fprintf(d.out, "%s  %s, %s by %s; actor %s; %s", e.Time.Local().Format(time.TimeOnly), e.Kind, e.Action, e.Service, actorOf(e), locationOf(e, ev))
			if ev.Reason != "" {
				fmt.Fprintf(d.out, "; %s", truncate(ev.Reason, 120))
			}
			fmt.Fprintln(d.out)
			q.Del("since")
			q.Set("cursor", e.Cursor().String())
		}
	}
}

func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", d.Seconds()*1000) }
