package rampart

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampartsec/rampart/internal/spool"
)

// Defaults of a ControlPlaneConfig's spool, for its zero fields.
const (
	// DefaultSpoolMaxBytes bounds a spool in ControlPlaneConfig.SpoolDir.
	DefaultSpoolMaxBytes = 64 << 20
	// DefaultMemorySpoolMaxBytes bounds a spool kept in memory (no
	// SpoolDir): a few tens of thousands of events.
	DefaultMemorySpoolMaxBytes = 8 << 20
	// DefaultSpoolMaxAge is how long an undelivered event is kept: a
	// week, within the control plane's 30 days of event retention.
	DefaultSpoolMaxAge = 7 * 24 * time.Hour
)

// ControlPlaneConfig configures NewControlSink, the Sink that ships events
// to a Rampart control plane.
type ControlPlaneConfig struct {
	// URL is the control plane's base URL, e.g. https://rampart-cp:8443.
	URL string
	// Client makes the requests. Nil means a client with a 10-second
	// timeout; give one with the service's SVID (mTLS) or the CA bundle.
	Client *http.Client
	// Token, if set, is sent as a bearer token (an admin token, for tools
	// and tests; services authenticate with their SVID through Client).
	Token string

	// SpoolDir keeps the events the control plane has not taken yet in
	// files, so that they outlive a restart of the service as well as an
	// outage of the control plane: the directory is made (0700) if it
	// does not exist, and must not be open to other users; its files are
	// 0600 (events carry the actor tokens that back them). Each process
	// needs its own: a second sink on the same directory is refused. ""
	// keeps the events in memory, where they outlive an outage but not a
	// restart; it is the default because a service has no directory of
	// its own that Rampart could choose safely (replicas on one machine
	// would share it).
	SpoolDir string
	// SpoolMaxBytes bounds the spool. When it is full, the oldest events
	// are dropped (a sixteenth of the spool at a time), counted
	// (ControlSinkStats.Dropped), logged once and reported to the control
	// plane in an events_dropped event once it takes events again. Zero
	// means DefaultSpoolMaxBytes with SpoolDir, DefaultMemorySpoolMaxBytes
	// without; at least 64 KiB.
	SpoolMaxBytes int64
	// SpoolMaxAge drops events that could not be delivered for that long
	// (counted, logged and reported like the dropped ones). Zero means
	// DefaultSpoolMaxAge; negative, no limit.
	SpoolMaxAge time.Duration
	// Service names the service in the events_dropped events; "" means
	// the service of the events shipped.
	Service string
	// Logger receives the sink's messages: the control plane unreachable
	// and back, events dropped, refused or left in the spool at Close.
	// Nil means slog.Default().
	Logger *slog.Logger
}

// Batches stay well under the control plane's body limit (1 MiB).
const (
	maxSinkBatch      = 100
	maxSinkBatchBytes = 512 << 10
)

// Retries back off from minRetry to maxRetry (or the control plane's
// Retry-After, up to maxRetryAfter), with jitter.
const (
	minRetry      = 100 * time.Millisecond
	maxRetry      = 5 * time.Second
	maxRetryAfter = 30 * time.Second
)

