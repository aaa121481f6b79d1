package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/examples/shop"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
)

// The scenarios of the story's automatic responses (built-ins of
// internal/detect/builtin).
const (
	InjectionScenario = "injection-escalation"
	StuffingScenario  = "credential-stuffing-distributed"
)

// The credential-stuffing run of step 5.
const (
	// StuffingAddrs is how many addresses the run comes from: more than
	// the 50 of credential-stuffing-distributed, each in a /24 of its own,
	// as a proxy pool's are (see StuffingAddr).
	StuffingAddrs = 64
	// StuffingNamesPerAddr is how many login names each address tries:
	// at least the scenario's 2, below the 10 of user-enumeration.
	StuffingNamesPerAddr = 3
	// HonestIP is where the honest customer logs in from, during the run.
	HonestIP = "192.0.2.44"
)

// StuffingAddr is the address of the run's i-th member, in 198.18.0.0/15
// (benchmarking, RFC 2544), one /24 each.
func StuffingAddr(i int) string { return fmt.Sprintf("198.18.%d.%d", i, 10+i%200) }

// detectionWait is how long the story waits for the detection engine to
// answer: the events travel from the shop's agent to the control plane,
// through the detector, and its decision to the gateway's watch, on a
// machine that may be busy. The story waits as long for anything else
// (a decision to reach the gateway, an event to be stored, its services
// to be ready): milliseconds on an idle machine, seconds on a busy one.
const detectionWait = 60 * time.Second

// stepDecision is step 3: the response. The injection-escalation scenario
// blocks the attacker's IP at the edge on step 2's SQL injection alone;
// the operator's command that does the same by hand is shown, and used
// to lift the block so that the story goes on. In monitor mode the
// scenario only records the decision it would make, and the operator
// makes it.
func (d *demo) stepDecision(ctx context.Context, monitor bool) error {
	w := d.out
	probe := attack(http.MethodGet, "/products?q=moka", "")
	refusedNow := func(a answer) bool {
		return a.status == http.StatusForbidden && strings.Contains(a.body, "security decision")
	}
	var (
		refused answer
		sent    time.Time
		id      string // the manual decision's
		err     error
	)
	if monitor {
		fmt.Fprintf(w, "\n3. Respond. The control plane runs the built-in scenario %s over the stored\n", InjectionScenario)
		fmt.Fprintf(w, "   events; in monitor mode its decisions are simulated: recorded, never enforced.\n")
		a, err := d.waitAlert(ctx, InjectionScenario, func(a store.Alert) bool { return a.Key == AttackerIP })
		if err != nil {
			return err
		}
		d.printAlert(a)
		fmt.Fprintf(w, "   The operator blocks the address by hand, as\n")
		fmt.Fprintf(w, "   'rampart decisions add -ttl 10m -reason \"SQL injection\" ip %s' does.\n", AttackerIP)
		id, sent, refused, err = d.manualBlock(ctx, probe, refusedNow)
	} else {
		fmt.Fprintf(w, "\n3. Respond, without anyone typing a command: the control plane runs the built-in scenario\n")
		fmt.Fprintf(w, "   %s over the stored events. A RASP finding weighs 5 against its capacity\n", InjectionScenario)
		fmt.Fprintf(w, "   of 4, so step 2's SQL injection alone takes %s over it, and the control plane\n", AttackerIP)
		fmt.Fprintf(w, "   blocks the address at the edge (1h, doubled on each repeat):\n")
		sent = d.injectedAt
		// A scenario is silent on a key for its decision's TTL after an
		// alert (the blackhole), even once the decision is lifted: an
		// earlier demo over this data directory leaves the attacker so.
		var earlier control.AlertList
		if err := d.call(ctx, http.MethodGet, "/v1/alerts?scenario="+InjectionScenario+"&since=1h", nil, &earlier); err != nil {
			return err
		}
		if i := slices.IndexFunc(earlier.Alerts, func(a store.Alert) bool { return a.Key == AttackerIP && a.Created.Before(d.began) }); i >= 0 {
			fmt.Fprintf(w, "   But an earlier demo over this data directory raised it at %s, and a scenario is\n", earlier.Alerts[i].Created.Local().Format(time.TimeOnly))
			fmt.Fprintf(w, "   silent on a key for its decision's TTL (the blackhole). The operator blocks the address\n")
			fmt.Fprintf(w, "   by hand instead, as 'rampart decisions add -ttl 10m -reason \"SQL injection\" ip %s' does.\n", AttackerIP)
			id, sent, refused, err = d.manualBlock(ctx, probe, refusedNow)
		} else if refused, err = d.within(ctx, detectionWait, 20*time.Millisecond, probe, refusedNow); errors.Is(err, errStill) {
			fmt.Fprintf(w, "   Detection did not answer within %s; the operator blocks the address by hand instead,\n", detectionWait)
			fmt.Fprintf(w, "   as 'rampart decisions add -ttl 10m -reason \"SQL injection\" ip %s' does.\n", AttackerIP)
			id, sent, refused, err = d.manualBlock(ctx, probe, refusedNow)
		}
	}
	if err != nil {
		return err
	}
	after := "the blind injection's answer"
	if id != "" {
		after = "the request that created the decision"
	}
	fmt.Fprintf(w, "   The gateway refused the attacker %s after %s (it follows the\n", ms(refused.at.Sub(sent)), after)
	fmt.Fprintf(w, "   control plane's watch: no reload, no restart):\n")
	d.printCurl(probe, refused)
	if err := d.showEvent(ctx, "decision_enforced", "gateway", refused.traceID, sent); err != nil {
		return err
	}
	auto := id == ""
	if auto {
		if id, err = d.refusingDecision(ctx, refused.traceID, sent); err != nil {
			return err
		}
		if err := d.explain(ctx, id); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "   Everyone else is still served:\n")
	if _, err := d.step(ctx, user(http.MethodGet, "/products?q=moka", "")); err != nil {
		return err
	}
	if auto {
		fmt.Fprintf(w, "   An operator can do the same by hand, 'rampart decisions add -ttl 10m -reason \"SQL injection\"\n")
		fmt.Fprintf(w, "   ip %s' (its origin is then manual), and lift any decision: the demo lifts this one\n", AttackerIP)
		fmt.Fprintf(w, "   so that the story goes on.\n")
	}
	removed := time.Now()
	if err := d.call(ctx, http.MethodDelete, "/v1/decisions/"+url.PathEscape(id), nil, nil); err != nil {
		return err
	}
	served, err := d.until(ctx, probe, func(a answer) bool { return a.status == http.StatusOK })
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   Decision removed ('rampart decisions rm %s'): the attacker is served again\n", id)
	fmt.Fprintf(w, "   %s after the request that removed it.\n", ms(served.at.Sub(removed)))
	return nil
}

