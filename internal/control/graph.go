package control

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/store"
)

// The service graph: who may call whom (the policy), who was seen calling
// whom (the calls instances report receiving, and the peers they built
// clients for), which services face the edge, which routes are sensitive,
// and where the attacks landed.

// Node kinds of the service graph.
const (
	NodeService = "service"
	NodeEdge    = "edge" // a gateway: the services the policy's edge names, or the gateways served
)

// Edge sources: why the graph has an edge.
const (
	SourcePolicy = "policy" // an allow rule of the current policy names the caller
	SourceCalls  = "calls"  // the callee's instances reported calls from the caller (its SVID)
	SourcePeers  = "peers"  // the caller's instances built an mTLS client for the callee
)

// Graph is the response to GET /v1/graph.
type Graph struct {
	Since time.Time   `json:"since"` // attacks are counted from Since to Until
	Until time.Time   `json:"until"`
	Nodes []GraphNode `json:"nodes"` // by name
	Edges []GraphEdge `json:"edges"` // by (from, to)
	// PolicyVersion is the policy the graph's policy edges are from; 0
	// if there is none.
	PolicyVersion int64 `json:"policy_version"`
}

// GraphNode is a service of the graph.
type GraphNode struct {
	ID              string           `json:"id"` // the service name
	Kind            string           `json:"kind"`
	Exposed         bool             `json:"exposed"`        // an instance reports traffic from the edge
	EdgeReachable   bool             `json:"edge_reachable"` // the policy lets the edge reach it
	Instances       int              `json:"instances"`
	LiveInstances   int              `json:"live_instances"`
	SensitiveRoutes []string         `json:"sensitive_routes"`
	AnyCaller       []string         `json:"any_caller,omitempty"` // routes the policy opens to every service ("*")
	Attacks         int64            `json:"attacks"`
	AttacksByKind   map[string]int64 `json:"attacks_by_kind"`
	Revoked         bool             `json:"revoked,omitempty"`
}

// GraphEdge is a caller→callee relation.
type GraphEdge struct {
	From     string   `json:"from"`
	To       string   `json:"to"`
	Policy   bool     `json:"policy"`   // the policy allows it
	Observed bool     `json:"observed"` // calls or peers saw it
	Routes   []string `json:"routes"`   // "METHOD /path": the policy's ("*" every method), then the calls seen
	Sources  []string `json:"sources"`  // SourcePolicy, SourceCalls, SourcePeers
}

// maxGraphRoutes bounds the routes listed on one edge.
const maxGraphRoutes = 50