// ControlSink is a Sink that ships events to a Rampart control plane's
// /v1/events, at least once, in order, with their ids.
//
// WriteEvents puts the events in the sink's spool (see
// ControlPlaneConfig.SpoolDir) and returns; a goroutine posts them from
// there in batches and removes each batch once the control plane has taken
// it. A batch that fails (the control plane unreachable, 429, 5xx, and also
// 401, 403 and 404, which a misconfiguration or a rotating credential can
// cause and which a fix ends) is sent again, with the same event ids, with
// backoff, for as long as the spool has room: the control plane stores each
// id once, so that a retry never duplicates. A batch refused as invalid
// (400, 413, 422) is sent again one event at a time, and the events still
// refused are dropped and counted (ControlSinkStats.Rejected).
//
// Each event naming an actor is sent with the actor token the service
// received ([Event.ActorToken]), so that the control plane can store the
// actor as verified; without it, the actor is stored as claimed by the
// service and never drives an automatic decision.
//
// An Agent's Close waits (Flush) until the spool is empty. Close the sink
// when done with it.
type ControlSink struct {
	endpoint string
	client   *http.Client
	token    string
	log      *slog.Logger
	spool    *spool.Spool
	onDisk   bool
	service  atomic.Pointer[string]

	cancel    context.CancelFunc // stops the shipper
	done      chan struct{}      // closed when the shipper has returned
	closeOnce sync.Once
	closeErr  error

	delivered, rejected, lost, failures, dropReports atomic.Uint64
	seenDrops                                        atomic.Uint64 // drops and expiries already logged
	failing, dropping                                atomic.Bool   // an outage, a drop episode: logged once each
}

var _ Sink = (*ControlSink)(nil)

// ControlSinkStats are a ControlSink's counters since it was made, and
// the state of its spool.
type ControlSinkStats struct {
	Spooled    int   // events waiting for the control plane
	SpoolBytes int64 // what the spool holds, on disk or in memory
	Delivered  uint64
	// Dropped, Expired, Rejected and Lost never reach the control plane
	// (Undelivered is their sum).
	Dropped  uint64 // the oldest events, dropped to make room in a full spool
	Expired  uint64 // events dropped undelivered after SpoolMaxAge
	Rejected uint64 // events the control plane refused as invalid, or too large to spool
	Lost     uint64 // events the spool could not take (a write failed, or after Close), or that a spool in memory held at Close
	// CorruptBytes were cut from a spool damaged by a crash when the sink
	// started (a torn last write): the events there, if any, are lost and
	// not counted in Lost, since their number is unknown.
	CorruptBytes int64
	Failures     uint64 // attempts to deliver that failed and were retried
	DropReports  uint64 // events_dropped events the control plane took
}

// Undelivered returns how many events will never reach the control plane.
func (st ControlSinkStats) Undelivered() uint64 {
	return st.Dropped + st.Expired + st.Rejected + st.Lost
}

// NewControlSink validates cfg, opens the spool (and finds what a previous
// run left in it) and starts shipping events to the control plane at
// cfg.URL.
func NewControlSink(cfg ControlPlaneConfig) (*ControlSink, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("rampart: ControlPlaneConfig.URL %q is not an http(s) URL", cfg.URL)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	switch {
	case cfg.SpoolMaxBytes < 0:
		return nil, fmt.Errorf("rampart: ControlPlaneConfig.SpoolMaxBytes %d is negative", cfg.SpoolMaxBytes)
	case cfg.SpoolMaxBytes == 0 && cfg.SpoolDir != "":
		cfg.SpoolMaxBytes = DefaultSpoolMaxBytes
	case cfg.SpoolMaxBytes == 0:
		cfg.SpoolMaxBytes = DefaultMemorySpoolMaxBytes
	case cfg.SpoolMaxBytes < spool.MinMaxBytes:
		return nil, fmt.Errorf("rampart: ControlPlaneConfig.SpoolMaxBytes %d is below the minimum %d", cfg.SpoolMaxBytes, spool.MinMaxBytes)
	}
	if cfg.SpoolMaxAge == 0 {
		cfg.SpoolMaxAge = DefaultSpoolMaxAge
	}
	sp, err := spool.Open(spool.Config{Dir: cfg.SpoolDir, MaxBytes: cfg.SpoolMaxBytes, MaxAge: cfg.SpoolMaxAge})
	if err != nil {
		return nil, fmt.Errorf("rampart: ControlPlaneConfig.SpoolDir: %w", err)
	}
	s := &ControlSink{endpoint: strings.TrimSuffix(u.String(), "/") + "/v1/events", client: cfg.Client, token: cfg.Token,
		log: cfg.Logger, spool: sp, onDisk: cfg.SpoolDir != "", done: make(chan struct{})}
	if cfg.Service != "" {
		s.service.Store(&cfg.Service)
	}
	if st := sp.Stats(); st.Records > 0 || st.CorruptBytes > 0 {
		s.log.Info("rampart: events left in the spool by the previous run will be delivered",
			"spooled", st.Records, "spool_dir", cfg.SpoolDir, "corrupt_bytes_cut", st.CorruptBytes)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.run(ctx)
	return s, nil
}

// ControlPlaneSink returns NewControlSink(cfg) as a Sink.
//
// Deprecated: use NewControlSink, which returns the concrete type.
// ControlPlaneSink will be removed in the next release.
func ControlPlaneSink(cfg ControlPlaneConfig) (Sink, error) {
	s, err := NewControlSink(cfg)
	if err != nil {
		return nil, err // not a non-nil Sink holding a nil *ControlSink
	}
	return s, nil
}

// storedEvent is the control plane's event envelope: the fields it indexes
// and the event itself.
type storedEvent struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	Kind    Kind      `json:"kind"`
	Action  string    `json:"action"`
	Service string    `json:"service"`
	Route   string    `json:"route,omitempty"`

	ActorIP     string `json:"actor_ip,omitempty"`
	ActorUser   string `json:"actor_user,omitempty"`
	SessionHash string `json:"session_hash,omitempty"`
	TraceID     string `json:"trace_id,omitempty"`
	// ActorToken backs the actor fields: the control plane verifies it
	// and stores the actor as verified, or as claimed by this service.
	ActorToken string `json:"actor_token,omitempty"`

	Data json.RawMessage `json:"data"`
}

