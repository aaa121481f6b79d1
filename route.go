package rampart

import (
	"context"
	"strings"
)

// A Route is what a router matched for a request: its template, as the
// router writes it ("/users/:name" for gin and echo, "/users/{name}" for
// chi), and its path parameters in the router's order.
type Route struct {
	Template string
	Params   []PathParam
}

// PathParam is one path parameter of a [Route]: name "name" and the value
// the router extracted for it.
type PathParam struct {
	Name, Value string
}

// SetRoute tells the [Agent.Handler] serving the request of ctx which route
// a router matched, for routers other than net/http's ServeMux (whose
// pattern the Handler reads itself). The adapters of the contrib modules
// (gin, echo, chi) call it; code for another router can too.
//
// route is called when the route is first needed (the first guarded call
// parses the request's inputs, an event names the route, the request ends
// and the route joins the inventory), so a router that matches after the
// middleware has run (chi's r.Use) can hand over a function that reads its
// routing state. An adapter whose router reuses that state after the
// request should call SetRoute again with the resolved route as its
// handler returns. Each parameter is an input of source [SourcePath], in
// the order of Params, and so is each segment of a value that holds a
// slash (a catch-all). The Template replaces the ServeMux pattern in
// events, request summaries and the inventory.
//
// SetRoute reports whether ctx belongs to a request that a Handler serves;
// when it does not, an adapter serves the request through its own
// Handler. Call it before the handler makes guarded calls: the inputs of a
// request are parsed once, at its first guarded call.
func SetRoute(ctx context.Context, route func() Route) bool {
	req := requestFor(ctx)
	if req == nil || route == nil {
		return false
	}
	req.routeFn.Store(&route)
	return true
}

// routeOf returns the route a router reported with SetRoute, if any.
func (q *request) routeOf() (Route, bool) {
	fn := q.routeFn.Load()
	if fn == nil {
		return Route{}, false
	}
	// No template: the router matched nothing (a 404), and the request
	// is read as one without a route.
	rt := (*fn)()
	return rt, rt.Template != ""
}

// route records a router's path parameters (see SetRoute).
func (c *collector) route(rt Route) bool {
	for _, p := range rt.Params {
		if !c.add(SourcePath, p.Name, p.Value, 0) {
			return false
		}
		if strings.IndexByte(p.Value, '/') < 0 {
			continue
		}
		for seg := range strings.SplitSeq(p.Value, "/") {
			if !c.add(SourcePath, p.Name, seg, 0) {
				return false
			}
		}
	}
	return true
}