// Graph returns the service graph, its attacks counted from since to
// until.
func (h *Handler) Graph(ctx context.Context, since, until time.Time) (Graph, error) {
	if since.IsZero() || until.IsZero() || !since.Before(until) {
		return Graph{}, badRequest("since", "since must be before until")
	}
	g := Graph{Since: since.UTC(), Until: until.UTC()}
	svcs, err := h.cfg.Store.Services(ctx, store.ServiceFilter{})
	if err != nil {
		return Graph{}, err
	}
	live, err := h.cfg.Store.LiveInstances(ctx, h.cfg.Now().Add(-h.cfg.StaleAfter))
	if err != nil {
		return Graph{}, err
	}
	links, err := h.cfg.Store.InstanceLinks(ctx)
	if err != nil {
		return Graph{}, err
	}
	counts, err := h.cfg.Store.CountEvents(ctx, store.EventCountQuery{
		Filter: store.EventFilter{Since: since, Until: until, Attacks: true},
		By:     []store.EventDimension{store.ByService, store.ByKind}})
	if err != nil {
		return Graph{}, err
	}
	pol, edge, version, err := h.policyAndEdge(ctx)
	if err != nil {
		return Graph{}, err
	}
	g.PolicyVersion = version
	reach := edgeReach(pol, edge)

	nodes := map[string]*GraphNode{}
	node := func(name string) *GraphNode {
		n, ok := nodes[name]
		if !ok {
			n = &GraphNode{ID: name, Kind: NodeService, SensitiveRoutes: sensitiveRoutes(pol, name),
				AttacksByKind: map[string]int64{}, EdgeReachable: reach[name]}
			if slices.Contains(edge, name) {
				n.Kind = NodeEdge
			}
			nodes[name] = n
		}
		return n
	}
	for _, e := range edge {
		node(e)
	}
	for _, s := range svcs {
		n := node(s.Name)
		n.Exposed, n.Instances, n.LiveInstances, n.Revoked = s.Exposed, s.Instances, live[s.Name], !s.Revoked.IsZero()
	}
	for _, c := range counts {
		n := node(c.Service)
		n.Attacks += c.Count
		n.AttacksByKind[c.Kind] += c.Count
	}

	type pair struct{ from, to string }
	edges := map[pair]*GraphEdge{}
	link := func(from, to, source, route string) {
		if from == "" || to == "" {
			return
		}
		node(from)
		node(to)
		e, ok := edges[pair{from, to}]
		if !ok {
			e = &GraphEdge{From: from, To: to, Routes: []string{}, Sources: []string{}}
			edges[pair{from, to}] = e
		}
		if !slices.Contains(e.Sources, source) {
			e.Sources = append(e.Sources, source)
		}
		if source == SourcePolicy {
			e.Policy = true
		} else {
			e.Observed = true
		}
		if route != "" && len(e.Routes) < maxGraphRoutes && !slices.Contains(e.Routes, route) {
			e.Routes = append(e.Routes, route)
		}
	}
	if pol != nil {
		for name, sp := range pol.Services {
			for _, rule := range sp.Allow {
				routes := routePatterns(rule.Routes)
				for _, caller := range rule.Callers {
					for _, r := range routes {
						if caller == "*" {
							n := node(name)
							if !slices.Contains(n.AnyCaller, r) {
								n.AnyCaller = append(n.AnyCaller, r)
							}
							continue
						}
						link(caller, name, SourcePolicy, r)
					}
				}
			}
		}
	}
	td := h.cfg.CA.TrustDomain()
	for _, l := range links {
		for _, c := range l.Callers {
			caller, route, _ := strings.Cut(c, " ")
			link(caller, l.Service, SourceCalls, route)
		}
		for _, p := range l.Peers {
			if id, err := spiffeid.FromString(p); err == nil {
				if callee, err := ca.ServiceFromID(td, id); err == nil {
					link(l.Service, callee, SourcePeers, "")
				}
			}
		}
	}

	g.Nodes = make([]GraphNode, 0, len(nodes))
	for _, n := range nodes {
		g.Nodes = append(g.Nodes, *n)
	}
	slices.SortFunc(g.Nodes, func(a, b GraphNode) int { return strings.Compare(a.ID, b.ID) })
	g.Edges = make([]GraphEdge, 0, len(edges))
	for _, e := range edges {
		slices.Sort(e.Sources)
		g.Edges = append(g.Edges, *e)
	}
	slices.SortFunc(g.Edges, func(a, b GraphEdge) int {
		return cmp.Or(strings.Compare(a.From, b.From), strings.Compare(a.To, b.To))
	})
	return g, nil
}

// policyAndEdge is currentPolicy with the version.
func (h *Handler) policyAndEdge(ctx context.Context) (*policy.Policy, []string, int64, error) {
	p, err := h.cfg.Store.Policy(ctx, 0)
	if errors.Is(err, store.ErrNotFound) {
		return nil, h.gateways, 0, nil
	}
	if err != nil {
		return nil, nil, 0, err
	}
	pol, err := policy.Parse(p.YAML)
	if err != nil {
		return nil, nil, 0, err
	}
	edge := pol.Edge
	if edge == nil {
		edge = h.gateways
	}
	return pol, edge, p.Version, nil
}

func (h *Handler) getGraph(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := checkQuery(q, "range", "since", "until"); err != nil {
		return err
	}
	since, until, err := rangeParam(q, h.cfg.Now(), DefaultOverviewRange, MaxOverviewRange)
	if err != nil {
		return err
	}
	g, err := h.Graph(r.Context(), since, until)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, g)
	return nil
}

