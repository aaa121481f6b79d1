package control

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/store"
)

// EventBatch is the body of POST /v1/events.
type EventBatch struct {
	Events []IncomingEvent `json:"events"`
}

// EventBatchResult is the response to POST /v1/events.
type EventBatchResult struct {
	Received int `json:"received"` // events in the batch
	Inserted int `json:"inserted"` // events not stored before
}

// postEvents stores a batch. A service (authenticated by its SVID) posts
// only its own events, and the actors they name are stored as verified or
// as claimed by it (see attributeActors).
func (h *Handler) postEvents(w http.ResponseWriter, r *http.Request, caller string) error {
	var batch EventBatch
	if err := decodeJSON(w, r, h.cfg.MaxBodyBytes, &batch); err != nil {
		return err
	}
	if len(batch.Events) == 0 {
		return badRequest("events", "no events in the batch")
	}
	if caller != "" {
		for i, e := range batch.Events {
			if e.Service != caller {
				return forbidden("events["+strconv.Itoa(i)+"].service",
					fmt.Sprintf("service %s may not post events of service %q", caller, e.Service))
			}
		}
	}
	n, err := h.cfg.Store.AppendEvents(r.Context(), h.attributeActors(r.Context(), caller, batch.Events))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, EventBatchResult{Received: len(batch.Events), Inserted: n})
	return nil
}

// EventPage is the response to GET /v1/events.
type EventPage struct {
	Events []store.Event `json:"events"`
	// Next continues the query (?cursor=Next) when the page is full.
	Next string `json:"next,omitempty"`
}

