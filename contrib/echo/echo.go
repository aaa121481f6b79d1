// Package rampartecho fits Rampart to the echo router
// (github.com/labstack/echo/v4): installed with one line,
//
//	e.Use(rampartecho.Middleware(agent))
//
// it records the matched route's template (c.Path(), "/users/:name") and
// each of its path parameters (c.ParamNames, in the router's order) as the
// request's inputs, so that a guarded call refuses an injection through
// /users/:name and its event names the parameter and the route. The route
// names the request in events, summaries and the service's inventory.
//
// The middleware serves the request through agent.Handler, unless the echo
// server is already wrapped by one (agent.Handler(e)): then it only
// reports the route to it. Either way the inputs, the route and the 403 of
// a blocked call are the same. Use e.Use, which runs once echo has routed
// the request, not e.Pre, which runs before.
package rampartecho

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/rampartsec/rampart"
)

// Middleware returns echo middleware that protects every route of the
// server (or group) it is used on with agent.
func Middleware(agent *rampart.Agent) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			route := func() rampart.Route { return routeOf(c) }
			if rampart.SetRoute(c.Request().Context(), route) {
				err := next(c)
				freeze(c)
				return err
			}
			res := c.Response()
			outer := res.Writer
			var err error
			called := false
			agent.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called = true
				rampart.SetRoute(r.Context(), route)
				c.SetRequest(r)
				res.Writer = w
				err = next(c)
				freeze(c)
			})).ServeHTTP(outer, c.Request())
			res.Writer = outer
			if !called || outer.Header().Get(rampart.RefusalHeader) != "" {
				// The agent has answered (a refusal of zero trust, or the
				// 403 of a blocked call): echo's error handler must not
				// write after it, and its logger should see the status.
				res.Committed = true
				if called {
					res.Status = http.StatusForbidden
				}
				return nil
			}
			return err
		}
	}
}

// freeze replaces the route function, which reads the echo context, with
// its value: echo reuses the context for another request once this one
// returns, and code started by the handler may still report.
func freeze(c echo.Context) {
	rt := routeOf(c)
	rampart.SetRoute(c.Request().Context(), func() rampart.Route { return rt })
}

func routeOf(c echo.Context) rampart.Route {
	rt := rampart.Route{Template: c.Path()}
	names, values := c.ParamNames(), c.ParamValues()
	for i, name := range names {
		if i < len(values) {
			rt.Params = append(rt.Params, rampart.PathParam{Name: name, Value: values[i]})
		}
	}
	return rt
}
