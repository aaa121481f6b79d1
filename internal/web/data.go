package web

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/store"
)

// Data answers the pages' questions about the events and the mesh. The
// dashboard asks through it, never the store, so that a richer source
// (aggregates computed by the database, indexes) replaces the default one
// without touching the pages.
type Data interface {
	// SearchEvents returns a page of the events that match q, newest first.
	SearchEvents(ctx context.Context, q EventQuery) (EventPage, error)
	// Event returns one event; store.ErrNotFound if there is none.
	Event(ctx context.Context, id string) (store.Event, error)
	// Related returns events of the same trace and of the same actor as
	// ev, newest first, ev excluded.
	Related(ctx context.Context, ev store.Event, limit int) (trace, actor []store.Event, err error)
	// Overview sums up the events of [since, until) in n buckets.
	Overview(ctx context.Context, since, until time.Time, n int) (Overview, error)
	// Graph is the service graph: who may call whom, who was seen to,
	// and where the attacks since since landed.
	Graph(ctx context.Context, since time.Time) (Graph, error)
}

// EventQuery selects events. Zero fields match everything.
type EventQuery struct {
	Kind, Service, Action       string
	ActorIP, ActorUser, Session string
	ActorCIDR                   string // events whose actor IP is in it
	TraceID                     string
	Since, Until                time.Time
	AttacksOnly                 bool          // attacks only (see IsAttack)
	After                       *store.Cursor // continue after it (newest first)
	Limit                       int           // 0: 50
}

// EventPage is a page of events and where the next one starts (nil: none).
type EventPage struct {
	Events []store.Event
	Next   *store.Cursor
	// Scanned counts the events read to fill the page, when filters the
	// source cannot push down made it read more than it returned.
	Scanned int
}

// Overview sums up a window of events.
type Overview struct {
	Since, Until time.Time
	Buckets      []Bucket // oldest first
	Attacks      int      // events blocked or monitored
	Blocked      int
	ByKind       []Count // attacks by kind, most first
	ByService    []Count
	TopActors    []Count // attacks by actor IP
	Recent       []store.Event
	// Truncated: the window held more events than the source reads; the
	// figures are those of the newest ones.
	Truncated bool
	// Lifted are the decisions deleted in the last hour, when the source
	// knows (they are gone from the store).
	Lifted []Lifted
}

// Lifted is a decision lifted (deleted) and when.
type Lifted struct {
	ID   string
	Time time.Time
}

// Monitored counts the attacks that were not blocked.
func (o Overview) Monitored() int { return o.Attacks - o.Blocked }

// Bucket counts the attacks of a stretch of time.
type Bucket struct {
	Start, End         time.Time
	Blocked, Monitored int
}

// Count is a key and how many.
type Count struct {
	Key string
	N   int
}

// Graph is the service graph.
type Graph struct {
	Nodes []GraphNode
	Edges []GraphEdge
}

// GraphNode is a service, or the Internet.
type GraphNode struct {
	Name      string
	Edge      bool // faces external clients (a gateway)
	Exposed   bool // the inventory says edge traffic reaches it
	Instances int
	Attacks   int // attacks that landed on it
	Revoked   bool
	Sensitive []string // its sensitive routes, from the policy
}

// GraphEdge is a caller and a callee.
type GraphEdge struct {
	From, To string
	Allowed  bool // the policy lets From call To
	Seen     bool // the inventory or events saw From call To
}

// Internet is the node of external clients in a Graph.
const Internet = "internet"

// IsAttack reports whether an event counts as an attack: something was
// refused or would have been; only business events, request summaries
// and audit events are "observed".
func IsAttack(e store.Event) bool {
	return e.Action != "observed" && e.Kind != AuditKind
}

// StoreData is the Data of a store alone: filters the store has are
// pushed down; the rest (action, attacks only) and the aggregates are
// computed over the newest events of the window, at most maxScan of them.
func StoreData(st store.Store) Data { return &storeData{st: st} }

type storeData struct {
	st store.Store
}

// maxScan bounds the events one question reads.
const maxScan = 20000

