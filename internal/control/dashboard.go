package control

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/store"
)

// The dashboard's data: the overview, an event with its related events,
// an actor's timeline. Each is a method of Handler that package web calls
// in process, and an admin endpoint that serves the same value as JSON.

// Bounds of the dashboard's answers.
const (
	DefaultOverviewRange = 24 * time.Hour
	MaxOverviewRange     = 31 * 24 * time.Hour
	DefaultBuckets       = 60
	MaxBuckets           = 500
	DefaultTop           = 10
	MaxTop               = 100
	DefaultRelated       = 20
	MaxRelated           = 100
	DefaultTimelineLimit = 50
	MaxTimelineLimit     = 200
	// maxListed bounds the lists of the overview whose length the data
	// decides (kinds, services with attacks, recent changes).
	maxListed = 100
)

// OverviewQuery says what Overview covers.
type OverviewQuery struct {
	Since, Until time.Time // required; Until - Since at most MaxOverviewRange
	Buckets      int       // time buckets of the timeline; 0 means DefaultBuckets
	Top          int       // top actors; 0 means DefaultTop
}

// Overview is the response to GET /v1/stats/overview.
type Overview struct {
	Since         time.Time       `json:"since"`
	Until         time.Time       `json:"until"`
	BucketSeconds float64         `json:"bucket_seconds"`
	Timeline      []TimeBucket    `json:"timeline"`
	ByKind        []KindCount     `json:"by_kind"`
	ByService     []ServiceCount  `json:"by_service"`
	EventsTotal   int64           `json:"events_total"`
	AttacksTotal  int64           `json:"attacks_total"`
	TopActors     []ActorSummary  `json:"top_actors"`
	Decisions     DecisionStats   `json:"decisions"`
	Services      []ServiceStatus `json:"services"`
	Changes       RecentChanges   `json:"changes"`
}

// TimeBucket is one bucket of the attack timeline.
type TimeBucket struct {
	Start  time.Time        `json:"start"`
	Total  int64            `json:"total"`
	ByKind map[string]int64 `json:"by_kind"`
}

// KindCount is how many attacks of a kind.
type KindCount struct {
	Kind  string `json:"kind"`
	Count int64  `json:"count"`
}

// ServiceCount is how many attacks landed on a service.
type ServiceCount struct {
	Service string `json:"service"`
	Count   int64  `json:"count"`
}

// ActorSummary is one of the top actors.
type ActorSummary struct {
	Actor     store.Actor      `json:"actor"`
	Attacks   int64            `json:"attacks"`
	Events    int64            `json:"events"`
	Last      time.Time        `json:"last"`
	Decisions []store.Decision `json:"decisions"` // active ones that apply to it
}

// DecisionStats counts the active decisions.
type DecisionStats struct {
	Active    int            `json:"active"`    // enforced: not simulated, not expired
	Simulated int            `json:"simulated"` // not expired
	ByAction  map[string]int `json:"by_action"` // of the active ones
	ByOrigin  map[string]int `json:"by_origin"` // of the active ones
}

// ServiceStatus is a service with its exposure and the attacks on it.
type ServiceStatus struct {
	Name            string    `json:"name"`
	Exposed         bool      `json:"exposed"`        // an instance reports traffic from the edge
	EdgeReachable   bool      `json:"edge_reachable"` // the policy lets the edge reach it, directly or through others
	Instances       int       `json:"instances"`
	LiveInstances   int       `json:"live_instances"`
	SensitiveRoutes int       `json:"sensitive_routes"` // patterns the policy marks sensitive
	Attacks         int64     `json:"attacks"`
	LastAttack      time.Time `json:"last_attack,omitzero"`
	Revoked         bool      `json:"revoked,omitempty"`
}

// RecentChanges is what changed in the hour before the overview's Until.
type RecentChanges struct {
	Since            time.Time             `json:"since"`
	DecisionsCreated []store.Decision      `json:"decisions_created"`
	DecisionsLifted  []LiftedDecision      `json:"decisions_lifted"`
	DecisionsExpired []store.Decision      `json:"decisions_expired"`
	PolicyVersions   []store.PolicyVersion `json:"policy_versions"`
	ServicesNew      []store.Service       `json:"services_new"`
	InstancesNew     []InstanceSeen        `json:"instances_new"`
}

