package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/rampartsec/rampart/internal/store"
)

// DefaultServerAddr is ServerConfig.Addr when empty.
const DefaultServerAddr = "127.0.0.1:8443"

// Defaults of a Retention, for its zero fields.
const (
	DefaultRetainEvents     = 30 * 24 * time.Hour // events, after their time
	DefaultRetainChanges    = 24 * time.Hour      // watch changes, after they were made
	DefaultRetainDecisions  = 7 * 24 * time.Hour  // decisions, after they expire
	DefaultRetainJoinTokens = 24 * time.Hour      // join tokens, after they are used or expire
	DefaultRetainInstances  = 7 * 24 * time.Hour  // instances, after their last heartbeat
	DefaultPruneInterval    = time.Hour           // between prunes
)

// Retention says how long a Server keeps what the control plane no longer
// needs: every Interval, from the start, it deletes what is older
// (store.Store.Prune), so that storage stays bounded. A zero field means its
// default (DefaultRetainEvents…); a negative one keeps that kind forever.
//
// Deletes are idempotent, so replicas over one store may all prune; under
// PostgreSQL they take turns (an advisory lock), and a replica that finds
// another pruning skips its turn.
type Retention struct {
	Events time.Duration
	// Changes bounds how far behind a watcher may fall and still catch up
	// change by change; one further behind is told to reload all its state
	// (a change of kind "reset" on GET /v1/watch).
	Changes    time.Duration
	Decisions  time.Duration
	JoinTokens time.Duration
	Instances  time.Duration
	Interval   time.Duration
}

// pruneConfig returns what to prune at now.
func (r Retention) pruneConfig(now time.Time) store.PruneConfig {
	before := func(keep, def time.Duration) time.Time {
		switch {
		case keep < 0:
			return time.Time{} // forever
		case keep == 0:
			keep = def
		}
		return now.Add(-keep)
	}
	return store.PruneConfig{
		EventsBefore:    before(r.Events, DefaultRetainEvents),
		ChangesBefore:   before(r.Changes, DefaultRetainChanges),
		DecisionsBefore: before(r.Decisions, DefaultRetainDecisions),
		TokensBefore:    before(r.JoinTokens, DefaultRetainJoinTokens),
		InstancesBefore: before(r.Instances, DefaultRetainInstances),
	}
}

