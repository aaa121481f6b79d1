package web

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/store"
)

// Limits on what a page's filters may ask.
const (
	maxFilterLen = 256 // bytes of one filter value
	pageSize     = 50
)

// windows are the overview's time windows and their bucket counts.
var windows = map[string]struct {
	d time.Duration
	n int
}{"1h": {time.Hour, 30}, "6h": {6 * time.Hour, 36}, "24h": {24 * time.Hour, 48}, "7d": {7 * 24 * time.Hour, 56}}

type overviewView struct {
	Window    string
	Windows   []string
	Overview  Overview
	Chart     chartView
	ByKind    barsView
	ByService barsView
	Actors    barsView
	Recent    []eventView
	Decisions []decisionView
	Active    int
	Services  []serviceRow
	Exposed   int
	Changes   []change
}

type serviceRow struct {
	store.Service
	Attacks int
}

// change is something that changed recently.
type change struct {
	Time time.Time
	What string
	Link string
}

func (h *Handler) overviewData(r *http.Request) (overviewView, error) {
	ctx := r.Context()
	now := h.cfg.Now().UTC()
	win := r.URL.Query().Get("window")
	w, ok := windows[win]
	if !ok {
		win, w = "1h", windows["1h"]
	}
	v := overviewView{Window: win, Windows: []string{"1h", "6h", "24h", "7d"}}
	ov, err := h.data.Overview(ctx, now.Add(-w.d), now.Add(time.Second), w.n)
	if err != nil {
		return v, err
	}
	v.Overview, v.Chart = ov, layoutChart(ov)
	v.ByKind, v.ByService, v.Actors = layoutBars(ov.ByKind), layoutBars(ov.ByService), layoutBars(ov.TopActors)
	v.Recent = viewEvents(ov.Recent)
	ds, err := h.cfg.Store.ListDecisions(ctx, false)
	if err != nil {
		return v, err
	}
	hourAgo := now.Add(-time.Hour)
	active := ds[:0:0]
	for _, d := range ds {
		if d.Simulated {
			continue
		}
		active = append(active, d)
		if d.Created.After(hourAgo) {
			v.Changes = append(v.Changes, change{d.Created, "decision " + string(d.Action) + " " + string(d.Scope) + " " + d.Value + " by " + originLabel(d.Origin),
				Prefix + "decisions?state=all"})
		}
	}
	for _, l := range ov.Lifted {
		v.Changes = append(v.Changes, change{l.Time, "decision " + l.ID + " lifted", Prefix + "events?kind=" + AuditKind})
	}
	v.Active = len(active)
	slices.SortFunc(active, func(a, b store.Decision) int { return b.Created.Compare(a.Created) })
	v.Decisions = viewDecisions(active[:min(8, len(active))], now)
	services, err := h.cfg.Store.Services(ctx, store.ServiceFilter{})
	if err != nil {
		return v, err
	}
	attacks := map[string]int{}
	for _, c := range ov.ByService {
		attacks[c.Key] = c.N
	}
	for _, s := range services {
		if s.Exposed {
			v.Exposed++
		}
		if s.FirstSeen.After(hourAgo) {
			v.Changes = append(v.Changes, change{s.FirstSeen, "new service " + s.Name, Prefix + "services/" + url.PathEscape(s.Name)})
		}
		v.Services = append(v.Services, serviceRow{s, attacks[s.Name]})
	}
	slices.SortFunc(v.Services, func(a, b serviceRow) int {
		return cmp.Or(cmp.Compare(b.Attacks, a.Attacks), boolCmp(b.Exposed, a.Exposed), strings.Compare(a.Name, b.Name))
	})
	v.Services = v.Services[:min(8, len(v.Services))]
	if p, err := h.cfg.Store.Policy(ctx, 0); err == nil && p.Created.After(hourAgo) {
		v.Changes = append(v.Changes, change{p.Created, "policy version " + strconv.FormatInt(p.Version, 10), Prefix + "policy"})
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return v, err
	}
	slices.SortFunc(v.Changes, func(a, b change) int { return b.Time.Compare(a.Time) })
	v.Changes = v.Changes[:min(10, len(v.Changes))]
	return v, nil
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func originLabel(origin string) string {
	if origin == "" || origin == store.OriginManual {
		return "a person"
	}
	return "scenario " + origin
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request, s *session) error {
	v, err := h.overviewData(r)
	if err != nil {
		return err
	}
	h.renderTitled(w, r, http.StatusOK, "overview", "Overview", s, v)
	return nil
}

// liveFragment is the overview's live part alone, as the stream sends it.
func (h *Handler) liveFragment(w http.ResponseWriter, r *http.Request, s *session) error {
	v, err := h.overviewData(r)
	if err != nil {
		return err
	}
	b, err := h.renderPart("overview", "live", s, r, v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b)
	return nil
}

// filter reads a filter value, refusing one too long.
func filter(q url.Values, key string) (string, error) {
	v := strings.TrimSpace(q.Get(key))
	if len(v) > maxFilterLen {
		return "", badInput("The filter " + key + " is longer than " + strconv.Itoa(maxFilterLen) + " bytes.")
	}
	return v, nil
}

// parseTime reads a time filter: RFC 3339, or a duration ago ("24h").
func parseTime(q url.Values, key string, now time.Time) (time.Time, error) {
	v, err := filter(q, key)
	if err != nil || v == "" {
		return time.Time{}, err
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		if t, err = time.Parse("2006-01-02T15:04", v); err != nil { // what <input type=datetime-local> sends
			return time.Time{}, badInput("The time " + key + " is neither a duration such as 24h nor a time such as 2026-01-02T15:04:05Z.")
		}
	}
	return t, nil
}

// cursorParam reads a page cursor: "unixnano.id".
func cursorParam(q url.Values) (*store.Cursor, error) {
	v := q.Get("cursor")
	if v == "" {
		return nil, nil
	}
	ns, id, ok := strings.Cut(v, ".")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" || len(id) > 200 {
		return nil, badInput("The page cursor is not one this dashboard made.")
	}
	return &store.Cursor{Time: time.Unix(0, n).UTC(), ID: id}, nil
}

