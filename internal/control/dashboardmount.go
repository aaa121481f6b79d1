package control

import (
	"log/slog"
	"net/http"

	"github.com/rampartsec/rampart/internal/detect"
	"github.com/rampartsec/rampart/internal/store"
)

// DashboardPath is where a Server with ServerConfig.Dashboard serves the
// dashboard, beside the API.
const DashboardPath = "/ui/"

// DashboardConfig is what the control plane gives the web dashboard
// (ServerConfig.Dashboard): its store, the admin credential and the
// detection in force. The dashboard lives in package web, which imports
// this one; the server only mounts it.
type DashboardConfig struct {
	Store          store.Store
	AdminTokenHash []byte // SHA-256 of the admin token
	// Scenarios returns the detection scenarios in force, with the
	// detector's counters when one runs (nil then otherwise).
	Scenarios func() ([]ScenarioInfo, *DetectorStats)
	// API is the control plane's handler, whose methods answer the
	// dashboard's questions as its endpoints do (Overview, EventDetail,
	// ActorTimeline, Graph, PolicyDryRun…).
	API    *Handler
	Logger *slog.Logger
}

// dashboardConfig is the DashboardConfig of a server over data.
func dashboardConfig(data *Data, detector *Detector, api *Handler, logger *slog.Logger) DashboardConfig {
	return DashboardConfig{
		Store: data.Store, AdminTokenHash: data.AdminTokenHash, API: api, Logger: logger,
		Scenarios: func() ([]ScenarioInfo, *DetectorStats) {
			list := detect.Builtin()
			var stats *DetectorStats
			if detector != nil {
				list = detector.Scenarios()
				st := detector.Stats()
				stats = &st
			}
			out := make([]ScenarioInfo, 0, len(list))
			for _, s := range list {
				out = append(out, scenarioInfo(s))
			}
			return out, stats
		},
	}
}

// withDashboard serves ui under DashboardPath and api elsewhere, and
// sends a browser that asks for / to the dashboard.
func withDashboard(api, ui http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(DashboardPath, ui)
	mux.Handle("GET /{$}", http.RedirectHandler(DashboardPath, http.StatusSeeOther))
	mux.Handle("/", api)
	return mux
}
