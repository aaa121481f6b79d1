package control

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/store"
)

// putPolicy validates and stores a new policy version. The body is the YAML
// document (Content-Type application/yaml); ?base= is the version it was
// derived from, to refuse a lost update (omitted: any).
func (h *Handler) putPolicy(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := onlyParams(q, "base"); err != nil {
		return err
	}
	base := store.AnyVersion
	if s := q.Get("base"); s != "" {
		var err error
		if base, err = strconv.ParseInt(s, 10, 64); err != nil || base < 0 {
			return badRequest("base", "base must be a policy version (0 when there is none yet)")
		}
	}
	text, err := readText(w, r, h.cfg.MaxBodyBytes, "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
	if err != nil {
		return err
	}
	if _, err := policy.Parse(text); err != nil {
		return err
	}
	p, err := h.cfg.Store.PutPolicy(r.Context(), text, base)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, p)
	return nil
}

// getPolicy serves a policy version: whole to the admin and the gateways,
// the caller's slice to any other service (see PolicyView).
func (h *Handler) getPolicy(w http.ResponseWriter, r *http.Request, caller string) error {
	q := r.URL.Query()
	if err := onlyParams(q, "version"); err != nil {
		return err
	}
	var version int64
	if s := q.Get("version"); s != "" {
		var err error
		if version, err = strconv.ParseInt(s, 10, 64); err != nil || version <= 0 {
			return badRequest("version", "version must be a positive integer")
		}
	}
	p, err := h.cfg.Store.Policy(r.Context(), version)
	if version == 0 && errors.Is(err, store.ErrNotFound) {
		return expectedError{err} // no policy applied yet
	}
	if err != nil {
		return err
	}
	view := PolicyView{Policy: p}
	if !h.readsEverything(caller) {
		if view.YAML, err = slicePolicy(p.YAML, caller, h.gateways); err != nil {
			return err
		}
		view.SliceFor = caller
	}
	writeJSON(w, http.StatusOK, view)
	return nil
}
