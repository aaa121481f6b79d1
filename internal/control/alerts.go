package control

import (
	"errors"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/detect"
	"github.com/rampartsec/rampart/internal/store"
)

// The detection endpoints (admin token):
//
//	GET  /v1/alerts                   ?scenario= &since= &limit=: newest first
//	GET  /v1/alerts/{id}
//	GET  /v1/decisions/{id}/explain   the decision, its alert and the evidence events
//	GET  /v1/scenarios                the scenarios in force and the detector's counters
//	POST /v1/scenarios/replay         ReplayRequest: what scenarios would raise over stored events

// AlertList is the response to GET /v1/alerts.
type AlertList struct {
	Alerts []store.Alert `json:"alerts"`
}

func (h *Handler) getAlerts(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := onlyParams(q, "scenario", "since", "limit"); err != nil {
		return err
	}
	f := store.AlertFilter{Scenario: q.Get("scenario")}
	var err error
	if f.Since, err = timeParam(q, "since", h.cfg.Now()); err != nil {
		return err
	}
	if s := q.Get("limit"); s != "" {
		if f.Limit, err = strconv.Atoi(s); err != nil || f.Limit <= 0 || f.Limit > store.MaxQueryLimit {
			return badRequest("limit", "limit must be an integer from 1 to "+strconv.Itoa(store.MaxQueryLimit))
		}
	}
	as, err := h.cfg.Store.Alerts(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, AlertList{Alerts: as})
	return nil
}

