package rampart

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Action is what the agent did about a detection.
type Action string

const (
	ActionBlocked   Action = "blocked"   // the call was refused (block mode)
	ActionMonitored Action = "monitored" // the call went through (monitor mode)
	// ActionObserved is the action of what the application reports about
	// its business and of request summaries: nothing was refused, nothing
	// was attempted against a guard, so nothing may count them as blocks.
	ActionObserved Action = "observed"
)

// Event is one security event: what was attempted, where in the code, from
// which request and input.
type Event struct {
	ID       string    `json:"id"` // random; lets a store ingest a retried batch once
	Time     time.Time `json:"time"`
	Kind     Kind      `json:"kind"` // e.g. KindSQLInjection
	Action   Action    `json:"action"`
	Service  string    `json:"service"`
	Input    Input     `json:"input"`            // value truncated to MaxEventInput bytes
	Sink     string    `json:"sink"`             // the guarded call, e.g. "database/sql"
	Detail   string    `json:"detail"`           // e.g. the query with the input marked ⟦like this⟧
	Reason   string    `json:"reason,omitempty"` // why it is an exploit, in words
	Location string    `json:"location"`         // file:line of the vulnerable call in the application
	Stack    []Frame   `json:"stack,omitempty"`  // application frames, innermost first

	RequestID  string `json:"request_id,omitempty"`
	Method     string `json:"method,omitempty"`
	Route      string `json:"route,omitempty"` // the ServeMux pattern, e.g. "GET /users/{id}"
	Path       string `json:"path,omitempty"`
	RemoteAddr string `json:"remote_addr,omitempty"`

	// With zero trust: who called, for whom, in which trace.
	Caller      string `json:"caller,omitempty"`       // the calling service's SPIFFE ID
	ActorIP     string `json:"actor_ip,omitempty"`     // the external client, from the gateway's actor token
	ActorUser   string `json:"actor_user,omitempty"`   //
	SessionHash string `json:"session_hash,omitempty"` //
	Device      string `json:"device,omitempty"`       // the gateway's device fingerprint, from the actor token
	TraceID     string `json:"trace_id,omitempty"`     // W3C trace id
	Decision    string `json:"decision,omitempty"`     // the control-plane decision enforced: decision_enforced, read_only_write

	// ActorToken is the actor token the service received with the
	// request, which backs ActorIP, ActorUser and SessionHash: the
	// control-plane sink sends it beside the event so that the control
	// plane can verify who the event names, and drops it. It is never in
	// the event's JSON: sinks that print or store events do not see it.
	ActorToken string `json:"-"`

	// What the application reports about its business (TrackLogin,
	// TrackEvent, ObjectAccess), and the request summaries of the Handler
	// (Config.SummaryWindow).
	Login          Login             `json:"login,omitzero"`            // login_success, login_failure
	Object         Object            `json:"object,omitzero"`           // object_access
	Attrs          map[string]string `json:"attrs,omitempty"`           // business: the name and attributes; request_summary: "overflow"
	Status         int               `json:"status,omitempty"`          // request_summary: the response status
	Count          int               `json:"count,omitempty"`           // request_summary: the requests it stands for
	Objects        []Object          `json:"objects,omitempty"`         // request_summary: distinct objects served, at most Config.SummaryMaxObjects
	ObjectsOmitted int               `json:"objects_omitted,omitempty"` // request_summary: ObjectAccess calls for objects that did not fit in Objects
	Paths          []string          `json:"paths,omitempty"`           // request_summary of a gateway: distinct paths requested, a few
	PathsOmitted   int               `json:"paths_omitted,omitempty"`   // request_summary of a gateway: requests whose path did not fit in Paths
}

// Frame is one application frame of an event's stack.
type Frame struct {
	Function string `json:"function"`
	File     string `json:"file"`
	Line     int    `json:"line"`
}

// Limits on what an event copies from attacker-controlled data.
const (
	MaxEventInput  = 512
	MaxEventDetail = 2048
	maxEventFrames = 16
	// maxActorUser is the longest actor user the control plane stores: a
	// longer one would get the whole batch of events refused. Cut, it no
	// longer matches the token, so the event is stored as claimed.
	maxActorUser = 256
)

// Finding is what a guard hands to [Agent.Report]: the input that would have
// exploited the call and what the call was.
type Finding struct {
	Kind   Kind // e.g. KindSQLInjection
	Input  Input
	Sink   string
	Detail string
	Reason string
	// Decision is the id of the control-plane decision the guard enforces
	// (a read-only decision, see ReadOnlyFromContext), "" for an exploit.
	// A finding that enforces a decision is refused in monitor mode too:
	// the decision, not the guard, chose to refuse, as the Handler refuses
	// the requests decisions refuse in every mode.
	Decision string
}

