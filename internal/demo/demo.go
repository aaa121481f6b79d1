// Package demo runs Rampart's one-command demo: the sample shop service behind
// the SDK, a live SQL injection attempt against it, and the event it produced.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/examples/shop"
	"github.com/rampartsec/rampart/ssrfguard"
)

// Config configures the demo.
type Config struct {
	Addr     string       // listen address; "" means 127.0.0.1:8080, or a free port if that is taken
	Mode     rampart.Mode // "" means block
	Database string       // SQLite path; "" means in memory
	Out      io.Writer    // where the demo prints; nil means io.Discard
	Logger   *slog.Logger // the service's own log; nil discards it
	// Ready, when not nil, receives the service URL once it serves.
	Ready chan<- string
}

// InjectionQuery is the search term the demo sends: a UNION that would read
// every customer's API key through the concatenating search handler.
const InjectionQuery = "' UNION SELECT id, email || ' ' || api_key, 0 FROM users -- "

// Run serves the demo until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	printer := &eventPrinter{w: out}
	agent, err := rampart.New(rampart.Config{Service: "shop", Mode: cfg.Mode, Sinks: []rampart.Sink{printer}, Logger: logger})
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = agent.Close(cctx)
	}()
	dbPath := cfg.Database
	if dbPath == "" {
		dbPath = ":memory:"
	}
	s, err := shop.Open(ctx, agent, dbPath, logger)
	if err != nil {
		return err
	}
	defer s.Close()

	// An internal-only service on loopback, the target an SSRF reaches for.
	internal, internalHits, err := startInternal()
	if err != nil {
		return err
	}
	defer internal.Close()
	guard, err := ssrfguard.New(agent, ssrfguard.Config{})
	if err != nil {
		return err
	}
	s.StartWorker(ctx, guard.Client(nil))

	ln, err := listen(cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           agent.Handler(s.Handler()),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()

	printer.mu.Lock()
	fmt.Fprintf(out, "Rampart demo: the sample \"shop\" service (examples/shop, SQLite) runs behind the Rampart SDK in %s mode.\n\n", agent.Mode())
	fmt.Fprintf(out, "  Service URL: %s\n\n", base)
	fmt.Fprintf(out, "  Search (its handler concatenates SQL on purpose):\n    curl '%s/products?q=moka'\n\n", base)
	fmt.Fprintf(out, "  SQL injection through the search, %s by Rampart:\n    curl '%s/products?q=%s'\n\n", verb(agent.Mode()), base, url.QueryEscape(InjectionQuery))
	fmt.Fprintf(out, "  A parameterized write; SQL-looking text is stored, not blocked:\n    curl -X POST %s/reviews -H 'Content-Type: application/json' -d '{\"product_id\":1,\"author\":\"Ann O'\\''Neil\",\"body\":\"1=1; DROP TABLE reviews; -- great cup\"}'\n\n", base)
	ssrfBody := fmt.Sprintf(`{"url":"http://%s/admin/api-keys"}`, internal.Listener.Addr())
	fmt.Fprintf(out, "  Server-side request forgery through a queue worker: a feed import whose URL points at\n  an internal service (%s), %s:\n    curl -X POST %s/imports -H 'Content-Type: application/json' -d '%s'\n    curl %s/imports/1\n\n",
		internal.Listener.Addr(), verb(agent.Mode()), base, ssrfBody, base)
	fmt.Fprintf(out, "Sending both attacks now...\n")
	printer.mu.Unlock()

	status, body, err := get(ctx, base+"/products?q="+url.QueryEscape(InjectionQuery))
	if err != nil {
		return fmt.Errorf("demo: request to the shop failed: %w", err)
	}
	printer.mu.Lock()
	fmt.Fprintf(out, "  SQL injection -> HTTP %d %s\n", status, strings.TrimSpace(body))
	printer.mu.Unlock()
	im, err := runImport(ctx, base, ssrfBody)
	if err != nil {
		return err
	}
	printer.mu.Lock()
	fmt.Fprintf(out, "  SSRF import %d -> %s", im.ID, im.Status)
	if im.Error != "" {
		fmt.Fprintf(out, " (%s)", im.Error)
	}
	fmt.Fprintf(out, "; the internal service was reached %d times\n", internalHits.Load())
	fmt.Fprintf(out, "\nSecurity events appear below as they happen. Press Ctrl-C to stop.\n\n")
	printer.mu.Unlock()
	if cfg.Ready != nil {
		cfg.Ready <- base
	}

	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("demo: server stopped: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// startInternal serves a stand-in for an internal-only service: its answer is
// what an SSRF would steal.
func startInternal() (*httptest.Server, *atomic.Int64, error) {
	hits := new(atomic.Int64)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"keys":["sk_live_internal_admin_key"]}`)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("demo: internal service: %w", err)
	}
	srv.Listener = ln
	srv.Start()
	return srv, hits, nil
}

// runImport submits an import job and waits for the worker to finish it.
func runImport(ctx context.Context, base, body string) (shop.Import, error) {
	var im shop.Import
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/imports", strings.NewReader(body))
	if err != nil {
		return im, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return im, fmt.Errorf("demo: submit import: %w", err)
	}
	err = json.NewDecoder(resp.Body).Decode(&im)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusAccepted {
		return im, fmt.Errorf("demo: submit import: HTTP %d: %v", resp.StatusCode, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for im.Status == "queued" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		_, b, err := get(ctx, fmt.Sprintf("%s/imports/%d", base, im.ID))
		if err != nil {
			return im, err
		}
		if err := json.Unmarshal([]byte(b), &im); err != nil {
			return im, fmt.Errorf("demo: import status %q: %w", b, err)
		}
	}
	return im, nil
}

func verb(m rampart.Mode) string {
	if m == rampart.ModeMonitor {
		return "reported (monitor mode lets it through)"
	}
	return "blocked"
}

// listen binds addr, or 127.0.0.1:8080 and then any free loopback port when
// none is given.
func listen(addr string) (net.Listener, error) {
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("demo: listen on %s: %w (choose another with -addr)", addr, err)
		}
		return ln, nil
	}
	if ln, err := net.Listen("tcp", "127.0.0.1:8080"); err == nil {
		return ln, nil
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

func get(ctx context.Context, u string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), err
}

// eventPrinter is the demo's event sink: each event as indented JSON.
type eventPrinter struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *eventPrinter) WriteEvents(_ context.Context, events []rampart.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ev := range events {
		b, err := json.MarshalIndent(ev, "  ", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(p.w, "Security event (%s, %s at %s):\n  %s\n\n", ev.Kind, ev.Action, ev.Location, b)
	}
	return nil
}
