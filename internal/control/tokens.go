package control

import (
	"net/http"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/store"
)

// TokenRequest is the body of POST /v1/tokens.
type TokenRequest struct {
	Service string `json:"service"`
	TTL     string `json:"ttl,omitempty"`  // a Go duration; "" means store.DefaultJoinTokenTTL
	Uses    int    `json:"uses,omitempty"` // joins it allows, one per replica; 0 means 1
}

// TokenResponse is the response to POST /v1/tokens: the only time the
// token's plaintext is shown.
type TokenResponse struct {
	Token   string    `json:"token"`
	ID      string    `json:"id"` // names it in GET /v1/tokens and its revocation
	Service string    `json:"service"`
	Uses    int       `json:"uses"`
	Expires time.Time `json:"expires"`
}

// TokenList is the response to GET /v1/tokens: what each token is for and
// how much of it is left, never its secret.
type TokenList struct {
	Tokens []store.JoinToken `json:"tokens"`
}

func (h *Handler) postToken(w http.ResponseWriter, r *http.Request) error {
	var req TokenRequest
	if err := decodeJSON(w, r, h.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := ca.ValidateServiceName(req.Service); err != nil {
		return badRequest("service", err.Error())
	}
	var ttl time.Duration
	if req.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(req.TTL); err != nil || ttl <= 0 {
			return badRequest("ttl", "ttl must be a positive duration such as 15m or 1h")
		}
	}
	if req.Uses < 0 || req.Uses > store.MaxJoinTokenUses {
		return badRequest("uses", "uses must be between 1 and "+strconv.Itoa(store.MaxJoinTokenUses))
	}
	plain, tok, err := h.cfg.Store.CreateJoinToken(r.Context(), store.JoinTokenSpec{Service: req.Service, TTL: ttl, Uses: req.Uses})
	if err != nil {
		return err
	}
	h.log.Info("control: join token created", "id", tok.ID, "service", tok.Service, "uses", tok.Uses, "expires", tok.Expires)
	writeJSON(w, http.StatusCreated, TokenResponse{Token: plain, ID: tok.ID, Service: tok.Service, Uses: tok.Uses, Expires: tok.Expires})
	return nil
}

func (h *Handler) getTokens(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := onlyParams(q, "service", "all"); err != nil {
		return err
	}
	f := store.JoinTokenFilter{Service: q.Get("service")}
	if f.Service != "" {
		if err := ca.ValidateServiceName(f.Service); err != nil {
			return badRequest("service", err.Error())
		}
	}
	if s := q.Get("all"); s != "" {
		var err error
		if f.All, err = strconv.ParseBool(s); err != nil {
			return badRequest("all", "all must be true or false")
		}
	}
	toks, err := h.cfg.Store.JoinTokens(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, TokenList{Tokens: toks})
	return nil
}

// revokeToken refuses the remaining uses of a join token: for a token
// that leaked, or a replica set that is complete.
func (h *Handler) revokeToken(w http.ResponseWriter, r *http.Request) error {
	tok, err := h.cfg.Store.RevokeJoinToken(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	h.log.Info("control: join token revoked", "id", tok.ID, "service", tok.Service, "uses_left", tok.UsesLeft)
	writeJSON(w, http.StatusOK, tok)
	return nil
}
