package web

import (
	"context"
	"slices"
	"time"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
)

// ControlData is the Data of a control plane: the store's filters pushed
// down whole, and the aggregates the database computes (control.Handler's
// Overview, EventDetail and Graph) instead of reading events.
func ControlData(api *control.Handler, st store.Store) Data { return &controlData{api: api, st: st} }

type controlData struct {
	api *control.Handler
	st  store.Store
}

func (d *controlData) SearchEvents(ctx context.Context, q EventQuery) (EventPage, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	f := store.EventFilter{Kind: q.Kind, Service: q.Service, Action: q.Action, Attacks: q.AttacksOnly, ActorIP: q.ActorIP,
		ActorCIDR: q.ActorCIDR, ActorUser: q.ActorUser, SessionHash: q.Session, TraceID: q.TraceID, Since: q.Since, Until: q.Until,
		After: q.After, Reverse: true, Limit: limit + 1}
	evs, err := d.st.QueryEvents(ctx, f)
	if err != nil {
		return EventPage{}, err
	}
	page := EventPage{Events: evs, Scanned: len(evs)}
	if len(evs) > limit {
		page.Events = evs[:limit]
		c := evs[limit-1].Cursor()
		page.Next = &c
	}
	return page, nil
}

func (d *controlData) Event(ctx context.Context, id string) (store.Event, error) {
	if id == "" || len(id) > 200 {
		return store.Event{}, store.ErrNotFound
	}
	det, err := d.api.EventDetail(ctx, id, 0)
	return det.Event, err
}

func (d *controlData) Related(ctx context.Context, ev store.Event, limit int) (trace, actor []store.Event, err error) {
	det, err := d.api.EventDetail(ctx, ev.ID, limit)
	if err != nil {
		return nil, nil, err
	}
	trace, actor = slices.Clone(det.SameTrace), slices.Clone(det.SameActor)
	slices.Reverse(trace) // newest first
	slices.Reverse(actor)
	return trace, actor, nil
}

func (d *controlData) Overview(ctx context.Context, since, until time.Time, n int) (Overview, error) {
	o, err := d.api.Overview(ctx, control.OverviewQuery{Since: since, Until: until, Buckets: n, Top: 10})
	if err != nil {
		return Overview{}, err
	}
	ov := Overview{Since: o.Since, Until: o.Until, Attacks: int(o.AttacksTotal)}
	step := time.Duration(o.BucketSeconds * float64(time.Second))
	// Blocked and monitored per bucket: one grouped count in the database.
	counts, err := d.st.CountEvents(ctx, store.EventCountQuery{
		Filter: store.EventFilter{Since: o.Since, Until: o.Until, Attacks: true},
		By:     []store.EventDimension{store.ByBucket, store.ByAction}, Bucket: step})
	if err != nil {
		return Overview{}, err
	}
	index := map[time.Time]int{}
	for i, b := range o.Timeline {
		ov.Buckets = append(ov.Buckets, Bucket{Start: b.Start, End: b.Start.Add(step)})
		index[b.Start.UTC()] = i
	}
	for _, c := range counts {
		i, ok := index[c.Bucket.UTC()]
		if !ok {
			continue
		}
		if c.Action == "blocked" || c.Action == "refused" {
			ov.Buckets[i].Blocked += int(c.Count)
			ov.Blocked += int(c.Count)
		} else {
			ov.Buckets[i].Monitored += int(c.Count)
		}
	}
	for _, k := range o.ByKind[:min(10, len(o.ByKind))] {
		ov.ByKind = append(ov.ByKind, Count{k.Kind, int(k.Count)})
	}
	for _, s := range o.ByService[:min(10, len(o.ByService))] {
		ov.ByService = append(ov.ByService, Count{s.Service, int(s.Count)})
	}
	for _, a := range o.TopActors {
		if a.Actor.Scope == store.ScopeIP {
			ov.TopActors = append(ov.TopActors, Count{a.Actor.Value, int(a.Attacks)})
		}
	}
	for _, l := range o.Changes.DecisionsLifted {
		ov.Lifted = append(ov.Lifted, Lifted{ID: l.ID, Time: l.Time})
	}
	recent, err := d.st.QueryEvents(ctx, store.EventFilter{Since: since, Until: until, Attacks: true, Reverse: true, Limit: 15})
	if err != nil {
		return Overview{}, err
	}
	ov.Recent = recent
	return ov, nil
}

func (d *controlData) Graph(ctx context.Context, since time.Time) (Graph, error) {
	g, err := d.api.Graph(ctx, since, time.Now())
	if err != nil {
		return Graph{}, err
	}
	var out Graph
	edges := map[string]bool{}
	for _, n := range g.Nodes {
		out.Nodes = append(out.Nodes, GraphNode{Name: n.ID, Edge: n.Kind == control.NodeEdge, Exposed: n.Exposed,
			Instances: n.Instances, Attacks: int(n.Attacks), Revoked: n.Revoked, Sensitive: n.SensitiveRoutes})
		if n.Kind == control.NodeEdge {
			edges[n.ID] = true
			out.Edges = append(out.Edges, GraphEdge{From: Internet, To: n.ID, Allowed: true})
		}
	}
	for _, e := range g.Edges {
		out.Edges = append(out.Edges, GraphEdge{From: e.From, To: e.To, Allowed: e.Policy, Seen: e.Observed})
	}
	return out, nil
}
