package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// cookieName is the session cookie's: the __Host- prefix makes browsers
// accept it only Secure, for the whole host, from this very host.
const cookieName = "__Host-rampart-session"

// session is a signed-in person. Its id is in the cookie only: the table
// is keyed by the id's hash, so that a dump of memory gives no cookie.
type session struct {
	who     string
	csrf    string // the token every form of this session carries
	created time.Time
	expires time.Time // the end of its life, whatever its use

	mu       sync.Mutex
	lastSeen time.Time
}

func (s *session) checkCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.csrf)) == 1
}

// sessions is the table of sessions, bounded.
type sessions struct {
	max       int
	ttl, idle time.Duration

	mu sync.Mutex
	m  map[[32]byte]*session
}

func newSessions(max int, ttl, idle time.Duration) *sessions {
	return &sessions{max: max, ttl: ttl, idle: idle, m: map[[32]byte]*session{}}
}

func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create makes a session for who and returns its id, for the cookie.
func (t *sessions) create(who string, now time.Time) (string, *session) {
	id := randomToken()
	s := &session{who: who, csrf: randomToken(), created: now, expires: now.Add(t.ttl), lastSeen: now}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= t.max {
		t.sweep(now)
	}
	for len(t.m) >= t.max { // all live: end the one that would end first
		var oldest [32]byte
		var first time.Time
		for k, o := range t.m {
			if first.IsZero() || o.expires.Before(first) {
				oldest, first = k, o.expires
			}
		}
		delete(t.m, oldest)
	}
	t.m[sha256.Sum256([]byte(id))] = s
	return id, s
}

// sweep deletes the sessions that ended; t.mu is held.
func (t *sessions) sweep(now time.Time) {
	for k, s := range t.m {
		if s.ended(now, t.idle) {
			delete(t.m, k)
		}
	}
}

func (s *session) ended(now time.Time, idle time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !now.Before(s.expires) || now.Sub(s.lastSeen) >= idle
}

// get returns the live session of r's cookie, and marks it used.
func (t *sessions) get(r *http.Request, now time.Time) (*session, bool) {
	c, err := r.Cookie(cookieName)
	if err != nil || len(c.Value) > 100 {
		return nil, false
	}
	key := sha256.Sum256([]byte(c.Value))
	t.mu.Lock()
	s, ok := t.m[key]
	if ok && s.ended(now, t.idle) {
		delete(t.m, key)
		ok = false
	}
	t.mu.Unlock()
	if !ok {
		return nil, false
	}
	s.mu.Lock()
	s.lastSeen = now
	s.mu.Unlock()
	return s, true
}

// end deletes the session of r's cookie.
func (t *sessions) end(r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil {
		t.mu.Lock()
		delete(t.m, sha256.Sum256([]byte(c.Value)))
		t.mu.Unlock()
	}
}

func (t *sessions) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

