// Package web is the control plane's dashboard: what Rampart saw, from the
// external actor to the line of code, and the buttons that answer it. It
// is server-rendered HTML (html/template) with its assets embedded in the
// binary, a little plain JavaScript for the live overview (server-sent
// events), and no build step.
//
// 'rampart server' serves it under /ui/ on the API's HTTPS listener
// (control.ServerConfig.Dashboard). Every page needs a session: signing in
// with the admin token, or a person's own credential (Config.People),
// creates one, kept in memory with a bound and a server-side expiry, its
// cookie HttpOnly, Secure and SameSite=Strict. Every action (a form POST)
// carries the session's CSRF token, compared in constant time, and is
// refused from another origin; failed sign-ins are rate-limited. Signing in
// and out, blocking and lifting are stored as events of kind "audit" (who,
// what, when), beside the security events.
//
// Everything an attacker chose (inputs, paths, user names, statements) is
// escaped by html/template in its context, SVG text included; no data is
// ever marked template.HTML. The Content-Security-Policy allows scripts,
// styles and images from the dashboard itself only.
package web

import (
	"context"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the dashboard is served.
const Prefix = control.DashboardPath

// Defaults of a Config.
const (
	DefaultSessionTTL  = 8 * time.Hour    // a session's whole life
	DefaultIdleTimeout = time.Hour        // a session unused this long ends
	DefaultMaxSessions = 10000            // sessions held at once
	SignInLinkTTL      = 5 * time.Minute  // life of a one-time sign-in link
	maxSignInLinks     = 64               // links not yet used, held at once
	liveInterval       = 2 * time.Second  // the overview is pushed at most this often
	streamLife         = 10 * time.Minute // a stream ends then; the browser reconnects
)

// Config configures a Handler.
type Config struct {
	Store store.Store // required
	// AdminTokenHash is the SHA-256 of the admin token; required. Signing
	// in with the admin token makes a session named "admin".
	AdminTokenHash []byte
	// People are per-person credentials: name → SHA-256 of the secret
	// that person signs in with. Their actions are audited under their
	// name.
	People map[string][]byte
	// Scenarios returns the detection scenarios in force and the
	// detector's counters; nil shows none.
	Scenarios func() ([]control.ScenarioInfo, *control.DetectorStats)
	// API, if set, is the control plane's handler: the pages then ask it
	// what the database can count (ControlData).
	API *control.Handler
	// Data answers the pages' questions about events; nil means
	// ControlData with API, else StoreData.
	Data Data
	// SessionTTL, IdleTimeout and MaxSessions bound sessions; zero means
	// the defaults. When MaxSessions are held, a new sign-in ends the
	// session that would expire first.
	SessionTTL  time.Duration
	IdleTimeout time.Duration
	MaxSessions int
	Logger      *slog.Logger
	Now         func() time.Time // nil means time.Now
}

// FromControl is the Config of the dashboard of a control plane.
func FromControl(c control.DashboardConfig) Config {
	return Config{Store: c.Store, AdminTokenHash: c.AdminTokenHash, Scenarios: c.Scenarios, API: c.API, Logger: c.Logger}
}

// Mount is a control.ServerConfig.Dashboard that serves the dashboard.
func Mount(c control.DashboardConfig) (http.Handler, error) { return New(FromControl(c)) }

// Handler serves the dashboard. It is safe for concurrent use.
type Handler struct {
	cfg   Config
	data  Data
	log   *slog.Logger
	mux   *http.ServeMux
	pages map[string]*template.Template
	csrf  *http.CrossOriginProtection

	sessions *sessions
	limiter  *signInLimiter
	links    *signInLinks
	live     *live

	stopping chan struct{} // closed by EndStreams
	stopOnce sync.Once
}

// New returns the dashboard of cfg.
func New(cfg Config) (*Handler, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("web: Config.Store is nil")
	case len(cfg.AdminTokenHash) != sha256.Size:
		return nil, errors.New("web: Config.AdminTokenHash is not a SHA-256 hash")
	case cfg.SessionTTL < 0 || cfg.IdleTimeout < 0 || cfg.MaxSessions < 0:
		return nil, errors.New("web: Config.SessionTTL, IdleTimeout and MaxSessions must not be negative")
	}
	for name, hash := range cfg.People {
		if len(hash) != sha256.Size {
			return nil, fmt.Errorf("web: Config.People[%q] is not a SHA-256 hash", name)
		}
		if name == "" || name == "admin" || len(name) > 64 {
			return nil, fmt.Errorf("web: Config.People: %q is not a name a person may have", name)
		}
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.Data != nil:
	case cfg.API != nil:
		cfg.Data = ControlData(cfg.API, cfg.Store)
	default:
		cfg.Data = StoreData(cfg.Store)
	}
	h := &Handler{cfg: cfg, data: cfg.Data, log: cfg.Logger, mux: http.NewServeMux(), stopping: make(chan struct{}),
		csrf: http.NewCrossOriginProtection()}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.sessions = newSessions(cfg.MaxSessions, cfg.SessionTTL, cfg.IdleTimeout)
	h.limiter = newSignInLimiter()
	h.links = &signInLinks{m: map[[32]byte]time.Time{}}
	h.live = newLive(h)
	var err error
	if h.pages, err = parsePages(); err != nil {
		return nil, err
	}
	h.routes()
	return h, nil
}

// EndStreams ends the live streams in progress, and refuses new ones, so
// that a server shutting down is not held by them.
func (h *Handler) EndStreams() { h.stopOnce.Do(func() { close(h.stopping) }) }

