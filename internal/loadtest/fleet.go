package loadtest

import (
	"bytes"
	"container/heap"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/controlsync"
	"github.com/rampartsec/rampart/internal/decision"
)

// Config describes a fleet.
type Config struct {
	// Servers are the addresses (host:port) of the replicas of one control
	// plane. Each member connects to one, chosen round-robin, and to the
	// next that answers when it cannot: what a TCP load balancer in front
	// of the replicas does.
	Servers    []string
	CAPEM      []byte // the control plane's CA certificate
	AdminToken string

	Instances int // service instances; 0 means 1,000
	Services  int // services they are instances of; 0 means one per 10 instances
	Gateways  int // gateways (service "gateway"); 0 means none

	// HeartbeatEvery is the interval of an instance's heartbeats (each
	// jittered by up to a tenth); 0 means 30 s, the SDK's.
	HeartbeatEvery time.Duration
	// EventEvery is the mean interval of an instance's event batches (1 to
	// 3 events, exponentially distributed gaps); 0 means 10 s. Gateways
	// post a batch of 20 request summaries every GatewayEventEvery; 0 means
	// 5 s, the gateway's summary window.
	EventEvery        time.Duration
	GatewayEventEvery time.Duration

	// Prefix names the run in event ids; "" means "lt".
	Prefix string
}

func (c *Config) defaults() {
	if c.Instances == 0 {
		c.Instances = 1000
	}
	if c.Services == 0 {
		c.Services = max(1, c.Instances/10)
	}
	if c.HeartbeatEvery == 0 {
		c.HeartbeatEvery = 30 * time.Second
	}
	if c.EventEvery == 0 {
		c.EventEvery = 10 * time.Second
	}
	if c.GatewayEventEvery == 0 {
		c.GatewayEventEvery = 5 * time.Second
	}
	if c.Prefix == "" {
		c.Prefix = "lt"
	}
}

// Fleet is a set of simulated service instances and gateways, each with its
// own key and SVID from the control plane (joined with its own token), its
// own mTLS connection, and the SDK's watch (package controlsync, with the
// sources the SDK and the gateway keep), heartbeats and event batches.
//
// A member costs one TCP connection (HTTP/2: the long poll, the reloads,
// the heartbeats and the events share it) and four goroutines: the
// syncer's loop and its long poll, the SVID renewal of identity.Join, and
// the connection's reader. One scheduler starts the members' heartbeats
// and event batches when due, each request in a goroutine that ends with
// it.
type Fleet struct {
	cfg     Config
	admin   *http.Client
	base    string
	members []*member
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	syncFailures atomic.Int64           // watch loops that failed and started over
	syncError    atomic.Pointer[string] // why the last one failed
	syncLog      *countingHandler
	skipped      atomic.Int64 // heartbeats and batches not sent: the member's last was still in flight

	mu         sync.Mutex
	heartbeats samples
	ingest     samples
	hbErrors   int
	evErrors   int
	acked      []string // event ids the servers acknowledged
	lastErr    error
}

type member struct {
	index   int
	service string
	gateway bool
	id      string // instance id
	src     *identity.CASource
	hc      *http.Client
	cp      *controlsync.Client
	dial    *dialer
	watches *watchRecorder

	heartbeatBusy, eventBusy atomic.Bool // one of each in flight at a time
	sync                     *controlsync.Syncer

	mu    sync.Mutex
	evSeq int                  // the last event number
	seen  map[string]time.Time // decision id: when its set first held it
}

// Start joins every member (a join token each, made with the admin token)
// and starts them. Call Ready to wait for their first sync, and Close.
func Start(ctx context.Context, cfg Config) (*Fleet, error) {
	cfg.defaults()
	if len(cfg.Servers) == 0 {
		return nil, errors.New("loadtest: Config.Servers is empty")
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(cfg.CAPEM) {
		return nil, errors.New("loadtest: Config.CAPEM holds no certificate")
	}
	f := &Fleet{cfg: cfg, base: "https://" + cfg.Servers[0]}
	f.admin = &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true,
		DialContext: (&dialer{servers: cfg.Servers}).DialContext,
	}}
	n := cfg.Instances + cfg.Gateways
	f.members = make([]*member, n)
	f.syncLog = &countingHandler{n: &f.syncFailures, last: &f.syncError, mu: new(sync.Mutex), causes: map[string]int{}}
	logger := slog.New(f.syncLog)
	// Join in parallel, as a fleet rolling out would; joining is the
	// control plane's costliest call (a signature), and is measured apart.
	jobs := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range jobs {
				m, err := f.join(ctx, i, roots, logger)
				if err != nil {
					errs <- err
					continue
				}
				f.members[i] = m
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		f.closeMembers()
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	for _, m := range f.members {
		f.wg.Go(func() { m.sync.Run(rctx) })
	}
	f.wg.Go(func() { f.schedule(rctx) })
	return f, nil
}

