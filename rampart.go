package rampart

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"time"

	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/internal/goroutine"
)

// Mode says what the agent does when a guard finds an exploit.
type Mode string

const (
	// ModeBlock refuses the call and answers the request with 403. It is
	// what the zero Config selects.
	ModeBlock Mode = "block"
	// ModeMonitor reports the event and lets the call through.
	ModeMonitor Mode = "monitor"
)

// Config configures an Agent. Only Service is required.
type Config struct {
	// Service names the service in every event.
	Service string
	// Mode is ModeBlock (the default) or ModeMonitor.
	Mode Mode
	// Sinks receive events in batches, from one goroutine, in order. Nil
	// means one log record per event through Logger (NewSlogSink).
	Sinks []Sink
	// Logger receives the agent's own messages (dropped events, sink
	// errors, the control plane's watch) and, without Sinks, the events.
	// Nil means slog.Default() as it is when New is called, so that the
	// application's handler applies (see Logging in the package
	// documentation).
	Logger *slog.Logger
	// QueueSize bounds the events waiting for the sinks. When it is full,
	// new events are dropped and counted (Stats.Dropped) rather than
	// delaying the request. Zero means 1024.
	QueueSize int
	// MaxBodyBytes bounds how much of a body the middleware captures as
	// input. Zero means 1 MiB; negative disables body capture. A longer
	// body reaches the handler whole; once the handler has read past the
	// captured bytes, the request is incomplete (see CheckInputsComplete).
	MaxBodyBytes int64
	// MaxInputs bounds the distinct input values recorded for one request.
	// Zero means DefaultMaxInputs. A request with more is incomplete.
	MaxInputs int
	// Headers names request headers to record before the others. Every
	// header is an input (see doc.go for the few that are not); these
	// come first, as do User-Agent and Referer.
	Headers []string
	// SecretNames adds words that make an input's value a secret, besides
	// the default ones (password, token, key, authorization, session, ...;
	// every cookie is one). A secret's value never leaves the process: an
	// event shows [Redacted] in its place (see the package documentation).
	SecretNames []string

	// SummaryWindow turns on request summaries (see KindRequestSummary):
	// the Handler counts requests per actor, route, method and status,
	// and ships one request_summary event per such key each window,
	// instead of nothing (zero, the default) or one event per request.
	// A Rampart gateway in front of the service summarises the traffic it
	// forwards already; the service's summaries add the objects its
	// handlers served (ObjectAccess), and cover services without a
	// gateway. Five seconds is a good value.
	SummaryWindow time.Duration
	// SummaryMaxKeys bounds the keys of one window: requests of further
	// keys are counted in an overflow summary. Zero means
	// DefaultSummaryMaxKeys.
	SummaryMaxKeys int
	// SummaryMaxObjects bounds the distinct objects one summary lists.
	// Zero means DefaultSummaryMaxObjects.
	SummaryMaxObjects int

	// Identity is the service's SPIFFE identity: identity.Join's
	// *identity.CASource, or with SPIRE the *workload.Source of package
	// github.com/rampartsec/rampart/identity/workload (a package of its
	// own, so that only services that use it link gRPC). Setting it makes
	// the service a member of the zero-trust mesh: Handler admits only
	// callers with an SVID of the trust domain that the policy allows on
	// the route, verifies the actor token, and enforces the control
	// plane's decisions; ServerTLSConfig and Client become available. Its
	// SVID must name Service.
	Identity identity.Source
	// ControlPlane is the control plane's URL ("https://host:port"), from
	// which the policy, the decisions and the actor-token keys come, kept
	// current by its watch API. Required with Identity.
	ControlPlane string
	// ControlPlaneClient reaches the control plane authenticated by the
	// service's SVID. Nil means the identity's own (identity.Join's
	// CASource has one); required with other identity sources.
	ControlPlaneClient *http.Client
	// ReadOnlyAtQuery moves the enforcement of read-only decisions from
	// the HTTP method to the database. By default the Handler refuses a
	// read-only actor's requests other than GET, HEAD and OPTIONS (403,
	// decision_enforced). With ReadOnlyAtQuery it lets every method
	// through and the SQL guard refuses each statement that could write
	// (sqlguard documents which), so that a search sent by POST still
	// answers and a GET that writes does not. Set it only when every
	// write the service makes goes through a guarded database: a write
	// to a file, a cache or an unguarded database would go unrefused,
	// which is why it is off by default. Requires Identity. Whatever it
	// says, read-only requests that reach the service carry their
	// decision (ReadOnlyFromContext), and the SQL guard refuses their
	// writes.
	ReadOnlyAtQuery bool
}