func (h *Handler) getEvents(w http.ResponseWriter, r *http.Request) error {
	f, err := ParseEventQuery(r.URL.Query(), h.cfg.Now())
	if err != nil {
		return err
	}
	events, err := h.cfg.Store.QueryEvents(r.Context(), f)
	if err != nil {
		return err
	}
	page := EventPage{Events: events}
	if page.Events == nil {
		page.Events = []store.Event{}
	}
	if len(events) == f.Limit {
		page.Next = events[len(events)-1].Cursor().String()
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// timeParam reads an RFC 3339 time, or a duration meaning that long ago.
func timeParam(q url.Values, name string, now time.Time) (time.Time, error) {
	s := q.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, badRequest(name, name+" must be an RFC 3339 time (2026-01-02T15:04:05Z) or a duration ago (1h)")
}

func onlyParams(q url.Values, names ...string) error {
	for k := range q {
		known := false
		for _, n := range names {
			known = known || k == n
		}
		if !known {
			return badRequest(k, "unknown query parameter "+strconv.Quote(k))
		}
	}
	return nil
}

// DecisionRequest is the body of POST /v1/decisions.
type DecisionRequest struct {
	Scope     store.Scope          `json:"scope"`
	Value     string               `json:"value"`
	Action    store.DecisionAction `json:"action"`
	RateLimit int                  `json:"rate_limit,omitempty"`
	Reason    string               `json:"reason,omitempty"`
	Origin    string               `json:"origin,omitempty"`
	// Expires, or TTL (a Go duration such as "1h") from now; neither means
	// never.
	Expires time.Time `json:"expires,omitzero"`
	TTL     string    `json:"ttl,omitempty"`
	// Force creates a decision on a network wider than MinIPv4Prefix or
	// MinIPv6Prefix (up to every address), which is refused otherwise.
	Force bool `json:"force,omitempty"`
}

// DecisionList is the response to GET /v1/decisions.
type DecisionList struct {
	Decisions []store.Decision `json:"decisions"`
}

func (h *Handler) postDecision(w http.ResponseWriter, r *http.Request) error {
	var req DecisionRequest
	if err := decodeJSON(w, r, h.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	d := store.Decision{Scope: req.Scope, Value: req.Value, Action: req.Action, RateLimit: req.RateLimit,
		Reason: req.Reason, Origin: req.Origin, Expires: req.Expires}
	if req.TTL != "" {
		if !req.Expires.IsZero() {
			return badRequest("ttl", "give expires or ttl, not both")
		}
		ttl, err := time.ParseDuration(req.TTL)
		if err != nil || ttl <= 0 {
			return badRequest("ttl", "ttl must be a positive duration such as 30m or 24h")
		}
		d.Expires = h.cfg.Now().Add(ttl)
	}
	if !req.Force {
		if err := checkBreadth(d, h.cfg.Now()); err != nil {
			return err
		}
	}
	d, err := h.cfg.Store.CreateDecision(r.Context(), d)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/decisions/"+url.PathEscape(d.ID))
	writeJSON(w, http.StatusCreated, d)
	return nil
}

// getDecisions lists the decisions: all of them to the admin and the
// gateways, those it enforces to any other service.
func (h *Handler) getDecisions(w http.ResponseWriter, r *http.Request, caller string) error {
	q := r.URL.Query()
	if err := onlyParams(q, "expired"); err != nil {
		return err
	}
	expired := false
	if s := q.Get("expired"); s != "" {
		var err error
		if expired, err = strconv.ParseBool(s); err != nil {
			return badRequest("expired", "expired must be true or false")
		}
	}
	ds, err := h.cfg.Store.ListDecisions(r.Context(), expired)
	if err != nil {
		return err
	}
	if !h.readsEverything(caller) {
		ds = slices.DeleteFunc(ds, func(d store.Decision) bool { return !enforces(d) })
	}
	if caller != "" { // an enforcer: never a simulated decision
		ds = slices.DeleteFunc(ds, func(d store.Decision) bool { return d.Simulated })
	}
	if ds == nil {
		ds = []store.Decision{}
	}
	writeJSON(w, http.StatusOK, DecisionList{Decisions: ds})
	return nil
}

func (h *Handler) getDecision(w http.ResponseWriter, r *http.Request, caller string) error {
	d, err := h.cfg.Store.Decision(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if !h.readsEverything(caller) && !enforces(d) || caller != "" && d.Simulated {
		return store.ErrNotFound // as if it did not exist: the caller is not to learn of it
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (h *Handler) deleteDecision(w http.ResponseWriter, r *http.Request) error {
	if err := h.cfg.Store.DeleteDecision(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// SVIDRequest is the body of POST /v1/svid: a service joins with its join
// token and a CSR for a key it generated.
type SVIDRequest struct {
	Token   string `json:"token"`
	Service string `json:"service"`
	CSR     string `json:"csr"` // DER PKCS #10, standard base64
}

// SVIDResponse is the response to POST /v1/svid.
type SVIDResponse struct {
	SPIFFEID  string    `json:"spiffe_id"`
	SVIDPEM   string    `json:"svid_pem"`   // the chain, leaf first
	BundlePEM string    `json:"bundle_pem"` // the trust domain's X.509 bundle
	Expires   time.Time `json:"expires"`
}

func (h *Handler) postSVID(w http.ResponseWriter, r *http.Request) error {
	var req SVIDRequest
	if err := decodeJSON(w, r, h.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := ca.ValidateServiceName(req.Service); err != nil {
		return badRequest("service", err.Error())
	}
	if req.Token == "" {
		return badRequest("token", "token is missing")
	}
	if _, _, err := store.ParseJoinToken(req.Token); err != nil {
		return err // not in the format of a token: forged or mistyped
	}
	csr, err := base64.StdEncoding.DecodeString(req.CSR)
	if err != nil || len(csr) == 0 {
		return badRequest("csr", "csr must be a DER certificate request in standard base64")
	}
	// Sign before consuming the token: signing writes nothing, so a bad CSR
	// leaves the token usable, and a refused token discards the SVID.
	chain, err := h.cfg.CA.SignCSR(csr, req.Service, h.cfg.SVIDTTL)
	if err != nil {
		return err
	}
	if err := h.checkNotRevoked(r.Context(), req.Service); err != nil {
		return err
	}
	if _, err := h.cfg.Store.ConsumeJoinToken(r.Context(), req.Token, req.Service); err != nil {
		return err
	}
	h.writeSVID(w, http.StatusCreated, req.Service, chain)
	return nil
}

func (h *Handler) checkNotRevoked(ctx context.Context, service string) error {
	s, err := h.cfg.Store.Service(ctx, service)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !s.Revoked.IsZero() {
		return fmt.Errorf("%w: %s was revoked at %s", ca.ErrRevoked, service, s.Revoked.Format(time.RFC3339))
	}
	return nil
}

// RenewRequest is the body of POST /v1/svid/renew, sent over a TLS
// connection whose client certificate is the service's current SVID.
type RenewRequest struct {
	CSR string `json:"csr"` // DER PKCS #10 for the new key, standard base64
}

func (h *Handler) renewSVID(w http.ResponseWriter, r *http.Request) error {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return &apiError{status: http.StatusUnauthorized, code: "no_client_certificate",
			msg: "renewal needs the current SVID as the TLS client certificate"}
	}
	var req RenewRequest
	if err := decodeJSON(w, r, h.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	csr, err := base64.StdEncoding.DecodeString(req.CSR)
	if err != nil || len(csr) == 0 {
		return badRequest("csr", "csr must be a DER certificate request in standard base64")
	}
	// The handshake proved the client holds the SVID's key; VerifySVID
	// proves this CA issued it.
	service, err := h.cfg.CA.VerifySVID(r.TLS.PeerCertificates)
	if err != nil {
		return err
	}
	done, err := h.limit(w, r, service, false)
	if err != nil {
		return err
	}
	defer done()
	if err := h.checkNotRevoked(r.Context(), service); err != nil {
		return err
	}
	chain, err := h.cfg.CA.Renew(r.TLS.PeerCertificates, csr, h.cfg.SVIDTTL)
	if err != nil {
		return err
	}
	h.writeSVID(w, http.StatusOK, service, chain)
	return nil
}

func (h *Handler) writeSVID(w http.ResponseWriter, status int, service string, chain []*x509.Certificate) {
	var svid bytes.Buffer
	for _, c := range chain {
		pem.Encode(&svid, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	id, _ := ca.ServiceID(h.cfg.CA.TrustDomain(), service)
	writeJSON(w, status, SVIDResponse{
		SPIFFEID: id.String(), SVIDPEM: svid.String(), BundlePEM: string(h.cfg.CA.BundlePEM()),
		Expires: chain[0].NotAfter.UTC(),
	})
}

// revokeService returns the handler that revokes a service (its renewals
// and joins are refused from then on) or reinstates it.
func (h *Handler) revokeService(revoked bool) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("name")
		if err := ca.ValidateServiceName(name); err != nil {
			return badRequest("name", err.Error())
		}
		if err := h.cfg.Store.SetServiceRevoked(r.Context(), name, revoked); err != nil {
			return err
		}
		s, err := h.cfg.Store.Service(r.Context(), name)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, s)
		return nil
	}
}

// Bundle is the response to GET /v1/bundle.
type Bundle struct {
	TrustDomain string          `json:"trust_domain"`
	X509PEM     string          `json:"x509_bundle_pem"`
	JWKS        json.RawMessage `json:"jwks"` // the actor-token keys
}

func (h *Handler) getBundle(w http.ResponseWriter, r *http.Request) error {
	jwks := json.RawMessage(`{"keys":[]}`)
	ks, _, err := h.keySet(r.Context())
	if err != nil {
		return err
	}
	if ks != nil {
		data, err := ks.JWKS(h.cfg.Now())
		if err != nil {
			return err
		}
		jwks = data
	}
	writeJSON(w, http.StatusOK, Bundle{
		TrustDomain: h.cfg.CA.TrustDomain().Name(),
		X509PEM:     string(h.cfg.CA.BundlePEM()),
		JWKS:        jwks,
	})
	return nil
}

// WatchResult is the response to GET /v1/watch.
//
// A watcher whose ?since= is older than the changes the server still keeps
// (see Retention.Changes) gets one change of kind "reset" (store.ChangeReset)
// instead: it must reload all the state it holds (policy, decisions, keys,
// services), then watch from Revision.
type WatchResult struct {
	Changes []store.Change `json:"changes"` // empty if none came before the timeout
	// Revision is what to pass as ?since= next time.
	Revision int64 `json:"revision"`
}

// watch is a long poll: it returns the changes after ?since= as soon as
// there are any, or none after the watch timeout (or ?timeout=).
// ?since=latest returns the current revision at once. A since from before
// the oldest change kept returns a reset at once (the store's Changes says
// so).
func (h *Handler) watch(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := onlyParams(q, "since", "timeout"); err != nil {
		return err
	}
	var since int64
	if q.Get("since") == "latest" {
		// The current revision, at once: a client reads it, then the
		// state (policy, decisions, keys), then watches from it, and so
		// misses no change made in between.
		_, current, err := h.cfg.Store.Changes(r.Context(), math.MaxInt64)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, WatchResult{Changes: []store.Change{}, Revision: current})
		return nil
	}
	if s := q.Get("since"); s != "" {
		var err error
		if since, err = strconv.ParseInt(s, 10, 64); err != nil || since < 0 {
			return badRequest("since", "since must be a revision number (0 or more)")
		}
	}
	timeout := h.cfg.WatchTimeout
	if s := q.Get("timeout"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > MaxWatchTimeout {
			return badRequest("timeout", fmt.Sprintf("timeout must be a duration from 0s to %v", MaxWatchTimeout))
		}
		timeout = d
	}
	ctx, cancel := context.WithCancel(r.Context()) // ends the subscription
	defer cancel()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	// Subscribe before reading, so that a change committed in between wakes
	// us rather than being missed.
	woken, err := h.cfg.Store.Subscribe(ctx)
	if err != nil {
		return err
	}
	for {
		changes, current, err := h.watchers.changes(r.Context(), h.cfg.Store, since)
		if err != nil {
			return err
		}
		if len(changes) > 0 {
			writeJSON(w, http.StatusOK, WatchResult{Changes: changes, Revision: current})
			return nil
		}
		select {
		case _, ok := <-woken:
			if ok {
				continue
			}
		case <-timer.C:
		case <-h.stopping:
		case <-ctx.Done():
		}
		if err := r.Context().Err(); err != nil {
			return err
		}
		// Timed out, ended by EndWatches, or the store closed the
		// subscription: nothing new.
		writeJSON(w, http.StatusOK, WatchResult{Changes: []store.Change{}, Revision: max(since, current)})
		return nil
	}
}

// ServiceList is the response to GET /v1/services.
type ServiceList struct {
	Services []store.Service `json:"services"`
}

func (h *Handler) getServices(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := onlyParams(q, "module", "exposed"); err != nil {
		return err
	}
	f := store.ServiceFilter{Module: q.Get("module")}
	if s := q.Get("exposed"); s != "" {
		var err error
		if f.Exposed, err = strconv.ParseBool(s); err != nil {
			return badRequest("exposed", "exposed must be true or false")
		}
	}
	ss, err := h.cfg.Store.Services(r.Context(), f)
	if err != nil {
		return err
	}
	if ss == nil {
		ss = []store.Service{}
	}
	writeJSON(w, http.StatusOK, ServiceList{Services: ss})
	return nil
}