func setSessionCookie(w http.ResponseWriter, id string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/", MaxAge: int(maxAge.Seconds()),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

// signInLimiter refuses sign-in attempts from a client address after
// too many failures: a token bucket per address (failBurst failures, then
// one per failRefill), and one for all addresses together, so that
// guessing the admin token over many addresses is slow too.
type signInLimiter struct {
	mu      sync.Mutex
	clients map[string]*bucket
	all     bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

const (
	failBurst      = 5
	failRefill     = 30 * time.Second
	allBurst       = 50
	allRefill      = time.Second
	maxLimiterKeys = 10000
)

func newSignInLimiter() *signInLimiter {
	return &signInLimiter{clients: map[string]*bucket{}}
}

func (b *bucket) refill(now time.Time, burst float64, every time.Duration) {
	if b.at.IsZero() {
		b.tokens, b.at = burst, now
		return
	}
	b.tokens = min(burst, b.tokens+float64(now.Sub(b.at))/float64(every))
	b.at = now
}

// allowed reports whether client may try to sign in, and if not, when.
func (l *signInLimiter) allowed(client string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.refill(now, allBurst, allRefill)
	if l.all.tokens < 1 {
		return false, allRefill
	}
	if b, ok := l.clients[client]; ok {
		b.refill(now, failBurst, failRefill)
		if b.tokens < 1 {
			return false, time.Duration((1 - b.tokens) * float64(failRefill))
		}
	}
	return true, 0
}

// failed spends a token of client's bucket and of the shared one.
func (l *signInLimiter) failed(client string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.refill(now, allBurst, allRefill)
	l.all.tokens--
	b, ok := l.clients[client]
	if !ok {
		if len(l.clients) >= maxLimiterKeys {
			for k, o := range l.clients { // forget those that forgave
				if o.refill(now, failBurst, failRefill); o.tokens >= failBurst {
					delete(l.clients, k)
				}
			}
			if len(l.clients) >= maxLimiterKeys {
				return // the shared bucket still counts it
			}
		}
		b = &bucket{}
		l.clients[client] = b
	}
	b.refill(now, failBurst, failRefill)
	b.tokens--
}

// signInLinks are one-time sign-in tokens (the demo prints one): only
// their hashes are kept, each until used or SignInLinkTTL.
type signInLinks struct {
	mu sync.Mutex
	m  map[[32]byte]time.Time
}

// SignInLink returns a path under Prefix that signs its first visitor in
// as the admin, within SignInLinkTTL; append it to the server's URL.
func (h *Handler) SignInLink() string {
	tok := randomToken()
	now := h.cfg.Now()
	h.links.mu.Lock()
	for k, exp := range h.links.m {
		if !now.Before(exp) {
			delete(h.links.m, k)
		}
	}
	for k := range h.links.m { // bounded: the oldest links go first… any one will do
		if len(h.links.m) < maxSignInLinks {
			break
		}
		delete(h.links.m, k)
	}
	h.links.m[sha256.Sum256([]byte(tok))] = now.Add(SignInLinkTTL)
	h.links.mu.Unlock()
	return Prefix + "login/link?token=" + tok
}

func (l *signInLinks) consume(tok string, now time.Time) bool {
	key := sha256.Sum256([]byte(tok))
	l.mu.Lock()
	defer l.mu.Unlock()
	exp, ok := l.m[key]
	delete(l.m, key)
	return ok && now.Before(exp)
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// who returns the name of the person whose credential secret is, or "".
// Every credential is compared, in constant time, whichever matches.
func (h *Handler) who(name, secret string) string {
	if secret == "" || len(secret) > 1024 {
		return ""
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(secret)))
	found := ""
	if subtle.ConstantTimeCompare(sum[:], h.cfg.AdminTokenHash) == 1 && (name == "" || name == "admin") {
		found = "admin"
	}
	for person, hash := range h.cfg.People {
		if subtle.ConstantTimeCompare(sum[:], hash) == 1 && (name == "" || name == person) {
			found = person
		}
	}
	return found
}

type loginView struct {
	Next    string
	Name    string
	Message string
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.sessions.get(r, h.cfg.Now()); ok {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, r, http.StatusOK, "login", nil, loginView{Next: safeNext(r.URL.Query().Get("next"))})
}

// safeNext keeps a redirect after signing in on the dashboard.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix
	}
	return next
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := h.csrf.Check(r); err != nil {
		h.errorPage(w, r, http.StatusForbidden, "Refused: the request did not come from the dashboard.")
		return
	}
	now := h.cfg.Now()
	client := clientAddr(r)
	if ok, retry := h.limiter.allowed(client, now); !ok {
		w.Header().Set("Retry-After", itoa(int(retry.Seconds())+1))
		h.render(w, r, http.StatusTooManyRequests, "login", nil,
			loginView{Next: Prefix, Message: "Too many failed sign-ins: wait a minute and try again."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("name"))
	who := h.who(name, r.PostForm.Get("token"))
	next := safeNext(r.PostForm.Get("next"))
	if who == "" {
		h.limiter.failed(client, now)
		h.audit(r.Context(), r, "", "sign_in_failed", map[string]any{"name": truncate(name, 64)})
		h.render(w, r, http.StatusUnauthorized, "login", nil,
			loginView{Next: next, Name: name, Message: "Wrong name or credential."})
		return
	}
	h.startSession(w, r, who, "sign_in", next)
}

func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, who, how, next string) {
	h.sessions.end(r) // a new id at each sign-in: no fixation
	id, _ := h.sessions.create(who, h.cfg.Now())
	setSessionCookie(w, id, h.cfg.SessionTTL)
	h.audit(r.Context(), r, who, how, nil)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// loginLink signs in with a one-time link, then sends the browser on
// without the token in its address bar or history.
func (h *Handler) loginLink(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	now := h.cfg.Now()
	client := clientAddr(r)
	if ok, _ := h.limiter.allowed(client, now); !ok {
		h.errorPage(w, r, http.StatusTooManyRequests, "Too many failed sign-ins: wait a minute and try again.")
		return
	}
	tok := r.URL.Query().Get("token")
	if len(tok) > 100 || !h.links.consume(tok, now) {
		h.limiter.failed(client, now)
		h.audit(r.Context(), r, "", "sign_in_failed", map[string]any{"link": true})
		h.errorPage(w, r, http.StatusUnauthorized, "This sign-in link was used already, or has expired. Sign in with the admin token.")
		return
	}
	h.startSession(w, r, "admin", "sign_in_link", Prefix)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request, s *session) error {
	h.sessions.end(r)
	setSessionCookie(w, "", -time.Second)
	h.audit(r.Context(), r, s.who, "sign_out", nil)
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
	return nil
}

// AuditKind is the kind of the events that record what people did in the
// dashboard. Their route says what (sign_in, sign_in_failed, sign_out,
// decision_created, decision_lifted, policy_applied), their data who and
// from where; their action is "observed", as they are no attack.
const AuditKind = "audit"

// AuditService is the service named by audit events.
const AuditService = "dashboard"

// audit stores what who did as an event. A failure to store it is logged:
// the action was done.
func (h *Handler) audit(ctx context.Context, r *http.Request, who, what string, details map[string]any) {
	var b [12]byte
	rand.Read(b[:])
	now := h.cfg.Now().UTC()
	id := "audit-" + hex.EncodeToString(b[:])
	doc := map[string]any{"id": id, "time": now, "kind": AuditKind, "action": "observed", "route": what, "service": AuditService,
		"who": who, "remote_addr": clientAddr(r), "detail": auditDetail(who, what, details)}
	for k, v := range details {
		doc[k] = v
	}
	data, err := json.Marshal(doc)
	if err == nil {
		ev := store.Event{ID: id, Time: now, Kind: AuditKind, Action: "observed", Service: AuditService, Route: what, Data: data}
		_, err = h.cfg.Store.AppendEvents(context.WithoutCancel(ctx), []store.Event{ev})
	}
	if err != nil {
		h.log.Warn("web: audit event not stored", "who", who, "what", what, "err", err)
	}
}

func auditDetail(who, what string, d map[string]any) string {
	if who == "" {
		who = "someone"
	}
	switch what {
	case "decision_created":
		return who + " decided " + str(d["action"]) + " on " + str(d["scope"]) + " " + str(d["value"]) + " (" + str(d["decision"]) + ")"
	case "decision_lifted":
		return who + " lifted decision " + str(d["decision"])
	case "sign_in_failed":
		return "a sign-in failed"
	}
	return who + " " + strings.ReplaceAll(what, "_", " ")
}

func str(v any) string { s, _ := v.(string); return s }

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