// Sink receives security events. WriteEvents is called from the agent's
// delivery goroutine, never from a request; it should return once the
// events are handed off or ctx is done.
type Sink interface {
	WriteEvents(ctx context.Context, events []Event) error
}

// Stats are the agent's counters since New.
type Stats struct {
	Events          uint64 // events reported
	Delivered       uint64 // events handed to every sink
	Dropped         uint64 // events lost because the queue was full or closed
	SinkErrors      uint64 // failed WriteEvents calls
	InputsTruncated uint64 // requests whose inputs could not all be recorded, found by a guarded call
	Summaries       uint64 // request summaries made (counted in Events; in Dropped too if the queue had no room for them)
	SummaryOverflow uint64 // requests counted in an overflow summary, their window having Config.SummaryMaxKeys keys already
}

type stats struct {
	events, delivered, dropped, sinkErrors, inputsTruncated atomic.Uint64
	summaries, summaryOverflow                              atomic.Uint64
}

// Agent is the in-process part of Rampart that a service runs: it holds the
// configuration, records request inputs and delivers events. It is safe for
// concurrent use. Call Close when the service stops, to deliver queued events.
type Agent struct {
	service   string
	mode      Mode
	maxBody   int64
	maxInputs int
	headers   []string
	secrets   secretNames
	logger    *slog.Logger
	sinks     []Sink

	queue     chan Event
	closeMu   sync.RWMutex
	closed    bool
	delivered chan struct{}
	stats     stats
	lastDrop  atomic.Int64 // unix nanos of the last drop warning

	zt  *zeroTrust  // nil without Config.Identity
	sum *summarizer // nil without Config.SummaryWindow
}