// encodeEvent returns the envelope of ev as the control plane takes it,
// which is what the spool keeps.
func encodeEvent(ev Event) ([]byte, error) {
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("rampart: encode event %s: %w", ev.ID, err)
	}
	return json.Marshal(storedEvent{ID: ev.ID, Time: ev.Time, Kind: ev.Kind, Action: string(ev.Action), Service: ev.Service, Route: ev.Route,
		ActorIP: ev.ActorIP, ActorUser: ev.ActorUser, SessionHash: ev.SessionHash, TraceID: ev.TraceID,
		ActorToken: ev.ActorToken, Data: data})
}

// WriteEvents puts events in the spool, in order, and returns once they
// are there (written and synced, with a SpoolDir). It fails only if the
// spool cannot take them (a disk error, or the sink is closed); the events
// it could not take are counted in ControlSinkStats.Lost.
func (s *ControlSink) WriteEvents(ctx context.Context, events []Event) error {
	recs := make([][]byte, 0, len(events))
	for _, ev := range events {
		rec, err := encodeEvent(ev)
		if err != nil {
			s.rejected.Add(1)
			s.log.Error("rampart: event not shipped", "id", ev.ID, "err", err)
			continue
		}
		recs = append(recs, rec)
	}
	if n := len(events); n > 0 && events[n-1].Service != "" && s.service.Load() == nil {
		svc := events[n-1].Service
		s.service.CompareAndSwap(nil, &svc)
	}
	n, err := s.spool.Append(recs...)
	if errors.Is(err, spool.ErrTooLarge) {
		// One event is larger than the spool takes: keep the others.
		n, err = 0, nil
		for _, rec := range recs {
			m, e := s.spool.Append(rec)
			n += m
			if errors.Is(e, spool.ErrTooLarge) {
				s.rejected.Add(1)
				s.log.Error("rampart: event too large for the spool, not shipped", "bytes", len(rec))
				n++ // accounted for
				continue
			}
			if e != nil {
				err = e
				break
			}
		}
	}
	s.noteDrops()
	if err != nil {
		s.lost.Add(uint64(len(recs) - n))
		return fmt.Errorf("rampart: event spool: %w (%d events lost)", err, len(recs)-n)
	}
	return nil
}

