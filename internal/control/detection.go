package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampartsec/rampart/internal/detect"
	"github.com/rampartsec/rampart/internal/store"
)

// Defaults of a DetectConfig.
const (
	DefaultDetectWarmup   = time.Hour       // DetectConfig.Warmup when 0
	DefaultReloadInterval = 2 * time.Second // DetectConfig.ReloadInterval when 0
	// MaxReplayEvents bounds the events one replay reads: a replay runs in
	// the request, on the replica that serves it.
	MaxReplayEvents = 1_000_000
	// MaxReplayAlerts bounds the alerts one replay returns.
	MaxReplayAlerts = 10_000
)

// detectLeader names the lease and the cursor of the detection engine.
const detectLeader = "detect"

// leaderRetry is how often a replica that does not lead tries to: how long
// detection may pause after the leader dies.
const leaderRetry = 500 * time.Millisecond

// idleCheck is how often a leader with no wake-up reads the event log
// anyway: events committed while a notification connection was down.
const idleCheck = time.Second

// DetectConfig configures the detection engine of a control plane (package
// detect over the stored events).
type DetectConfig struct {
	// ScenarioDir, if set, holds scenario files (*.yaml) that replace
	// built-ins of the same name or add to them; they are reloaded when
	// they change. A directory that does not load at start is an error;
	// later, a load error keeps the scenarios in force and is logged once.
	ScenarioDir string
	// Allow lists the actors no scenario decides against (detect.Config.Allow).
	Allow []detect.Allow
	// MaxKeys bounds each scenario's buckets (detect.Config.MaxKeys).
	MaxKeys int
	// Warmup is how far back, from the stored cursor, a new leader replays
	// the events already processed, without acting on them, to rebuild
	// the buckets its predecessor held; 0 means DefaultDetectWarmup.
	Warmup time.Duration
	// ReloadInterval is how often ScenarioDir is checked for changes;
	// 0 means DefaultReloadInterval.
	ReloadInterval time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock that dates decisions; nil means time.Now.
	Now func() time.Time
}

// Detector runs the detection engine over the events the control plane
// stores. Of the replicas over one store, one at a time leads (store
// Lead): it reads the event log from the stored cursor, in commit order,
// turns each event into a detect.Event (its actor verified as the store
// says), stores each alert with its decisions, then advances the cursor.
// Alerts and decisions have ids derived from what raised them, and the
// store keeps the first copy, so a leader that takes over and processes
// events again decides nothing twice.
//
// Decisions carry their origin (the scenario), the alert and its evidence.
// A scenario in simulate mode records its decisions (simulated: true)
// without making them a change on the watch, and enforcers are never
// given them. A device decision names the fingerprint the gateway put in
// the actor token (actor.Actor.Device); gateways and agents enforce it as
// any other scope.
//
// A scenario that decided stays silent about its key for a while (by
// default the decision's TTL). When an operator lifts (deletes) one of its
// decisions, the leader learns it from the store's changes and ends that
// silence (detect.Engine.Forget), so that the same attack right after the
// lift is decided again; a new leader, replaying the events of its warm-up,
// ends the silence of every replayed alert whose stored decisions are
// gone.
type Detector struct {
	st  store.Store
	cfg DetectConfig
	log *slog.Logger

	scenarios atomic.Pointer[[]*detect.Scenario]
	version   atomic.Int64
	reloaded  chan struct{} // one slot: the scenarios changed
	loadedFP  uint64        // ScenarioDir's fingerprint before the first load

	mu    sync.Mutex
	stats DetectorStats
	eng   *detect.Engine // the leader's, while it leads
}

// DetectorStats counts what the detector did in this process.
type DetectorStats struct {
	Leading   bool          `json:"leading"`
	Cursor    int64         `json:"cursor"` // the last seq processed
	Events    uint64        `json:"events"` // events processed as leader
	Warmup    uint64        `json:"warmup"` // events replayed to rebuild state on taking the lead
	Alerts    uint64        `json:"alerts"` // alerts stored (not counting those already stored)
	Decisions uint64        `json:"decisions"`
	Skipped   uint64        `json:"skipped"` // decisions refused as invalid
	Reloads   uint64        `json:"reloads"`
	Lifted    uint64        `json:"lifted"` // decisions an operator lifted, whose scenario then ended its silence
	Engine    *detect.Stats `json:"engine,omitempty"`
}

