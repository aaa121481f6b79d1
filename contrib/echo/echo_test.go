package rampartecho_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/actor"
	rampartecho "github.com/rampartsec/rampart/contrib/echo"
	"github.com/rampartsec/rampart/internal/contribtest"
	"github.com/rampartsec/rampart/ramparttest"
)

// installs are the two ways a service puts Rampart in front of echo: the
// middleware alone, or the server wrapped by agent.Handler as well (to
// admit mesh callers before echo runs) with the middleware inside.
var installs = []struct {
	name  string
	serve func(a *rampart.Agent, r *echo.Echo) http.Handler
}{
	{"e.Use", func(a *rampart.Agent, r *echo.Echo) http.Handler { return r }},
	{"agent.Handler(e) and e.Use", func(a *rampart.Agent, r *echo.Echo) http.Handler { return a.Handler(r) }},
}

func usersRouter(a *rampart.Agent, db contribtest.DB, protect bool) *echo.Echo {
	r := echo.New()
	if protect {
		r.Use(rampartecho.Middleware(a))
	}
	r.GET("/users/:name", func(c echo.Context) error {
		names, err := db.UsersNamed(c.Request().Context(), c.Param("name"))
		if err != nil {
			return err // echo's error handler answers 500
		}
		return c.JSON(http.StatusOK, names)
	})
	return r
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestWithoutTheMiddlewareThePathParameterDumpsTheTable(t *testing.T) {
	a, _ := ramparttest.NewAgent(t, rampart.Config{})
	for _, db := range contribtest.Databases(t, a) {
		t.Run(db.Name, func(t *testing.T) {
			status, body := get(t, usersRouter(a, db, false), "/users/"+url.PathEscape(contribtest.Injection))
			var names []string
			json.Unmarshal([]byte(body), &names)
			if status != http.StatusOK || len(names) != len(contribtest.Users) {
				t.Fatalf("the unprotected route answered %d %s; the test's injection should dump the %d users", status, body, len(contribtest.Users))
			}
		})
	}
}

func TestInjectionThroughAPathParameterIsBlockedAndBenignServed(t *testing.T) {
	for _, in := range installs {
		t.Run(in.name, func(t *testing.T) {
			a, rec := ramparttest.NewAgent(t, rampart.Config{})
			for _, db := range contribtest.Databases(t, a) {
				t.Run(db.Name, func(t *testing.T) {
					rec.Reset()
					h := in.serve(a, usersRouter(a, db, true))
					status, body := get(t, h, "/users/"+url.PathEscape(contribtest.Injection))
					if status != http.StatusForbidden || !strings.Contains(body, "request_id") || strings.Contains(body, "bob") {
						t.Errorf("injection answered %d %s, want the agent's 403 and no rows", status, body)
					}
					ev := rec.Next(t)
					want := ramparttest.Want{
						Kind: rampart.KindSQLInjection, Action: rampart.ActionBlocked, Route: "/users/:name",
						Input: rampart.Input{Source: rampart.SourcePath, Name: "name", Value: contribtest.Injection},
					}
					if d := want.Diff(ev); d != "" {
						t.Error(d)
					}
					status, body = get(t, h, "/users/alice")
					if status != http.StatusOK || strings.TrimSpace(body) != `["alice"]` {
						t.Errorf("benign request answered %d %s, want 200 [\"alice\"]", status, body)
					}
				})
			}
		})
	}
}

func TestPathParametersAreInputsInRouterOrder(t *testing.T) {
	for _, in := range installs {
		t.Run(in.name, func(t *testing.T) {
			a, _ := ramparttest.NewAgent(t, rampart.Config{})
			r := echo.New()
			r.Use(rampartecho.Middleware(a))
			var got []rampart.Input
			r.GET("/orgs/:org/users/:name/*", func(c echo.Context) error {
				for i := range rampart.Inputs(c.Request().Context()) {
					if i.Source == rampart.SourcePath {
						got = append(got, i)
					}
				}
				return c.NoContent(http.StatusNoContent)
			})
			if status, _ := get(t, in.serve(a, r), "/orgs/acme/users/zed/a/b.txt"); status != http.StatusNoContent {
				t.Fatalf("status %d", status)
			}
			want := []rampart.Input{
				{Source: rampart.SourcePath, Name: "org", Value: "acme"},
				{Source: rampart.SourcePath, Name: "name", Value: "zed"},
				{Source: rampart.SourcePath, Name: "*", Value: "a/b.txt"},
				{Source: rampart.SourcePath, Name: "*", Value: "a"},
				{Source: rampart.SourcePath, Name: "*", Value: "b.txt"},
			}
			if !slices.Equal(got, want) {
				t.Errorf("path inputs\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestTheRouteNamesTheRequestSummaries(t *testing.T) {
	for _, in := range installs {
		t.Run(in.name, func(t *testing.T) {
			a, rec := ramparttest.NewAgent(t, rampart.Config{SummaryWindow: 50 * time.Millisecond})
			r := echo.New()
			r.Use(rampartecho.Middleware(a))
			r.GET("/items/:id", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
			if status, _ := get(t, in.serve(a, r), "/items/42"); status != http.StatusOK {
				t.Fatalf("status %d", status)
			}
			ev := rec.Wait(t, func(ev rampart.Event) bool { return ev.Kind == rampart.KindRequestSummary })
			if ev.Route != "/items/:id" || ev.Status != http.StatusOK {
				t.Errorf("summary route %q status %d, want /items/:id 200", ev.Route, ev.Status)
			}
		})
	}
}

// In the mesh, the inventory the control plane holds lists the route
// template, whichever way the middleware is installed.
func TestTheRouteReachesTheInventory(t *testing.T) {
	for _, in := range installs {
		t.Run(in.name, func(t *testing.T) {
			m := contribtest.StartMesh(t, "users", "", rampart.Config{})
			db := contribtest.SQLite(t, m.Agent)
			url := m.ServeTLS(t, in.serve(m.Agent, usersRouter(m.Agent, db, true)))
			gw, _ := m.StartAgent(t, "gateway", rampart.Config{})
			client, err := gw.Client("users")
			if err != nil {
				t.Fatal(err)
			}
			token := m.Token(t, actor.Actor{IP: netip.MustParseAddr("203.0.113.9")}, time.Time{}, 0)
			req, _ := http.NewRequestWithContext(actor.NewTokenContext(context.Background(), token), http.MethodGet, url+"/users/alice", nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			m.WaitRoute(t, "/users/:name")
		})
	}
}