// noteDrops logs the first drop of an episode, which ends when the drops
// are reported to the control plane.
func (s *ControlSink) noteDrops() {
	st := s.spool.Stats()
	if lost := st.DroppedFull + st.Expired; lost > s.seenDrops.Load() {
		s.seenDrops.Store(lost)
		if s.dropping.CompareAndSwap(false, true) {
			s.log.Warn("rampart: event spool full or its events too old: dropping the oldest events until the control plane takes them",
				"dropped", st.DroppedFull, "expired", st.Expired, "spooled", st.Records, "spool_bytes", st.Bytes)
		}
	}
}

// run ships the spool's events until ctx ends.
func (s *ControlSink) run(ctx context.Context) {
	defer close(s.done)
	backoff := minRetry
	for {
		var wait time.Duration
		b, err := s.spool.Peek(maxSinkBatch, maxSinkBatchBytes)
		if errors.Is(err, spool.ErrClosed) {
			return
		}
		s.noteDrops()
		switch {
		case err != nil:
			s.failed(err)
		case b == nil:
			if s.reportDrops(ctx) {
				select {
				case <-s.spool.Appended():
				case <-ctx.Done():
					return
				}
				continue
			}
			// The report waits for the control plane.
		default:
			if wait, err = s.deliver(ctx, b); err == nil {
				backoff = minRetry
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}
		d := max(wait, backoff/2+rand.N(backoff/2+1))
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, maxRetry)
	}
}

// batchBody is the body of POST /v1/events for encoded events.
func batchBody(recs ...[]byte) []byte {
	n := 16
	for _, r := range recs {
		n += len(r) + 1
	}
	body := make([]byte, 0, n)
	body = append(body, `{"events":[`...)
	for i, r := range recs {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, r...)
	}
	return append(body, "]}"...)
}

// deliver posts one batch of the spool and removes it once taken; it
// returns the wait the control plane asked for with the error of a failed
// attempt, to be retried.
func (s *ControlSink) deliver(ctx context.Context, b *spool.Batch) (time.Duration, error) {
	recs := make([][]byte, len(b.Records))
	for i, r := range b.Records {
		recs[i] = r.Data
	}
	if s.service.Load() == nil {
		var ev struct{ Service string }
		if json.Unmarshal(recs[0], &ev) == nil && ev.Service != "" {
			s.service.CompareAndSwap(nil, &ev.Service)
		}
	}
	retry, wait, err := s.send(ctx, batchBody(recs...))
	if err != nil && retry {
		s.failed(err)
		return wait, err
	}
	if err == nil {
		s.delivered.Add(uint64(len(recs)))
	} else {
		// Refused as invalid: the events that are, alone.
		refused, first := 0, err
		for _, rec := range recs {
			retry, wait, err := s.send(ctx, batchBody(rec))
			switch {
			case err == nil:
				s.delivered.Add(1)
			case retry:
				// Sent again with the others: those delivered
				// meanwhile are ignored by the control plane.
				s.failed(err)
				return wait, err
			default:
				refused++
			}
		}
		s.rejected.Add(uint64(refused))
		s.log.Error("rampart: the control plane refused events, which are dropped", "refused", refused, "of", len(recs), "err", first)
	}
	if err := s.spool.Ack(b); err != nil {
		return 0, nil // closed meanwhile: the batch goes again next time
	}
	if s.failing.CompareAndSwap(true, false) {
		s.log.Info("rampart: the control plane takes events again", "spooled", s.spool.Stats().Records)
	}
	s.reportDrops(ctx)
	return 0, nil
}

// failed logs the first failure of an outage.
func (s *ControlSink) failed(err error) {
	s.failures.Add(1)
	if s.failing.CompareAndSwap(false, true) {
		st := s.spool.Stats()
		s.log.Warn("rampart: cannot deliver events to the control plane; keeping them in the spool and retrying",
			"err", err, "spooled", st.Records, "spool_bytes", st.Bytes, "on_disk", s.onDisk)
	}
}