// NewDetector loads the scenarios (built-ins and cfg.ScenarioDir) and
// returns a Detector that Run starts.
func NewDetector(st store.Store, cfg DetectConfig) (*Detector, error) {
	if st == nil {
		return nil, errors.New("control: NewDetector: store is nil")
	}
	if cfg.Warmup <= 0 {
		cfg.Warmup = DefaultDetectWarmup
	}
	if cfg.ReloadInterval <= 0 {
		cfg.ReloadInterval = DefaultReloadInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d := &Detector{st: st, cfg: cfg, log: cfg.Logger, reloaded: make(chan struct{}, 1)}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if cfg.ScenarioDir != "" {
		// Taken before loading: a file changed meanwhile is loaded again.
		d.loadedFP = dirFingerprint(cfg.ScenarioDir)
	}
	ss, err := d.load()
	if err != nil {
		return nil, fmt.Errorf("control: scenarios: %w", err)
	}
	// The engine checks the allowlist and the set; fail now, not in Run.
	if _, err := detect.New(detect.Config{Scenarios: ss, MaxKeys: cfg.MaxKeys, Allow: cfg.Allow}); err != nil {
		return nil, fmt.Errorf("control: detection: %w", err)
	}
	d.scenarios.Store(&ss)
	return d, nil
}

func (d *Detector) load() ([]*detect.Scenario, error) {
	if d.cfg.ScenarioDir == "" {
		return detect.Builtin(), nil
	}
	loaded, err := detect.LoadDir(d.cfg.ScenarioDir)
	if err != nil {
		return nil, err
	}
	return detect.Merge(detect.Builtin(), loaded), nil
}

// Scenarios returns the scenarios in force.
func (d *Detector) Scenarios() []*detect.Scenario { return *d.scenarios.Load() }

// Stats returns the counters so far, and the engine's while this process
// leads.
func (d *Detector) Stats() DetectorStats {
	d.mu.Lock()
	st, eng := d.stats, d.eng
	d.mu.Unlock()
	if eng != nil {
		es := eng.Stats()
		st.Engine = &es
	}
	return st
}

func (d *Detector) count(fn func(*DetectorStats)) {
	d.mu.Lock()
	fn(&d.stats)
	d.mu.Unlock()
}

// Run detects until ctx is done: it leads when it can, and reloads the
// scenario files when they change.
func (d *Detector) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if d.cfg.ScenarioDir != "" {
		wg.Go(func() { d.watchDir(ctx) })
	}
	wake, err := d.st.SubscribeEvents(ctx)
	if err != nil {
		return fmt.Errorf("control: detection: %w", err)
	}
	// Subscribed before the leader reads the changes: no lift is missed.
	changed, err := d.st.Subscribe(ctx)
	if err != nil {
		return fmt.Errorf("control: detection: %w", err)
	}
	for {
		lease, err := d.st.Lead(ctx, detectLeader)
		switch {
		case err == nil:
			d.log.Info("control: detection: leading")
			err = d.lead(ctx, lease, wake, changed)
			lease.Release()
			d.mu.Lock()
			d.stats.Leading, d.eng = false, nil
			d.mu.Unlock()
			if ctx.Err() != nil {
				return nil
			}
			d.log.Warn("control: detection: stopped leading", "err", err)
		case ctx.Err() != nil:
			return nil
		case !errors.Is(err, store.ErrBusy):
			d.log.Warn("control: detection: cannot take the lead", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(leaderRetry):
		}
	}
}

// lead runs the engine while the lease holds.
func (d *Detector) lead(ctx context.Context, lease store.Lease, wake, changed <-chan int64) error {
	version := d.version.Load()
	eng, err := detect.New(detect.Config{Scenarios: d.Scenarios(), MaxKeys: d.cfg.MaxKeys, Allow: d.cfg.Allow})
	if err != nil {
		return err
	}
	cursor, err := d.st.Cursor(ctx, detectLeader)
	if err != nil {
		return err
	}
	// The revision is read before the warm-up looks for lifted decisions:
	// one lifted meanwhile is then in the changes read after it.
	_, rev, err := d.st.Changes(ctx, math.MaxInt64)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.stats.Leading, d.stats.Cursor, d.eng = true, cursor, eng
	d.mu.Unlock()
	lifts := &liftWatch{made: map[string]madeDecision{}, rev: rev}
	if err := d.warmup(ctx, eng, cursor, lifts); err != nil {
		return err
	}
	checkLifts := true
	tick := time.NewTicker(idleCheck)
	defer tick.Stop()
	var evs []detect.Event
	for {
		select {
		case <-lease.Lost():
			return errors.New("lease lost")
		case _, ok := <-changed:
			// Read here too: a leader kept busy by events never waits.
			if !ok {
				changed = nil // the store is closing
			}
			checkLifts = true
		default:
		}
		if checkLifts {
			if err := d.applyLifts(ctx, eng, lifts); err != nil {
				return err
			}
			checkLifts = false
		}
		if v := d.version.Load(); v != version {
			if err := eng.Reload(d.Scenarios()); err != nil {
				d.log.Error("control: detection: reload refused by the engine; keeping the scenarios in force", "err", err)
			}
			version = v
		}
		page, err := d.st.ReadEventLog(ctx, store.EventLogFilter{After: cursor, Limit: store.MaxQueryLimit})
		if err != nil {
			return err
		}
		if len(page) == 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-lease.Lost():
				return errors.New("lease lost")
			case <-wake:
			case _, ok := <-changed:
				if !ok {
					changed = nil // the store is closing
				}
				checkLifts = true
			case <-d.reloaded:
			case <-tick.C:
				checkLifts = true
			}
			continue
		}
		evs = evs[:0]
		for _, e := range page {
			evs = AppendDetectEvents(evs, e.Event)
		}
		alerts := eng.ProcessBatch(nil, evs)
		for _, a := range alerts {
			if err := d.storeAlert(ctx, a, lifts); err != nil {
				return err
			}
		}
		next := page[len(page)-1].Seq
		if err := d.st.AdvanceCursor(ctx, detectLeader, cursor, next); err != nil {
			return err // another leader moved it: stop
		}
		cursor = next
		d.count(func(s *DetectorStats) { s.Events += uint64(len(page)); s.Cursor = cursor })
	}
}