func (f *Fleet) join(ctx context.Context, i int, roots *x509.CertPool, logger *slog.Logger) (*member, error) {
	m := &member{index: i, seen: map[string]time.Time{}, id: fmt.Sprintf("%s-i%05d", f.cfg.Prefix, i)}
	if i >= f.cfg.Instances {
		m.service, m.gateway = control.DefaultGatewayService, true
	} else {
		m.service = fmt.Sprintf("svc-%04d", i%f.cfg.Services)
	}
	var tok control.TokenResponse
	if err := f.adminDo(ctx, http.MethodPost, "/v1/tokens", control.TokenRequest{Service: m.service}, &tok); err != nil {
		return nil, err
	}
	src, err := identity.Join(ctx, identity.JoinConfig{
		ControlPlane: f.base, ControlPlaneBundle: f.cfg.CAPEM, Service: m.service, Token: tok.Token,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, fmt.Errorf("loadtest: join %s: %w", m.service, err)
	}
	m.src = src
	// The servers in the order this member tries them: its own first.
	order := slices.Clone(f.cfg.Servers)
	k := i % len(order)
	order = append(order[k:], order[:k]...)
	m.dial = &dialer{servers: order}
	m.watches = &watchRecorder{next: &http.Transport{
		TLSClientConfig: &tls.Config{
			RootCAs: roots, MinVersion: tls.VersionTLS12,
			GetClientCertificate: tlsconfig.GetClientCertificate(src),
		},
		// As identity.ControlPlaneClient, the SDK's and the gateway's.
		ForceAttemptHTTP2: true, DialContext: m.dial.DialContext,
		HTTP2:           &http.HTTP2Config{SendPingTimeout: 15 * time.Second, PingTimeout: 10 * time.Second},
		IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second,
	}}
	m.hc = &http.Client{Transport: m.watches}
	m.cp, err = controlsync.NewClient(f.base, m.hc)
	if err != nil {
		return nil, err
	}
	revoked := controlsync.NewRevocations()
	sources := []controlsync.Source{
		{Name: "policy", Kinds: []string{"policy"}, Load: loadPolicy},
		{Name: "decisions", Kinds: []string{"decision"}, Load: m.loadDecisions},
		revoked.Source(),
	}
	if m.gateway { // what the gateway keeps (package gateway)
		sources = append(sources, controlsync.Source{Name: "actor key", Kinds: []string{"actor_keys"}, Load: loadActorKey})
	} else { // what the SDK keeps (package rampart)
		sources = append(sources, controlsync.Source{Name: "actor keys", Kinds: []string{"trust_bundle", "actor_keys"}, Load: loadActorKeys})
	}
	m.sync = controlsync.New(controlsync.Config{Client: m.cp, Sources: sources, Logger: logger})
	return m, nil
}

func loadPolicy(ctx context.Context, c *controlsync.Client) error {
	_, err := c.Policy(ctx)
	return err
}

func loadActorKeys(ctx context.Context, c *controlsync.Client) error {
	_, err := c.ActorKeys(ctx)
	return err
}

func loadActorKey(ctx context.Context, c *controlsync.Client) error {
	var k struct {
		KeyID string `json:"kid"`
	}
	if err := c.Get(ctx, "/v1/actor-key", &k); err != nil {
		return err
	}
	if k.KeyID == "" {
		return errors.New("actor key: none")
	}
	return nil
}

// loadDecisions is the SDK's: fetch the decisions and index them. It notes
// when each decision first reached this member.
func (m *member) loadDecisions(ctx context.Context, c *controlsync.Client) error {
	var l struct {
		Decisions []decision.Decision `json:"decisions"`
	}
	if err := c.Get(ctx, "/v1/decisions", &l); err != nil {
		return err
	}
	if _, err := decision.NewSet(l.Decisions); err != nil {
		return err
	}
	now := time.Now()
	m.mu.Lock()
	for _, d := range l.Decisions {
		if _, ok := m.seen[d.ID]; !ok {
			m.seen[d.ID] = now
		}
	}
	m.mu.Unlock()
	return nil
}

// Ready waits until every member has loaded its state once.
func (f *Fleet) Ready(ctx context.Context) error {
	for _, m := range f.members {
		select {
		case <-m.sync.Ready():
		case <-ctx.Done():
			return fmt.Errorf("loadtest: members not ready: %w (last sync failures: %d)", ctx.Err(), f.syncFailures.Load())
		}
	}
	return nil
}

// Decide creates a block decision on ip with the admin token and returns
// its id and when it was asked for.
func (f *Fleet) Decide(ctx context.Context, ip string) (id string, asked time.Time, took time.Duration, err error) {
	var d struct {
		ID string `json:"id"`
	}
	asked = time.Now()
	err = f.adminDo(ctx, http.MethodPost, "/v1/decisions", control.DecisionRequest{Scope: "ip", Value: ip, Action: "block", TTL: "1h", Reason: "load test"}, &d)
	return d.ID, asked, time.Since(asked), err
}

// Propagation is how long a decision took to reach each member, from the
// moment it was asked for.
type Propagation struct {
	Latencies []time.Duration // one per member that has it
	Missing   int             // members that did not have it by the deadline
}

// WaitSeen waits until every member's decision set holds id, or ctx ends.
func (f *Fleet) WaitSeen(ctx context.Context, id string, asked time.Time) Propagation {
	for {
		var p Propagation
		for _, m := range f.members {
			m.mu.Lock()
			t, ok := m.seen[id]
			m.mu.Unlock()
			if ok {
				p.Latencies = append(p.Latencies, t.Sub(asked))
			} else {
				p.Missing++
			}
		}
		if p.Missing == 0 || ctx.Err() != nil {
			return p
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Missing returns, for each decision id, how many members have never held
// it.
func (f *Fleet) Missing(ids []string) map[string]int {
	out := map[string]int{}
	for _, m := range f.members {
		m.mu.Lock()
		for _, id := range ids {
			if _, ok := m.seen[id]; !ok {
				out[id]++
			}
		}
		m.mu.Unlock()
	}
	return out
}

// Connected returns how many members' last connection went to each server.
func (f *Fleet) Connected() map[string]int {
	out := map[string]int{}
	for _, m := range f.members {
		if a := m.dial.last.Load(); a != nil {
			out[*a]++
		}
	}
	return out
}

// Revisions checks what the members' watches were told: it returns how
// many members have been told a revision below least (the revision of the
// last change they must know of), and how many were ever told a revision
// below one they had been told before (which would skip changes).
func (f *Fleet) Revisions(least int64) (behind, backwards int) {
	for _, m := range f.members {
		rev, back, _ := m.watches.state()
		if rev < least {
			behind++
		}
		if back > 0 {
			backwards++
		}
	}
	return behind, backwards
}

// Revision returns the control plane's current revision.
func (f *Fleet) Revision(ctx context.Context) (int64, error) {
	var w control.WatchResult
	err := f.adminDo(ctx, http.MethodGet, "/v1/watch?since=latest", nil, &w)
	return w.Revision, err
}

// Acked returns the ids of the events the servers acknowledged (200 to
// their batch).
func (f *Fleet) Acked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.acked)
}

// Stats are the fleet's measurements so far.
type Stats struct {
	Members          int
	Heartbeats       int
	HeartbeatErrors  int
	HeartbeatLatency Summary
	EventBatches     int
	EventsAcked      int
	EventErrors      int
	IngestLatency    Summary
	SyncFailures     int64          // watch loops that failed and started over
	SyncError        string         // why the last one failed
	SyncCauses       map[string]int // failures by the end of their error
	Skipped          int64          // heartbeats and batches not sent, the member's previous one still in flight
	LastError        error          // of the last heartbeat or event batch that failed
}

// Stats returns the fleet's measurements so far.
func (f *Fleet) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := Stats{
		Members: len(f.members), Heartbeats: len(f.heartbeats), HeartbeatErrors: f.hbErrors,
		HeartbeatLatency: f.heartbeats.summary(), EventBatches: len(f.ingest), EventsAcked: len(f.acked),
		EventErrors: f.evErrors, IngestLatency: f.ingest.summary(), SyncFailures: f.syncFailures.Load(), LastError: f.lastErr,
	}
	if e := f.syncError.Load(); e != nil {
		st.SyncError = *e
	}
	st.Skipped = f.skipped.Load()
	f.syncLog.mu.Lock()
	st.SyncCauses = maps.Clone(f.syncLog.causes)
	f.syncLog.mu.Unlock()
	return st
}

// Close stops every member and waits for them.
func (f *Fleet) Close() {
	f.cancel()
	f.wg.Wait()
	f.closeMembers()
	f.admin.CloseIdleConnections()
}

func (f *Fleet) closeMembers() {
	for _, m := range f.members {
		if m == nil {
			continue
		}
		m.src.Close()
		if m.hc != nil {
			m.hc.CloseIdleConnections()
		}
	}
}

func (f *Fleet) adminDo(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, f.base+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+f.cfg.AdminToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := f.admin.Do(req)
		if err != nil {
			// A replica killed under the admin's connection: the
			// request may not have run; these admin calls are safe to
			// repeat (a token more, a decision more).
			if attempt < 3 && ctx.Err() == nil {
				continue
			}
			return fmt.Errorf("loadtest: %s %s: %w", method, path, err)
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("loadtest: %s %s: %s: %s", method, path, resp.Status, data)
		}
		return json.Unmarshal(data, out)
	}
}