// prune prunes st on r's schedule until ctx is done. A failed prune is
// logged and tried again at the next tick: the server goes on serving.
func (r Retention) prune(ctx context.Context, st store.Store, log *slog.Logger) {
	interval := r.Interval
	if interval <= 0 {
		interval = DefaultPruneInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		start := time.Now()
		res, err := st.Prune(ctx, r.pruneConfig(start))
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, store.ErrBusy):
			log.Debug("control: prune skipped: another replica is pruning")
		case err != nil:
			log.Warn("control: prune failed; retrying at the next interval", "err", err, "deleted", res.Total(), "interval", interval)
		case res.Total() > 0:
			log.Info("control: pruned", "events", res.Events, "alerts", res.Alerts, "changes", res.Changes, "decisions", res.Decisions,
				"join_tokens", res.JoinTokens, "instances", res.Instances, "took", time.Since(start))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ServerConfig configures StartServer.
type ServerConfig struct {
	// Dir is a data directory made by Init; required.
	Dir string
	// CAKEK is the key-encryption key of the CA key (OpenConfig.CAKEK).
	CAKEK []byte
	// Addr is the listen address; "" means DefaultServerAddr, and port 0
	// a free port (see Server.Addr).
	Addr string
	// Hosts are DNS names or IP addresses for the API's certificate besides
	// localhost, 127.0.0.1, ::1 and the host of Addr.
	Hosts []string
	// PostgresDSN, if set, stores in PostgreSQL instead of SQLite in Dir
	// (OpenConfig.PostgresDSN).
	PostgresDSN string
	// ActorKeyRotation and ActorKeyPublishAhead are the schedule of the
	// actor-token keys (ActorKeysConfig.Rotation and PublishAhead).
	ActorKeyRotation     time.Duration
	ActorKeyPublishAhead time.Duration
	// GatewayServices, SVIDTTL, WatchTimeout and Quotas are the Handler's
	// (Config.GatewayServices, SVIDTTL, WatchTimeout and Quotas).
	GatewayServices []string
	SVIDTTL         time.Duration
	WatchTimeout    time.Duration
	Quotas          Quotas
	// Retention is how long the server keeps events, watch changes and
	// other records before it prunes them; the zero value keeps each for
	// its default.
	Retention Retention
	// Detect, unless nil, runs the detection engine over the stored events
	// (see Detector); nil runs none.
	Detect *DetectConfig
	// Dashboard, unless nil, makes the web dashboard (package web), which
	// the server then serves under DashboardPath beside the API, on the
	// same listener. A handler that has an EndStreams method has it called
	// when the server shuts down, like the watches' long polls.
	Dashboard func(DashboardConfig) (http.Handler, error)
	// Logger receives the store's, the actor keys' and the API's messages;
	// nil discards them.
	Logger *slog.Logger
}

// Server is a control plane serving its API over TLS: the data directory
// opened, the Handler, the actor-token key schedule running (ActorKeys.Run),
// the store pruned on the Retention schedule, and an http.Server with timeouts that let long polls end first. It is
// what 'rampart server' runs; the demo and the tests run it in process.
type Server struct {
	addr string
	td   spiffeid.TrustDomain
	data *Data
	srv  *http.Server

	stopBackground context.CancelFunc // ends the key schedule and the pruning
	running        sync.WaitGroup     // the HTTP server, the key schedule and the pruning

	done     chan struct{} // closed when the server stops, see Done
	doneOnce sync.Once
	err      error // why it stopped by itself; set before done closes

	stopOnce sync.Once
	closeErr error
}

// StartServer opens the data directory, binds cfg.Addr and serves the API
// in the background until Shutdown or Close, which must be called in any
// case to release the store.
func StartServer(ctx context.Context, cfg ServerConfig) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("control: ServerConfig.Dir is required")
	}
	addr := cfg.Addr
	if addr == "" {
		addr = DefaultServerAddr
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	data, err := OpenData(ctx, OpenConfig{
		Dir: cfg.Dir, PostgresDSN: cfg.PostgresDSN, CAKEK: cfg.CAKEK, Logger: cfg.Logger,
		ActorKeyRotation: cfg.ActorKeyRotation, ActorKeyPublishAhead: cfg.ActorKeyPublishAhead,
	})
	if err != nil {
		return nil, err
	}
	var detector *Detector
	if cfg.Detect != nil {
		dc := *cfg.Detect
		if dc.Logger == nil {
			dc.Logger = cfg.Logger
		}
		if detector, err = NewDetector(data.Store, dc); err != nil {
			data.Store.Close()
			return nil, err
		}
	}
	h, err := New(Config{
		Store: data.Store, CA: data.CA, ActorKeys: data.ActorKeys, GatewayServices: cfg.GatewayServices,
		AdminTokenHash: data.AdminTokenHash, SVIDTTL: cfg.SVIDTTL, WatchTimeout: cfg.WatchTimeout, Quotas: cfg.Quotas, Logger: cfg.Logger,
		Detector: detector,
	})
	if err != nil {
		data.Store.Close()
		return nil, err
	}
	var handler http.Handler = h
	var endStreams func()
	if cfg.Dashboard != nil {
		ui, err := cfg.Dashboard(dashboardConfig(data, detector, h, logger))
		if err != nil {
			data.Store.Close()
			return nil, fmt.Errorf("control: dashboard: %w", err)
		}
		if e, ok := ui.(interface{ EndStreams() }); ok {
			endStreams = e.EndStreams
		}
		handler = withDashboard(h, ui)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		data.Store.Close()
		return nil, fmt.Errorf("control: server: %w", err)
	}
	names := []string{"localhost", "127.0.0.1", "::1"}
	if host, _, err := net.SplitHostPort(addr); err == nil && host != "" {
		if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
			names = append(names, host)
		}
	}
	names = append(names, cfg.Hosts...)
	tlsConfig, err := TLSConfig(data.CA, names)
	if err != nil {
		ln.Close()
		data.Store.Close()
		return nil, err
	}
	s := &Server{
		addr: ln.Addr().String(), td: data.CA.TrustDomain(), data: data, done: make(chan struct{}),
		srv: &http.Server{
			Handler:           handler,
			TLSConfig:         tlsConfig,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       time.Minute,
			WriteTimeout:      MaxWatchTimeout + 30*time.Second, // a long poll must end first
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
	}
	s.srv.RegisterOnShutdown(h.EndWatches)
	if endStreams != nil {
		s.srv.RegisterOnShutdown(endStreams)
	}
	// Keep the actor-token keys on schedule, with the other servers over
	// the store, until the server stops.
	bgCtx, stopBackground := context.WithCancel(context.Background())
	s.stopBackground = stopBackground
	s.running.Go(func() {
		// An error after the stop was asked for is the stop itself
		// (a canceled subscription), not a failure.
		if err := data.ActorKeys.Run(bgCtx); err != nil && bgCtx.Err() == nil {
			// Without its schedule this server would stop rotating
			// keys: better stop, and be restarted.
			s.fail(err)
		}
	})
	s.running.Go(func() { cfg.Retention.prune(bgCtx, data.Store, logger) })
	if detector != nil {
		s.running.Go(func() {
			if err := detector.Run(bgCtx); err != nil && bgCtx.Err() == nil {
				s.fail(err)
			}
		})
	}
	s.running.Go(func() {
		if err := s.srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
			s.fail(fmt.Errorf("control: serve: %w", err))
		}
	})
	return s, nil
}

// fail stops a server that cannot go on, and records why.
func (s *Server) fail(err error) {
	s.doneOnce.Do(func() {
		s.err = err
		close(s.done)
	})
	s.srv.Close()
	s.stopBackground()
}

// Addr returns the address the server listens on, host:port.
func (s *Server) Addr() string { return s.addr }

// URL returns the API's base URL, https://host:port.
func (s *Server) URL() string { return "https://" + s.addr }

// TrustDomain returns the trust domain of the data directory's CA.
func (s *Server) TrustDomain() spiffeid.TrustDomain { return s.td }

// Done is closed when the server stops serving: after Shutdown or Close,
// or by itself when its listener or its key schedule fails (see Err).
func (s *Server) Done() <-chan struct{} { return s.done }

// Err returns why the server stopped by itself, or nil.
func (s *Server) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Shutdown stops the server gracefully: it stops accepting connections,
// ends the long polls in progress (their watchers poll again, at another
// replica), and waits for the requests in flight until ctx is done, when it
// closes the remaining connections. It then closes the store. It returns
// ctx's error if requests had to be cut short.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	return errors.Join(err, s.stop())
}

// Close stops the server at once, closing every connection, as if the
// control plane went down, and closes the store.
func (s *Server) Close() error {
	s.srv.Close()
	return s.stop()
}

func (s *Server) stop() error {
	s.stopOnce.Do(func() {
		s.stopBackground()
		s.running.Wait()
		s.doneOnce.Do(func() { close(s.done) })
		s.closeErr = s.data.Store.Close()
	})
	return s.closeErr
}