// warmup replays the events up to cursor of the last Warmup, discarding
// the alerts: those were the previous leader's to store.
func (d *Detector) warmup(ctx context.Context, eng *detect.Engine, cursor int64, lifts *liftWatch) error {
	if cursor == 0 {
		return nil
	}
	since := d.cfg.Now().Add(-d.cfg.Warmup)
	var after int64
	var n uint64
	var evs []detect.Event
	for {
		page, err := d.st.ReadEventLog(ctx, store.EventLogFilter{After: after, Through: cursor, Since: since, Limit: store.MaxQueryLimit})
		if err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			// One stored event at a time: a lifted decision's silence
			// ends before the next event, as it did on the leader.
			evs = AppendDetectEvents(evs[:0], e.Event)
			alerts := eng.ProcessBatch(nil, evs)
			for _, a := range alerts {
				if err := d.replayedAlert(ctx, eng, a, since, lifts); err != nil {
					return err
				}
			}
		}
		after = page[len(page)-1].Seq
		n += uint64(len(page))
	}
	d.count(func(s *DetectorStats) { s.Warmup += n })
	return nil
}

// storeAlert stores a with the decisions it asks for.
func (d *Detector) storeAlert(ctx context.Context, a detect.Alert, lifts *liftWatch) error {
	sa, ds, skipped := AlertRecord(a, d.cfg.Now())
	created, err := d.st.PutAlert(ctx, sa, ds)
	if err != nil {
		return err
	}
	for _, sd := range ds {
		lifts.made[sd.ID] = madeDecision{scenario: a.Scenario, key: a.Key, value: sd.Value, expires: sd.Expires}
	}
	if created {
		d.count(func(s *DetectorStats) {
			s.Alerts++
			s.Decisions += uint64(len(ds))
			s.Skipped += uint64(skipped)
		})
		d.log.Info("control: detection: alert", "scenario", a.Scenario, "key", a.Key, "id", sa.ID, "decisions", len(ds))
	}
	return nil
}

