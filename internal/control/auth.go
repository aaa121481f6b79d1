package control

import (
	"net/http"
)

// agent is handle for endpoints that agents and gateways call with their
// SVID as the TLS client certificate, and that admins may call with the
// admin token. fn learns the calling service ("" for the admin).
func (h *Handler) agent(fn func(w http.ResponseWriter, r *http.Request, service string) error) http.Handler {
	return h.handle(func(w http.ResponseWriter, r *http.Request) error {
		if h.isAdmin(r) {
			return fn(w, r, "")
		}
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rampart"`)
			return &apiError{status: http.StatusUnauthorized, code: "unauthorized",
				msg: "missing or wrong credentials: the admin token (Authorization: Bearer <token>) or an SVID as the TLS client certificate"}
		}
		// The handshake proved the peer holds the certificate's key;
		// VerifySVID proves this CA issued it to a service.
		service, err := h.cfg.CA.VerifySVID(r.TLS.PeerCertificates)
		if err != nil {
			return err
		}
		// Quotas before anything that reads the store.
		done, err := h.limit(w, r, service, r.Pattern == "GET /v1/watch")
		if err != nil {
			return err
		}
		defer done()
		if err := h.checkNotRevoked(r.Context(), service); err != nil {
			return err
		}
		return fn(w, r, service)
	})
}

// anyCaller adapts a handler that does not care who calls.
func anyCaller(fn func(http.ResponseWriter, *http.Request) error) func(http.ResponseWriter, *http.Request, string) error {
	return func(w http.ResponseWriter, r *http.Request, _ string) error { return fn(w, r) }
}

// forbidden refuses a service acting for another one.
func forbidden(field, msg string) error {
	return &apiError{status: http.StatusForbidden, code: "forbidden", field: field, msg: msg}
}
