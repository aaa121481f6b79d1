package control

import (
	"net/http"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// Revocation is one revoked service in the response to GET
// /v1/revocations.
type Revocation struct {
	Service string    `json:"service"`
	Revoked time.Time `json:"revoked"`
}

// RevocationList is the response to GET /v1/revocations.
type RevocationList struct {
	Revoked []Revocation `json:"revoked"`
}

// getRevocations lists the revoked services, for agents and gateways to
// refuse their SVIDs at the mTLS handshake and close their connections. A
// revocation (POST /v1/services/{name}/revoke) is a change of kind service
// on GET /v1/watch: watchers read this list again within the watch's
// latency, long before the revoked service's last SVID expires.
func (h *Handler) getRevocations(w http.ResponseWriter, r *http.Request) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	ss, err := h.cfg.Store.Services(r.Context(), store.ServiceFilter{})
	if err != nil {
		return err
	}
	out := RevocationList{Revoked: []Revocation{}}
	for _, s := range ss {
		if !s.Revoked.IsZero() {
			out.Revoked = append(out.Revoked, Revocation{Service: s.Name, Revoked: s.Revoked})
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
	return nil
}