// liftWatch is what the leader knows of the decisions its engine made:
// by decision id, the scenario, key and value to forget if the decision is
// deleted; and the revision of the store's changes read so far.
type liftWatch struct {
	made map[string]madeDecision
	rev  int64
}

type madeDecision struct {
	scenario, key, value string
	expires              time.Time
}

// applyLifts reads the changes since lifts.rev and makes the engine forget
// the silence of each decision deleted. A decision that expired is
// dropped from the watch: its silence ended with it, or soon will.
func (d *Detector) applyLifts(ctx context.Context, eng *detect.Engine, lifts *liftWatch) error {
	for {
		changes, current, err := d.st.Changes(ctx, lifts.rev)
		if err != nil {
			return err
		}
		for _, c := range changes {
			switch {
			case c.Kind == store.ChangeReset:
				// Changes were pruned unread: ask the store about each.
				for id := range lifts.made {
					if _, err := d.st.Decision(ctx, id); errors.Is(err, store.ErrNotFound) {
						d.lift(eng, lifts, id)
					} else if err != nil {
						return err
					}
				}
			case c.Kind == store.ChangeDecision && c.Op == store.OpDelete:
				d.lift(eng, lifts, c.Key)
			}
		}
		done := current == lifts.rev
		lifts.rev = current
		if done || len(changes) < store.MaxChanges {
			break
		}
	}
	now := d.cfg.Now()
	for id, m := range lifts.made {
		if !m.expires.IsZero() && now.After(m.expires) {
			delete(lifts.made, id)
		}
	}
	return nil
}

func (d *Detector) lift(eng *detect.Engine, lifts *liftWatch, id string) {
	m, ok := lifts.made[id]
	if !ok {
		return
	}
	delete(lifts.made, id)
	if eng.Forget(m.scenario, m.key, m.value) {
		d.count(func(s *DetectorStats) { s.Lifted++ })
		d.log.Info("control: detection: decision lifted; the scenario decides on its key again",
			"scenario", m.scenario, "key", m.key, "decision", id)
	}
}

// replayedAlert looks, for an alert the warm-up replayed, for the
// decisions the previous leader stored: those an operator deleted since
// are forgotten at once (the silence they caused ended with them), the
// others watched for a lift. The stored alert is the one of the same id
// (the replay raised what the previous leader raised), or else the newest
// of the same scenario and key stored since the warm-up's start (the
// replay began within its bucket); if none is found, the replayed silence
// is kept.
func (d *Detector) replayedAlert(ctx context.Context, eng *detect.Engine, a detect.Alert, since time.Time, lifts *liftWatch) error {
	if len(a.Decisions) == 0 {
		return nil
	}
	sa, _, _ := AlertRecord(a, d.cfg.Now())
	stored, err := d.st.Alert(ctx, sa.ID)
	if errors.Is(err, store.ErrNotFound) {
		var found bool
		stored, found, err = d.storedAlertOf(ctx, a, since)
		if err != nil || !found {
			return err
		}
	} else if err != nil {
		return err
	}
	for _, ad := range stored.Decisions {
		if ad.ID == "" || !slices.ContainsFunc(a.Decisions, func(dd detect.Decision) bool { return dd.Value == ad.Value }) {
			continue
		}
		sd, err := d.st.Decision(ctx, ad.ID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			if eng.Forget(a.Scenario, a.Key, ad.Value) {
				d.count(func(s *DetectorStats) { s.Lifted++ })
			}
		case err != nil:
			return err
		default:
			lifts.made[ad.ID] = madeDecision{scenario: a.Scenario, key: a.Key, value: ad.Value, expires: sd.Expires}
		}
	}
	return nil
}

// storedAlertOf returns the newest stored alert of a's scenario and key
// created since, among the last MaxQueryLimit of the scenario.
func (d *Detector) storedAlertOf(ctx context.Context, a detect.Alert, since time.Time) (store.Alert, bool, error) {
	as, err := d.st.Alerts(ctx, store.AlertFilter{Scenario: a.Scenario, Since: since, Limit: store.MaxQueryLimit})
	if err != nil {
		return store.Alert{}, false, err
	}
	for _, x := range as {
		if x.Key == a.Key {
			return x, true, nil
		}
	}
	return store.Alert{}, false, nil
}

