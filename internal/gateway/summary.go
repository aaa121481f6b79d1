package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/summary"
)

// Request summaries: what detection needs to know of ordinary traffic
// (probing, scraping, an actor's rate), compact and bounded, not an event
// per request. The gateway counts every request it answers per key (the
// client's address, the authenticated user, the session hash, the route,
// the method, the status, and whether the path is a static asset's, which
// such summaries mark with Attrs["static"] = "true") and, at the end of each window, reports one
// request_summary event per key seen in it (rampart.KindRequestSummary,
// action observed) whose Count is the requests it stands for, with up to
// maxPaths distinct paths they asked for (the rest counted in
// PathsOmitted: distinct 404 paths are what probing looks like). A window
// holds at most maxKeys keys; the requests of further keys are counted in
// one overflow summary (no actor, Attrs["overflow"] = "true") and in
// SummaryOverflow, so that no request goes uncounted and no client can
// grow the gateway's memory by varying its keys. One client (address, an
// IPv6 one by its /64, and user: the session is a hash of whatever cookie
// the client sends) holds
// at most maxClientKeys keys of a window: the requests of its further
// keys are counted in a summary of its own per route and class of status
// (method and session left out, an IPv6 address replaced by its /64's
// first address, Status 200, 300, 400, ...,
// Attrs["folded"] = "true"; past twice the bound the route is left out
// too), so that a client who varies what it controls of a key (the
// method is its text, the session its cookie) stays attributed, and
// cannot fill the window and push every other client into the overflow,
// not even once an edge block refuses it. A window's events are at
// most maxKeys + 1 whatever the traffic: at 10,000 requests per second
// from 1,000 clients, one route and one status each, a 5-second window
// reports 200 events per second. The actor is the gateway's own (the
// client address after the trusted-proxy rules, the user it
// authenticated), so the control plane stores it as verified.
const (
	defaultSummaryWindow   = 5 * time.Second
	defaultSummaryMaxKeys  = 10000
	defaultSummaryMaxPaths = 16
	maxSummaryPath         = 256
	maxSummaryMethod       = 16
	maxSummaryWait         = 10 * time.Second
	maxClientKeys          = summary.MaxClientKeys // keys of one client in a window before its requests are folded
)

// maxEventUser is the longest actor user the control plane stores: it
// refuses an event with a longer one, and the whole batch with it.
const maxEventUser = 256

// eventUser is the name a summary gives the user u: u itself, or, for a
// user whose name is longer than the control plane takes (the gateway
// does not bound a token's sub), a cut of it that ends in a hash of the
// whole, so that no other user, whose sub an attacker may know, has it.
func eventUser(u string) string {
	if len(u) <= maxEventUser {
		return u
	}
	sum := sha256.Sum256([]byte(u))
	tail := "…#" + hex.EncodeToString(sum[:8])
	return truncate(u, maxEventUser-len(tail)) + tail
}

type summaryEntry struct {
	count   int
	paths   []string
	omitted int
}