// Report records an exploit found by a guard and decides its fate. In block
// mode it returns a *BlockedError (wrapping ErrBlocked) that the guard must
// return instead of making the call, and the request is marked so that the
// middleware answers 403. In monitor mode it returns nil. The event is queued,
// never waited on. Report is meant for guard implementations.
func (a *Agent) Report(ctx context.Context, f Finding) error {
	ev := Event{
		ID:      newID(),
		Time:    time.Now().UTC(),
		Kind:    f.Kind,
		Action:  ActionMonitored,
		Service: a.service,
		Input:   f.Input,
		Sink:    f.Sink,
		Detail:  f.Detail,
		Reason:  f.Reason,

		Decision: f.Decision,
	}
	req := requestFor(ctx)
	if req != nil {
		ev.Path = req.r.URL.Path // whole, for redact: a wildcard may hold a secret
	}
	a.redact(ctx, &ev) // before truncating, so that no part of a secret is left
	ev.Input.Name, ev.Input.Value = truncate(ev.Input.Name, MaxEventInput), truncate(ev.Input.Value, MaxEventInput)
	ev.Detail = truncate(ev.Detail, MaxEventDetail)
	ev.Stack, ev.Location = applicationStack(2)
	if req != nil {
		path := ev.Path
		req.describe(&ev)
		ev.Path = truncate(path, MaxEventInput)
	}
	if a.mode == ModeMonitor && f.Decision == "" {
		a.enqueue(ev)
		return nil
	}
	ev.Action = ActionBlocked
	a.enqueue(ev)
	be := &BlockedError{Event: ev}
	if req != nil {
		req.blocked.CompareAndSwap(nil, be)
	}
	return be
}

// describe fills ev with what is known of the request.
func (q *request) describe(ev *Event) {
	ev.RequestID = q.requestID()
	ev.Method = q.r.Method
	ev.Route = q.route()
	ev.Path = truncate(q.r.URL.Path, MaxEventInput)
	ev.RemoteAddr = q.r.RemoteAddr
	ev.Caller = q.caller
	ev.TraceID = q.traceID
	if a := q.actor; a != nil {
		ev.ActorIP, ev.ActorUser, ev.SessionHash = actorAddr(a.IP), truncate(a.User, maxActorUser), a.Session
		ev.Device = a.Device
		ev.ActorToken = q.actorToken
	}
	if ev.ActorUser == "" {
		// The service's own claim (SetUser): the control plane stores
		// the user as claimed, for the token does not back it.
		ev.ActorUser = q.claimedUser()
	}
}

// reportRequestEvent records an event of the agent's own (zero trust),
// about req if not nil.
func (a *Agent) reportRequestEvent(ctx context.Context, req *request, ev Event) {
	ev.ID, ev.Time, ev.Service = newID(), time.Now().UTC(), a.service
	ev.Reason = truncate(ev.Reason, MaxEventDetail)
	if req != nil {
		req.describe(&ev)
	}
	a.enqueue(ev)
}

func requestFor(ctx context.Context) *request {
	if s := inputSetFrom(ctx); s != nil {
		return s.req
	}
	return requestOfGoroutine()
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// sdkPackages are skipped when looking for the application's frames.
var sdkPackages = []string{
	"github.com/rampartsec/rampart",
	"github.com/rampartsec/rampart/sqlguard",
	"github.com/rampartsec/rampart/ssrfguard",
	"github.com/rampartsec/rampart/fsguard",
	"github.com/rampartsec/rampart/execguard",
}

// sdkDir is the directory of this package's source as the runtime records
// it (absolute, or module-relative under -trimpath). Inlined SDK code is
// attributed to its caller's function name, so frames are also told apart by
// file.
var sdkDir = func() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "\x00"
	}
	return file[:strings.LastIndexByte(file, '/')+1]
}()

func isSDKFile(file string) bool {
	rest, ok := strings.CutPrefix(file, sdkDir)
	if !ok {
		return false
	}
	dir, _, nested := strings.Cut(rest, "/")
	if !nested {
		return !strings.HasSuffix(rest, "_test.go")
	}
	for _, p := range sdkPackages {
		if strings.HasSuffix(p, "/"+dir) {
			return !strings.HasSuffix(rest, "_test.go")
		}
	}
	return dir == "internal"
}

var mainModule = func() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.Main.Path
	}
	return ""
}()

// applicationStack returns the frames of the caller's stack that belong to
// the application: not the SDK, not the standard library. The location is
// the innermost frame in the main module (the line that made the dangerous
// call, not the ORM under it), or the innermost application frame.
func applicationStack(skip int) ([]Frame, string) {
	var pcs [64]uintptr
	n := runtime.Callers(skip+1, pcs[:])
	var out []Frame
	location := ""
	for _, pc := range pcs[:n] {
		for _, f := range framesAt(pc) {
			if !f.app {
				continue
			}
			if len(out) < maxEventFrames {
				out = append(out, f.Frame)
			}
			if location == "" && f.main {
				location = f.File + ":" + strconv.Itoa(f.Line)
			}
		}
	}
	if location == "" && len(out) > 0 {
		location = out[0].File + ":" + strconv.Itoa(out[0].Line)
	}
	return out, location
}

// classifiedFrame is a frame with what applicationStack needs to know of it.
type classifiedFrame struct {
	Frame
	app  bool // not the standard library, not the SDK
	main bool // in the main module
}

// frameCache maps a return address to its frames (several when calls were
// inlined there). Symbolizing a frame costs a few hundred nanoseconds and
// the same vulnerable call sites report again and again; the cache holds at
// most one entry per call site of the program, so it is bounded by its code.
var frameCache sync.Map // uintptr -> []classifiedFrame

func framesAt(pc uintptr) []classifiedFrame {
	if v, ok := frameCache.Load(pc); ok {
		return v.([]classifiedFrame)
	}
	var out []classifiedFrame
	frames := runtime.CallersFrames([]uintptr{pc})
	for {
		f, more := frames.Next()
		pkg := funcPackage(f.Function)
		cf := classifiedFrame{Frame: Frame{Function: f.Function, File: f.File, Line: f.Line}}
		cf.app = pkg != "" && !isStdlib(pkg) && !isSDK(pkg) && !isSDKFile(f.File)
		cf.main = cf.app && (pkg == "main" || mainModule != "" && (pkg == mainModule || strings.HasPrefix(pkg, mainModule+"/")))
		out = append(out, cf)
		if !more {
			break
		}
	}
	frameCache.Store(pc, out)
	return out
}

// funcPackage returns the import path of a function name such as
// "github.com/a/b.(*T).M" or "main.handler.func1".
func funcPackage(fn string) string {
	slash := strings.LastIndexByte(fn, '/')
	dot := strings.IndexByte(fn[slash+1:], '.')
	if dot < 0 {
		return ""
	}
	return fn[:slash+1+dot]
}

func isStdlib(pkg string) bool {
	if pkg == "main" {
		return false
	}
	first, _, _ := strings.Cut(pkg, "/")
	return !strings.Contains(first, ".")
}

func isSDK(pkg string) bool {
	for _, p := range sdkPackages {
		if pkg == p {
			return true
		}
	}
	return strings.HasPrefix(pkg, "github.com/rampartsec/rampart/internal/")
}

// LogValue makes an event one structured log record.
func (e Event) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("id", e.ID),
		slog.Time("time", e.Time),
		slog.String("kind", string(e.Kind)),
		slog.String("action", string(e.Action)),
		slog.String("service", e.Service),
		slog.Group("input", slog.String("source", string(e.Input.Source)), slog.String("name", e.Input.Name), slog.String("value", e.Input.Value)),
		slog.String("sink", e.Sink),
		slog.String("detail", e.Detail),
		slog.String("reason", e.Reason),
		slog.String("location", e.Location),
	}
	for _, kv := range [][2]string{{"request_id", e.RequestID}, {"method", e.Method}, {"route", e.Route}, {"path", e.Path}, {"remote_addr", e.RemoteAddr}} {
		if kv[1] != "" {
			attrs = append(attrs, slog.String(kv[0], kv[1]))
		}
	}
	if len(e.Stack) > 0 {
		st := make([]string, len(e.Stack))
		for i, f := range e.Stack {
			st[i] = f.Function + " " + f.File + ":" + strconv.Itoa(f.Line)
		}
		attrs = append(attrs, slog.Any("stack", st))
	}
	for _, kv := range [][2]string{{"actor_ip", e.ActorIP}, {"actor_user", e.ActorUser}, {"trace_id", e.TraceID}} {
		if kv[1] != "" {
			attrs = append(attrs, slog.String(kv[0], kv[1]))
		}
	}
	if e.Login != (Login{}) {
		attrs = append(attrs, slog.Group("login", slog.String("name", e.Login.Name), slog.String("user", e.Login.User),
			slog.Bool("exists", e.Login.UserExists), slog.Bool("mfa", e.Login.MFA)))
	}
	if e.Object != (Object{}) {
		attrs = append(attrs, slog.Group("object", slog.String("kind", e.Object.Kind), slog.String("id", e.Object.ID), slog.String("owner", e.Object.Owner)))
	}
	if len(e.Attrs) > 0 {
		attrs = append(attrs, slog.Any("attrs", e.Attrs))
	}
	if e.Count > 0 {
		attrs = append(attrs, slog.Int("status", e.Status), slog.Int("count", e.Count))
	}
	if len(e.Objects) > 0 || e.ObjectsOmitted > 0 {
		ids := make([]string, len(e.Objects))
		for i, o := range e.Objects {
			ids[i] = o.Kind + ":" + o.ID
		}
		attrs = append(attrs, slog.Any("objects", ids), slog.Int("objects_omitted", e.ObjectsOmitted))
	}
	return slog.GroupValue(attrs...)
}
