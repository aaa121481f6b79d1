package rampartnats_test

// These tests need NATS with JetStream at 127.0.0.1:4222 (RAMPART_TEST_NATS_URL
// overrides). Without it they skip, except with CI=true, where they fail.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/actor"
	rampartnats "github.com/rampartsec/rampart/contrib/nats"
	"github.com/rampartsec/rampart/internal/contribtest"
	"github.com/rampartsec/rampart/ramparttest"
)

var mallory = actor.Actor{IP: netip.MustParseAddr("203.0.113.9"), User: "mallory"}

func jetStream(t *testing.T) (jetstream.JetStream, jetstream.Stream, string) {
	t.Helper()
	url := os.Getenv("RAMPART_TEST_NATS_URL")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		contribtest.Unavailable(t, "NATS at "+url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("RAMPART_TEST_%d", rand.Uint64()>>1)
	subject := "rampart.test." + name
	ctx := context.Background()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject}})
	if err != nil {
		contribtest.Unavailable(t, "JetStream at "+url, err)
	}
	t.Cleanup(func() { js.DeleteStream(context.Background(), name) })
	return js, stream, subject
}

// outcome is what the worker's handler saw of one job.
type outcome struct {
	user string // the actor the job's context names
	rows int64
	err  error
}

// consume runs the worker: rampartnats.Handler around a handler that marks
// the payload's name as a VIP, with the vulnerable statement.
func consume(t *testing.T, stream jetstream.Stream, agent *rampart.Agent, db contribtest.DB) <-chan outcome {
	t.Helper()
	ctx := context.Background()
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "worker", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan outcome, 16)
	cc, err := cons.Consume(rampartnats.Handler(ctx, agent, func(ctx context.Context, msg jetstream.Msg) error {
		var job struct{ Name string }
		if err := json.Unmarshal(msg.Data(), &job); err != nil {
			return err
		}
		a, _ := actor.FromContext(ctx)
		n, err := db.MarkVIP(ctx, job.Name)
		out <- outcome{user: a.User, rows: n, err: err}
		return err
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return out
}

// publish enqueues payload as a request of the actor would: its context
// carries the verified token and the trace.
func publish(t *testing.T, js jetstream.JetStream, subject, token, payload string) {
	t.Helper()
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: [16]byte{0x4b, 0xf9}, SpanID: [8]byte{7}, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithRemoteSpanContext(actor.NewTokenContext(context.Background(), token), sc)
	msg := nats.NewMsg(subject)
	msg.Data = []byte(payload)
	msg.Header.Set(actor.Header, "a token the producer's request does not back")
	rampartnats.Inject(ctx, msg)
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
}

func next(t *testing.T, out <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-out:
		return o
	case <-time.After(time.Minute):
		t.Fatal("no job ran within a minute")
		return outcome{}
	}
}

func TestAJobRunsForItsActorWithEachFieldAnInput(t *testing.T) {
	js, stream, subject := jetStream(t)
	m := contribtest.StartMesh(t, "worker", "", rampart.Config{})
	db := contribtest.SQLite(t, m.Agent)
	token := m.Token(t, mallory, time.Time{}, 0)
	out := consume(t, stream, m.Agent, db)

	publish(t, js, subject, token, contribtest.InjectedJob)
	o := next(t, out)
	if !errors.Is(o.err, rampart.ErrBlocked) || o.rows != 0 {
		t.Fatalf("injected job: %d rows, %v; want ErrBlocked", o.rows, o.err)
	}
	if o.user != "mallory" {
		t.Errorf("the job's context names %q, want the actor of the token", o.user)
	}
	ev := m.Events.Wait(t, ramparttest.Want{Kind: rampart.KindSQLInjection}.Match)
	want := ramparttest.Want{Kind: rampart.KindSQLInjection, Action: rampart.ActionBlocked, Route: "nats:" + stream.CachedInfo().Config.Name + "/worker",
		Input: rampart.Input{Source: rampart.SourceJSON, Name: "name", Value: "x' OR '1'='1"}}
	if d := want.Diff(ev); d != "" {
		t.Error(d)
	}
	if ev.ActorIP != "203.0.113.9" || ev.ActorUser != "mallory" || ev.TraceID != "4bf90000000000000000000000000000" {
		t.Errorf("event actor %q/%q trace %q; want the producer's actor and trace", ev.ActorIP, ev.ActorUser, ev.TraceID)
	}

	publish(t, js, subject, token, `{"name": "alice"}`)
	if o := next(t, out); o.err != nil || o.rows != 1 {
		t.Errorf("benign job: %d rows, %v; want 1", o.rows, o.err)
	}
}

func TestAnActorBlockedAfterEnqueueingIsRefusedWhenItsJobRuns(t *testing.T) {
	js, stream, subject := jetStream(t)
	m := contribtest.StartMesh(t, "worker", "", rampart.Config{})
	db := contribtest.SQLite(t, m.Agent)
	token := m.Token(t, mallory, time.Time{}, 0)

	publish(t, js, subject, token, `{"name": "alice"}`) // enqueued while allowed
	id := m.Block(t, "203.0.113.9")
	contribtest.Eventually(t, "the agent learning the decision", func() bool {
		_, err := m.Agent.StartJob(context.Background(), rampart.Job{Route: "probe", ActorToken: token})
		return err != nil
	})
	out := consume(t, stream, m.Agent, db)
	ev := m.Events.Wait(t, func(ev rampart.Event) bool {
		return ev.Kind == rampart.KindDecisionEnforced && ev.Route != "probe"
	})
	if ev.Decision != id || ev.ActorUser != "mallory" {
		t.Errorf("refusal event %+v, want decision %s naming mallory", ev, id)
	}
	// The refused message is terminated, not redelivered to the handler.
	cons, err := stream.Consumer(context.Background(), "worker")
	if err != nil {
		t.Fatal(err)
	}
	contribtest.Eventually(t, "the refused message settled", func() bool {
		info, err := cons.Info(context.Background())
		return err == nil && info.NumAckPending == 0 && info.Delivered.Consumer >= 1
	})
	select {
	case o := <-out:
		t.Errorf("the blocked actor's job ran: %+v", o)
	default:
	}
	var vip int
	db.DB.QueryRow("SELECT count(*) FROM " + db.Table + " WHERE role = 'vip'").Scan(&vip)
	if vip != 0 {
		t.Errorf("%d rows changed by a blocked actor's job", vip)
	}
}