// AlertRecord is what the control plane stores of a: the alert, with an id
// derived from it, and the decisions it makes, at now, with ids derived
// from the alert's. Decisions that cannot be made (invalid ones) are
// recorded in the alert as skipped, and counted.
func AlertRecord(a detect.Alert, now time.Time) (store.Alert, []store.Decision, int) {
	first := a.First.Format(time.RFC3339Nano)
	if len(a.Evidence) > 0 {
		first = a.Evidence[0]
	}
	id := store.AlertID(a.Scenario, a.Key, first)
	sa := store.Alert{ID: id, Scenario: a.Scenario, Key: a.Key, Count: a.Count, Distinct: a.Distinct,
		First: a.First, Last: a.Last, Evidence: a.Evidence, Decisions: []store.AlertDecision{}}
	var ds []store.Decision
	var skipped int
	for i, dd := range a.Decisions {
		ad := store.AlertDecision{Scope: string(dd.Scope), Value: dd.Value, Action: store.DecisionAction(dd.Action),
			TTL: dd.TTL.String(), Simulated: dd.Simulate}
		sa.Simulated = sa.Simulated || dd.Simulate
		var scope store.Scope
		switch dd.Scope {
		case detect.ScopeIP:
			scope = store.ScopeIP
		case detect.ScopeRange:
			scope = store.ScopeCIDR
		case detect.ScopeUser:
			scope = store.ScopeUser
		case detect.ScopeSession:
			scope = store.ScopeSession
		case detect.ScopeDevice:
			scope = store.ScopeDevice
		default:
			ad.Skipped = fmt.Sprintf("unknown scope %q", dd.Scope)
			skipped++
			sa.Decisions = append(sa.Decisions, ad)
			continue
		}
		sd := store.Decision{ID: store.AlertDecisionID(id, i), Scope: scope, Value: dd.Value, Action: store.DecisionAction(dd.Action),
			RateLimit: dd.RateLimit, Reason: alertReason(a, dd), Origin: a.Scenario, Expires: now.Add(dd.TTL),
			AlertID: id, Evidence: a.Evidence, Simulated: dd.Simulate}
		if _, err := store.ValidateDecision(sd, now); err != nil {
			ad.Skipped = err.Error()
			skipped++
			sa.Decisions = append(sa.Decisions, ad)
			continue
		}
		ad.ID = sd.ID
		sa.Decisions = append(sa.Decisions, ad)
		ds = append(ds, sd)
	}
	return sa, ds, skipped
}

func alertReason(a detect.Alert, dd detect.Decision) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d events", a.Scenario, a.Count)
	if a.Distinct > 0 {
		fmt.Fprintf(&b, ", %d distinct", a.Distinct)
	}
	fmt.Fprintf(&b, " for %s from %s to %s", a.Key, a.First.Format(time.RFC3339), a.Last.Format(time.RFC3339))
	if dd.Repeats > 0 {
		fmt.Fprintf(&b, "; repeat %d, ttl %s", dd.Repeats, dd.TTL)
	}
	return b.String()
}

// eventData is what the detection engine reads of an event's Data (the
// event as the SDK or the gateway sent it, rampart.Event's JSON), beside
// the stored fields. Fields of other types than these are ignored.
type eventData struct {
	Method string            `json:"method"`
	Path   string            `json:"path"`
	Status int               `json:"status"`
	Count  int               `json:"count"`
	Device string            `json:"device"`
	Name   string            `json:"name"` // a business event's name
	Attrs  map[string]string `json:"attrs"`
	Login  *detect.Login     `json:"login"`
	Object *detect.Object    `json:"object"`
	Paths  []string          `json:"paths"` // a gateway's request summary: the distinct paths asked for
}

// KindRequestSummary is the kind of the request summaries the SDK's
// Handler and the gateway report (rampart.KindRequestSummary): the
// detection engine reads them as detect.KindRequest events with a Count.
const KindRequestSummary = "request_summary"

// MaxSummaryPaths bounds the paths of one request summary that the
// detection engine reads as events of their own (see AppendDetectEvents);
// the gateway sends 16 at most.
const MaxSummaryPaths = 64

