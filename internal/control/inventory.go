package control

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/rampartsec/rampart/internal/store"
)

// Heartbeat is the body of POST /v1/heartbeat: what an agent reports about
// its instance. Everything replaces what the previous heartbeat said.
type Heartbeat struct {
	Service   string         `json:"service"`
	ID        string         `json:"id"`
	Version   string         `json:"version,omitempty"`
	GoVersion string         `json:"go_version,omitempty"`
	Modules   []store.Module `json:"modules,omitempty"`
	Routes    []string       `json:"routes,omitempty"`
	Peers     []string       `json:"peers,omitempty"`
	// Callers are the calls received from other services, each "CALLER
	// METHOD /pattern" (see store.Instance.Callers).
	Callers   []string `json:"callers,omitempty"`
	DBDrivers []string `json:"db_drivers,omitempty"`
	Exposed   bool     `json:"exposed,omitempty"`
}

// postHeartbeat registers or refreshes an instance. A service
// (authenticated by its SVID) reports only its own instances.
func (h *Handler) postHeartbeat(w http.ResponseWriter, r *http.Request, caller string) error {
	var hb Heartbeat
	if err := decodeJSON(w, r, min(h.cfg.MaxBodyBytes, MaxHeartbeatBytes), &hb); err != nil {
		return err
	}
	if caller != "" && hb.Service != caller {
		return forbidden("service", "service "+caller+" may not report an instance of service "+hb.Service)
	}
	quota := store.InstanceQuota{Max: h.cfg.Quotas.InstancesPerService, LiveAfter: h.cfg.Now().Add(-h.cfg.StaleAfter)}
	err := h.cfg.Store.HeartbeatQuota(r.Context(), store.Instance{
		Service: hb.Service, ID: hb.ID, Version: hb.Version, GoVersion: hb.GoVersion, Modules: hb.Modules,
		Routes: hb.Routes, Peers: hb.Peers, DBDrivers: hb.DBDrivers, Exposed: hb.Exposed, Callers: hb.Callers,
	}, quota)
	if errors.Is(err, store.ErrQuota) {
		// A slot frees when the instance seen longest ago goes stale.
		return h.refuse(w, r, hb.Service, QuotaInstances, h.cfg.StaleAfter/4,
			fmt.Sprintf("service %s has %d live instances, the most allowed: a new instance id is accepted when one of them is gone (no heartbeat for %v)",
				hb.Service, quota.Max, h.cfg.StaleAfter))
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// InstanceView is one instance in GET /v1/instances.
type InstanceView struct {
	store.Instance
	Live bool `json:"live"` // heartbeated within Config.StaleAfter
}

// InstanceList is the response to GET /v1/instances.
type InstanceList struct {
	Instances []InstanceView `json:"instances"`
}

func (h *Handler) getInstances(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := onlyParams(q, "service", "module", "state"); err != nil {
		return err
	}
	threshold := h.cfg.Now().Add(-h.cfg.StaleAfter)
	f := store.InstanceFilter{Service: q.Get("service"), Module: q.Get("module")}
	switch q.Get("state") {
	case "", "all":
	case "live":
		f.SeenAfter = threshold
	case "gone":
		f.SeenBefore = threshold
	default:
		return badRequest("state", "state must be live, gone or all")
	}
	ins, err := h.cfg.Store.Instances(r.Context(), f)
	if err != nil {
		return err
	}
	list := InstanceList{Instances: make([]InstanceView, 0, len(ins))}
	for _, in := range ins {
		list.Instances = append(list.Instances, InstanceView{Instance: in, Live: !in.LastSeen.Before(threshold)})
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}