// schedule sends the members' heartbeats and event batches when they are
// due, each in a goroutine of its own: the members act independently, so a
// slow control plane does not lower the rate they offer (a pool of workers
// would, and hide the slowness). As in the SDK, a member sends one
// heartbeat, and one event batch, at a time: one due while the last is in
// flight is skipped, and counted.
func (f *Fleet) schedule(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	var q jobQueue
	now := time.Now()
	for _, m := range f.members {
		// Spread the first heartbeats over an interval, as a fleet
		// started over time would be.
		heap.Push(&q, job{at: now.Add(rand.N(f.cfg.HeartbeatEvery)), m: m, heartbeat: true})
		heap.Push(&q, job{at: now.Add(f.eventGap(m)), m: m})
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		for q.Len() > 0 && !q[0].at.After(time.Now()) {
			j := heap.Pop(&q).(job)
			busy := &j.m.eventBusy
			if j.heartbeat {
				busy = &j.m.heartbeatBusy
			}
			if busy.CompareAndSwap(false, true) {
				wg.Go(func() {
					defer busy.Store(false)
					f.run(ctx, j)
				})
			} else {
				f.skipped.Add(1)
			}
			next := j
			if j.heartbeat {
				every := f.cfg.HeartbeatEvery
				next.at = j.at.Add(every - every/20 + rand.N(every/10))
			} else {
				next.at = j.at.Add(f.eventGap(j.m))
			}
			heap.Push(&q, next)
		}
		timer.Reset(time.Until(q[0].at))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

func (f *Fleet) eventGap(m *member) time.Duration {
	if m.gateway {
		return f.cfg.GatewayEventEvery
	}
	return time.Duration(rand.ExpFloat64() * float64(f.cfg.EventEvery))
}

type job struct {
	at        time.Time
	m         *member
	heartbeat bool
}

type jobQueue []job

func (q jobQueue) Len() int           { return len(q) }
func (q jobQueue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q jobQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *jobQueue) Push(x any)        { *q = append(*q, x.(job)) }
func (q *jobQueue) Pop() any {
	old := *q
	j := old[len(old)-1]
	*q = old[:len(old)-1]
	return j
}

func (f *Fleet) run(ctx context.Context, j job) {
	m := j.m
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	if j.heartbeat {
		err := m.cp.Do(rctx, http.MethodPost, "/v1/heartbeat", f.heartbeat(m), nil)
		took := time.Since(start)
		f.mu.Lock()
		defer f.mu.Unlock()
		if err != nil {
			if ctx.Err() == nil {
				f.hbErrors++
				f.lastErr = err
			}
			return
		}
		f.heartbeats = append(f.heartbeats, took)
		return
	}
	batch := f.events(m)
	var res control.EventBatchResult
	err := m.cp.Do(rctx, http.MethodPost, "/v1/events", batch, &res)
	took := time.Since(start)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil && res.Received != len(batch.Events) {
		err = fmt.Errorf("loadtest: %d events posted, %d received", len(batch.Events), res.Received)
	}
	if err != nil {
		if ctx.Err() == nil {
			f.evErrors++
			f.lastErr = err
		}
		return
	}
	f.ingest = append(f.ingest, took)
	for _, e := range batch.Events {
		f.acked = append(f.acked, e.ID)
	}
}

type module struct {
	Path    string `json:"path"`
	Version string `json:"version"`
}

// buildModules is what the SDK reports in its heartbeats: the modules of the
// binary (here, the test's).
var buildModules = sync.OnceValue(func() []module {
	var mods []module
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			mods = append(mods, module{Path: d.Path, Version: d.Version})
		}
	}
	return mods
})