func (h *Handler) getAlert(w http.ResponseWriter, r *http.Request) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	a, err := h.cfg.Store.Alert(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

// Explanation is the response to GET /v1/decisions/{id}/explain: why a
// decision was made. Alert is nil for a decision made by hand (origin
// manual) or whose alert was pruned; Events are the evidence events still
// stored.
type Explanation struct {
	Decision store.Decision `json:"decision"`
	Alert    *store.Alert   `json:"alert,omitempty"`
	Events   []store.Event  `json:"events"`
}

func (h *Handler) explainDecision(w http.ResponseWriter, r *http.Request) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	d, err := h.cfg.Store.Decision(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	ex := Explanation{Decision: d, Events: []store.Event{}}
	if d.AlertID != "" {
		a, err := h.cfg.Store.Alert(r.Context(), d.AlertID)
		switch {
		case err == nil:
			ex.Alert = &a
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
	}
	if len(d.Evidence) > 0 {
		if ex.Events, err = h.cfg.Store.EventsByID(r.Context(), d.Evidence); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, ex)
	return nil
}

// ScenarioInfo describes a scenario in force (GET /v1/scenarios).
type ScenarioInfo struct {
	Name        string        `json:"name"`
	Description string        `json:"description,omitempty"`
	Type        detect.Type   `json:"type"`
	File        string        `json:"file"`
	Line        int           `json:"line,omitempty"`
	Capacity    int           `json:"capacity,omitempty"`
	Leakspeed   string        `json:"leakspeed,omitempty"`
	Blackhole   string        `json:"blackhole,omitempty"`
	Scope       detect.Scope  `json:"scope,omitempty"` // empty: alerts only
	Action      detect.Action `json:"action,omitempty"`
	TTL         string        `json:"ttl,omitempty"`
	Simulate    bool          `json:"simulate,omitempty"`
}

// ScenarioList is the response to GET /v1/scenarios.
type ScenarioList struct {
	Scenarios []ScenarioInfo `json:"scenarios"`
	// Detector is this replica's detector's counters; nil when the
	// control plane runs no detection.
	Detector *DetectorStats `json:"detector,omitempty"`
}

func scenarioInfo(s *detect.Scenario) ScenarioInfo {
	si := ScenarioInfo{Name: s.Name, Description: s.Description, Type: s.Type, File: s.File, Line: s.Line, Capacity: s.Capacity}
	if s.Leakspeed > 0 {
		si.Leakspeed = s.Leakspeed.String()
	}
	if s.Blackhole > 0 {
		si.Blackhole = s.Blackhole.String()
	}
	if r := s.Response; r != nil {
		si.Scope, si.Action, si.TTL, si.Simulate = r.Scope, r.Action, r.TTL.String(), r.Simulate
	}
	return si
}

// scenarios returns the scenarios in force: the detector's, or the
// built-ins when this control plane runs none.
func (h *Handler) scenarios() []*detect.Scenario {
	if h.cfg.Detector != nil {
		return h.cfg.Detector.Scenarios()
	}
	return detect.Builtin()
}

func (h *Handler) getScenarios(w http.ResponseWriter, r *http.Request) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	list := ScenarioList{Scenarios: []ScenarioInfo{}}
	for _, s := range h.scenarios() {
		list.Scenarios = append(list.Scenarios, scenarioInfo(s))
	}
	if h.cfg.Detector != nil {
		st := h.cfg.Detector.Stats()
		list.Detector = &st
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// ReplayRequest is the body of POST /v1/scenarios/replay: run the
// scenarios in force, with those of Scenarios (file name → YAML) replacing
// or added to them, over the stored events of [Since, Until), and say what
// they would raise. Nothing is stored.
type ReplayRequest struct {
	Since     string            `json:"since"`           // RFC 3339, or a duration ago ("24h"); required
	Until     string            `json:"until,omitempty"` // likewise; "" means now
	Scenarios map[string]string `json:"scenarios,omitempty"`
}

// ReplayResult is the response to POST /v1/scenarios/replay.
type ReplayResult struct {
	Events    int            `json:"events"`    // events read (at most MaxReplayEvents)
	Truncated bool           `json:"truncated"` // the window held more events, or raised more alerts, than a replay reads
	Alerts    []detect.Alert `json:"alerts"`
}

func (h *Handler) replay(w http.ResponseWriter, r *http.Request) error {
	var req ReplayRequest
	if err := decodeJSON(w, r, h.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	now := h.cfg.Now()
	q := map[string][]string{"since": {req.Since}, "until": {req.Until}}
	if req.Since == "" {
		return badRequest("since", "since is required: an RFC 3339 time or a duration ago (24h)")
	}
	since, err := timeParam(q, "since", now)
	if err != nil {
		return err
	}
	until, err := timeParam(q, "until", now)
	if err != nil {
		return err
	}
	if until.IsZero() {
		until = now
	}
	if !until.After(since) {
		return badRequest("until", "until must be after since")
	}
	scenarios := h.scenarios()
	if len(req.Scenarios) > 0 {
		names := make([]string, 0, len(req.Scenarios))
		for name := range req.Scenarios {
			names = append(names, name)
		}
		sort.Strings(names)
		var loaded []*detect.Scenario
		for _, name := range names {
			ss, err := detect.Parse(name, []byte(req.Scenarios[name]))
			if err != nil {
				return badRequest("scenarios", err.Error())
			}
			loaded = append(loaded, ss...)
		}
		scenarios = detect.Merge(scenarios, loaded)
	}
	cfg := detect.Config{Scenarios: scenarios}
	if d := h.cfg.Detector; d != nil {
		cfg.MaxKeys, cfg.Allow = d.cfg.MaxKeys, d.cfg.Allow
	}
	if _, err := detect.New(cfg); err != nil {
		return badRequest("scenarios", err.Error())
	}
	start := time.Now()
	alerts, n, err := replay(r.Context(), h.cfg.Store, cfg, since, until)
	if err != nil {
		return err
	}
	h.log.Info("control: replay", "since", since, "until", until, "events", n, "alerts", len(alerts), "took", time.Since(start))
	writeJSON(w, http.StatusOK, ReplayResult{Events: n, Alerts: alerts,
		Truncated: n >= MaxReplayEvents || len(alerts) >= MaxReplayAlerts})
	return nil
}
