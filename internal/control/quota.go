package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// Defaults of a Quotas, for its zero fields.
const (
	DefaultInstancesPerService = 1000 // instances stored per service
	DefaultWatchesPerService   = 1000 // open watches per service identity: one per instance
	DefaultWatches             = 4096 // open watches of all service identities together
	DefaultRequestsPerSecond   = 100  // sustained requests per service identity
	DefaultBurst               = 200  // requests a service identity may make at once
	DefaultInFlightPerService  = 64   // requests of one service identity served at once, watches apart
	// MaxHeartbeatBytes bounds a heartbeat's body (with
	// Config.MaxBodyBytes, whichever is smaller): a real one, a few
	// hundred modules and routes, is tens of KiB, and every instance's
	// is stored, so that a service's inventory is at most
	// InstancesPerService times this.
	MaxHeartbeatBytes = 256 << 10
	// QuotaEventInterval is the least time between two quota_exceeded
	// events of one service and one quota: refusals in between are
	// counted in the next event, so that the events cannot flood the
	// store that the quotas protect.
	QuotaEventInterval = time.Minute
)

// Quotas bound what one service identity (one SVID's service name, all its
// instances together) can cost the control plane, so that a misbehaving or
// compromised service cannot exhaust it for the others and for the admins.
// Requests past a quota are refused with 429 Too Many Requests, a
// Retry-After header and a JSON error (code CodeQuotaExceeded, field the
// quota's name), and recorded as an event of kind "quota_exceeded" for the
// service, at most one per QuotaEventInterval and quota.
//
// Requests made with the admin token are never held to these quotas: the
// admin must be able to act (revoke the misbehaving service) while a
// service misbehaves. Joining (a join token, no identity yet) is not either;
// a join token allows the few uses an admin gave it.
//
// The instance quota is kept in the store, so it holds across replicas
// (store.Store.HeartbeatQuota). The others are counted by each replica in
// its memory: behind a load balancer over n replicas a service may hold up
// to n times as many watches, and make n times as many requests, as one
// replica allows; the total watch limit bounds each replica's memory
// whatever the number of identities.
//
// A zero field means its default; a negative one, no limit.
type Quotas struct {
	// InstancesPerService is the most instances stored per service: a
	// heartbeat from a new instance id replaces the service's instance
	// seen longest ago if that one is gone (no heartbeat for
	// Config.StaleAfter), and is refused otherwise (quota "instances").
	InstancesPerService int
	// WatchesPerService is the most GET /v1/watch long polls one service
	// identity holds open at once (quota "watches").
	WatchesPerService int
	// Watches is the most long polls all service identities together
	// hold open at once (quota "watches_total").
	Watches int
	// RequestsPerSecond and Burst are a token bucket per service identity,
	// over every endpoint it calls (quota "requests").
	RequestsPerSecond float64
	Burst             int
	// InFlightPerService is the most requests of one service identity
	// served at once, long polls apart (quota "in_flight").
	InFlightPerService int
}

// withDefaults returns q with its zero fields set to their defaults.
func (q Quotas) withDefaults() Quotas {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&q.InstancesPerService, DefaultInstancesPerService)
	def(&q.WatchesPerService, DefaultWatchesPerService)
	def(&q.Watches, DefaultWatches)
	def(&q.Burst, DefaultBurst)
	def(&q.InFlightPerService, DefaultInFlightPerService)
	if q.RequestsPerSecond == 0 {
		q.RequestsPerSecond = DefaultRequestsPerSecond
	}
	return q
}

// CodeQuotaExceeded is the error code of a request refused by a quota.
const CodeQuotaExceeded = "quota_exceeded"

// Names of the quotas, in errors (field), events and GET /v1/quotas.
const (
	QuotaInstances    = "instances"
	QuotaWatches      = "watches"
	QuotaWatchesTotal = "watches_total"
	QuotaRequests     = "requests"
	QuotaInFlight     = "in_flight"
)

// limiter keeps the per-identity counts of the quotas. Its memory is one
// small entry per service identity seen (identities are issued by this
// control plane's CA, so their number is the deployment's), and entries
// that hold nothing are dropped.
type limiter struct {
	q   Quotas
	now func() time.Time

	mu       sync.Mutex
	ids      map[string]*identityLoad
	watches  int // open watches of all service identities
	lastTidy time.Time
}

type identityLoad struct {
	tokens   float64
	last     time.Time // of the last refill
	watches  int
	inFlight int
	refused  map[string]int64     // refusals per quota, since start
	unlogged map[string]int64     // refusals per quota not yet in an event
	logged   map[string]time.Time // last event per quota
}