// New validates cfg and starts an agent.
func New(cfg Config) (*Agent, error) {
	if strings.TrimSpace(cfg.Service) == "" {
		return nil, errors.New("rampart: Config.Service is required")
	}
	if len(cfg.Service) > 128 {
		return nil, fmt.Errorf("rampart: Config.Service is %d bytes long, at most 128", len(cfg.Service))
	}
	switch cfg.Mode {
	case "":
		cfg.Mode = ModeBlock
	case ModeBlock, ModeMonitor:
	default:
		return nil, fmt.Errorf("rampart: Config.Mode %q is not %q or %q", cfg.Mode, ModeBlock, ModeMonitor)
	}
	if cfg.QueueSize < 0 {
		return nil, fmt.Errorf("rampart: Config.QueueSize %d is negative", cfg.QueueSize)
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = 1024
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.MaxInputs < 0 {
		return nil, fmt.Errorf("rampart: Config.MaxInputs %d is negative", cfg.MaxInputs)
	}
	if cfg.MaxInputs == 0 {
		cfg.MaxInputs = DefaultMaxInputs
	}
	if cfg.ReadOnlyAtQuery && cfg.Identity == nil {
		return nil, errors.New("rampart: Config.ReadOnlyAtQuery needs Config.Identity: read-only decisions come from the control plane")
	}
	for i, h := range cfg.Headers {
		if h == "" || strings.ContainsAny(h, " \t\r\n:") {
			return nil, fmt.Errorf("rampart: Config.Headers[%d] %q is not a header name", i, h)
		}
	}
	if cfg.SummaryWindow < 0 {
		return nil, fmt.Errorf("rampart: Config.SummaryWindow %v is negative", cfg.SummaryWindow)
	}
	if cfg.SummaryMaxKeys < 0 {
		return nil, fmt.Errorf("rampart: Config.SummaryMaxKeys %d is negative", cfg.SummaryMaxKeys)
	}
	if cfg.SummaryMaxKeys == 0 {
		cfg.SummaryMaxKeys = DefaultSummaryMaxKeys
	}
	if cfg.SummaryMaxObjects < 0 {
		return nil, fmt.Errorf("rampart: Config.SummaryMaxObjects %d is negative", cfg.SummaryMaxObjects)
	}
	if cfg.SummaryMaxObjects == 0 {
		cfg.SummaryMaxObjects = DefaultSummaryMaxObjects
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(cfg.Sinks) == 0 {
		cfg.Sinks = []Sink{NewSlogSink(cfg.Logger)}
	}
	for i, s := range cfg.Sinks {
		if s == nil {
			return nil, fmt.Errorf("rampart: Config.Sinks[%d] is nil", i)
		}
		if isNilPointer(s) {
			return nil, fmt.Errorf("rampart: Config.Sinks[%d] is a nil %T (check the error its constructor returned)", i, s)
		}
	}
	headers := []string{"User-Agent", "Referer"}
	for _, h := range cfg.Headers {
		if h = http.CanonicalHeaderKey(h); !slices.Contains(headers, h) {
			headers = append(headers, h)
		}
	}
	a := &Agent{
		service:   cfg.Service,
		mode:      cfg.Mode,
		maxBody:   cfg.MaxBodyBytes,
		maxInputs: cfg.MaxInputs,
		headers:   headers,
		secrets:   newSecretNames(cfg.SecretNames),
		logger:    cfg.Logger,
		sinks:     cfg.Sinks,
		queue:     make(chan Event, cfg.QueueSize),
		delivered: make(chan struct{}),
	}
	if cfg.Identity != nil {
		if isNilPointer(cfg.Identity) {
			// identity.Join's error was dropped: a nil *CASource in a
			// non-nil interface would panic at the first use.
			return nil, fmt.Errorf("rampart: Config.Identity is a nil %T: the identity source failed to start (check the error identity.Join or workload.NewSource returned)", cfg.Identity)
		}
		zt, err := newZeroTrust(a, cfg)
		if err != nil {
			return nil, err
		}
		a.zt = zt
	}
	if cfg.SummaryWindow > 0 {
		a.sum = newSummarizer(a, cfg.SummaryWindow, cfg.SummaryMaxKeys, cfg.SummaryMaxObjects)
	}
	go a.deliver()
	return a, nil
}

// isNilPointer reports whether v holds a nil pointer (or another nil
// reference), which a plain v != nil does not see.
func isNilPointer(v any) bool {
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface, reflect.UnsafePointer:
		return rv.IsNil()
	}
	return false
}

// Service returns the configured service name.
func (a *Agent) Service() string { return a.service }

// Mode returns the mode the agent runs in.
func (a *Agent) Mode() Mode { return a.mode }

// Stats returns the agent's counters.
func (a *Agent) Stats() Stats {
	return Stats{
		Events:          a.stats.events.Load(),
		Delivered:       a.stats.delivered.Load(),
		Dropped:         a.stats.dropped.Load(),
		SinkErrors:      a.stats.sinkErrors.Load(),
		InputsTruncated: a.stats.inputsTruncated.Load(),
		Summaries:       a.stats.summaries.Load(),
		SummaryOverflow: a.stats.summaryOverflow.Load(),
	}
}

// Close stops accepting events and waits until the queued ones are delivered
// or ctx is done. If ctx ends first, Close returns its error and delivery
// goes on in the background until the queue is empty (each sink call gets
// a 10-second context); calling Close again waits for it. Guards keep
// working after Close; their events are dropped and counted.
//
// With Config.Identity, Close first stops following the control plane
// (the watch and the heartbeats) and waits until both have returned; the
// Handler then goes on with the last policy, decisions and actor-token keys
// it had. Close does not close Config.Identity, which the caller owns.
func (a *Agent) Close(ctx context.Context) error {
	if a.zt != nil {
		a.zt.close()
	}
	if a.sum != nil {
		a.sum.close(ctx) // ships the last window while the queue is open
	}
	a.closeMu.Lock()
	if !a.closed {
		a.closed = true
		close(a.queue)
	}
	a.closeMu.Unlock()
	select {
	case <-a.delivered:
		if d := a.stats.dropped.Load(); d > 0 {
			a.logger.Warn("rampart: events were dropped", "dropped", d, "delivered", a.stats.delivered.Load())
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rampart: close: %d events not delivered: %w", len(a.queue), ctx.Err())
	}
}

// enqueue never blocks: a full queue drops the event, counts it and warns at
// most once a minute.
func (a *Agent) enqueue(ev Event) {
	a.stats.events.Add(1)
	a.closeMu.RLock()
	defer a.closeMu.RUnlock()
	if !a.closed {
		select {
		case a.queue <- ev:
			return
		default:
		}
	}
	total := a.stats.dropped.Add(1)
	now := time.Now().UnixNano()
	last := a.lastDrop.Load()
	if now-last > int64(time.Minute) && a.lastDrop.CompareAndSwap(last, now) {
		a.logger.Warn("rampart: event queue full or closed, dropping events", "dropped_total", total, "kind", ev.Kind, "location", ev.Location)
	}
}

const maxBatch = 64

func (a *Agent) deliver() {
	defer close(a.delivered)
	batch := make([]Event, 0, maxBatch)
	for ev := range a.queue {
		batch = append(batch[:0], ev)
	fill:
		for len(batch) < maxBatch {
			select {
			case ev, ok := <-a.queue:
				if !ok {
					break fill
				}
				batch = append(batch, ev)
			default:
				break fill
			}
		}
		ok := true
		for _, s := range a.sinks {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := s.WriteEvents(ctx, batch); err != nil {
				ok = false
				a.stats.sinkErrors.Add(1)
				a.logger.Error("rampart: event sink failed", "sink", fmt.Sprintf("%T", s), "events", len(batch), "err", err)
			}
			cancel()
		}
		if ok {
			a.stats.delivered.Add(uint64(len(batch)))
		}
	}
}

// SlogSink is a Sink that writes one log record per event, at level Warn,
// with the event as structured attributes (one JSON line with a JSON
// handler). What the application reports about its business and the
// request summaries (action observed) are no security events: they are
// logged at level Info, as "rampart observed event". It is the agent's
// sink when Config.Sinks is empty.
type SlogSink struct{ l *slog.Logger }

var _ Sink = (*SlogSink)(nil)

// NewSlogSink returns a Sink that logs events through l; nil means
// slog.Default().
func NewSlogSink(l *slog.Logger) *SlogSink {
	if l == nil {
		l = slog.Default()
	}
	return &SlogSink{l}
}

// LogSink returns NewSlogSink(l) as a Sink.
//
// Deprecated: use NewSlogSink, which returns the concrete type. LogSink
// will be removed in the next release.
func LogSink(l *slog.Logger) Sink { return NewSlogSink(l) }

// WriteEvents logs each event; it never fails.
func (s *SlogSink) WriteEvents(ctx context.Context, events []Event) error {
	for _, ev := range events {
		if ev.Action == ActionObserved {
			s.l.LogAttrs(ctx, slog.LevelInfo, "rampart observed event", slog.Any("event", ev))
			continue
		}
		s.l.LogAttrs(ctx, slog.LevelWarn, "rampart security event", slog.Any("event", ev))
	}
	return nil
}

// Handler returns middleware that records each request's untrusted inputs in
// its context and, when a guard blocked a call during the request, answers
// 403 with {"error": ..., "request_id": ...} unless the handler had already
// sent its response headers. Once a call is blocked, what the handler writes
// afterwards is discarded so that the attacker sees only the 403.
//
// Put it outside the ServeMux (agent.Handler(mux)) or around single routes;
// both see the route pattern.
func (a *Agent) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := &request{agent: a, r: r}
		if r.URL != nil {
			req.rawQuery = r.URL.RawQuery
		}
		req.set.req = req
		ctx := context.WithValue(r.Context(), inputSetKey{}, &req.set)
		// Zero trust first: a caller that may not call the route costs no
		// body capture.
		if a.zt != nil {
			var ok bool
			if ctx, ok = a.zt.admit(ctx, w, r, req); !ok {
				return
			}
		}
		r2 := r.WithContext(ctx) // one copy of the request
		req.r = r2
		if a.zt != nil {
			defer func() { a.zt.served(req, r2) }()
		}
		req.captureBody(r2, a.maxBody)
		// A nested Handler (two agents, or one applied twice) restores the
		// outer request's entry when it returns.
		gid := goroutine.ID()
		if prev, nested := goroutineRequests.Swap(gid, req); nested {
			defer goroutineRequests.Store(gid, prev)
		} else {
			defer goroutineRequests.Delete(gid)
		}

		rw := &req.rw
		rw.ResponseWriter, rw.req = w, req
		next.ServeHTTP(rw, r2)
		status := rw.status
		if be := req.blocked.Load(); be != nil && !rw.committed {
			writeBlocked(w, req.requestID(), be.Event.Kind)
			status = http.StatusForbidden
		}
		if a.sum != nil {
			if status == 0 {
				status = http.StatusOK // what net/http sends for a handler that wrote nothing
			}
			a.sum.add(req, status)
		}
	})
}

