// Package rampartchi fits Rampart to the chi router
// (github.com/go-chi/chi/v5). Its middleware is installed either way chi
// allows, with one line, and records the same thing both ways:
//
//	r.Use(rampartchi.Middleware(agent))          // inside the router
//	http.ListenAndServe(addr, rampartchi.Middleware(agent)(r)) // around it
//
// It records the matched route's template (RoutePattern, "/users/{name}",
// mounted sub-routers included) and each of its path parameters (in the
// router's order) as the request's inputs, so that a guarded call refuses
// an injection through /users/{name} and its event names the parameter and
// the route. The route names the request in events, summaries and the
// service's inventory.
//
// chi routes after its r.Use middleware has run, so the middleware hands
// the agent a function that reads chi's routing context when the route is
// first needed; around the router, it gives chi the routing context to
// fill. The middleware serves the request through agent.Handler, unless a
// Handler already serves it (agent.Handler(r) around a router that uses
// the middleware): then it only reports the route to it. Wrapping a chi
// router in agent.Handler alone records every segment of the path as an
// input, but no route and no parameter names: use this middleware.
package rampartchi

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/rampartsec/rampart"
)

// Middleware returns middleware that protects a chi router with agent,
// installed with r.Use or around the router.
func Middleware(agent *rampart.Agent) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		var handler http.Handler
		serve := func(w http.ResponseWriter, r *http.Request) {
			rctx := chi.RouteContext(r.Context())
			if rctx == nil {
				// Around the router: chi fills the routing context it
				// finds in the request's context.
				rctx = chi.NewRouteContext()
				r = r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, rctx))
			}
			ctx := r.Context()
			if !rampart.SetRoute(ctx, func() rampart.Route { return routeOf(rctx) }) {
				handler.ServeHTTP(w, r) // no Handler serves the request yet
				return
			}
			next.ServeHTTP(w, r)
			// chi resets its pooled routing context once the request
			// returns, and code started by the handler may still report.
			rt := routeOf(rctx)
			rampart.SetRoute(ctx, func() rampart.Route { return rt })
		}
		handler = agent.Handler(http.HandlerFunc(serve))
		return http.HandlerFunc(serve)
	}
}

func routeOf(rctx *chi.Context) rampart.Route {
	rt := rampart.Route{Template: rctx.RoutePattern()}
	keys, values := rctx.URLParams.Keys, rctx.URLParams.Values
	for i, k := range keys {
		if i < len(values) && values[i] != "" {
			rt.Params = append(rt.Params, rampart.PathParam{Name: k, Value: values[i]})
		}
	}
	return rt
}
