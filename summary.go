package rampart

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/summary"
)

// Request summaries. Detection needs to know what ordinary requests add up
// to (an actor reading thousands of objects, a wall of 404s), but an event
// per request would cost the service and the control plane more than the
// requests. With Config.SummaryWindow set, the Handler counts requests
// instead, per key: the actor (IP, user, session hash), the route pattern,
// the method and the response status. At the end of each window it ships
// one request_summary event per key seen in it, whose Count is the number
// of requests, with the distinct objects they served (ObjectAccess), at
// most Config.SummaryMaxObjects of them (the rest counted in
// ObjectsOmitted). A window holds at most Config.SummaryMaxKeys keys; the
// requests of further keys are counted in one overflow summary (no actor,
// Attrs["overflow"] = "true") and in Stats.SummaryOverflow, so that no
// request goes uncounted and an actor who varies its keys cannot grow the
// agent's memory. One actor (address and user: a session is the hash of
// whatever cookie the client sends the gateway) holds at most 32 keys of
// a window: the requests of its further keys are counted in a summary of
// its own per route and class of status (method and session left out,
// Status 200, 300, 400, ..., Attrs["folded"] = "true"; it names the
// session and carries the token of its last request; past 64 keys the
// route is left out too), so that an actor who varies
// what it controls of a key (the method is the client's text, the session
// its cookie) stays attributed and cannot fill the window and push every
// other actor into the overflow. The
// events of a window are at most SummaryMaxKeys + 1,
// whatever the traffic: at 10,000 requests per second from 1,000 actors
// on one route, a 5-second window ships 200 events per second.
//
// A summary's actor follows the rule of the business events (see
// SetUser): it carries the actor token of the key's last request, so that
// the control plane can verify it, and its Time is that request's. The
// requests of a summary with a token came through a Rampart gateway,
// which summarised them already, and so did every service on their way:
// such a summary says so (Attrs["behind"] = "gateway"), so that a
// scenario counting an actor's rate counts each request once, at the
// edge, not once per service it reached.
//
// The defaults of the summary bounds:
const (
	DefaultSummaryMaxKeys    = 10000
	DefaultSummaryMaxObjects = 16
	maxSummaryMethod         = 16 // a method the mux did not route is the client's text
	maxSummaryWait           = 10 * time.Second
)

type summaryEntry struct {
	count   int
	last    time.Time
	token   string // the actor token of the last request
	session string // the session of the last request (a folded key has none)
	objects []Object
	omitted int
}

// summarizer counts the requests of the current window.
type summarizer struct {
	agent      *Agent
	window     time.Duration
	maxObjects int

	mu       sync.Mutex
	table    *summary.Table[summaryEntry]
	overLast time.Time // the last request of the window counted in its overflow

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

func newSummarizer(a *Agent, window time.Duration, maxKeys, maxObjects int) *summarizer {
	s := &summarizer{agent: a, window: window, maxObjects: maxObjects,
		table: summary.New[summaryEntry](maxKeys), stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

// add counts the request q, answered with status.
func (s *summarizer) add(q *request, status int) {
	k := summary.Key{IP: q.actorIP(), User: truncate(q.requestUser(), maxLoginField),
		Route: q.route(), Method: truncate(q.r.Method, maxSummaryMethod), Status: status}
	token := ""
	if q.actor != nil {
		k.Session, token = q.actor.Session, q.actorToken
	}
	session := k.Session
	now := time.Now()
	q.objMu.Lock() // a goroutine of the handler may still call ObjectAccess
	objects, omitted := q.objects, q.objectsOmitted
	q.objMu.Unlock()

	s.mu.Lock()
	defer s.mu.Unlock()
	// An actor that varies its keys is folded into a summary of its route
	// and status class, which names the session of its last request (that
	// request's token backs it).
	e := s.table.Entry(k)
	if e == nil {
		s.overLast = now
		s.agent.stats.summaryOverflow.Add(1)
		return
	}
	e.count++
	e.last, e.token, e.session = now, token, session
	e.omitted += omitted
	for _, o := range objects {
		switch {
		case slices.Contains(e.objects, o):
		case len(e.objects) < s.maxObjects:
			e.objects = append(e.objects, o)
		default:
			e.omitted++
		}
	}
}

func (s *summarizer) run() {
	defer close(s.done)
	t := time.NewTicker(s.window)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.flush()
		case <-s.stop:
			s.flush()
			return
		}
	}
}

// close ships the current window and stops, or gives up waiting when ctx
// is done; the agent's queue must still be open.
func (s *summarizer) close(ctx context.Context) {
	s.stopOnce.Do(func() { close(s.stop) })
	select {
	case <-s.done:
	case <-ctx.Done():
	}
}

// flush ships one event per key of the window and starts the next.
func (s *summarizer) flush() {
	s.mu.Lock()
	keys, overflow := s.table.Take()
	overLast := s.overLast
	s.mu.Unlock()
	if keys == nil {
		return
	}

	a := s.agent
	// A window's summaries come at once: unlike a request's events they
	// may wait for room in the queue (the flushing goroutine delays no
	// request), up to one window or maxSummaryWait in all.
	wait := time.NewTimer(min(s.window, maxSummaryWait))
	defer wait.Stop()
	expired := wait.C // nil once it has fired: the rest do not wait
	for k, e := range keys {
		ev := Event{ID: newID(), Time: e.last.UTC(), Kind: KindRequestSummary, Action: ActionObserved, Service: a.service,
			Method: k.Method, Route: k.Route, Status: k.Status, Count: e.count,
			ActorIP: actorAddr(k.IP), ActorUser: k.User, SessionHash: e.session, ActorToken: e.token,
			Objects: e.objects, ObjectsOmitted: e.omitted}
		if k.Folded || e.token != "" {
			ev.Attrs = map[string]string{}
			if k.Folded {
				ev.Attrs["folded"] = "true"
			}
			if e.token != "" {
				ev.Attrs["behind"] = "gateway"
			}
		}
		if !s.ship(ev, expired) {
			expired = nil
		}
	}
	if overflow > 0 {
		s.ship(Event{ID: newID(), Time: overLast.UTC(), Kind: KindRequestSummary, Action: ActionObserved, Service: a.service,
			Count: overflow, Attrs: map[string]string{"overflow": "true"}}, expired)
	}
}

// ship queues a summary, waiting for room until expired fires (not at all
// if it is nil). It returns false if expired fired.
func (s *summarizer) ship(ev Event, expired <-chan time.Time) bool {
	a := s.agent
	a.stats.events.Add(1)
	a.stats.summaries.Add(1)
	a.closeMu.RLock()
	defer a.closeMu.RUnlock()
	if !a.closed {
		select {
		case a.queue <- ev:
			return true
		default:
		}
		if expired == nil {
			a.stats.dropped.Add(1)
			return true
		}
		select {
		case a.queue <- ev:
			return true
		case <-expired:
		}
	}
	a.stats.dropped.Add(1)
	return expired == nil
}