// summaries counts the requests of the current window. Its methods do
// nothing on a nil *summaries.
type summaries struct {
	window   time.Duration
	maxPaths int
	ship     func(ev rampart.Event, expired <-chan time.Time) bool

	mu      sync.Mutex
	table   *summary.Table[summaryEntry]
	overTot atomic.Uint64

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// newSummaries starts counting; ship queues an event, waiting for room
// until expired fires (not at all if it is nil), and returns false if it
// did fire.
func newSummaries(window time.Duration, maxKeys, maxPaths int, ship func(rampart.Event, <-chan time.Time) bool) *summaries {
	s := &summaries{window: window, maxPaths: maxPaths, ship: ship,
		table: summary.New[summaryEntry](maxKeys), stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

// summarize counts the request x, answered with status (0: nothing
// written, which net/http sends as 200).
func (s *summaries) summarize(x *exchange, r *http.Request, status int) {
	if s == nil {
		return
	}
	if status == 0 {
		status = http.StatusOK
	}
	k := summary.Key{IP: x.clientIP, User: eventUser(x.user), Session: x.session, Method: truncate(r.Method, maxSummaryMethod), Status: status}
	if x.route != nil {
		k.Route = x.route.cfg.Name
	}
	path := ""
	if r.URL != nil {
		path = r.URL.Path
	}
	k.Static = staticPath(path)
	s.mu.Lock()
	defer s.mu.Unlock()
	// A client that varies its keys is folded into a summary of its route
	// and status class (summary.Table).
	e := s.table.Entry(k)
	if e == nil {
		s.overTot.Add(1)
		return
	}
	e.count++
	switch {
	case len(path) > maxSummaryPath:
		e.omitted++ // a path this long is a probe of its own; its text is in no key
	case slices.Contains(e.paths, path):
	case len(e.paths) < s.maxPaths:
		e.paths = append(e.paths, path)
	default:
		e.omitted++
	}
}

func (s *summaries) run() {
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

// close reports the current window and stops counting.
func (s *summaries) close() {
	if s == nil {
		return
	}
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}

// overflowed returns how many requests were counted in overflow summaries.
func (s *summaries) overflowed() uint64 {
	if s == nil {
		return 0
	}
	return s.overTot.Load()
}

func (s *summaries) flush() {
	s.mu.Lock()
	keys, overflow := s.table.Take()
	s.mu.Unlock()
	if keys == nil {
		return
	}

	// A window's summaries come at once: they may wait for room in the
	// queue (no request waits for them), up to one window or
	// maxSummaryWait in all.
	wait := time.NewTimer(min(s.window, maxSummaryWait))
	defer wait.Stop()
	expired := wait.C
	for k, e := range keys {
		ev := rampart.Event{Kind: rampart.KindRequestSummary, Action: rampart.ActionObserved,
			Method: k.Method, Route: k.Route, Status: k.Status, Count: e.count, Paths: e.paths, PathsOmitted: e.omitted,
			ActorUser: k.User, SessionHash: k.Session}
		if k.IP.IsValid() {
			ev.ActorIP = k.IP.String()
		}
		if k.Static || k.Folded {
			ev.Attrs = map[string]string{}
			if k.Static {
				ev.Attrs["static"] = "true"
			}
			if k.Folded {
				ev.Attrs["folded"] = "true"
			}
		}
		if !s.ship(ev, expired) {
			expired = nil
		}
	}
	if overflow > 0 {
		s.ship(rampart.Event{Kind: rampart.KindRequestSummary, Action: rampart.ActionObserved,
			Count: overflow, Attrs: map[string]string{"overflow": "true"}}, expired)
	}
}

// reportWaiting queues ev as report does, but may wait for room until
// expired fires; see newSummaries.
func (g *Gateway) reportWaiting(ev rampart.Event, expired <-chan time.Time) bool {
	ev.ID = newID()
	ev.Time = time.Now().UTC()
	ev.Service = g.cfg.ControlPlane.Service
	g.closeMu.RLock()
	defer g.closeMu.RUnlock()
	if !g.closed {
		select {
		case g.events <- ev:
			return true
		default:
		}
		if expired != nil {
			select {
			case g.events <- ev:
				return true
			case <-expired:
				g.dropped.Add(1)
				return false
			}
		}
	}
	g.dropped.Add(1)
	return expired == nil
}

// SummaryOverflow returns how many requests were counted in overflow
// request summaries, their window having had the most keys it may hold.
func (g *Gateway) SummaryOverflow() uint64 { return g.summaries.overflowed() }

// staticExtensions are the extensions of the static assets that pages
// load by the dozen (the built-in scraping scenario leaves them out).
var staticExtensions = []string{".css", ".js", ".mjs", ".map", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico",
	".webp", ".avif", ".woff", ".woff2", ".ttf"}

// staticPath says whether path names a static asset by its extension, so
// that a client's static requests and the others are summarised apart.
// The extension is the last segment's, before its ";" parameters, and
// after a name: servers that take a segment's parameters off before
// routing (Tomcat, Spring, Jetty) serve /users/42;.css as /users/42, which
// a scraper must not pass for a stylesheet. Scraping then counts such a
// request; it still counts none of an asset's own (/app.css;v=2).
func staticPath(path string) bool {
	seg := path[strings.LastIndexByte(path, '/')+1:]
	if semi := strings.IndexByte(seg, ';'); semi >= 0 {
		seg = seg[:semi]
	}
	dot := strings.LastIndexByte(seg, '.')
	if dot <= 0 {
		return false
	}
	ext := seg[dot:]
	for _, e := range staticExtensions {
		if strings.EqualFold(ext, e) {
			return true
		}
	}
	return false
}