// ServiceInventory is the response to GET /v1/services/{name}: what the
// inventory knows of a service, its instances' reports gathered.
type ServiceInventory struct {
	Service    store.Service    `json:"service"`
	Instances  []InstanceView   `json:"instances"`
	Versions   []string         `json:"versions"`
	GoVersions []string         `json:"go_versions"`
	Modules    []ModuleVersions `json:"modules"`
	Routes     []string         `json:"routes"`
	DBDrivers  []string         `json:"db_drivers"`
	Peers      []string         `json:"peers"`
	// Callers and Callees are the services on the other end of the
	// service's edges in the graph (policy or observed).
	Callers         []string         `json:"callers"`
	Callees         []string         `json:"callees"`
	Calls           []string         `json:"calls"` // observed: "CALLER METHOD /pattern"
	SensitiveRoutes []string         `json:"sensitive_routes"`
	EdgeReachable   bool             `json:"edge_reachable"`
	AttacksByKind   map[string]int64 `json:"attacks_by_kind"`
	Since           time.Time        `json:"since"` // attacks are counted from Since to Until
	Until           time.Time        `json:"until"`
}

// ModuleVersions is a module and the versions of it the instances run.
type ModuleVersions struct {
	Path     string   `json:"path"`
	Versions []string `json:"versions"`
}

// ServiceInventory returns what the inventory knows of service name;
// store.ErrNotFound if it never heartbeated nor was revoked.
func (h *Handler) ServiceInventory(ctx context.Context, name string, since, until time.Time) (ServiceInventory, error) {
	if err := ca.ValidateServiceName(name); err != nil {
		return ServiceInventory{}, badRequest("name", err.Error())
	}
	svc, err := h.cfg.Store.Service(ctx, name)
	if err != nil {
		return ServiceInventory{}, err
	}
	ins, err := h.cfg.Store.Instances(ctx, store.InstanceFilter{Service: name})
	if err != nil {
		return ServiceInventory{}, err
	}
	threshold := h.cfg.Now().Add(-h.cfg.StaleAfter)
	inv := ServiceInventory{Service: svc, Instances: make([]InstanceView, 0, len(ins)), AttacksByKind: map[string]int64{},
		Since: since.UTC(), Until: until.UTC()}
	modules := map[string][]string{}
	var versions, goVersions, routes, drivers, peers, calls []string
	for _, in := range ins {
		inv.Instances = append(inv.Instances, InstanceView{Instance: in, Live: !in.LastSeen.Before(threshold)})
		versions, goVersions = append(versions, in.Version), append(goVersions, in.GoVersion)
		routes, drivers, peers = append(routes, in.Routes...), append(drivers, in.DBDrivers...), append(peers, in.Peers...)
		calls = append(calls, in.Callers...)
		for _, m := range in.Modules {
			modules[m.Path] = append(modules[m.Path], m.Version)
		}
	}
	inv.Versions, inv.GoVersions, inv.Routes = set(versions), set(goVersions), set(routes)
	inv.DBDrivers, inv.Peers, inv.Calls = set(drivers), set(peers), set(calls)
	inv.Modules = make([]ModuleVersions, 0, len(modules))
	for path, vs := range modules {
		inv.Modules = append(inv.Modules, ModuleVersions{Path: path, Versions: set(vs)})
	}
	slices.SortFunc(inv.Modules, func(a, b ModuleVersions) int { return strings.Compare(a.Path, b.Path) })

	g, err := h.Graph(ctx, since, until)
	if err != nil {
		return ServiceInventory{}, err
	}
	var callers, callees []string
	for _, e := range g.Edges {
		if e.To == name {
			callers = append(callers, e.From)
		}
		if e.From == name {
			callees = append(callees, e.To)
		}
	}
	inv.Callers, inv.Callees = set(callers), set(callees)
	for _, n := range g.Nodes {
		if n.ID == name {
			inv.SensitiveRoutes, inv.EdgeReachable, inv.AttacksByKind = n.SensitiveRoutes, n.EdgeReachable, n.AttacksByKind
		}
	}
	return inv, nil
}

// set returns the distinct non-empty strings of s, sorted.
func set(s []string) []string {
	out := slices.DeleteFunc(slices.Clone(s), func(v string) bool { return v == "" })
	slices.Sort(out)
	out = slices.Compact(out)
	if out == nil {
		out = []string{}
	}
	return out
}

func (h *Handler) getServiceInventory(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := checkQuery(q, "range", "since", "until"); err != nil {
		return err
	}
	since, until, err := rangeParam(q, h.cfg.Now(), DefaultOverviewRange, MaxOverviewRange)
	if err != nil {
		return err
	}
	inv, err := h.ServiceInventory(r.Context(), r.PathValue("name"), since, until)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, inv)
	return nil
}