// AppendDetectEvents appends to dst what the detection engine reads of a
// stored event: DetectEvent's, except for a request summary that lists
// the distinct paths its requests asked for (a gateway's). Such a summary
// becomes one request event per distinct path (MaxSummaryPaths at most),
// so that a scenario counting distinct paths (probing) sees each once,
// and their Counts add up to the summary's, so that a scenario counting
// requests (scraping) counts N requests N times: every path but the first
// stands for one request, the first for the rest. A summary that claims
// more distinct paths than requests is read as its Count of them. The
// paths a summary did not list (PathsOmitted) are in its Count but not
// counted as distinct: a prober that asks for more than 16 paths in one
// gateway window needs a few windows to be seen. The objects of an SDK
// summary are not read: no built-in scenario counts them (bola reads the
// object_access events, which carry the owner a summary leaves out).
func AppendDetectEvents(dst []detect.Event, e store.Event) []detect.Event {
	ev, paths := detectEvent(e)
	if ev.Kind != detect.KindRequest || len(paths) == 0 {
		return append(dst, ev)
	}
	n := max(ev.Count, 1)
	distinct := make([]string, 0, min(len(paths)+1, MaxSummaryPaths))
	for _, p := range append([]string{ev.Path}, paths...) {
		if len(distinct) == min(n, MaxSummaryPaths) {
			break
		}
		if p != "" && !slices.Contains(distinct, p) {
			distinct = append(distinct, p)
		}
	}
	if len(distinct) == 0 {
		return append(dst, ev)
	}
	first := ev
	first.Path, first.Count = distinct[0], n-(len(distinct)-1)
	dst = append(dst, first)
	for _, p := range distinct[1:] {
		x := ev
		x.Path, x.Count = p, 1
		dst = append(dst, x)
	}
	return dst
}

// DetectEvent is what the detection engine reads of a stored event: the
// actor as the control plane attributed it, and from Data the request's
// method, path, status and count, the device, the login attempt, the
// object served and the attributes. A request summary is read as a
// detect.KindRequest event; AppendDetectEvents also reads the paths it
// lists.
//
// The actor of an event stored unverified (claimed by the service that
// posted it, see the package documentation) is left out entirely, its
// address included: the engine trusts Actor.IP, and a service's claim is
// evidence about the service, not about the actor, so it keys no bucket
// and names no decision. Of an actor verified but for its user (the
// actor token backs the address and session, the posting service named
// the user: store.Event.ActorUserClaimedBy) the user is left out, the
// address and session kept: the scenarios keyed on them still see it,
// and no decision is ever keyed on a user a service merely claims, so a
// compromised service cannot get a user blocked by naming them.
//
// What a login event says about the attempt (Login: the name typed, the
// account it resolved to) is the application's, not the actor's, and is
// kept whatever the actor: account-takeover makes Login.User read-only
// when a verified address that failed to log in as that name succeeds.
// That decision rests on the application's word that the account was
// logged into, and is allowed because it protects the account (read-only
// for 24h, no escalation) instead of shutting it out: refusing it would
// leave a taken-over account writable. A service that lies can make an
// account read-only for a day, and only with actor tokens it received.
func DetectEvent(e store.Event) detect.Event {
	ev, _ := detectEvent(e)
	return ev
}

func detectEvent(e store.Event) (detect.Event, []string) {
	ev := detect.Event{ID: e.ID, Time: e.Time, Kind: e.Kind, Action: e.Action, Service: e.Service, Route: e.Route,
		ActorVerified: e.ActorVerified}
	if ev.Kind == KindRequestSummary {
		ev.Kind = detect.KindRequest
	}
	if e.ActorVerified {
		ev.Actor = detect.Actor{IP: e.ActorIP, User: e.ActorUser, Session: e.SessionHash}
		if e.ActorUserClaimedBy != "" {
			ev.Actor.User = ""
		}
	}
	if len(e.Data) == 0 {
		return ev, nil
	}
	var data eventData
	if json.Unmarshal(e.Data, &data) != nil {
		// A field of another type: read them one by one, keeping those
		// that fit.
		data = eventData{}
		var fields map[string]json.RawMessage
		if json.Unmarshal(e.Data, &fields) != nil {
			return ev, nil
		}
		for k, v := range fields {
			b, _ := json.Marshal(map[string]json.RawMessage{k: v})
			json.Unmarshal(b, &data)
		}
	}
	ev.Method, ev.Path, ev.Status, ev.Count = data.Method, data.Path, data.Status, data.Count
	if e.ActorVerified {
		ev.Actor.Device = data.Device
	}
	if data.Login != nil {
		ev.Login = *data.Login
	}
	if data.Object != nil {
		ev.Object = *data.Object
	}
	ev.Attrs = data.Attrs
	if data.Name != "" && e.Kind == detect.KindBusiness {
		if ev.Attrs == nil {
			ev.Attrs = map[string]string{}
		}
		if _, ok := ev.Attrs["name"]; !ok {
			ev.Attrs["name"] = data.Name
		}
	}
	return ev, data.Paths
}

