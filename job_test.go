package rampart_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/actor"
	"github.com/rampartsec/rampart/internal/contribtest"
	"github.com/rampartsec/rampart/ramparttest"
)

// markRole is a worker's vulnerable statement: the job's name field is
// concatenated into an UPDATE.
func markRole(ctx context.Context, db contribtest.DB, name string) (int64, error) {
	res, err := db.DB.ExecContext(ctx, "UPDATE "+db.Table+" SET role = 'vip' WHERE name = '"+name+"'")
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

const injectedJob = `{"name": "x' OR '1'='1", "plan": "gold"}`

// The README's old recipe marked the raw message as one input: the
// field's injection is not that input, so nothing stops it. This is the
// bug StartJob fixes; the test shows the attack is real.
func TestTheWholePayloadAsOneInputLetsAFieldInjectionThrough(t *testing.T) {
	a, _ := ramparttest.NewAgent(t, rampart.Config{})
	db := contribtest.SQLite(t, a)
	ctx := rampart.WithUntrusted(context.Background(), "job", injectedJob)
	n, err := markRole(ctx, db, "x' OR '1'='1")
	if err != nil || n != int64(len(contribtest.Users)) {
		t.Fatalf("old recipe: %d rows, %v; the injection should reach every row", n, err)
	}
}

func TestStartJobMakesEachJSONFieldAnInput(t *testing.T) {
	a, rec := ramparttest.NewAgent(t, rampart.Config{})
	db := contribtest.SQLite(t, a)
	ctx, err := a.StartJob(context.Background(), rampart.Job{Route: "nats:vip", ID: "msg-7", Payload: []byte(injectedJob), ContentType: "application/json"})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := markRole(ctx, db, "x' OR '1'='1"); !errors.Is(err, rampart.ErrBlocked) || n != 0 {
		t.Fatalf("injected job: %d rows, %v; want ErrBlocked", n, err)
	}
	want := ramparttest.Want{Kind: rampart.KindSQLInjection, Route: "nats:vip", RequestID: "msg-7",
		Input: rampart.Input{Source: rampart.SourceJSON, Name: "name", Value: "x' OR '1'='1"}}
	if d := want.Diff(rec.Next(t)); d != "" {
		t.Error(d)
	}
	ctx, err = a.StartJob(context.Background(), rampart.Job{Route: "nats:vip", Payload: []byte(`{"name": "alice"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := markRole(ctx, db, "alice"); err != nil || n != 1 {
		t.Errorf("benign job: %d rows, %v; want 1", n, err)
	}
}

func TestAPayloadLongerThanTheCaptureFailsClosed(t *testing.T) {
	a, _ := ramparttest.NewAgent(t, rampart.Config{MaxBodyBytes: 64})
	db := contribtest.SQLite(t, a)
	// The injection lies past the 64 bytes captured.
	payload := []byte(`{"pad": "` + strings.Repeat("a", 64) + `", "name": "x' OR '1'='1"}`)
	ctx, err := a.StartJob(context.Background(), rampart.Job{Route: "q", Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := markRole(ctx, db, "alice"); !errors.Is(err, rampart.ErrBlocked) {
		t.Errorf("a guarded call of a job whose payload was not all read = %v, want ErrBlocked (inputs incomplete)", err)
	}
}

var jobActor = actor.Actor{IP: netip.MustParseAddr("203.0.113.9"), User: "mallory"}

func TestStartJobNamesTheActorAndEnforcesItsDecisions(t *testing.T) {
	m := contribtest.StartMesh(t, "worker", "", rampart.Config{})
	db := contribtest.SQLite(t, m.Agent)
	token := m.Token(t, jobActor, time.Time{}, 0)
	job := rampart.Job{Route: "nats:vip", Payload: []byte(injectedJob), ActorToken: token,
		Traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	ctx, err := m.Agent.StartJob(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := actor.FromContext(ctx); !ok || got.User != "mallory" {
		t.Errorf("actor in the job's context = %+v, %v", got, ok)
	}
	if tok, _ := actor.TokenFromContext(ctx); tok != token {
		t.Error("the job's context does not carry the token for the calls it makes")
	}
	if _, err := markRole(ctx, db, "x' OR '1'='1"); !errors.Is(err, rampart.ErrBlocked) {
		t.Fatalf("injected job = %v, want ErrBlocked", err)
	}
	ev := m.Events.Wait(t, ramparttest.Want{Kind: rampart.KindSQLInjection}.Match)
	if ev.ActorIP != "203.0.113.9" || ev.ActorUser != "mallory" || ev.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("event actor %q/%q trace %q; want the job's actor and trace", ev.ActorIP, ev.ActorUser, ev.TraceID)
	}
	// The actor is blocked after enqueueing: the job is refused when it runs.
	id := m.Block(t, "203.0.113.9")
	var refusal error
	contribtest.Eventually(t, "the block decision refusing the job", func() bool {
		_, refusal = m.Agent.StartJob(context.Background(), job)
		return refusal != nil
	})
	if !errors.Is(refusal, rampart.ErrBlocked) {
		t.Fatalf("refusal %v, want ErrBlocked", refusal)
	}
	ev = m.Events.Wait(t, ramparttest.Want{Kind: rampart.KindDecisionEnforced}.Match)
	if ev.Decision != id || ev.ActorIP != "203.0.113.9" || ev.Route != "nats:vip" {
		t.Errorf("decision event %+v; want decision %s, the actor and the route", ev, id)
	}
}

func TestAJobThatWaitedPastItsTokenRunsWithinMaxJobDelay(t *testing.T) {
	m := contribtest.StartMesh(t, "worker", "", rampart.Config{})
	now := time.Now()
	minted := now.Add(-30 * time.Minute)
	token := m.Token(t, jobActor, minted, 5*time.Minute) // expired 25 minutes ago
	for _, c := range []struct {
		name     string
		enqueued time.Time
		runs     bool
	}{
		{"enqueued while the token was valid", minted.Add(time.Minute), true},
		{"enqueue time unknown", time.Time{}, false},
		{"enqueued after the token expired", minted.Add(10 * time.Minute), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, err := m.Agent.StartJob(context.Background(), rampart.Job{Route: "q", ActorToken: token, Enqueued: c.enqueued})
			if c.runs {
				if err != nil {
					t.Fatalf("StartJob = %v, want the job to run", err)
				}
				if a, ok := actor.FromContext(ctx); !ok || a.User != "mallory" {
					t.Errorf("actor %+v, %v", a, ok)
				}
				return
			}
			if !errors.Is(err, rampart.ErrBlocked) {
				t.Fatalf("StartJob = %v, want a refusal", err)
			}
			if !errors.Is(err, rampart.ErrBlocked) || err.(*rampart.BlockedError).Event.Kind != rampart.KindActorInvalid {
				t.Errorf("refusal %v, want actor_invalid", err)
			}
		})
	}
	// Past MaxJobDelay after its enqueue time, a job is refused even if
	// it was enqueued while its token was valid.
	old := now.Add(-rampart.MaxJobDelay - 10*time.Minute)
	token = m.Token(t, jobActor, old, 5*time.Minute)
	if _, err := m.Agent.StartJob(context.Background(), rampart.Job{Route: "q", ActorToken: token, Enqueued: old.Add(time.Minute)}); !errors.Is(err, rampart.ErrBlocked) {
		t.Errorf("a job older than MaxJobDelay = %v, want a refusal", err)
	}
}

func TestPropagationHeadersCarryTheTokenAndTrace(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: [16]byte{1}, SpanID: [8]byte{2}, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(actor.NewTokenContext(context.Background(), "tok"), sc)
	h := rampart.PropagationHeaders(ctx)
	if h[actor.Header] != "tok" || h["traceparent"] != "00-01000000000000000000000000000000-0200000000000000-01" || len(h) != 2 {
		t.Errorf("PropagationHeaders = %v", h)
	}
	if h := rampart.PropagationHeaders(context.Background()); len(h) != 0 {
		t.Errorf("PropagationHeaders of an empty context = %v", h)
	}
}