// reportDrops posts an events_dropped event for the drops not reported
// yet, and says whether there is nothing left to report.
func (s *ControlSink) reportDrops(ctx context.Context) bool {
	st := s.spool.Stats()
	full, expired := st.UnreportedFull, st.UnreportedExpired
	svc := s.service.Load()
	if full+expired == 0 || svc == nil {
		return true
	}
	n := full + expired
	ev := Event{ID: newID(), Time: time.Now().UTC(), Kind: KindEventsDropped, Action: ActionObserved, Service: *svc,
		Count: int(n), Attrs: map[string]string{"spool_full": strconv.FormatUint(full, 10), "expired": strconv.FormatUint(expired, 10)},
		Sink:   "rampart.ControlSink",
		Detail: fmt.Sprintf("%d events were dropped undelivered: %d from a full spool, %d after the spool's maximum age", n, full, expired)}
	rec, err := encodeEvent(ev)
	if err != nil {
		return true
	}
	if _, _, err := s.send(ctx, batchBody(rec)); err != nil {
		return false
	}
	s.spool.MarkReported(full, expired)
	s.dropReports.Add(1)
	s.dropping.Store(false)
	s.log.Warn("rampart: reported dropped events to the control plane", "dropped", full, "expired", expired)
	return true
}

// send posts one batch and says whether a failure is worth retrying, and
// after how long the control plane asked (Retry-After).
func (s *ControlSink) send(ctx context.Context, body []byte) (retry bool, wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return false, 0, fmt.Errorf("rampart: control plane: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return true, 0, fmt.Errorf("rampart: control plane: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode/100 == 2 {
		return false, 0, nil
	}
	var e struct {
		Error string `json:"error"`
	}
	text := strings.TrimSpace(string(msg))
	if json.Unmarshal(msg, &e) == nil && e.Error != "" {
		text = e.Error
	}
	err = fmt.Errorf("rampart: control plane refused events: HTTP %d: %s", resp.StatusCode, text)
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return false, 0, err
	}
	if secs, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && secs > 0 {
		wait = min(time.Duration(secs)*time.Second, maxRetryAfter)
	}
	return true, wait, err
}

// Stats returns the sink's counters and the state of its spool.
func (s *ControlSink) Stats() ControlSinkStats {
	st := s.spool.Stats()
	return ControlSinkStats{
		Spooled: st.Records, SpoolBytes: st.Bytes,
		Delivered: s.delivered.Load(), Dropped: st.DroppedFull, Expired: st.Expired, Rejected: s.rejected.Load(),
		Lost: s.lost.Load() + st.CorruptRecords, CorruptBytes: st.CorruptBytes,
		Failures: s.failures.Load(), DropReports: s.dropReports.Load(),
	}
}

// Flush waits until every event written so far has been delivered (or
// dropped), or ctx is done.
func (s *ControlSink) Flush(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		n := s.spool.Stats().Records
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("rampart: control plane: %d events not delivered yet: %w", n, ctx.Err())
		case <-s.done:
			return fmt.Errorf("rampart: control plane: %d events not delivered: the sink is closed", n)
		case <-t.C:
		}
	}
}

// Close delivers what it can until ctx is done (Flush), then stops. What
// is left stays in SpoolDir for the next sink on it; a spool in memory
// loses it (counted in Lost, and logged). Close returns Flush's error;
// calling it again returns the same.
func (s *ControlSink) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.closeErr = s.Flush(ctx)
		s.cancel()
		<-s.done
		left := s.spool.Stats().Records
		lost, _ := s.spool.Close()
		switch {
		case lost > 0:
			s.lost.Add(uint64(lost))
			s.log.Warn("rampart: events not delivered are lost: the spool is in memory (ControlPlaneConfig.SpoolDir keeps them)", "lost", lost)
		case left > 0:
			s.log.Info("rampart: events not delivered stay in the spool for the next start", "spooled", left)
		}
	})
	return s.closeErr
}
