package rampart_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/controltest"
)

// In the mesh, a service's summaries carry the actor token of the key's
// last request: the control plane stores the actor as verified, and the
// summary counts every request of the window.
func TestSummariesInTheMeshReachTheControlPlaneVerified(t *testing.T) {
	cp, agent, addr := summarizingOrders(t, rampart.Config{}, func(mux *http.ServeMux) {
		mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
			rampart.ObjectAccess(r.Context(), "order", r.PathValue("id"), "alice")
		})
	})

	gateway := cp.Join(t, "gateway")
	token, err := cp.Signer(t, gateway).TokenFor(alice, audience(t, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	c := client(t, gateway, "orders")
	const n = 7
	for _, id := range []string{"1", "2", "3", "1", "2", "3", "4"} {
		req, _ := http.NewRequest("GET", "https://"+addr+"/orders/"+id, nil)
		req.Header.Set("Rampart-Actor", token)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // a deadline for a busy machine
	defer cancel()
	if err := agent.Close(ctx); err != nil { // ships the window
		t.Fatal(err)
	}
	got := storedEvents(t, cp, "service=orders&kind=request_summary")
	if len(got) != 1 {
		t.Fatalf("%d summaries stored, want 1", len(got))
	}
	e := got[0]
	if !e.ActorVerified || e.ActorIP != "203.0.113.7" || e.ActorUser != "alice" {
		t.Errorf("summary actor %q %q verified %v, want alice's, verified", e.ActorIP, e.ActorUser, e.ActorVerified)
	}
	var data struct {
		Count   int              `json:"count"`
		Status  int              `json:"status"`
		Route   string           `json:"route"`
		Objects []rampart.Object `json:"objects"`
	}
	json.Unmarshal(e.Data, &data)
	if data.Count != n || data.Status != 200 || data.Route != "GET /orders/{id}" || len(data.Objects) != 4 {
		t.Errorf("summary %+v, want %d requests of GET /orders/{id}, 200, 4 objects", data, n)
	}
}

// summarizingOrders starts a control plane and the service "orders" in its
// mesh, callable by the gateway, with summaries over a window of an hour
// (so that only Close ships them) and cfg's other settings, serving the
// routes over mTLS on loopback. It returns the control plane, the agent
// and the service's address.
func summarizingOrders(t *testing.T, cfg rampart.Config, routes func(*http.ServeMux)) (*controltest.ControlPlane, *rampart.Agent, string) {
	t.Helper()
	cp := controltest.Start(t, controltest.Config{})
	cp.ApplyPolicy(t, `
services:
  orders:
    allow:
      - callers: [gateway]
`)
	src := cp.Join(t, "orders")
	sink, err := rampart.NewControlSink(rampart.ControlPlaneConfig{URL: cp.URL, Client: src.ControlPlaneClient()})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Service, cfg.Identity, cfg.ControlPlane, cfg.Sinks = "orders", src, cp.URL, []rampart.Sink{sink}
	cfg.Logger, cfg.SummaryWindow = slog.New(slog.NewTextHandler(testLog{t}, nil)), time.Hour
	agent, err := rampart.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second) // a deadline for a busy machine
	defer cancel()
	if err := agent.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	routes(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: agent.Handler(mux), TLSConfig: agent.ServerTLSConfig(), ErrorLog: slogDiscard(), ReadHeaderTimeout: time.Minute}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return cp, agent, ln.Addr().String()
}