func newLimiter(q Quotas, now func() time.Time) *limiter {
	return &limiter{q: q, now: now, ids: map[string]*identityLoad{}}
}

func (l *limiter) load(service string, now time.Time) *identityLoad {
	id := l.ids[service]
	if id == nil {
		id = &identityLoad{tokens: float64(l.q.Burst), last: now}
		l.ids[service] = id
	}
	return id
}

// quotaError is a refusal by a quota.
func quotaError(quota, msg string) *apiError {
	return &apiError{status: http.StatusTooManyRequests, code: CodeQuotaExceeded, field: quota, msg: msg}
}

// allow takes one request of service from its token bucket and, unless
// watch, one in-flight slot, which done gives back. It returns the quota
// refused and how long to wait, or "" and a done func.
func (l *limiter) allow(service string, watch bool) (done func(), quota string, retry time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tidy(now)
	id := l.load(service, now)
	if l.q.RequestsPerSecond > 0 && l.q.Burst > 0 {
		if elapsed := now.Sub(id.last).Seconds(); elapsed > 0 {
			id.tokens = math.Min(float64(l.q.Burst), id.tokens+elapsed*l.q.RequestsPerSecond)
		}
		id.last = now
		if id.tokens < 1 {
			return nil, QuotaRequests, time.Duration((1 - id.tokens) / l.q.RequestsPerSecond * float64(time.Second))
		}
	}
	if watch {
		switch {
		case l.q.WatchesPerService > 0 && id.watches >= l.q.WatchesPerService:
			return nil, QuotaWatches, 5 * time.Second
		case l.q.Watches > 0 && l.watches >= l.q.Watches:
			return nil, QuotaWatchesTotal, 5 * time.Second
		}
	} else if l.q.InFlightPerService > 0 && id.inFlight >= l.q.InFlightPerService {
		return nil, QuotaInFlight, time.Second
	}
	if l.q.RequestsPerSecond > 0 && l.q.Burst > 0 {
		id.tokens--
	}
	if watch {
		id.watches++
		l.watches++
	} else {
		id.inFlight++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if watch {
				id.watches--
				l.watches--
			} else {
				id.inFlight--
			}
		})
	}, "", 0
}

// refused counts a refusal and reports whether it is time for an event,
// and how many refusals of that quota it covers.
func (l *limiter) refused(service, quota string) (event bool, count int64) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	id := l.load(service, now)
	if id.refused == nil {
		id.refused, id.unlogged, id.logged = map[string]int64{}, map[string]int64{}, map[string]time.Time{}
	}
	id.refused[quota]++
	id.unlogged[quota]++
	if last, ok := id.logged[quota]; ok && now.Sub(last) < QuotaEventInterval {
		return false, 0
	}
	id.logged[quota] = now
	count = id.unlogged[quota]
	id.unlogged[quota] = 0
	return true, count
}

// tidy drops, at most once a minute, the entries of identities that hold
// nothing: no open request, a full bucket, no refusal waiting for its event.
func (l *limiter) tidy(now time.Time) {
	if now.Sub(l.lastTidy) < time.Minute {
		return
	}
	l.lastTidy = now
	for name, id := range l.ids {
		full := l.q.RequestsPerSecond <= 0 || id.tokens+now.Sub(id.last).Seconds()*l.q.RequestsPerSecond >= float64(l.q.Burst)
		quiet := true
		for q, n := range id.unlogged {
			quiet = quiet && (n == 0 || now.Sub(id.logged[q]) >= QuotaEventInterval)
		}
		if id.watches == 0 && id.inFlight == 0 && full && quiet && len(id.refused) == 0 {
			delete(l.ids, name)
		}
	}
}

// limit applies the request quotas to a service's request: it returns a
// func to call when the request ends, or the refusal.
func (h *Handler) limit(w http.ResponseWriter, r *http.Request, service string, watch bool) (done func(), err error) {
	done, quota, retry := h.limits.allow(service, watch)
	if quota == "" {
		return done, nil
	}
	var msg string
	switch quota {
	case QuotaRequests:
		msg = fmt.Sprintf("service %s is over its rate of %g requests per second (burst %d)", service, h.limits.q.RequestsPerSecond, h.limits.q.Burst)
	case QuotaWatches:
		msg = fmt.Sprintf("service %s already holds %d open watches, the most allowed per service", service, h.limits.q.WatchesPerService)
	case QuotaWatchesTotal:
		msg = fmt.Sprintf("the control plane already holds %d open watches, the most allowed", h.limits.q.Watches)
	case QuotaInFlight:
		msg = fmt.Sprintf("service %s already has %d requests in progress, the most allowed", service, h.limits.q.InFlightPerService)
	}
	return nil, h.refuse(w, r, service, quota, retry, msg)
}

