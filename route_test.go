package rampart_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/ramparttest"
)

// A router that matches "/users/:name/files/*path" by hand, as gin or echo
// would, and reports its route with SetRoute before its handler runs.
func handRouter(t *testing.T, handler func(ctx context.Context)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/users/")
		name, path, ok2 := strings.Cut(rest, "/files/")
		if !ok || !ok2 {
			http.NotFound(w, r)
			return
		}
		if !rampart.SetRoute(r.Context(), func() rampart.Route {
			return rampart.Route{Template: "/users/:name/files/*path", Params: []rampart.PathParam{{"name", name}, {"path", path}}}
		}) {
			t.Error("SetRoute found no request in the context of a request the Handler serves")
		}
		handler(r.Context())
	})
}

func TestSetRouteRecordsParamsInRouterOrderAndTheTemplate(t *testing.T) {
	a, rec := ramparttest.NewAgent(t, rampart.Config{})
	var ins []rampart.Input
	srv := httptest.NewServer(a.Handler(handRouter(t, func(ctx context.Context) {
		ins = collect(ctx)
		_ = a.Report(ctx, rampart.Finding{Kind: rampart.KindSQLInjection, Input: ins[0], Sink: "test"})
	})))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/users/O'Brien/files/a/b.txt")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var path []rampart.Input
	for _, in := range ins {
		if in.Source == rampart.SourcePath {
			path = append(path, in)
		}
	}
	want := []rampart.Input{
		{rampart.SourcePath, "name", "O'Brien"},
		{rampart.SourcePath, "path", "a/b.txt"},
		{rampart.SourcePath, "path", "a"},
		{rampart.SourcePath, "path", "b.txt"},
	}
	if !slices.Equal(path, want) {
		t.Errorf("path inputs %+v, want %+v", path, want)
	}
	ev := rec.Next(t)
	if ev.Route != "/users/:name/files/*path" || ev.Input.Name != "name" {
		t.Errorf("event route %q input %+v, want the router's template and the parameter name", ev.Route, ev.Input)
	}
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("status %d, want 403 for the blocked call", resp.StatusCode)
	}
}

func TestSetRouteOutsideARequestSaysSo(t *testing.T) {
	if rampart.SetRoute(context.Background(), func() rampart.Route { return rampart.Route{Template: "/x"} }) {
		t.Error("SetRoute reported a request in a context without one")
	}
}
