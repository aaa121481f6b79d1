// Package rampartgin fits Rampart to the gin router
// (github.com/gin-gonic/gin): installed with one line,
//
//	router.Use(rampartgin.Middleware(agent))
//
// it records the matched route's template (c.FullPath(), "/users/:name")
// and each of its path parameters (c.Params, in the router's order) as the
// request's inputs, so that a guarded call refuses an injection through
// /users/:name and its event names the parameter and the route. The route
// names the request in events, summaries and the service's inventory.
//
// The middleware serves the request through agent.Handler, unless the gin
// engine is already wrapped by one (agent.Handler(router), for instance to
// admit mesh callers before gin runs): then it only reports the route to
// it. Either way the inputs, the route and the 403 of a blocked call are
// the same. Install it first, before middleware that makes guarded calls.
package rampartgin

import (
	"bufio"
	"net"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/rampartsec/rampart"
)

// Middleware returns gin middleware that protects every route of the
// router (or group) it is used on with agent.
func Middleware(agent *rampart.Agent) gin.HandlerFunc {
	return func(c *gin.Context) {
		route := func() rampart.Route { return routeOf(c) }
		if rampart.SetRoute(c.Request.Context(), route) {
			c.Next()
			freeze(c)
			return
		}
		outer := c.Writer
		called := false
		agent.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			called = true
			rampart.SetRoute(r.Context(), route)
			c.Request = r
			c.Writer = &writer{ResponseWriter: outer, rw: w}
			c.Next()
			freeze(c)
		})).ServeHTTP(outer, c.Request)
		c.Writer = outer
		if !called || outer.Header().Get(rampart.RefusalHeader) != "" {
			// Refused by zero trust, or a blocked call's 403 written:
			// no other handler adds to the response.
			c.Abort()
		}
	}
}

// freeze replaces the route function, which reads the gin context, with
// its value: gin reuses the context for another request once this one
// returns, and code started by the handler may still report.
func freeze(c *gin.Context) {
	rt := routeOf(c)
	rampart.SetRoute(c.Request.Context(), func() rampart.Route { return rt })
}

func routeOf(c *gin.Context) rampart.Route {
	rt := rampart.Route{Template: c.FullPath()}
	if len(c.Params) > 0 {
		rt.Params = make([]rampart.PathParam, len(c.Params))
		for i, p := range c.Params {
			rt.Params[i] = rampart.PathParam{Name: p.Key, Value: p.Value}
		}
	}
	return rt
}

// writer sends what the handlers write through the agent's response
// writer, which discards it once a call of the request was blocked, and
// keeps gin's own for the status and size gin's logger reads.
type writer struct {
	gin.ResponseWriter
	rw http.ResponseWriter
}

func (w *writer) Header() http.Header               { return w.rw.Header() }
func (w *writer) WriteHeader(code int)              { w.rw.WriteHeader(code) }
func (w *writer) Write(b []byte) (int, error)       { return w.rw.Write(b) }
func (w *writer) WriteString(s string) (int, error) { return w.rw.Write([]byte(s)) }

// WriteHeaderNow sends the status gin recorded, unless the request was
// blocked: then the agent's 403 is sent instead.
func (w *writer) WriteHeaderNow() { _, _ = w.rw.Write(nil) }

func (w *writer) Flush() {
	if f, ok := w.rw.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.rw).Hijack()
}