func (d *storeData) SearchEvents(ctx context.Context, q EventQuery) (EventPage, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	f := store.EventFilter{Kind: q.Kind, Service: q.Service, Action: q.Action, Attacks: q.AttacksOnly, ActorIP: q.ActorIP,
		ActorCIDR: q.ActorCIDR, ActorUser: q.ActorUser, SessionHash: q.Session,
		TraceID: q.TraceID, Since: q.Since, Until: q.Until, After: q.After, Reverse: true, Limit: store.MaxQueryLimit}
	var page EventPage
	for page.Scanned < maxScan {
		batch, err := d.st.QueryEvents(ctx, f)
		if err != nil {
			return page, err
		}
		page.Scanned += len(batch)
		for i, e := range batch {
			if (q.Action != "" && e.Action != q.Action) || (q.AttacksOnly && !IsAttack(e)) {
				continue
			}
			if len(page.Events) == limit {
				c := batch[i-1].Cursor()
				page.Next = &c
				return page, nil
			}
			page.Events = append(page.Events, e)
		}
		if len(batch) < f.Limit {
			return page, nil
		}
		c := batch[len(batch)-1].Cursor()
		f.After = &c
	}
	if len(page.Events) > 0 {
		c := page.Events[len(page.Events)-1].Cursor()
		page.Next = &c
	}
	return page, nil
}

func (d *storeData) Event(ctx context.Context, id string) (store.Event, error) {
	if id == "" || len(id) > 200 {
		return store.Event{}, store.ErrNotFound
	}
	evs, err := d.st.EventsByID(ctx, []string{id})
	if err != nil {
		return store.Event{}, err
	}
	if len(evs) == 0 {
		return store.Event{}, store.ErrNotFound
	}
	return evs[0], nil
}

func (d *storeData) Related(ctx context.Context, ev store.Event, limit int) (trace, actor []store.Event, err error) {
	without := func(evs []store.Event) []store.Event {
		return slices.DeleteFunc(evs, func(e store.Event) bool { return e.ID == ev.ID })
	}
	if ev.TraceID != "" && strings.Trim(ev.TraceID, "0") != "" {
		if trace, err = d.st.QueryEvents(ctx, store.EventFilter{TraceID: ev.TraceID, Reverse: true, Limit: limit + 1}); err != nil {
			return nil, nil, err
		}
	}
	f := store.EventFilter{Reverse: true, Limit: limit + 1}
	switch {
	case ev.ActorIP != "":
		f.ActorIP = ev.ActorIP
	case ev.ActorUser != "":
		f.ActorUser = ev.ActorUser
	case ev.SessionHash != "":
		f.SessionHash = ev.SessionHash
	default:
		return without(trace), nil, nil
	}
	if actor, err = d.st.QueryEvents(ctx, f); err != nil {
		return nil, nil, err
	}
	trace, actor = without(trace), without(actor)
	return trace[:min(len(trace), limit)], actor[:min(len(actor), limit)], nil
}

func (d *storeData) Overview(ctx context.Context, since, until time.Time, n int) (Overview, error) {
	if n <= 0 || !since.Before(until) {
		return Overview{}, errors.New("web: overview: empty window")
	}
	ov := Overview{Since: since, Until: until, Buckets: make([]Bucket, n)}
	step := until.Sub(since) / time.Duration(n)
	for i := range ov.Buckets {
		ov.Buckets[i].Start = since.Add(time.Duration(i) * step)
		ov.Buckets[i].End = since.Add(time.Duration(i+1) * step)
	}
	kinds, services, actors := map[string]int{}, map[string]int{}, map[string]int{}
	f := store.EventFilter{Since: since, Until: until, Reverse: true, Limit: store.MaxQueryLimit}
	scanned := 0
	for {
		batch, err := d.st.QueryEvents(ctx, f)
		if err != nil {
			return ov, err
		}
		scanned += len(batch)
		for _, e := range batch {
			if !IsAttack(e) {
				continue
			}
			if len(ov.Recent) < 15 {
				ov.Recent = append(ov.Recent, e)
			}
			ov.Attacks++
			i := min(n-1, int(e.Time.Sub(since)/step))
			if e.Action == "blocked" || e.Action == "refused" {
				ov.Blocked++
				ov.Buckets[i].Blocked++
			} else {
				ov.Buckets[i].Monitored++
			}
			kinds[e.Kind]++
			services[e.Service]++
			if e.ActorIP != "" {
				actors[e.ActorIP]++
			}
		}
		if len(batch) < f.Limit {
			break
		}
		if scanned >= maxScan {
			ov.Truncated = true
			break
		}
		c := batch[len(batch)-1].Cursor()
		f.After = &c
	}
	ov.ByKind, ov.ByService, ov.TopActors = topCounts(kinds, 10), topCounts(services, 10), topCounts(actors, 10)
	return ov, nil
}

