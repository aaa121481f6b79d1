package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Listeners are the gateway's bound sockets; nil ones are not served.
type Listeners struct {
	HTTP, HTTPS, Admin net.Listener
}

// Bind binds the addresses of the configuration.
func Bind(cfg *Config) (*Listeners, error) {
	var ls Listeners
	for _, l := range []struct {
		addr string
		to   *net.Listener
	}{{cfg.Listen.HTTP, &ls.HTTP}, {cfg.Listen.HTTPS, &ls.HTTPS}, {cfg.Listen.Admin, &ls.Admin}} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			ls.Close()
			return nil, fmt.Errorf("gateway: listen: %w", err)
		}
		*l.to = ln
	}
	return &ls, nil
}

// Close closes the listeners.
func (ls *Listeners) Close() {
	for _, l := range []net.Listener{ls.HTTP, ls.HTTPS, ls.Admin} {
		if l != nil {
			l.Close()
		}
	}
}

// Serve serves on ls until ctx ends, then shuts down gracefully: the
// listeners close, requests in flight get up to grace to finish.
// Connections upgraded to another protocol (WebSocket), which the server
// no longer tracks, get the rest of grace and are then closed, so that
// Serve returns with nothing of the gateway's still running.
func (g *Gateway) Serve(ctx context.Context, ls *Listeners, grace time.Duration) error {
	var tlsConfig *tls.Config
	if ls.HTTPS != nil {
		// Before any server starts, so that an error leaves none running.
		cert, err := tls.LoadX509KeyPair(g.cfg.Listen.TLSCert, g.cfg.Listen.TLSKey)
		if err != nil {
			return fmt.Errorf("gateway: listen.tls_cert/tls_key: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	// Requests' contexts derive from base, which ends after the grace: the
	// reverse proxy then closes the upgraded connections it is copying.
	base, endRequests := context.WithCancel(context.Background())
	defer endRequests()
	var running atomic.Int64 // handlers running, upgraded ones included
	track := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			running.Add(1)
			defer running.Add(-1)
			h.ServeHTTP(w, r)
		})
	}
	lim := g.cfg.Limits
	newServer := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler:           track(h),
			ReadHeaderTimeout: time.Duration(lim.ReadHeaderTimeout),
			ReadTimeout:       time.Duration(lim.ReadTimeout),
			WriteTimeout:      time.Duration(lim.WriteTimeout),
			IdleTimeout:       time.Duration(lim.IdleTimeout),
			MaxHeaderBytes:    lim.MaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
			BaseContext:       func(net.Listener) context.Context { return base },
		}
	}
	var servers []*http.Server
	errc := make(chan error, 3)
	serve := func(srv *http.Server, ln net.Listener, tlsOn bool) {
		servers = append(servers, srv)
		go func() {
			var err error
			if tlsOn {
				err = srv.ServeTLS(ln, "", "")
			} else {
				err = srv.Serve(ln)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	if ls.HTTP != nil {
		serve(newServer(g.Handler()), ls.HTTP, false)
	}
	if ls.HTTPS != nil {
		srv := newServer(g.Handler())
		srv.TLSConfig = tlsConfig
		serve(srv, ls.HTTPS, true)
	}
	if ls.Admin != nil {
		serve(newServer(g.AdminHandler()), ls.Admin, false)
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	// All at once: a server waiting for its requests must not keep the
	// others' listeners open.
	var shutdown sync.WaitGroup
	for _, srv := range servers {
		shutdown.Go(func() {
			if srv.Shutdown(sctx) != nil {
				srv.Close()
			}
		})
	}
	shutdown.Wait()
	// Upgraded connections have until the end of the grace.
	idle := func(until <-chan struct{}) bool {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for running.Load() > 0 {
			select {
			case <-until:
				return false
			case <-tick.C:
			}
		}
		return true
	}
	if !idle(sctx.Done()) {
		endRequests()
		after, stop := context.WithTimeout(context.Background(), time.Second)
		defer stop()
		if !idle(after.Done()) {
			g.log.Warn("rampart gateway: handlers still running a second after the grace period", "handlers", running.Load())
		}
	}
	return err
}
