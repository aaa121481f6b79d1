package control_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
)

func TestHeartbeatsFillTheInventory(t *testing.T) {
	e := newEnv(t)
	hb := control.Heartbeat{Service: "orders", ID: "pod-a", Version: "v1.2.3", GoVersion: "go1.26.0",
		Modules: []store.Module{{Path: "github.com/jackc/pgx/v5", Version: "v5.12.0"}},
		Routes:  []string{"GET /orders/{id}"}, DBDrivers: []string{"postgres"}, Exposed: true}
	if r := e.do(t, "POST", "/v1/heartbeat", hb); r.status != http.StatusNoContent {
		t.Fatalf("heartbeat: %d %s", r.status, r.body)
	}
	list := decode[control.InstanceList](t, e.do(t, "GET", "/v1/instances?state=live&module=github.com/jackc/pgx/v5", nil), http.StatusOK)
	if len(list.Instances) != 1 || !list.Instances[0].Live || list.Instances[0].Version != "v1.2.3" || list.Instances[0].Routes[0] != "GET /orders/{id}" {
		t.Errorf("live instances using pgx: %+v", list)
	}
	list = decode[control.InstanceList](t, e.do(t, "GET", "/v1/instances?state=gone", nil), http.StatusOK)
	if len(list.Instances) != 0 {
		t.Errorf("gone instances: %+v", list)
	}
	svcs := decode[control.ServiceList](t, e.do(t, "GET", "/v1/services?exposed=true", nil), http.StatusOK)
	if len(svcs.Services) != 1 || svcs.Services[0].Name != "orders" {
		t.Errorf("exposed services: %+v", svcs)
	}

	eb := wantError(t, e.do(t, "POST", "/v1/heartbeat", `{"service":"orders","id":"pod-b","last_seen":"2030-01-01T00:00:00Z"}`), http.StatusBadRequest, "invalid")
	if eb.Field != "last_seen" {
		t.Errorf("a heartbeat that sets last_seen: field %q", eb.Field)
	}
	wantError(t, e.do(t, "POST", "/v1/heartbeat", control.Heartbeat{Service: "orders"}), http.StatusBadRequest, "invalid")
	wantError(t, e.do(t, "GET", "/v1/instances?state=asleep", nil), http.StatusBadRequest, "invalid")
	if ins, _ := e.store.Instances(context.Background(), store.InstanceFilter{}); len(ins) != 1 {
		t.Errorf("%d instances stored, want 1", len(ins))
	}
}