func topCounts(m map[string]int, n int) []Count {
	out := make([]Count, 0, len(m))
	for k, v := range m {
		out = append(out, Count{k, v})
	}
	slices.SortFunc(out, func(a, b Count) int {
		if c := cmp.Compare(b.N, a.N); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out[:min(n, len(out))]
}

func (d *storeData) Graph(ctx context.Context, since time.Time) (Graph, error) {
	services, err := d.st.Services(ctx, store.ServiceFilter{})
	if err != nil {
		return Graph{}, err
	}
	nodes := map[string]*GraphNode{}
	node := func(name string) *GraphNode {
		n, ok := nodes[name]
		if !ok {
			n = &GraphNode{Name: name}
			nodes[name] = n
		}
		return n
	}
	for _, s := range services {
		n := node(s.Name)
		n.Exposed, n.Instances, n.Revoked = s.Exposed, s.Instances, !s.Revoked.IsZero()
	}
	edges := map[[2]string]*GraphEdge{}
	edge := func(from, to string) *GraphEdge {
		e, ok := edges[[2]string{from, to}]
		if !ok {
			e = &GraphEdge{From: from, To: to}
			edges[[2]string{from, to}] = e
		}
		return e
	}
	edgeNames := policy.DefaultEdge
	if p, err := d.st.Policy(ctx, 0); err == nil {
		if pol, err := policy.Parse(p.YAML); err == nil {
			if pol.Edge != nil {
				edgeNames = pol.Edge
			}
			for name, sp := range pol.Services {
				n := node(name)
				for _, r := range sp.Sensitive {
					n.Sensitive = append(n.Sensitive, routesString(r))
				}
				for _, a := range sp.Allow {
					for _, c := range a.Callers {
						if c != "*" {
							edge(c, name).Allowed = true
						}
					}
				}
			}
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return Graph{}, err
	}
	for _, name := range edgeNames {
		n := node(name)
		n.Edge = true
		edge(Internet, name).Allowed = true
	}
	// Seen calls: the peers the agents report.
	instances, err := d.st.Instances(ctx, store.InstanceFilter{})
	if err != nil {
		return Graph{}, err
	}
	for _, in := range instances {
		for _, p := range in.Peers {
			if name, ok := serviceOfSPIFFE(p); ok {
				edge(in.Service, name).Seen = true
			}
		}
	}
	// And the callers named by recent events, with where attacks landed.
	f := store.EventFilter{Since: since, Reverse: true, Limit: store.MaxQueryLimit}
	for scanned := 0; scanned < maxScan; {
		batch, err := d.st.QueryEvents(ctx, f)
		if err != nil {
			return Graph{}, err
		}
		scanned += len(batch)
		for _, e := range batch {
			if e.Service == "" || e.Kind == AuditKind {
				continue
			}
			if IsAttack(e) {
				node(e.Service).Attacks++
			}
			var body struct {
				Caller string `json:"caller"`
			}
			if json.Unmarshal(e.Data, &body) == nil {
				if name, ok := serviceOfSPIFFE(body.Caller); ok && name != e.Service {
					edge(name, e.Service).Seen = true
				}
			}
		}
		if len(batch) < f.Limit {
			break
		}
		c := batch[len(batch)-1].Cursor()
		f.After = &c
	}
	var g Graph
	for _, e := range edges {
		for _, name := range []string{e.From, e.To} {
			if name != Internet {
				node(name)
			}
		}
		g.Edges = append(g.Edges, *e)
	}
	for _, n := range nodes {
		g.Nodes = append(g.Nodes, *n)
	}
	slices.SortFunc(g.Nodes, func(a, b GraphNode) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(g.Edges, func(a, b GraphEdge) int {
		return cmp.Or(strings.Compare(a.From, b.From), strings.Compare(a.To, b.To))
	})
	return g, nil
}

// serviceOfSPIFFE returns the service of a SPIFFE ID spiffe://td/svc/NAME.
func serviceOfSPIFFE(id string) (string, bool) {
	rest, ok := strings.CutPrefix(id, "spiffe://")
	if !ok {
		return "", false
	}
	_, path, ok := strings.Cut(rest, "/")
	if !ok {
		return "", false
	}
	name, ok := strings.CutPrefix(path, "svc/")
	return name, ok && name != "" && !strings.Contains(name, "/")
}

func routesString(r policy.Routes) string {
	m, p := "any method", "any path"
	if len(r.Methods) > 0 {
		m = strings.Join(r.Methods, ",")
	}
	if len(r.Paths) > 0 {
		p = strings.Join(r.Paths, ",")
	}
	return m + " " + p
}