// watchDir reloads the scenarios when the files of ScenarioDir change.
func (d *Detector) watchDir(ctx context.Context) {
	t := time.NewTicker(d.cfg.ReloadInterval)
	defer t.Stop()
	last := d.loadedFP
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fp := dirFingerprint(d.cfg.ScenarioDir)
		if fp == last {
			continue
		}
		ss, err := d.load()
		if err == nil {
			_, err = detect.New(detect.Config{Scenarios: ss, MaxKeys: d.cfg.MaxKeys, Allow: d.cfg.Allow})
		}
		if err != nil {
			// Keep the set in force; say so once per distinct error, and
			// try again at the next change.
			last = fp
			if err.Error() != lastErr {
				d.log.Error("control: detection: scenarios not reloaded; keeping those in force", "dir", d.cfg.ScenarioDir, "err", err)
				lastErr = err.Error()
			}
			continue
		}
		last, lastErr = fp, ""
		d.scenarios.Store(&ss)
		d.version.Add(1)
		d.count(func(s *DetectorStats) { s.Reloads++ })
		select {
		case d.reloaded <- struct{}{}:
		default:
		}
		d.log.Info("control: detection: scenarios reloaded", "dir", d.cfg.ScenarioDir, "scenarios", len(ss))
	}
}

// dirFingerprint sums the names, sizes and times of the scenario files of
// dir.
func dirFingerprint(dir string) uint64 {
	h := fnv.New64a()
	entries, err := os.ReadDir(dir)
	if err != nil {
		fmt.Fprintf(h, "error %v", err)
		return h.Sum64()
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".yaml") && !strings.HasSuffix(e.Name(), ".yml") {
			continue
		}
		info, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		fmt.Fprintf(h, "%s %d %d\n", e.Name(), info.Size(), info.ModTime().UnixNano())
	}
	return h.Sum64()
}

// Replay runs a fresh engine with scenarios (nil: those in force) over the
// stored events of [since, until) in time order, and returns the alerts it
// raises and the events it read. It stores nothing.
func (d *Detector) Replay(ctx context.Context, scenarios []*detect.Scenario, since, until time.Time) ([]detect.Alert, int, error) {
	if scenarios == nil {
		scenarios = d.Scenarios()
	}
	return replay(ctx, d.st, detect.Config{Scenarios: scenarios, MaxKeys: d.cfg.MaxKeys, Allow: d.cfg.Allow}, since, until)
}

func replay(ctx context.Context, st store.Store, cfg detect.Config, since, until time.Time) ([]detect.Alert, int, error) {
	eng, err := detect.New(cfg)
	if err != nil {
		return nil, 0, err
	}
	f := store.EventFilter{Since: since, Until: until, Limit: store.MaxQueryLimit}
	alerts := []detect.Alert{}
	n := 0
	var evs []detect.Event
	for n < MaxReplayEvents {
		page, err := st.QueryEvents(ctx, f)
		if err != nil {
			return nil, n, err
		}
		if len(page) == 0 {
			break
		}
		evs = evs[:0]
		for _, e := range page {
			evs = AppendDetectEvents(evs, e)
		}
		alerts = eng.ProcessBatch(alerts, evs)
		n += len(page)
		c := page[len(page)-1].Cursor()
		f.After = &c
		if len(alerts) > MaxReplayAlerts {
			alerts = alerts[:MaxReplayAlerts]
			break
		}
	}
	return alerts, n, nil
}