func (h *Handler) routes() {
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix(Prefix+"static/", http.FileServerFS(static))
	h.mux.Handle("GET "+Prefix+"static/", cacheStatic(files))
	h.mux.HandleFunc("GET "+Prefix+"login", h.loginPage)
	h.mux.HandleFunc("POST "+Prefix+"login", h.login)
	h.mux.HandleFunc("GET "+Prefix+"login/link", h.loginLink)
	h.mux.Handle("POST "+Prefix+"logout", h.action(h.logout))

	h.mux.Handle("GET "+Prefix+"{$}", h.page(h.overview))
	h.mux.Handle("GET "+Prefix+"live", h.page(h.liveFragment))
	h.mux.Handle("GET "+Prefix+"stream", h.page(h.stream))
	h.mux.Handle("GET "+Prefix+"events", h.page(h.events))
	h.mux.Handle("GET "+Prefix+"events/{id}", h.page(h.event))
	h.mux.Handle("GET "+Prefix+"actor", h.page(h.actor))
	h.mux.Handle("GET "+Prefix+"decisions", h.page(h.decisions))
	h.mux.Handle("POST "+Prefix+"decisions", h.action(h.createDecision))
	h.mux.Handle("POST "+Prefix+"decisions/{id}/lift", h.action(h.liftDecision))
	h.mux.Handle("GET "+Prefix+"alerts", h.page(h.alerts))
	h.mux.Handle("GET "+Prefix+"alerts/{id}", h.page(h.alert))
	h.mux.Handle("GET "+Prefix+"scenarios", h.page(h.scenarios))
	h.mux.Handle("GET "+Prefix+"services", h.page(h.services))
	h.mux.Handle("GET "+Prefix+"services/{name}", h.page(h.service))
	h.mux.Handle("GET "+Prefix+"policy", h.page(h.policy))
	h.mux.Handle("POST "+Prefix+"policy", h.action(h.proposePolicy))
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	if _, pattern := h.mux.Handler(r); pattern == "" {
		// Unknown to the dashboard: say so only to a session.
		if _, ok := h.sessions.get(r, h.cfg.Now()); !ok {
			h.toLogin(w, r)
			return
		}
		h.errorPage(w, r, http.StatusNotFound, "No such page.")
		return
	}
	h.mux.ServeHTTP(w, r)
}

// securityHeaders are on every response: scripts, styles and images from
// the dashboard only, no framing, no sniffing, no referrer to elsewhere.
func securityHeaders(hd http.Header) {
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	hd.Set("Strict-Transport-Security", "max-age=31536000")
}

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "private, max-age=300")
		next.ServeHTTP(w, r)
	})
}

// pageFunc renders a page for a session.
type pageFunc func(w http.ResponseWriter, r *http.Request, s *session) error

// page serves fn to a session; anyone else is sent to sign in.
func (h *Handler) page(fn pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := h.sessions.get(r, h.cfg.Now())
		if !ok {
			h.toLogin(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		if err := fn(w, r, s); err != nil {
			h.fail(w, r, err)
		}
	})
}

// action serves fn to a session whose form carries its CSRF token, sent
// from the dashboard's own origin.
func (h *Handler) action(fn pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := h.sessions.get(r, h.cfg.Now())
		if !ok {
			h.errorPage(w, r, http.StatusUnauthorized, "Your session has ended: sign in again.")
			return
		}
		if err := h.csrf.Check(r); err != nil {
			h.errorPage(w, r, http.StatusForbidden, "Refused: the request did not come from the dashboard.")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, store.MaxPolicySize+64<<10)
		if err := r.ParseForm(); err != nil {
			h.errorPage(w, r, http.StatusBadRequest, "The form could not be read.")
			return
		}
		if !s.checkCSRF(r.PostForm.Get("csrf")) {
			h.log.Warn("web: action refused: wrong CSRF token", "who", s.who, "path", r.URL.Path)
			h.errorPage(w, r, http.StatusForbidden, "Refused: the form's security token is not this session's. Reload the page and try again.")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		if err := fn(w, r, s); err != nil {
			h.fail(w, r, err)
		}
	})
}

// toLogin sends a browser without a session to the sign-in page, and
// anything else a 401.
func (h *Handler) toLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, "/stream") {
		next := ""
		if r.URL.Path != Prefix {
			next = "?next=" + urlQueryEscape(r.URL.RequestURI())
		}
		http.Redirect(w, r, Prefix+"login"+next, http.StatusSeeOther)
		return
	}
	h.errorPage(w, r, http.StatusUnauthorized, "Sign in first.")
}

// userError is an error whose message is for the person at the page.
type userError struct {
	status int
	msg    string
}

func (e *userError) Error() string { return e.msg }

func badInput(msg string) error { return &userError{http.StatusBadRequest, msg} }

// fail answers err: a userError as it says, ErrNotFound as 404, anything
// else as 500, logged.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ue *userError
	switch {
	case errors.As(err, &ue):
		h.errorPage(w, r, ue.status, ue.msg)
	case errors.Is(err, store.ErrNotFound):
		h.errorPage(w, r, http.StatusNotFound, "Not found: it does not exist, or was pruned.")
	case errors.Is(err, store.ErrInvalid):
		h.errorPage(w, r, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "store: "))
	case errors.Is(err, context.Canceled):
	default:
		// The control plane's own errors say their status, as its API
		// answers them.
		if status, body := control.ErrorResponse(err); status >= 400 && status < 500 {
			h.errorPage(w, r, status, body.Error)
			return
		}
		h.log.Error("web: page failed", "path", r.URL.Path, "err", err)
		h.errorPage(w, r, http.StatusInternalServerError, "Something went wrong on the server; it is logged.")
	}
}

func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s, _ := h.sessions.get(r, h.cfg.Now())
	h.render(w, r, status, "error", s, struct {
		Status  int
		Message string
	}{status, msg})
}