func (f *Fleet) heartbeat(m *member) any {
	return map[string]any{
		"service": m.service, "id": m.id, "go_version": runtime.Version(), "version": "v1.0.0",
		"modules": buildModules(), "routes": []string{"GET /orders/{id}", "POST /orders", "GET /healthz"},
		"peers": []string{"spiffe://scale.test/svc/db-proxy"}, "db_drivers": []string{"pgx"}, "exposed": m.gateway || m.index%10 == 0,
	}
}

func (f *Fleet) events(m *member) control.EventBatch {
	n, kind, action := 1+rand.IntN(3), "authz_denied", "blocked"
	if m.gateway {
		n, kind, action = 20, "request_summary", "allowed"
	}
	var b control.EventBatch
	now := time.Now().UTC()
	for range n {
		m.mu.Lock()
		m.evSeq++
		seq := m.evSeq
		m.mu.Unlock()
		var e control.IncomingEvent
		e.ID = fmt.Sprintf("%s-%05d-%06d", f.cfg.Prefix, m.index, seq)
		e.Time, e.Kind, e.Action, e.Service = now, kind, action, m.service
		e.Route = "/orders/{id}"
		e.ActorIP = fmt.Sprintf("198.51.100.%d", 1+rand.IntN(254))
		b.Events = append(b.Events, e)
	}
	return b
}

