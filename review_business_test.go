package rampart_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/ramparttest"
)

// An attacker who varies what it controls of a summary's key (here the
// method, a token of its choosing) must not fill the window's keys: the
// requests of every other actor would then land in the overflow summary,
// which names no actor, and detection would not see them. Its own
// requests must stay attributed to it.
func TestOneActorVaryingItsKeysCannotPushOthersIntoTheOverflow(t *testing.T) {
	agent, events := ramparttest.NewAgent(t, rampart.Config{SummaryWindow: time.Hour, SummaryMaxKeys: 200})
	h := agent.Handler(summaryMux())
	const attacker, flood = "198.51.100.66", 1000
	for i := range flood {
		hit(h, fmt.Sprintf("X%04d", i), "/items/1", attacker+":4000")
	}
	const others = 50
	for i := range others {
		hit(h, "GET", "/items/1", fmt.Sprintf("192.0.2.%d:1", i+1))
	}
	got := summaries(t, agent, events)
	fromAttacker, keyedOthers := 0, 0
	for _, ev := range got {
		switch {
		case ev.Attrs["overflow"] == "true":
			t.Errorf("%d requests in the overflow summary, which names no actor", ev.Count)
		case ev.ActorIP == attacker:
			fromAttacker += ev.Count
		default:
			keyedOthers += ev.Count
		}
	}
	if fromAttacker != flood || keyedOthers != others {
		t.Errorf("summaries attribute %d requests to the attacker and %d to the others; want %d and %d", fromAttacker, keyedOthers, flood, others)
	}
	if n := len(got); n > 201 {
		t.Errorf("%d summaries for one window of at most 200 keys and the overflow", n)
	}
}

// An object addressed by a secret (a password-reset or invitation token in
// the path) must not carry the secret to the control plane: not in the
// object_access event, not in the request's summary.
func TestObjectAccessDoesNotLeakASecretInputAsTheObjectsID(t *testing.T) {
	agent, events := ramparttest.NewAgent(t, rampart.Config{SummaryWindow: time.Hour})
	const secret = "rst_9f8e7d6c5b4a39281706"
	serveOnce(t, agent, "GET /reset/{token}", func(w http.ResponseWriter, r *http.Request) {
		rampart.ObjectAccess(r.Context(), "reset", r.PathValue("token"), "carol")
	}, "GET", "/reset/"+secret+"?invite_token=inv_0123456789abcdef")
	serveOnce(t, agent, "GET /invite", func(w http.ResponseWriter, r *http.Request) {
		rampart.ObjectAccess(r.Context(), "invite:"+r.URL.Query().Get("invite_token"), "1", "carol")
	}, "GET", "/invite?invite_token=inv_0123456789abcdef")
	for _, ev := range summaries(t, agent, events) {
		for _, o := range ev.Objects {
			if strings.Contains(o.ID+o.Kind, secret) || strings.Contains(o.ID+o.Kind, "inv_0123") {
				t.Errorf("summary object %+v holds a secret input", o)
			}
		}
	}
	n := 0
	for _, ev := range events.Events() {
		if ev.Kind != rampart.KindObjectAccess {
			continue
		}
		n++
		if o := ev.Object; strings.Contains(o.ID+o.Kind, secret) || strings.Contains(o.ID+o.Kind, "inv_0123") {
			t.Errorf("object_access %+v holds a secret input", o)
		}
	}
	if n != 2 {
		t.Errorf("%d object_access events, want 2", n)
	}
}

// What the application copies from the client into a business event (the
// login name as typed, an object's id, an attribute) must not carry
// control characters: a log line or a terminal that shows it would obey
// them (a forged line, an escape sequence).
func TestBusinessEventsKeepTheClientsTextPrintable(t *testing.T) {
	agent, events := ramparttest.NewAgent(t, rampart.Config{})
	const evil = "eve\n2026-12-07 INFO login ok user=admin\x1b[2J\x00"
	serveOnce(t, agent, "GET /x", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		rampart.TrackLogin(ctx, rampart.Login{Name: evil, User: evil})
		rampart.ObjectAccess(ctx, evil, evil, evil)
		rampart.TrackEvent(ctx, evil, map[string]string{evil: evil, "plain": "ok\tok"})
		rampart.TrackEvent(ctx, "end", nil)
	}, "GET", "/x")
	events.Wait(t, func(ev rampart.Event) bool { return ev.Attrs["name"] == "end" })
	bad := func(s string) bool { return strings.ContainsFunc(s, unicode.IsControl) || !utf8.ValidString(s) }
	for _, ev := range events.Events() {
		fields := []string{ev.Login.Name, ev.Login.User, ev.Object.Kind, ev.Object.ID, ev.Object.Owner}
		for k, v := range ev.Attrs {
			fields = append(fields, k, v)
		}
		for _, f := range fields {
			if bad(f) {
				t.Errorf("%s: field %q holds control characters", ev.Kind, f)
			}
		}
	}
}

// gateSink holds the agent's delivery until open is closed, as a slow
// control plane does.
type gateSink struct{ open chan struct{} }

func (g gateSink) WriteEvents(ctx context.Context, _ []rampart.Event) error {
	<-g.open
	return nil
}

// A request that serves many objects of other users (a listing, which an
// attacker asks for with the largest page size) must not fill the agent's
// event queue with object_access events: the queue drops what does not
// fit, and the security event of the attacker's next request would be
// lost. A request reports at most a few business events; detection needs
// no more than a handful of foreign objects per request to decide.
func TestOneRequestsObjectsCannotCrowdOutASecurityEvent(t *testing.T) {
	gate := gateSink{open: make(chan struct{})}
	agent, events := ramparttest.NewAgent(t, rampart.Config{Mode: rampart.ModeMonitor, QueueSize: 256, Sinks: []rampart.Sink{gate}})
	serveOnce(t, agent, "GET /sellers", func(w http.ResponseWriter, r *http.Request) {
		for i := range 2000 {
			rampart.ObjectAccess(r.Context(), "seller", strconv.Itoa(i), "owner-"+strconv.Itoa(i))
		}
	}, "GET", "/sellers?page_size=2000")
	serveOnce(t, agent, "GET /search", func(w http.ResponseWriter, r *http.Request) {
		agent.Report(r.Context(), rampart.Finding{Kind: rampart.KindSQLInjection, Sink: "test", Detail: "attack"})
	}, "GET", "/search")
	close(gate.open)
	if err := agent.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	n, injection := 0, false
	for _, ev := range events.Events() {
		n += btoi(ev.Kind == rampart.KindObjectAccess)
		injection = injection || ev.Kind == rampart.KindSQLInjection
	}
	if !injection || n > 64 || n < 11 {
		t.Errorf("injection event delivered %v, %d object_access events; want it delivered and enough objects for bola (over 10), a bounded number", injection, n)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