// RefusalHeader is set on every response Rampart writes to refuse a request
// (a blocked call, a caller or actor token refused by zero trust), with the
// event kind as its value ("sql_injection", "authz_denied", ...). A Rampart
// gateway in front of the service replaces such a response with its own
// neutral one, keeping the detail in its event, and never passes the header
// on to a client; a service's own error responses do not carry it and pass
// unchanged.
const RefusalHeader = "Rampart-Refusal"

func writeBlocked(w http.ResponseWriter, requestID string, kind Kind) {
	h := w.Header()
	for k := range h {
		delete(h, k)
	}
	h.Set(RefusalHeader, string(kind))
	h.Set("Content-Type", "application/json")
	h.Set("X-Request-Id", requestID)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusForbidden)
	// requestID is [A-Za-z0-9._-] only, so it needs no JSON escaping.
	fmt.Fprintf(w, "{\"error\":\"request blocked by Rampart: a security policy was violated\",\"request_id\":%q}\n", requestID)
}

// responseWriter tracks whether the response was committed, and swallows the
// handler's output once a call of the request was blocked.
type responseWriter struct {
	http.ResponseWriter
	req       *request
	committed bool
	status    int // the status sent, 0 until then
}

func (w *responseWriter) swallow() bool {
	return !w.committed && w.req.blocked.Load() != nil
}

func (w *responseWriter) WriteHeader(code int) {
	if w.swallow() {
		return
	}
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.committed = true
		if w.status == 0 {
			w.status = code
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.swallow() {
		return len(p), nil
	}
	w.committed = true
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Flush implements http.Flusher when the underlying writer does.
func (w *responseWriter) Flush() {
	if w.swallow() {
		return
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		w.committed = true
		if w.status == 0 {
			w.status = http.StatusOK
		}
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack implements http.Hijacker when the underlying writer does, for
// WebSocket upgrades.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("rampart: %T does not support hijacking", w.ResponseWriter)
	}
	w.committed = true
	return h.Hijack()
}