func cursorString(c *store.Cursor) string {
	if c == nil {
		return ""
	}
	return strconv.FormatInt(c.Time.UnixNano(), 10) + "." + c.ID
}

type eventsView struct {
	Filters map[string]string
	Events  []eventView
	Next    string
	Scanned int
	Kinds   []string
}

// eventKinds are offered in the kind filter.
var eventKinds = []string{"sql_injection", "command_injection", "path_traversal", "ssrf", "waf", "decision_enforced", "read_only_write",
	"authz_denied", "mtls_refused", "actor_token_invalid", "actor_missing", "auth_failed", "rate_limited", "login_failure",
	"login_success", "object_access", "request_summary", "quota_exceeded", AuditKind}

func (h *Handler) eventQuery(q url.Values) (EventQuery, map[string]string, error) {
	now := h.cfg.Now()
	f := map[string]string{}
	for _, k := range []string{"kind", "service", "action", "ip", "user", "session", "trace", "since", "until", "attacks"} {
		v, err := filter(q, k)
		if err != nil {
			return EventQuery{}, nil, err
		}
		f[k] = v
	}
	eq := EventQuery{Kind: f["kind"], Service: f["service"], Action: f["action"], ActorIP: f["ip"], ActorUser: f["user"],
		Session: f["session"], TraceID: f["trace"], AttacksOnly: f["attacks"] == "1", Limit: pageSize}
	var err error
	if eq.Since, err = parseTime(q, "since", now); err != nil {
		return eq, f, err
	}
	if eq.Until, err = parseTime(q, "until", now); err != nil {
		return eq, f, err
	}
	if eq.After, err = cursorParam(q); err != nil {
		return eq, f, err
	}
	return eq, f, nil
}