// LiftedDecision is a decision deleted before it expired: by a person, or
// by detection lifting what it decided. The store keeps only its id.
type LiftedDecision struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
}

// InstanceSeen is an instance first seen recently.
type InstanceSeen struct {
	Service   string    `json:"service"`
	ID        string    `json:"id"`
	Version   string    `json:"version,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
}

// Overview computes the dashboard's overview: every count is made by the
// store (GROUP BY), never by loading the events.
func (h *Handler) Overview(ctx context.Context, q OverviewQuery) (Overview, error) {
	if q.Buckets == 0 {
		q.Buckets = DefaultBuckets
	}
	if q.Top == 0 {
		q.Top = DefaultTop
	}
	switch {
	case q.Since.IsZero() || q.Until.IsZero() || !q.Since.Before(q.Until):
		return Overview{}, badRequest("since", "since must be before until")
	case q.Until.Sub(q.Since) > MaxOverviewRange:
		return Overview{}, badRequest("range", "a range of at most "+MaxOverviewRange.String())
	case q.Buckets < 1 || q.Buckets > MaxBuckets:
		return Overview{}, badRequest("buckets", "buckets must be from 1 to 500")
	case q.Top < 1 || q.Top > MaxTop:
		return Overview{}, badRequest("top", "top must be from 1 to 100")
	}
	since, until := q.Since.UTC(), q.Until.UTC()
	span := until.Sub(since)
	bucket := max(time.Second, (span+time.Duration(q.Buckets)-1)/time.Duration(q.Buckets)).Round(time.Second)
	for (span+bucket-1)/bucket > time.Duration(q.Buckets) { // rounding down made one too many
		bucket += time.Second
	}
	o := Overview{Since: since, Until: until, BucketSeconds: bucket.Seconds()}
	st := h.cfg.Store
	window := store.EventFilter{Since: since, Until: until}
	attacks := store.EventFilter{Since: since, Until: until, Attacks: true}

	// The timeline, every bucket present.
	counts, err := st.CountEvents(ctx, store.EventCountQuery{Filter: attacks,
		By: []store.EventDimension{store.ByBucket, store.ByKind}, Bucket: bucket})
	if err != nil {
		return Overview{}, err
	}
	n := int((span + bucket - 1) / bucket)
	o.Timeline = make([]TimeBucket, n)
	for i := range o.Timeline {
		o.Timeline[i] = TimeBucket{Start: since.Add(time.Duration(i) * bucket), ByKind: map[string]int64{}}
	}
	for _, c := range counts {
		i := int(c.Bucket.Sub(since) / bucket)
		if i >= 0 && i < n {
			o.Timeline[i].Total += c.Count
			o.Timeline[i].ByKind[c.Kind] += c.Count
		}
	}

	counts, err = st.CountEvents(ctx, store.EventCountQuery{Filter: attacks, By: []store.EventDimension{store.ByKind}, Limit: maxListed})
	if err != nil {
		return Overview{}, err
	}
	o.ByKind = []KindCount{}
	for _, c := range counts {
		o.ByKind = append(o.ByKind, KindCount{Kind: c.Kind, Count: c.Count})
	}
	attacksByService, err := st.CountEvents(ctx, store.EventCountQuery{Filter: attacks, By: []store.EventDimension{store.ByService}})
	if err != nil {
		return Overview{}, err
	}
	o.ByService = []ServiceCount{}
	for _, c := range attacksByService[:min(len(attacksByService), maxListed)] {
		o.ByService = append(o.ByService, ServiceCount{Service: c.Service, Count: c.Count})
	}
	counts, err = st.CountEvents(ctx, store.EventCountQuery{Filter: window})
	if err != nil {
		return Overview{}, err
	}
	if len(counts) == 1 {
		o.EventsTotal, o.AttacksTotal = counts[0].Count, counts[0].Attacks
	}

	all, err := st.ListDecisions(ctx, true)
	if err != nil {
		return Overview{}, err
	}
	now := h.cfg.Now()
	var active []store.Decision
	o.Decisions = DecisionStats{ByAction: map[string]int{}, ByOrigin: map[string]int{}}
	for _, d := range all {
		switch {
		case d.Expired(now):
		case d.Simulated:
			o.Decisions.Simulated++
		default:
			active = append(active, d)
			o.Decisions.Active++
			o.Decisions.ByAction[string(d.Action)]++
			o.Decisions.ByOrigin[d.Origin]++
		}
	}

	if o.TopActors, err = h.topActors(ctx, window, q.Top, active); err != nil {
		return Overview{}, err
	}
	if o.Services, err = h.serviceStatus(ctx, attacksByService); err != nil {
		return Overview{}, err
	}
	if o.Changes, err = h.recentChanges(ctx, until.Add(-time.Hour), all); err != nil {
		return Overview{}, err
	}
	return o, nil
}

// topActors ranks the addresses and users of the window by their attacks,
// then their events.
func (h *Handler) topActors(ctx context.Context, window store.EventFilter, top int, active []store.Decision) ([]ActorSummary, error) {
	var out []ActorSummary
	for _, dim := range []store.EventDimension{store.ByActorIP, store.ByActorUser} {
		// One more than asked: the group of the events without one.
		counts, err := h.cfg.Store.CountEvents(ctx, store.EventCountQuery{Filter: window,
			By: []store.EventDimension{dim}, ByAttacks: true, Limit: top + 1})
		if err != nil {
			return nil, err
		}
		for _, c := range counts {
			a := store.Actor{Scope: store.ScopeIP, Value: c.ActorIP}
			if dim == store.ByActorUser {
				a = store.Actor{Scope: store.ScopeUser, Value: c.ActorUser}
			}
			if a.Value == "" {
				continue
			}
			out = append(out, ActorSummary{Actor: a, Attacks: c.Attacks, Events: c.Count, Last: c.Last})
		}
	}
	slices.SortStableFunc(out, func(a, b ActorSummary) int {
		return cmp.Or(cmp.Compare(b.Attacks, a.Attacks), cmp.Compare(b.Events, a.Events), b.Last.Compare(a.Last))
	})
	out = out[:min(len(out), top)]
	for i := range out {
		out[i].Decisions = []store.Decision{}
		for _, d := range active {
			if out[i].Actor.Covers(d) {
				out[i].Decisions = append(out[i].Decisions, d)
			}
		}
	}
	if out == nil {
		out = []ActorSummary{}
	}
	return out, nil
}

// currentPolicy returns the latest policy parsed, and the edge services
// it means; nil if there is none.
func (h *Handler) currentPolicy(ctx context.Context) (*policy.Policy, []string, error) {
	pol, edge, _, err := h.policyAndEdge(ctx)
	return pol, edge, err
}

// edgeReach returns the services the edge reaches by the policy.
func edgeReach(pol *policy.Policy, edge []string) map[string]bool {
	out := map[string]bool{}
	for _, e := range edge {
		for _, s := range pol.Reach(e) {
			if !slices.Contains(edge, s) {
				out[s] = true
			}
		}
	}
	return out
}

// sensitiveRoutes lists the route patterns the policy marks sensitive on
// service, as "METHOD /path" ("* /path" for every method).
func sensitiveRoutes(pol *policy.Policy, service string) []string {
	out := []string{}
	if pol == nil {
		return out
	}
	for _, r := range pol.Services[service].Sensitive {
		out = append(out, routePatterns(r)...)
	}
	return out
}

// routePatterns spells out a policy's routes: each method with each path.
func routePatterns(r policy.Routes) []string {
	methods, paths := r.Methods, r.Paths
	if len(methods) == 0 {
		methods = []string{"*"}
	}
	if len(paths) == 0 {
		paths = []string{"/*"}
	}
	var out []string
	for _, m := range methods {
		for _, p := range paths {
			out = append(out, m+" "+p)
		}
	}
	return out
}

func (h *Handler) serviceStatus(ctx context.Context, attacks []store.EventCount) ([]ServiceStatus, error) {
	svcs, err := h.cfg.Store.Services(ctx, store.ServiceFilter{})
	if err != nil {
		return nil, err
	}
	live, err := h.cfg.Store.LiveInstances(ctx, h.cfg.Now().Add(-h.cfg.StaleAfter))
	if err != nil {
		return nil, err
	}
	pol, edge, err := h.currentPolicy(ctx)
	if err != nil {
		return nil, err
	}
	reach := edgeReach(pol, edge)
	byName := map[string]store.EventCount{}
	for _, c := range attacks {
		byName[c.Service] = c
	}
	out := make([]ServiceStatus, 0, len(svcs))
	seen := map[string]bool{}
	for _, s := range svcs {
		c := byName[s.Name]
		seen[s.Name] = true
		out = append(out, ServiceStatus{Name: s.Name, Exposed: s.Exposed, EdgeReachable: reach[s.Name],
			Instances: s.Instances, LiveInstances: live[s.Name], SensitiveRoutes: len(sensitiveRoutes(pol, s.Name)),
			Attacks: c.Count, LastAttack: c.Last, Revoked: !s.Revoked.IsZero()})
	}
	// Events name services the inventory may not know (a gateway without
	// an agent, a service that never heartbeated): they are shown too.
	for _, c := range attacks {
		if !seen[c.Service] {
			out = append(out, ServiceStatus{Name: c.Service, EdgeReachable: reach[c.Service],
				SensitiveRoutes: len(sensitiveRoutes(pol, c.Service)), Attacks: c.Count, LastAttack: c.Last})
		}
	}
	slices.SortFunc(out, func(a, b ServiceStatus) int {
		return cmp.Or(cmp.Compare(b.Attacks, a.Attacks), strings.Compare(a.Name, b.Name))
	})
	return out, nil
}

func (h *Handler) recentChanges(ctx context.Context, since time.Time, decisions []store.Decision) (RecentChanges, error) {
	act, err := h.cfg.Store.Activity(ctx, since)
	if err != nil {
		return RecentChanges{}, err
	}
	rc := RecentChanges{Since: act.Since, DecisionsCreated: []store.Decision{}, DecisionsLifted: []LiftedDecision{},
		DecisionsExpired: []store.Decision{}, PolicyVersions: []store.PolicyVersion{}, ServicesNew: act.Services,
		InstancesNew: []InstanceSeen{}}
	byID := map[string]store.Decision{}
	now := h.cfg.Now()
	for _, d := range decisions {
		byID[d.ID] = d
		if !d.Expires.IsZero() && !d.Expires.Before(since) && !d.Expires.After(now) && len(rc.DecisionsExpired) < maxListed {
			rc.DecisionsExpired = append(rc.DecisionsExpired, d)
		}
	}
	policyChanged := false
	for _, c := range act.Changes {
		switch {
		case c.Kind == store.ChangeDecision && c.Op == store.OpCreate:
			if d, ok := byID[c.Key]; ok && len(rc.DecisionsCreated) < maxListed {
				rc.DecisionsCreated = append(rc.DecisionsCreated, d)
			}
		case c.Kind == store.ChangeDecision && c.Op == store.OpDelete:
			if len(rc.DecisionsLifted) < maxListed {
				rc.DecisionsLifted = append(rc.DecisionsLifted, LiftedDecision{ID: c.Key, Time: c.Time})
			}
		case c.Kind == store.ChangePolicy:
			policyChanged = true
		}
	}
	// Simulated decisions are no change (watchers never see them): they
	// are found by their creation time.
	for _, d := range decisions {
		if d.Simulated && !d.Created.Before(since) && len(rc.DecisionsCreated) < maxListed {
			rc.DecisionsCreated = append(rc.DecisionsCreated, d)
		}
	}
	slices.SortStableFunc(rc.DecisionsCreated, func(a, b store.Decision) int { return b.Created.Compare(a.Created) })
	if policyChanged {
		vs, err := h.cfg.Store.PolicyVersions(ctx, 0, maxListed)
		if err != nil {
			return RecentChanges{}, err
		}
		for _, v := range vs {
			if !v.Created.Before(since) {
				rc.PolicyVersions = append(rc.PolicyVersions, v)
			}
		}
	}
	for _, in := range act.Instances[:min(len(act.Instances), maxListed)] {
		rc.InstancesNew = append(rc.InstancesNew, InstanceSeen{Service: in.Service, ID: in.ID, Version: in.Version, FirstSeen: in.FirstSeen})
	}
	if len(rc.ServicesNew) > maxListed {
		rc.ServicesNew = rc.ServicesNew[:maxListed]
	}
	return rc, nil
}

func (h *Handler) getOverview(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := checkQuery(q, "range", "since", "until", "buckets", "top"); err != nil {
		return err
	}
	since, until, err := rangeParam(q, h.cfg.Now(), DefaultOverviewRange, MaxOverviewRange)
	if err != nil {
		return err
	}
	buckets, err := intParam(q, "buckets", DefaultBuckets, 1, MaxBuckets)
	if err != nil {
		return err
	}
	top, err := intParam(q, "top", DefaultTop, 1, MaxTop)
	if err != nil {
		return err
	}
	o, err := h.Overview(r.Context(), OverviewQuery{Since: since, Until: until, Buckets: buckets, Top: top})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, o)
	return nil
}

// EventDetail is the response to GET /v1/events/{id}.
type EventDetail struct {
	Event store.Event `json:"event"`
	// Actor is the actor the event names: its address, else its user,
	// else its session; absent if none.
	Actor     *store.Actor  `json:"actor,omitempty"`
	SameTrace []store.Event `json:"same_trace"` // oldest first
	SameActor []store.Event `json:"same_actor"` // nearest in time, oldest first
}

// EventDetail returns one event with at most related events of its trace
// and related of its actor; store.ErrNotFound if there is no such event.
func (h *Handler) EventDetail(ctx context.Context, id string, related int) (EventDetail, error) {
	if err := store.ValidateID("id", id); err != nil {
		return EventDetail{}, err
	}
	if related < 0 || related > MaxRelated {
		return EventDetail{}, badRequest("related", "related must be from 0 to 100")
	}
	evs, err := h.cfg.Store.EventsByID(ctx, []string{id})
	if err != nil {
		return EventDetail{}, err
	}
	if len(evs) == 0 {
		return EventDetail{}, store.ErrNotFound
	}
	e := evs[0]
	d := EventDetail{Event: e, SameTrace: []store.Event{}, SameActor: []store.Event{}}
	if related == 0 {
		return d, nil
	}
	if e.TraceID != "" {
		// The trace's events, oldest first; a trace of many events gives
		// those nearest the start.
		trace, err := h.cfg.Store.QueryEvents(ctx, store.EventFilter{TraceID: e.TraceID, Limit: related + 1})
		if err != nil {
			return EventDetail{}, err
		}
		for _, t := range trace {
			if t.ID != e.ID && len(d.SameTrace) < related {
				d.SameTrace = append(d.SameTrace, t)
			}
		}
	}
	var a *store.Actor
	switch {
	case e.ActorIP != "":
		a = &store.Actor{Scope: store.ScopeIP, Value: e.ActorIP}
	case e.ActorUser != "":
		a = &store.Actor{Scope: store.ScopeUser, Value: e.ActorUser}
	case e.SessionHash != "":
		a = &store.Actor{Scope: store.ScopeSession, Value: e.SessionHash}
	}
	if a == nil {
		return d, nil
	}
	d.Actor = a
	at := e.Cursor()
	f := a.Filter()
	f.After, f.Reverse, f.Limit = &at, true, max(1, related/2)
	before, err := h.cfg.Store.QueryEvents(ctx, f)
	if err != nil {
		return EventDetail{}, err
	}
	f.Reverse, f.Limit = false, related-len(before)
	after, err := h.cfg.Store.QueryEvents(ctx, f)
	if err != nil {
		return EventDetail{}, err
	}
	slices.Reverse(before)
	d.SameActor = append(append(d.SameActor, before...), after...)
	return d, nil
}

func (h *Handler) getEvent(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := checkQuery(q, "related"); err != nil {
		return err
	}
	related, err := intParam(q, "related", DefaultRelated, 0, MaxRelated)
	if err != nil {
		return err
	}
	d, err := h.EventDetail(r.Context(), r.PathValue("id"), related)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// TimelineQuery says which part of an actor's timeline ActorTimeline
// returns.
type TimelineQuery struct {
	Actor        store.Actor
	Since, Until time.Time     // zero: no bound
	After        *store.Cursor // continue after it (newest first)
	Limit        int           // 0 means DefaultTimelineLimit
}

// Timeline is the response to GET /v1/actors/timeline.
type Timeline struct {
	Actor store.Actor    `json:"actor"`
	Items []TimelineItem `json:"items"` // newest first
	Next  string         `json:"next,omitempty"`
}

// TimelineItem is one thing in an actor's timeline: an event it caused, a
// decision about it, or an alert about it.
type TimelineItem struct {
	Type        string          `json:"type"` // "event", "decision" or "alert"
	Time        time.Time       `json:"time"`
	Event       *store.Event    `json:"event,omitempty"`
	Decision    *store.Decision `json:"decision,omitempty"`
	Active      bool            `json:"active,omitempty"` // a decision not expired (nor simulated)
	Enforcement *Enforcement    `json:"enforcement,omitempty"`
	Alert       *store.Alert    `json:"alert,omitempty"`

	key string // the second part of its place in the order
}

// Enforcement is what the control plane knows of a decision's
// enforcement: the revision of the watch that carried it to gateways and
// services (0: simulated, never sent), and the first request each service
// refused under it, from their decision_enforced and read_only_write
// events. The control plane does not record when each watcher read the
// revision.
type Enforcement struct {
	Revision      int64     `json:"revision"`
	FirstRefusals []Refusal `json:"first_refusals"`
}

// Refusal is the first request a service refused under a decision.
type Refusal struct {
	Service string    `json:"service"`
	Time    time.Time `json:"time"`
	EventID string    `json:"event_id"`
}

// maxRefusals bounds Enforcement.FirstRefusals, and refusalScan the
// events read to find them.
const (
	maxRefusals = 10
	refusalScan = 1000
)

// ActorTimeline returns a page of actor a's timeline, newest first.
func (h *Handler) ActorTimeline(ctx context.Context, q TimelineQuery) (Timeline, error) {
	a, err := store.ValidateActor(q.Actor)
	if err != nil {
		return Timeline{}, err
	}
	if q.Limit == 0 {
		q.Limit = DefaultTimelineLimit
	}
	if q.Limit < 0 || q.Limit > MaxTimelineLimit {
		return Timeline{}, badRequest("limit", "limit must be from 1 to 200")
	}
	f := a.Filter()
	f.Since, f.Until, f.After, f.Reverse, f.Limit = q.Since, q.Until, q.After, true, q.Limit
	evs, err := h.cfg.Store.QueryEvents(ctx, f)
	if err != nil {
		return Timeline{}, err
	}
	var items []TimelineItem
	for i := range evs {
		items = append(items, TimelineItem{Type: "event", Time: evs[i].Time, Event: &evs[i], key: evs[i].ID})
	}
	ds, err := h.cfg.Store.ActorDecisions(ctx, a)
	if err != nil {
		return Timeline{}, err
	}
	now := h.cfg.Now()
	var alertIDs []string
	for i := range ds {
		d := &ds[i]
		items = append(items, TimelineItem{Type: "decision", Time: d.Created, Decision: d,
			Active: !d.Expired(now) && !d.Simulated, key: "decision:" + d.ID})
		if d.AlertID != "" && !slices.Contains(alertIDs, d.AlertID) && len(alertIDs) < store.MaxQueryLimit {
			alertIDs = append(alertIDs, d.AlertID)
		}
	}
	as, err := h.cfg.Store.AlertsByKey(ctx, a.Value, alertIDs)
	if err != nil {
		return Timeline{}, err
	}
	for i := range as {
		items = append(items, TimelineItem{Type: "alert", Time: as[i].Created, Alert: &as[i], key: "alert:" + as[i].ID})
	}
	// Keep what falls in the page: after the cursor, within the range.
	items = slices.DeleteFunc(items, func(it TimelineItem) bool {
		if it.Type == "event" {
			return false // the store chose them
		}
		if q.After != nil && cmp.Or(it.Time.Compare(q.After.Time), strings.Compare(it.key, q.After.ID)) >= 0 {
			return true
		}
		return !q.Since.IsZero() && it.Time.Before(q.Since) || !q.Until.IsZero() && !it.Time.Before(q.Until)
	})
	slices.SortFunc(items, func(x, y TimelineItem) int {
		return cmp.Or(y.Time.Compare(x.Time), strings.Compare(y.key, x.key))
	})
	t := Timeline{Actor: a, Items: items[:min(len(items), q.Limit)]}
	if len(items) >= q.Limit && q.Limit > 0 && (len(items) > q.Limit || len(evs) == q.Limit) {
		last := t.Items[len(t.Items)-1]
		t.Next = store.Cursor{Time: last.Time, ID: last.key}.String()
	}
	for i := range t.Items {
		if t.Items[i].Type == "decision" {
			if t.Items[i].Enforcement, err = h.enforcement(ctx, a, *t.Items[i].Decision); err != nil {
				return Timeline{}, err
			}
		}
	}
	if t.Items == nil {
		t.Items = []TimelineItem{}
	}
	return t, nil
}

// enforcement finds the first refusal per service under decision d among
// the first refusalScan refusals of actor a after d was made.
func (h *Handler) enforcement(ctx context.Context, a store.Actor, d store.Decision) (*Enforcement, error) {
	e := &Enforcement{Revision: d.Revision, FirstRefusals: []Refusal{}}
	if d.Simulated {
		return e, nil
	}
	f := a.Filter()
	f.Kinds, f.Since, f.Limit = []string{"decision_enforced", "read_only_write"}, d.Created, refusalScan
	evs, err := h.cfg.Store.QueryEvents(ctx, f)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, ev := range evs {
		var data struct {
			Decision string `json:"decision"`
		}
		if json.Unmarshal(ev.Data, &data) != nil || data.Decision != d.ID || seen[ev.Service] {
			continue
		}
		seen[ev.Service] = true
		e.FirstRefusals = append(e.FirstRefusals, Refusal{Service: ev.Service, Time: ev.Time, EventID: ev.ID})
		if len(e.FirstRefusals) == maxRefusals {
			break
		}
	}
	return e, nil
}

func (h *Handler) getTimeline(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := checkQuery(q, "actor", "since", "until", "cursor", "limit"); err != nil {
		return err
	}
	if q.Get("actor") == "" {
		return badRequest("actor", "actor is missing: ip:ADDRESS, cidr:NETWORK, user:ID or session:HASH")
	}
	a, err := store.ParseActor(q.Get("actor"))
	if err != nil {
		return err
	}
	tq := TimelineQuery{Actor: a}
	now := h.cfg.Now()
	if tq.Since, err = timeParam(q, "since", now); err != nil {
		return err
	}
	if tq.Until, err = timeParam(q, "until", now); err != nil {
		return err
	}
	if s := q.Get("cursor"); s != "" {
		c, err := store.ParseCursor(s)
		if err != nil {
			return err
		}
		tq.After = &c
	}
	if tq.Limit, err = intParam(q, "limit", DefaultTimelineLimit, 1, MaxTimelineLimit); err != nil {
		return err
	}
	t, err := h.ActorTimeline(r.Context(), tq)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

// routeDashboard registers the dashboard's endpoints.
func (h *Handler) routeDashboard(admin func(func(http.ResponseWriter, *http.Request) error) http.Handler) {
	h.mux.Handle("GET /v1/events/{id}", admin(h.getEvent))
	h.mux.Handle("GET /v1/stats/overview", admin(h.getOverview))
	h.mux.Handle("GET /v1/actors/timeline", admin(h.getTimeline))
	h.mux.Handle("GET /v1/graph", admin(h.getGraph))
	h.mux.Handle("GET /v1/services/{name}", admin(h.getServiceInventory))
	h.mux.Handle("GET /v1/policy/versions", admin(h.getPolicyVersions))
	h.mux.Handle("GET /v1/policy/diff", admin(h.getPolicyDiff))
	h.mux.Handle("POST /v1/policy/dryrun", admin(h.postPolicyDryRun))
}

// ErrorResponse returns the status and the JSON body (without a request
// id) the API answers err with: how package web reports an error of the
// dashboard's methods the way the API does.
func ErrorResponse(err error) (int, ErrorBody) {
	ae := classify(err)
	return ae.status, ErrorBody{Error: ae.msg, Code: ae.code, Field: ae.field, Line: ae.line}
}