// manualBlock blocks AttackerIP through the control plane's API, as the
// operator's command does, and waits until probe is refused.
func (d *demo) manualBlock(ctx context.Context, probe request, refusedNow func(answer) bool) (string, time.Time, answer, error) {
	var dec store.Decision
	sent := time.Now()
	if err := d.call(ctx, http.MethodPost, "/v1/decisions", control.DecisionRequest{
		Scope: store.ScopeIP, Value: AttackerIP, Action: store.ActionBlock, Reason: "SQL injection",
		TTL: "10m", // should the demo stop before it removes the block
	}, &dec); err != nil {
		return "", sent, answer{}, err
	}
	refused, err := d.until(ctx, probe, refusedNow)
	return dec.ID, sent, refused, err
}

// waitAlert waits for the control plane to store an alert of scenario
// that satisfies ok.
func (d *demo) waitAlert(ctx context.Context, scenario string, ok func(store.Alert) bool) (store.Alert, error) {
	deadline := time.Now().Add(detectionWait)
	for {
		var list control.AlertList
		if err := d.call(ctx, http.MethodGet, "/v1/alerts?scenario="+url.QueryEscape(scenario), nil, &list); err != nil {
			return store.Alert{}, err
		}
		for _, a := range list.Alerts {
			if ok(a) {
				return a, nil
			}
		}
		if time.Now().After(deadline) {
			return store.Alert{}, fmt.Errorf("demo: the control plane has no %s alert after %s", scenario, detectionWait)
		}
		select {
		case <-ctx.Done():
			return store.Alert{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// printAlert prints an alert as GET /v1/alerts returns it.
func (d *demo) printAlert(a store.Alert) {
	w := d.out
	fmt.Fprintf(w, "   Alert %s, as the control plane stored it (GET /v1/alerts):\n", a.ID)
	fmt.Fprintf(w, "     scenario  %s\n", a.Scenario)
	fmt.Fprintf(w, "     key       %s, %d events", a.Key, a.Count)
	if a.Distinct > 0 {
		fmt.Fprintf(w, ", %d distinct", a.Distinct)
	}
	fmt.Fprintf(w, ", %s to %s\n", a.First.Local().Format("15:04:05.000"), a.Last.Local().Format("15:04:05.000"))
	if len(a.Decisions) > 0 {
		dd := a.Decisions[0]
		sim := ""
		if dd.Simulated {
			sim = ", simulated"
		}
		more := ""
		if len(a.Decisions) > 1 {
			more = fmt.Sprintf(" (and %s)", plural(len(a.Decisions)-1, "more"))
		}
		fmt.Fprintf(w, "     decision  %s on %s %s for %s%s%s\n", dd.Action, dd.Scope, dd.Value, dd.TTL, sim, more)
	}
}

// stepStuffing is step 5: credential stuffing from many addresses,
// detected and answered by credential-stuffing-distributed, while an
// honest customer still logs in.
func (d *demo) stepStuffing(ctx context.Context, monitor bool) error {
	w := d.out
	fmt.Fprintf(w, "\n5. Credential stuffing from a proxy pool: %d addresses, each in a network of its own, try\n", StuffingAddrs)
	fmt.Fprintf(w, "   %d login names each on the shop's POST /login, names from a stolen list that name no\n", StuffingNamesPerAddr)
	fmt.Fprintf(w, "   account here. The shop checks the password and reports each attempt (rampart.TrackLogin);\n")
	fmt.Fprintf(w, "   the control plane's scenario %s counts the addresses whose\n", StuffingScenario)
	fmt.Fprintf(w, "   logins fail for unknown names. Nobody types a command.\n")
	var attempts []request
	for i := range StuffingAddrs {
		for j := range StuffingNamesPerAddr {
			body := fmt.Sprintf(`{"email":"%s","password":"Summer2024!"}`, stuffedName(i, j))
			attempts = append(attempts, from(StuffingAddr(i), http.MethodPost, "/login", body))
		}
	}
	began := time.Now()
	first, err := d.step(ctx, attempts[0])
	if err != nil {
		return err
	}
	if first.status == http.StatusForbidden {
		fmt.Fprintf(w, "   (Refused already: the decisions of an earlier demo over this data directory hold for 1h.)\n")
	}
	statuses := map[int]int{first.status: 1}
	var mu sync.Mutex
	var firstErr error
	next := make(chan request)
	var wg sync.WaitGroup
	for range 8 { // a bot's few connections
		wg.Go(func() {
			for r := range next {
				a, err := d.send(ctx, r)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				statuses[a.status]++
				mu.Unlock()
			}
		})
	}
	for _, r := range attempts[1:] {
		next <- r
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	fmt.Fprintf(w, "   ... and %d more like it, from %s to %s:", len(attempts)-1, StuffingAddr(0), StuffingAddr(StuffingAddrs-1))
	for _, code := range []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusOK} {
		if n := statuses[code]; n > 0 {
			fmt.Fprintf(w, " HTTP %d ×%d", code, n)
			delete(statuses, code)
		}
	}
	for code, n := range statuses {
		fmt.Fprintf(w, " HTTP %d ×%d", code, n)
	}
	fmt.Fprintln(w)

	if monitor {
		a, err := d.waitAlert(ctx, StuffingScenario, func(store.Alert) bool { return true })
		if err != nil {
			return err
		}
		d.printAlert(a)
		fmt.Fprintf(w, "   In monitor mode nothing is refused: the decisions are recorded as simulated.\n")
		return d.honestLogin(ctx)
	}

	// The first address tries again until the gateway refuses it.
	retry := from(StuffingAddr(0), http.MethodPost, "/login", fmt.Sprintf(`{"email":"%s","password":"Summer2024!"}`, stuffedName(0, StuffingNamesPerAddr)))
	refused, err := d.within(ctx, detectionWait, 50*time.Millisecond, retry, func(a answer) bool {
		return a.status == http.StatusForbidden && strings.Contains(a.body, "security decision")
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   The gateway refuses the run's addresses at the login %s after its first attempt:\n", ms(refused.at.Sub(began)))
	d.printCurl(retry, refused)
	if err := d.showEvent(ctx, "decision_enforced", "gateway", refused.traceID, began); err != nil {
		return err
	}
	id, err := d.refusingDecision(ctx, refused.traceID, began)
	if err != nil {
		return err
	}
	if err := d.explain(ctx, id); err != nil {
		return err
	}
	n := 0
	for i := range StuffingAddrs {
		r := from(StuffingAddr(i), http.MethodPost, "/login", fmt.Sprintf(`{"email":"%s","password":"Summer2024!"}`, stuffedName(i, 0)))
		a, err := d.within(ctx, detectionWait, 20*time.Millisecond, r, func(a answer) bool { return a.status == http.StatusForbidden })
		if err != nil && !errors.Is(err, errStill) {
			return err
		}
		if a.status == http.StatusForbidden {
			n++
		}
	}
	fmt.Fprintf(w, "   %d of the %d addresses are refused the login. block-sensitive refuses the policy's\n", n, StuffingAddrs)
	fmt.Fprintf(w, "   sensitive routes only (POST /login here): the catalogue still answers them.\n")
	if _, err := d.step(ctx, from(StuffingAddr(0), http.MethodGet, "/products?q=moka", "")); err != nil {
		return err
	}
	return d.honestLogin(ctx)
}

// honestLogin logs the honest customer in from HonestIP, and fails unless
// the shop lets them in.
func (d *demo) honestLogin(ctx context.Context) error {
	fmt.Fprintf(d.out, "   An honest customer logs in from %s meanwhile:\n", HonestIP)
	body, _ := json.Marshal(shop.Credentials{Email: shop.DemoUser, Password: shop.DemoPassword})
	a, err := d.step(ctx, from(HonestIP, http.MethodPost, "/login", string(body)))
	if err != nil {
		return err
	}
	if a.status != http.StatusOK {
		return fmt.Errorf("demo: the honest customer's login answered HTTP %d %s", a.status, a.body)
	}
	return nil
}

// stuffedName is the j-th login name the run's i-th address tries: no
// account of the shop has it.
func stuffedName(i, j int) string { return fmt.Sprintf("user%03d.%d@mail.example", i, j) }

// refusingDecision returns the id of the decision that the gateway's
// decision_enforced event in trace traceID names.
func (d *demo) refusingDecision(ctx context.Context, traceID string, since time.Time) (string, error) {
	q := url.Values{"kind": {"decision_enforced"}, "service": {"gateway"}, "trace_id": {traceID}, "limit": {"1"},
		"since": {since.Add(-time.Second).UTC().Format(time.RFC3339Nano)}}
	var page control.EventPage
	if err := d.call(ctx, http.MethodGet, "/v1/events?"+q.Encode(), nil, &page); err != nil {
		return "", err
	}
	for _, e := range page.Events {
		var ev rampart.Event
		if json.Unmarshal(e.Data, &ev) == nil && ev.Decision != "" {
			return ev.Decision, nil
		}
	}
	return "", errors.New("demo: the gateway's decision_enforced event names no decision")
}

// explain prints why the control plane made decision id: its origin, its
// alert and the evidence, as GET /v1/decisions/{id}/explain says.
func (d *demo) explain(ctx context.Context, id string) error {
	var ex control.Explanation
	if err := d.call(ctx, http.MethodGet, "/v1/decisions/"+url.PathEscape(id)+"/explain", nil, &ex); err != nil {
		return err
	}
	w, dec := d.out, ex.Decision
	fmt.Fprintf(w, "   Decision %s, as 'GET /v1/decisions/%s/explain' explains it:\n", dec.ID, dec.ID)
	origin := dec.Origin
	if origin != "" && origin != store.OriginManual {
		origin += " (scenario: made by the control plane, not by hand)"
	}
	fmt.Fprintf(w, "     origin    %s\n", origin)
	fmt.Fprintf(w, "     decision  %s on %s %s, until %s\n", dec.Action, dec.Scope, dec.Value, dec.Expires.Local().Format(time.TimeOnly))
	fmt.Fprintf(w, "     reason    %s\n", truncate(dec.Reason, 200))
	if a := ex.Alert; a != nil {
		fmt.Fprintf(w, "     alert     %s: %s on %s, %d events", a.ID, a.Scenario, a.Key, a.Count)
		if a.Distinct > 0 {
			fmt.Fprintf(w, ", %d distinct", a.Distinct)
		}
		fmt.Fprintf(w, ", %s to %s; %s\n", a.First.Local().Format("15:04:05.000"), a.Last.Local().Format("15:04:05.000"), plural(len(a.Decisions), "decision"))
	}
	// The evidence is the first and last events of the bucket: a few of
	// each say enough.
	const shown = 2
	for i, e := range ex.Events {
		label := "evidence "
		if i > 0 {
			label = "         "
		}
		if n := len(ex.Events); n > 2*shown+1 && i >= shown && i < n-shown {
			if i == shown {
				fmt.Fprintf(w, "     %s … %s\n", label, plural(n-2*shown, "more event"))
			}
			continue
		}
		fmt.Fprintf(w, "     %s %s, %s by %s at %s; actor %s", label, e.Kind, e.Action, e.Service, e.Time.Local().Format("15:04:05.000"), actorOf(e))
		if e.ActorVerified {
			fmt.Fprintf(w, " (verified)")
		}
		fmt.Fprintln(w)
	}
	return nil
}

// plural returns "1 thing" or "n things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
