package rampartchi_test

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

	"github.com/go-chi/chi/v5"
	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/actor"
	rampartchi "github.com/rampartsec/rampart/contrib/chi"
	"github.com/rampartsec/rampart/internal/contribtest"
	"github.com/rampartsec/rampart/ramparttest"
)

// installs are the ways a service puts Rampart in front of chi: inside
// the router, around it, and inside a router that agent.Handler wraps (to
// admit mesh callers before chi runs). Each must record the same route.
var installs = []struct {
	name    string
	install func(a *rampart.Agent, build func(r chi.Router)) http.Handler
}{
	{"r.Use", func(a *rampart.Agent, build func(r chi.Router)) http.Handler {
		r := chi.NewRouter()
		r.Use(rampartchi.Middleware(a))
		build(r)
		return r
	}},
	{"around the router", func(a *rampart.Agent, build func(r chi.Router)) http.Handler {
		r := chi.NewRouter()
		build(r)
		return rampartchi.Middleware(a)(r)
	}},
	{"agent.Handler(r) and r.Use", func(a *rampart.Agent, build func(r chi.Router)) http.Handler {
		r := chi.NewRouter()
		r.Use(rampartchi.Middleware(a))
		build(r)
		return a.Handler(r)
	}},
}

func users(db contribtest.DB) func(r chi.Router) {
	return func(r chi.Router) {
		r.Get("/users/{name}", func(w http.ResponseWriter, r *http.Request) {
			names, err := db.UsersNamed(r.Context(), chi.URLParam(r, "name"))
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			json.NewEncoder(w).Encode(names)
		})
	}
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
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func TestWithoutTheMiddlewareThePathParameterDumpsTheTable(t *testing.T) {
	a, _ := ramparttest.NewAgent(t, rampart.Config{})
	for _, db := range contribtest.Databases(t, a) {
		t.Run(db.Name, func(t *testing.T) {
			r := chi.NewRouter()
			users(db)(r)
			status, body := get(t, r, "/users/"+url.PathEscape(contribtest.Injection))
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
					h := in.install(a, users(db))
					status, body := get(t, h, "/users/"+url.PathEscape(contribtest.Injection))
					if status != http.StatusForbidden || !strings.Contains(body, "request_id") || strings.Contains(body, "bob") {
						t.Errorf("injection answered %d %s, want the agent's 403 and no rows", status, body)
					}
					ev := rec.Next(t)
					want := ramparttest.Want{
						Kind: rampart.KindSQLInjection, Action: rampart.ActionBlocked, Route: "/users/{name}",
						Input: rampart.Input{Source: rampart.SourcePath, Name: "name", Value: contribtest.Injection},
					}
					if d := want.Diff(ev); d != "" {
						t.Error(d)
					}
					status, body = get(t, h, "/users/alice")
					if status != http.StatusOK || body != `["alice"]` {
						t.Errorf("benign request answered %d %s, want 200 [\"alice\"]", status, body)
					}
				})
			}
		})
	}
}

func TestPathParametersOfMountedRoutersAreInputsInRouterOrder(t *testing.T) {
	for _, in := range installs {
		t.Run(in.name, func(t *testing.T) {
			a, rec := ramparttest.NewAgent(t, rampart.Config{SummaryWindow: 50 * time.Millisecond})
			var got []rampart.Input
			h := in.install(a, func(r chi.Router) {
				r.Route("/orgs/{org}", func(r chi.Router) {
					r.Get("/users/{name}/*", func(w http.ResponseWriter, r *http.Request) {
						for i := range rampart.Inputs(r.Context()) {
							if i.Source == rampart.SourcePath {
								got = append(got, i)
							}
						}
						w.WriteHeader(http.StatusNoContent)
					})
				})
			})
			if status, _ := get(t, h, "/orgs/acme/users/zed/a/b.txt"); status != http.StatusNoContent {
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
			ev := rec.Wait(t, func(ev rampart.Event) bool { return ev.Kind == rampart.KindRequestSummary })
			if ev.Route != "/orgs/{org}/users/{name}/*" {
				t.Errorf("summary route %q, want /orgs/{org}/users/{name}/*", ev.Route)
			}
		})
	}
}

// In the mesh, the inventory the control plane holds lists chi's route
// pattern, whichever way the middleware is installed.
func TestTheRouteReachesTheInventory(t *testing.T) {
	for _, in := range installs {
		t.Run(in.name, func(t *testing.T) {
			m := contribtest.StartMesh(t, "users", "", rampart.Config{})
			db := contribtest.SQLite(t, m.Agent)
			url := m.ServeTLS(t, in.install(m.Agent, users(db)))
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
			m.WaitRoute(t, "/users/{name}")
		})
	}
}