func (h *Handler) events(w http.ResponseWriter, r *http.Request, s *session) error {
	eq, f, err := h.eventQuery(r.URL.Query())
	if err != nil {
		return err
	}
	page, err := h.data.SearchEvents(r.Context(), eq)
	if err != nil {
		return err
	}
	v := eventsView{Filters: f, Events: viewEvents(page.Events), Next: cursorString(page.Next), Scanned: page.Scanned, Kinds: eventKinds}
	h.renderTitled(w, r, http.StatusOK, "events", "Events", s, v)
	return nil
}

type eventPageView struct {
	Event       eventView
	Trace       []eventView
	Actor       []eventView
	Gateway     *eventView // the edge's event of the same trace, if any
	Decisions   []decisionView
	TrustDomain string
}

func (h *Handler) event(w http.ResponseWriter, r *http.Request, s *session) error {
	ev, err := h.data.Event(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	trace, actor, err := h.data.Related(r.Context(), ev, 20)
	if err != nil {
		return err
	}
	v := eventPageView{Event: viewEvent(ev), Trace: viewEvents(trace), Actor: viewEvents(actor)}
	for i := range v.Trace {
		if v.Trace[i].FromEdge() {
			v.Gateway = &v.Trace[i]
			break
		}
	}
	if v.Event.Decision != "" {
		if d, err := h.cfg.Store.Decision(r.Context(), v.Event.Decision); err == nil {
			v.Decisions = viewDecisions([]store.Decision{d}, h.cfg.Now())
		}
	}
	h.renderTitled(w, r, http.StatusOK, "event", "Event "+truncate(ev.Kind, 40), s, v)
	return nil
}

// actorView is an actor's page.
type actorView struct {
	Scope, Value string
	Events       []eventView
	Next         string
	Decisions    []actorDecision
	Actions      []actionChoice
	TTLs         []string
	Flash        string // the decision just made or lifted
}

type actorDecision struct {
	decisionView
	Direct   bool        // on this very actor, not a range holding it
	Enforced []eventView // the first refusal under it by each enforcer
}

type actionChoice struct {
	Action, Label, Help string
}

var actionChoices = []actionChoice{
	{"block", "Block", "refused everywhere: at the gateway and by every service"},
	{"block-sensitive", "Block sensitive only", "refused on routes the policy marks sensitive (logins, writes, admin)"},
	{"read-only", "Read-only", "GET and HEAD still served; every write refused, at the edge and at the database"},
	{"rate-limit", "Rate-limit", "a tighter request budget at the gateway"},
}

var ttlChoices = []string{"15m", "1h", "6h", "24h", "168h"}

var scopes = map[string]bool{"ip": true, "cidr": true, "user": true, "session": true}

func (h *Handler) actor(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	scope, value := q.Get("scope"), strings.TrimSpace(q.Get("value"))
	if !scopes[scope] || value == "" || len(value) > maxFilterLen {
		return badInput("An actor is a scope (ip, cidr, user or session) and a value of at most " + strconv.Itoa(maxFilterLen) + " bytes.")
	}
	v := actorView{Scope: scope, Value: value, Actions: actionChoices, TTLs: ttlChoices, Flash: flash(q)}
	eq := EventQuery{Limit: pageSize}
	var prefix netip.Prefix
	switch scope {
	case "ip":
		addr, err := netip.ParseAddr(value)
		if err != nil {
			return badInput("That is not an IP address.")
		}
		v.Value = addr.String()
		eq.ActorIP = v.Value
	case "cidr":
		p, err := netip.ParsePrefix(value)
		if err != nil {
			return badInput("That is not a network such as 203.0.113.0/24.")
		}
		prefix = p.Masked()
		v.Value = prefix.String()
		eq.ActorCIDR = v.Value
	case "user":
		eq.ActorUser = value
	case "session":
		eq.Session = value
	}
	var err error
	if eq.After, err = cursorParam(q); err != nil {
		return err
	}
	page, err := h.data.SearchEvents(r.Context(), eq)
	if err != nil {
		return err
	}
	v.Events, v.Next = viewEvents(page.Events), cursorString(page.Next)
	// Those on it, and for an address those on a range that holds it,
	// for a range those on its addresses and overlapping ranges.
	ds, err := h.cfg.Store.ActorDecisions(r.Context(), store.Actor{Scope: store.Scope(scope), Value: v.Value})
	if err != nil {
		return err
	}
	now := h.cfg.Now()
	for _, d := range ds {
		direct := string(d.Scope) == scope && d.Value == v.Value
		v.Decisions = append(v.Decisions, actorDecision{decisionView: decisionView{d, now}, Direct: direct})
	}
	// v.Decisions are oldest first, as the store lists them.
	if len(v.Decisions) > 0 {
		// When each enforcer first refused the actor under a decision:
		// the decision_enforced events that name it, oldest first.
		f := store.EventFilter{Kind: "decision_enforced", ActorIP: eq.ActorIP, ActorCIDR: eq.ActorCIDR, ActorUser: eq.ActorUser, SessionHash: eq.Session,
			Since: v.Decisions[0].Created.Add(-time.Minute), Limit: store.MaxQueryLimit}
		refusals, err := h.cfg.Store.QueryEvents(r.Context(), f)
		if err != nil {
			return err
		}
		for _, e := range refusals {
			ev := viewEvent(e)
			for i := range v.Decisions {
				ad := &v.Decisions[i]
				if ad.ID == ev.Decision && !slices.ContainsFunc(ad.Enforced, func(x eventView) bool { return x.Service == ev.Service }) {
					ad.Enforced = append(ad.Enforced, ev)
				}
			}
		}
	}
	slices.SortFunc(v.Decisions, func(a, b actorDecision) int { return b.Created.Compare(a.Created) })
	h.renderTitled(w, r, http.StatusOK, "actor", "Actor "+truncate(v.Value, 60), s, v)
	return nil
}

func (h *Handler) createDecision(w http.ResponseWriter, r *http.Request, s *session) error {
	f := r.PostForm
	scope, value := f.Get("scope"), strings.TrimSpace(f.Get("value"))
	if !scopes[scope] || value == "" || len(value) > maxFilterLen {
		return badInput("A decision needs a scope (ip, cidr, user or session) and a value.")
	}
	action := store.DecisionAction(f.Get("action"))
	known := false
	for _, c := range actionChoices {
		known = known || c.Action == string(action)
	}
	if !known {
		return badInput("Choose block, block sensitive only, read-only or rate-limit.")
	}
	ttl, err := time.ParseDuration(f.Get("ttl"))
	if err != nil || ttl <= 0 || ttl > 365*24*time.Hour {
		return badInput("The TTL must be a duration such as 1h, at most a year.")
	}
	reason := strings.TrimSpace(f.Get("reason"))
	if len(reason) > 500 {
		return badInput("The reason is longer than 500 bytes.")
	}
	d := store.Decision{Scope: store.Scope(scope), Value: value, Action: action, Reason: reason, Origin: store.OriginManual,
		Expires: h.cfg.Now().Add(ttl)}
	if action == store.ActionRateLimit && f.Get("rate") != "" {
		if d.RateLimit, err = strconv.Atoi(f.Get("rate")); err != nil || d.RateLimit <= 0 || d.RateLimit > 1_000_000 {
			return badInput("The rate limit is requests per minute, a positive number.")
		}
	}
	if d.Scope == store.ScopeCIDR {
		p, err := netip.ParsePrefix(value)
		if err != nil {
			return badInput("That is not a network such as 203.0.113.0/24.")
		}
		limit := control.MinIPv6Prefix
		if p.Addr().Unmap().Is4() {
			limit = control.MinIPv4Prefix
		}
		if p.Bits() < limit {
			return badInput("That network is wider than /" + strconv.Itoa(limit) + ": it would refuse a large part of the Internet. Use the CLI with -force if that is what you mean.")
		}
	}
	d, err = h.cfg.Store.CreateDecision(r.Context(), d)
	if err != nil {
		return err
	}
	h.audit(r.Context(), r, s.who, "decision_created", map[string]any{"decision": d.ID, "scope": string(d.Scope), "value": d.Value,
		"decision_action": string(d.Action), "ttl": ttl.String(), "reason": d.Reason, "revision": d.Revision})
	h.log.Info("web: decision created", "who", s.who, "decision", d.ID, "scope", d.Scope, "action", d.Action)
	back := f.Get("back")
	if back == "" {
		back = Prefix + "actor?" + url.Values{"scope": {string(d.Scope)}, "value": {d.Value}}.Encode()
	}
	http.Redirect(w, r, withDone(safeNext(back), "Decision "+d.ID+" made: "+string(d.Action)+" for "+ttl.String()+"."), http.StatusSeeOther)
	return nil
}

func withDone(back, msg string) string {
	u, err := url.Parse(back)
	if err != nil {
		return back
	}
	q := u.Query()
	q.Set("done", msg)
	u.RawQuery = q.Encode()
	return u.String()
}

func (h *Handler) liftDecision(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	d, err := h.cfg.Store.Decision(r.Context(), id)
	if err != nil {
		return err
	}
	if err := h.cfg.Store.DeleteDecision(r.Context(), id); err != nil {
		return err
	}
	h.audit(r.Context(), r, s.who, "decision_lifted", map[string]any{"decision": id, "scope": string(d.Scope), "value": d.Value,
		"decision_action": string(d.Action)})
	h.log.Info("web: decision lifted", "who", s.who, "decision", id)
	back := r.PostForm.Get("back")
	if back == "" {
		back = Prefix + "decisions"
	}
	http.Redirect(w, r, withDone(safeNext(back), "Decision "+id+" lifted."), http.StatusSeeOther)
	return nil
}

type decisionsView struct {
	State, Origin, Simulated string
	Decisions                []decisionView
	Total                    int
	Page, Pages              int
	Flash                    string
}

func (h *Handler) decisions(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	v := decisionsView{State: q.Get("state"), Origin: q.Get("origin"), Simulated: q.Get("simulated"), Flash: flash(q)}
	if v.State != "expired" && v.State != "all" {
		v.State = "active"
	}
	ds, err := h.cfg.Store.ListDecisions(r.Context(), v.State != "active")
	if err != nil {
		return err
	}
	now := h.cfg.Now()
	ds = slices.DeleteFunc(ds, func(d store.Decision) bool {
		person := d.Origin == "" || d.Origin == store.OriginManual
		switch {
		case v.State == "expired" && !d.Expired(now),
			v.Origin == "person" && !person, v.Origin == "scenario" && person,
			v.Simulated == "only" && !d.Simulated, v.Simulated == "hide" && d.Simulated:
			return true
		}
		return false
	})
	slices.Reverse(ds) // newest first
	v.Total = len(ds)
	v.Page, _ = strconv.Atoi(q.Get("page"))
	v.Pages = max(1, (len(ds)+pageSize-1)/pageSize)
	v.Page = min(max(v.Page, 1), v.Pages)
	ds = ds[(v.Page-1)*pageSize : min(len(ds), v.Page*pageSize)]
	v.Decisions = viewDecisions(ds, now)
	h.renderTitled(w, r, http.StatusOK, "decisions", "Decisions", s, v)
	return nil
}

type alertsView struct {
	Scenario string
	Alerts   []store.Alert
	Limit    int
}

func (h *Handler) alerts(w http.ResponseWriter, r *http.Request, s *session) error {
	scenario, err := filter(r.URL.Query(), "scenario")
	if err != nil {
		return err
	}
	since, err := parseTime(r.URL.Query(), "since", h.cfg.Now())
	if err != nil {
		return err
	}
	v := alertsView{Scenario: scenario, Limit: 200}
	if v.Alerts, err = h.cfg.Store.Alerts(r.Context(), store.AlertFilter{Scenario: scenario, Since: since, Limit: v.Limit}); err != nil {
		return err
	}
	h.renderTitled(w, r, http.StatusOK, "alerts", "Alerts", s, v)
	return nil
}

type alertView struct {
	Alert     store.Alert
	Events    []eventView
	Decisions []decisionView
}

func (h *Handler) alert(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	if len(id) > 200 {
		return store.ErrNotFound
	}
	a, err := h.cfg.Store.Alert(r.Context(), id)
	if err != nil {
		return err
	}
	v := alertView{Alert: a}
	evs, err := h.cfg.Store.EventsByID(r.Context(), a.Evidence)
	if err != nil {
		return err
	}
	v.Events = viewEvents(evs)
	for _, ad := range a.Decisions {
		if ad.ID == "" {
			continue
		}
		if d, err := h.cfg.Store.Decision(r.Context(), ad.ID); err == nil {
			v.Decisions = append(v.Decisions, decisionView{d, h.cfg.Now()})
		}
	}
	h.renderTitled(w, r, http.StatusOK, "alert", "Alert "+truncate(a.Scenario, 40), s, v)
	return nil
}

type scenariosView struct {
	Scenarios []control.ScenarioInfo
	Stats     *control.DetectorStats
}

func (h *Handler) scenarios(w http.ResponseWriter, r *http.Request, s *session) error {
	var v scenariosView
	if h.cfg.Scenarios != nil {
		v.Scenarios, v.Stats = h.cfg.Scenarios()
	}
	h.renderTitled(w, r, http.StatusOK, "scenarios", "Scenarios", s, v)
	return nil
}

type servicesView struct {
	Name, Module string
	Exposed      bool
	Services     []serviceRow
	Total        int
	Page, Pages  int
	Graph        graphView
}

func (h *Handler) services(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	var v servicesView
	var err error
	if v.Name, err = filter(q, "name"); err != nil {
		return err
	}
	if v.Module, err = filter(q, "module"); err != nil {
		return err
	}
	v.Exposed = q.Get("exposed") == "1"
	list, err := h.cfg.Store.Services(r.Context(), store.ServiceFilter{Module: v.Module, Exposed: v.Exposed})
	if err != nil {
		return err
	}
	now := h.cfg.Now()
	g, err := h.data.Graph(r.Context(), now.Add(-24*time.Hour))
	if err != nil {
		return err
	}
	attacks := map[string]int{}
	for _, n := range g.Nodes {
		attacks[n.Name] = n.Attacks
	}
	for _, sv := range list {
		if v.Name == "" || strings.Contains(sv.Name, v.Name) {
			v.Services = append(v.Services, serviceRow{sv, attacks[sv.Name]})
		}
	}
	v.Total = len(v.Services)
	v.Page, _ = strconv.Atoi(q.Get("page"))
	v.Pages = max(1, (v.Total+pageSize*2-1)/(pageSize*2))
	v.Page = min(max(v.Page, 1), v.Pages)
	v.Services = v.Services[(v.Page-1)*pageSize*2 : min(v.Total, v.Page*pageSize*2)]
	v.Graph = layoutGraph(g)
	h.renderTitled(w, r, http.StatusOK, "services", "Services", s, v)
	return nil
}

type serviceView struct {
	Calls         []string // calls it received, "CALLER METHOD /pattern", when known
	AttacksByKind []Count  // attacks on it in the last day, when known
	EdgeReachable bool     // the policy lets the edge reach it
	Service       store.Service
	Instances     []store.Instance
	Sensitive     []string
	Callers       []GraphEdge
	Callees       []GraphEdge
	Attacks       []eventView
	Now           time.Time
	Stale         time.Duration
}

func (h *Handler) service(w http.ResponseWriter, r *http.Request, s *session) error {
	name := r.PathValue("name")
	if len(name) > maxFilterLen {
		return store.ErrNotFound
	}
	sv, err := h.cfg.Store.Service(r.Context(), name)
	if err != nil {
		return err
	}
	now := h.cfg.Now()
	v := serviceView{Service: sv, Now: now, Stale: control.DefaultStaleAfter}
	if v.Instances, err = h.cfg.Store.Instances(r.Context(), store.InstanceFilter{Service: name}); err != nil {
		return err
	}
	g, err := h.data.Graph(r.Context(), now.Add(-24*time.Hour))
	if err != nil {
		return err
	}
	for _, n := range g.Nodes {
		if n.Name == name {
			v.Sensitive = n.Sensitive
		}
	}
	for _, e := range g.Edges {
		if e.To == name {
			v.Callers = append(v.Callers, e)
		}
		if e.From == name {
			v.Callees = append(v.Callees, e)
		}
	}
	if h.cfg.API != nil {
		inv, err := h.cfg.API.ServiceInventory(r.Context(), name, now.Add(-24*time.Hour), now)
		if err != nil {
			return err
		}
		v.Calls, v.EdgeReachable = inv.Calls, inv.EdgeReachable
		byKind := map[string]int{}
		for k, n := range inv.AttacksByKind {
			byKind[k] = int(n)
		}
		v.AttacksByKind = topCounts(byKind, 20)
	}
	page, err := h.data.SearchEvents(r.Context(), EventQuery{Service: name, AttacksOnly: true, Limit: 20})
	if err != nil {
		return err
	}
	v.Attacks = viewEvents(page.Events)
	h.renderTitled(w, r, http.StatusOK, "service", "Service "+truncate(name, 60), s, v)
	return nil
}

type policyView struct {
	Flash    string
	Proposal string      // the text of a proposal shown again
	Problem  string      // why the proposal was refused
	DryRun   *dryRunView // what the proposal would change, when asked
	Current  store.Policy
	Shown    store.Policy
	Versions []store.Policy
	Diff     []diffLine
	HasDiff  bool
	Prev     int64
	None     bool
}

func (h *Handler) policy(w http.ResponseWriter, r *http.Request, s *session) error {
	v := policyView{Flash: flash(r.URL.Query())}
	if err := h.policyData(r, &v); err != nil {
		return err
	}
	h.renderTitled(w, r, http.StatusOK, "policy", "Policy", s, v)
	return nil
}

func (h *Handler) policyData(r *http.Request, v *policyView) error {
	ctx := r.Context()
	cur, err := h.cfg.Store.Policy(ctx, 0)
	if errors.Is(err, store.ErrNotFound) {
		v.None = true
		return nil
	}
	if err != nil {
		return err
	}
	v.Current, v.Shown = cur, cur
	if v.Proposal == "" {
		v.Proposal = cur.YAML
	}
	if n, err := strconv.ParseInt(r.URL.Query().Get("version"), 10, 64); err == nil && n > 0 && n != cur.Version {
		if v.Shown, err = h.cfg.Store.Policy(ctx, n); err != nil {
			return err
		}
	}
	for n := cur.Version; n >= 1 && n > cur.Version-20; n-- {
		p := cur
		if n != cur.Version {
			if p, err = h.cfg.Store.Policy(ctx, n); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				return err
			}
		}
		v.Versions = append(v.Versions, p)
	}
	if v.Shown.Version > 1 {
		prev, err := h.cfg.Store.Policy(ctx, v.Shown.Version-1)
		if err == nil {
			v.Diff, v.HasDiff, v.Prev = lineDiff(prev.YAML, v.Shown.YAML), true, prev.Version
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// dryRunView is what a proposed policy would change.
type dryRunView struct {
	Services int // services the proposal names
	Changes  []dryRunChange
	Note     string
}

type dryRunChange struct {
	Caller, Service, Method, Path string
	Before, After                 string
	Count                         int64
}

// proposePolicy checks a proposed policy and either shows what it would
// change (do=dryrun) or stores it as the next version (do=apply), if the
// current version is still the one it was derived from.
func (h *Handler) proposePolicy(w http.ResponseWriter, r *http.Request, s *session) error {
	text := r.PostForm.Get("yaml")
	v := policyView{Proposal: text}
	base, err := strconv.ParseInt(r.PostForm.Get("base"), 10, 64)
	if err != nil || base < 0 {
		return badInput("The form does not say which version the proposal changes.")
	}
	pol, perr := policy.Parse(text)
	if perr != nil {
		v.Problem = perr.Error()
	}
	if perr == nil && r.PostForm.Get("do") == "apply" {
		p, err := h.cfg.Store.PutPolicy(r.Context(), text, base)
		if errors.Is(err, store.ErrConflict) {
			v.Problem = "Another version was stored since you started: review it, then propose again."
		} else if err != nil {
			return err
		} else {
			h.audit(r.Context(), r, s.who, "policy_applied", map[string]any{"version": p.Version, "base": base})
			h.log.Info("web: policy applied", "who", s.who, "version", p.Version)
			http.Redirect(w, r, Prefix+"policy?done="+url.QueryEscape("Version "+strconv.FormatInt(p.Version, 10)+" applied."), http.StatusSeeOther)
			return nil
		}
	}
	if perr == nil && v.Problem == "" {
		v.DryRun = &dryRunView{Services: len(pol.Services)}
		if err := h.dryRun(r, text, v.DryRun); err != nil {
			return err
		}
	}
	if err := h.policyData(r, &v); err != nil {
		return err
	}
	status := http.StatusOK
	if v.Problem != "" {
		status = http.StatusBadRequest
	}
	h.renderTitled(w, r, status, "policy", "Policy", s, v)
	return nil
}

// dryRun fills what the proposal would change over the last day's
// traffic: the calls the policy denied (authz_denied events) and those
// the services reported, evaluated by both policies.
func (h *Handler) dryRun(r *http.Request, text string, d *dryRunView) error {
	if h.cfg.API == nil {
		d.Note = "The proposal is valid. Comparing it with recent traffic needs the control plane's dry run."
		return nil
	}
	now := h.cfg.Now()
	res, err := h.cfg.API.PolicyDryRun(r.Context(), text, now.Add(-24*time.Hour), now)
	if err != nil {
		return err
	}
	for _, c := range res.Changes {
		path := c.Path
		if c.Route != "" {
			path = c.Route
		}
		d.Changes = append(d.Changes, dryRunChange{Caller: c.Caller, Service: c.Service, Method: c.Method, Path: path,
			Before: c.Before, After: c.After, Count: int64(c.Count)})
	}
	d.Note = fmt.Sprintf("Over the last 24 h: %d distinct calls denied and %d allowed were evaluated; %d would change.",
		res.Observed.Denied, res.Observed.Allowed, len(res.Changes))
	if res.Truncated {
		d.Note += " (The window held more denied calls than a dry run reads: the oldest were left out.)"
	}
	return nil
}

// diffLine is a line of a diff: Op is ' ', '+' or '-'.
type diffLine struct {
	Op   string
	Text string
}

// lineDiff is the line diff of a and b (longest common subsequence),
// for policy documents of a few hundred lines.
func lineDiff(a, b string) []diffLine {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	if len(x)*len(y) > 4_000_000 {
		return []diffLine{{"-", "(too long to compare line by line)"}}
	}
	lcs := make([][]int32, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int32, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []diffLine
	i, j := 0, 0
	for i < len(x) && j < len(y) {
		switch {
		case x[i] == y[j]:
			out = append(out, diffLine{" ", x[i]})
			i, j = i+1, j+1
		case lcs[i+1][j] >= lcs[i][j+1]:
			out = append(out, diffLine{"-", x[i]})
			i++
		default:
			out = append(out, diffLine{"+", y[j]})
			j++
		}
	}
	for ; i < len(x); i++ {
		out = append(out, diffLine{"-", x[i]})
	}
	for ; j < len(y); j++ {
		out = append(out, diffLine{"+", y[j]})
	}
	return out
}

// flashRE matches the messages the dashboard's own redirects carry in
// ?done=: anything else there is a link someone else made, not shown.
var flashRE = regexp.MustCompile(`^(Decision [0-9A-Za-z_-]{1,64} (made: [a-z-]+ for [0-9hms.]+|lifted)|Version [0-9]+ applied)\.$`)

// flash is the message of the action just done, if the dashboard sent it.
func flash(q url.Values) string {
	if m := q.Get("done"); flashRE.MatchString(m) {
		return m
	}
	return ""
}