// refuse answers a request refused by quota: 429 with Retry-After, and an
// event unless one was recorded for this service and quota within
// QuotaEventInterval.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, service, quota string, retry time.Duration, msg string) error {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(retry.Seconds())))))
	if event, count := h.limits.refused(service, quota); event {
		h.quotaEvent(r.Context(), r, service, quota, count)
	}
	return quotaError(quota, msg)
}

// quotaEvent records that a service was refused by a quota count times.
func (h *Handler) quotaEvent(ctx context.Context, r *http.Request, service, quota string, count int64) {
	var b [12]byte
	rand.Read(b[:])
	now := h.cfg.Now().UTC()
	id := "quota-" + hex.EncodeToString(b[:])
	limit := map[string]float64{
		QuotaInstances: float64(h.limits.q.InstancesPerService), QuotaWatches: float64(h.limits.q.WatchesPerService),
		QuotaWatchesTotal: float64(h.limits.q.Watches), QuotaRequests: h.limits.q.RequestsPerSecond,
		QuotaInFlight: float64(h.limits.q.InFlightPerService),
	}[quota]
	data, _ := json.Marshal(map[string]any{
		"id": id, "time": now, "kind": "quota_exceeded", "action": "refused", "service": service,
		"route": r.Method + " " + r.URL.Path, "quota": quota, "limit": limit, "refused": count,
		"detail": fmt.Sprintf("%d requests of service %s refused by the %s quota since the last such event", count, service, quota),
	})
	ev := store.Event{ID: id, Time: now, Kind: "quota_exceeded", Action: "refused", Service: service,
		Route: r.Method + " " + r.URL.Path, Data: data}
	if _, err := h.cfg.Store.AppendEvents(context.WithoutCancel(ctx), []store.Event{ev}); err != nil {
		h.log.Warn("control: quota event not stored", "service", service, "quota", quota, "err", err)
	}
	h.log.Warn("control: service over quota", "service", service, "quota", quota, "refused", count)
}

// QuotaReport is the response to GET /v1/quotas: the quotas in force and
// what each service identity holds now.
type QuotaReport struct {
	InstancesPerService int            `json:"instances_per_service"`
	WatchesPerService   int            `json:"watches_per_service"`
	Watches             int            `json:"watches"`
	RequestsPerSecond   float64        `json:"requests_per_second"`
	Burst               int            `json:"burst"`
	InFlightPerService  int            `json:"in_flight_per_service"`
	OpenWatches         int            `json:"open_watches"` // of all service identities
	Services            []ServiceQuota `json:"services"`
}

// ServiceQuota is one service identity in a QuotaReport.
type ServiceQuota struct {
	Service     string           `json:"service"`
	OpenWatches int              `json:"open_watches"`
	InFlight    int              `json:"in_flight"`
	Refused     map[string]int64 `json:"refused,omitempty"` // per quota, since this replica started
}

func (h *Handler) getQuotas(w http.ResponseWriter, r *http.Request) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	l := h.limits
	l.mu.Lock()
	rep := QuotaReport{
		InstancesPerService: l.q.InstancesPerService, WatchesPerService: l.q.WatchesPerService, Watches: l.q.Watches,
		RequestsPerSecond: l.q.RequestsPerSecond, Burst: l.q.Burst, InFlightPerService: l.q.InFlightPerService,
		OpenWatches: l.watches, Services: []ServiceQuota{},
	}
	for name, id := range l.ids {
		sq := ServiceQuota{Service: name, OpenWatches: id.watches, InFlight: id.inFlight}
		if len(id.refused) > 0 {
			sq.Refused = make(map[string]int64, len(id.refused))
			for q, n := range id.refused {
				sq.Refused[q] = n
			}
		}
		rep.Services = append(rep.Services, sq)
	}
	l.mu.Unlock()
	slices.SortFunc(rep.Services, func(a, b ServiceQuota) int {
		switch {
		case a.Service < b.Service:
			return -1
		case a.Service > b.Service:
			return 1
		}
		return 0
	})
	writeJSON(w, http.StatusOK, rep)
	return nil
}