// dialer connects to the first of its servers that accepts, starting with
// the one that accepted last: a TCP load balancer's behaviour, for clients
// of several replicas.
type dialer struct {
	servers []string
	last    atomic.Pointer[string]
}

func (d *dialer) DialContext(ctx context.Context, network, _ string) (net.Conn, error) {
	var errs []error
	order := d.servers
	if last := d.last.Load(); last != nil {
		if i := slices.Index(order, *last); i > 0 {
			order = append(slices.Clone(order[i:]), order[:i]...)
		}
	}
	nd := net.Dialer{Timeout: 10 * time.Second}
	for _, addr := range order {
		c, err := nd.DialContext(ctx, network, addr)
		if err == nil {
			d.last.Store(&addr)
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// countingHandler counts the syncers' warnings (a failed watch loop that
// starts over), keeps the last one's error, and discards the records.
type countingHandler struct {
	n    *atomic.Int64
	last *atomic.Pointer[string]

	mu     *sync.Mutex
	causes map[string]int // failures by cause
}

// cause is the end of an error message, which names the cause without the
// addresses: "connection reset by peer", "context deadline exceeded".
func cause(msg string) string {
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	if len(msg) > 80 {
		msg = msg[:80]
	}
	return msg
}

func (h *countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "sync failed") {
		h.n.Add(1)
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "err" {
				s := a.Value.String()
				h.last.Store(&s)
				h.mu.Lock()
				h.causes[cause(s)]++
				h.mu.Unlock()
			}
			return true
		})
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }
