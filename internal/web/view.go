package web

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// eventView is a stored event with what its data says, for the pages.
// Every string in it may be the attacker's: templates escape them.
type eventView struct {
	store.Event
	Input struct {
		Source string `json:"source"`
		Name   string `json:"name"`
		Value  string `json:"value"`
	} `json:"input"`
	Sink       string  `json:"sink"`
	Detail     string  `json:"detail"`
	Reason     string  `json:"reason"`
	Location   string  `json:"location"`
	Stack      []frame `json:"stack"`
	Method     string  `json:"method"`
	Path       string  `json:"path"`
	Caller     string  `json:"caller"`
	Decision   string  `json:"decision"`
	RequestID  string  `json:"request_id"`
	RemoteAddr string  `json:"remote_addr"`
	Who        string  `json:"who"` // audit events
	Status     int     `json:"status"`
	Count      int     `json:"count"`
}

type frame struct {
	Function string `json:"function"`
	File     string `json:"file"`
	Line     int    `json:"line"`
}

func viewEvent(e store.Event) eventView {
	var v eventView
	if len(e.Data) > 0 {
		json.Unmarshal(e.Data, &v) // what does not parse stays empty
	}
	v.Event = e // the stored fields win over the data's
	v.Event.Data = nil
	return v
}

func viewEvents(evs []store.Event) []eventView {
	out := make([]eventView, len(evs))
	for i, e := range evs {
		out[i] = viewEvent(e)
	}
	return out
}

// Attack reports whether the event counts as an attack.
func (v eventView) Attack() bool { return IsAttack(v.Event) }

// Summary is one line about the event.
func (v eventView) Summary() string {
	switch {
	case v.Kind == AuditKind:
		return v.Detail
	case v.Reason != "":
		return v.Reason
	case v.Detail != "":
		return v.Detail
	}
	return v.Method + " " + v.Path
}

// segment is a piece of a statement: the input's part is Marked.
type segment struct {
	Text   string
	Marked bool
}

// Marked splits the event's detail at the marks the guards put around
// the input (⟦ ⟧).
func (v eventView) Marked() []segment {
	var out []segment
	s := v.Detail
	for s != "" {
		i := strings.Index(s, "⟦")
		if i < 0 {
			out = append(out, segment{Text: s})
			break
		}
		if i > 0 {
			out = append(out, segment{Text: s[:i]})
		}
		s = s[i+len("⟦"):]
		j := strings.Index(s, "⟧")
		if j < 0 {
			out = append(out, segment{Text: s, Marked: true})
			break
		}
		out = append(out, segment{Text: s[:j], Marked: true})
		s = s[j+len("⟧"):]
	}
	return out
}

// CallerService is the service of the caller's SPIFFE ID, or "".
func (v eventView) CallerService() string {
	name, _ := serviceOfSPIFFE(v.Caller)
	return name
}

// FromEdge reports whether the event was reported by the edge (a gateway).
func (v eventView) FromEdge() bool {
	return v.Sink == "coraza" || v.Kind == "waf" || v.Kind == "auth_failed" || v.Kind == "rate_limited" ||
		v.Kind == "upstream_refused" || v.Kind == "body_over_inspection_limit" || v.Service == "gateway"
}

// Rules are the WAF rule ids of a gateway event ("CRS anomaly score N;
// rules a,b").
func (v eventView) Rules() []string {
	_, list, ok := strings.Cut(v.Reason, "; rules ")
	if !ok {
		return nil
	}
	return strings.Split(list, ",")
}

// File and Line split Location (file:line).
func (v eventView) File() string {
	i := strings.LastIndexByte(v.Location, ':')
	if i < 0 {
		return v.Location
	}
	return v.Location[:i]
}

func (v eventView) Line() string {
	i := strings.LastIndexByte(v.Location, ':')
	if i < 0 {
		return ""
	}
	return v.Location[i+1:]
}

// ShortFile is File from its module's root when the function's package
// path says where that is ("examples/shop/shop.go" rather than the
// build machine's absolute path), else File.
func (v eventView) ShortFile() string {
	file, fn := v.File(), v.Function()
	if fn == "" || !strings.Contains(file, "/") {
		return file
	}
	pkg := fn
	if i := strings.LastIndexByte(pkg, '/'); i >= 0 {
		if j := strings.IndexByte(pkg[i:], '.'); j >= 0 {
			pkg = pkg[:i+j]
		}
	} else if j := strings.IndexByte(pkg, '.'); j >= 0 {
		pkg = pkg[:j]
	}
	dir, base := file[:strings.LastIndexByte(file, '/')], file[strings.LastIndexByte(file, '/')+1:]
	d, p := strings.Split(dir, "/"), strings.Split(pkg, "/")
	k := 0
	for k < len(d) && k < len(p)-1 && d[len(d)-1-k] == p[len(p)-1-k] {
		k++
	}
	if k == 0 {
		return file
	}
	return strings.Join(d[len(d)-k:], "/") + "/" + base
}

// Function is the innermost application frame's function.
func (v eventView) Function() string {
	if len(v.Stack) > 0 {
		return v.Stack[0].Function
	}
	return ""
}

// ActorScope and ActorValue name the actor page of the event's actor.
func (v eventView) ActorScope() string {
	switch {
	case v.ActorIP != "":
		return "ip"
	case v.ActorUser != "":
		return "user"
	case v.SessionHash != "":
		return "session"
	}
	return ""
}

func (v eventView) ActorValue() string {
	switch v.ActorScope() {
	case "ip":
		return v.ActorIP
	case "user":
		return v.ActorUser
	case "session":
		return v.SessionHash
	}
	return ""
}

// decisionView is a decision as the pages show it.
type decisionView struct {
	store.Decision
	Now time.Time
}

func (d decisionView) Active() bool { return !d.Expired(d.Now) }

// Person reports whether people made it (not a scenario).
func (d decisionView) Person() bool { return d.Origin == "" || d.Origin == store.OriginManual }

func viewDecisions(ds []store.Decision, now time.Time) []decisionView {
	out := make([]decisionView, len(ds))
	for i, d := range ds {
		out[i] = decisionView{d, now}
	}
	return out
}
