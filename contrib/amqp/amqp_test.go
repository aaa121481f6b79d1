package rampartamqp_test

// These tests need RabbitMQ at 127.0.0.1:5672, guest/guest
// (RAMPART_TEST_AMQP_URL overrides). Without it they skip, except with
// CI=true, where they fail.

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

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/trace"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/actor"
	rampartamqp "github.com/rampartsec/rampart/contrib/amqp"
	"github.com/rampartsec/rampart/internal/contribtest"
	"github.com/rampartsec/rampart/ramparttest"
)

var mallory = actor.Actor{IP: netip.MustParseAddr("203.0.113.9"), User: "mallory"}

// broker returns a channel and a queue of its own, deleted when the test
// ends.
func broker(t *testing.T) (*amqp.Connection, *amqp.Channel, string) {
	t.Helper()
	url := os.Getenv("RAMPART_TEST_AMQP_URL")
	if url == "" {
		url = "amqp://guest:guest@127.0.0.1:5672/"
	}
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		contribtest.Unavailable(t, "RabbitMQ at 127.0.0.1:5672", err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare(fmt.Sprintf("rampart-test-%d", rand.Uint64()>>1), false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.QueueDelete(q.Name, false, false, false) })
	return conn, ch, q.Name
}

type outcome struct {
	user string
	rows int64
	err  error
}

// consume runs the worker on a channel of its own: Serve around a handler
// that marks the payload's name as a VIP, with the vulnerable statement.
// stop ends Serve and closes the channel, which hands the deliveries not
// settled back to the queue.
func consume(t *testing.T, conn *amqp.Connection, queue string, agent *rampart.Agent, db contribtest.DB) (out <-chan outcome, stop func()) {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	outc := make(chan outcome, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- rampartamqp.Serve(ctx, agent, queue, deliveries, func(ctx context.Context, d amqp.Delivery) error {
			var job struct{ Name string }
			if err := json.Unmarshal(d.Body, &job); err != nil {
				return err
			}
			a, _ := actor.FromContext(ctx)
			n, err := db.MarkVIP(ctx, job.Name)
			outc <- outcome{user: a.User, rows: n, err: err}
			return err
		})
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Serve returned %v, want context.Canceled", err)
		}
		ch.Close()
	}
	t.Cleanup(stop)
	return outc, stop
}

func publish(t *testing.T, ch *amqp.Channel, queue, token, payload string) {
	t.Helper()
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: [16]byte{0x4b, 0xf9}, SpanID: [8]byte{7}, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithRemoteSpanContext(actor.NewTokenContext(context.Background(), token), sc)
	msg := amqp.Publishing{ContentType: "application/json", MessageId: fmt.Sprintf("m%d", rand.Uint32()), Body: []byte(payload),
		Headers: amqp.Table{actor.Header: "a token the producer's request does not back"}}
	rampartamqp.Inject(ctx, &msg)
	if err := ch.PublishWithContext(ctx, "", queue, false, false, msg); err != nil {
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
	conn, ch, queue := broker(t)
	m := contribtest.StartMesh(t, "worker", "", rampart.Config{})
	db := contribtest.SQLite(t, m.Agent)
	token := m.Token(t, mallory, time.Time{}, 0)
	out, _ := consume(t, conn, queue, m.Agent, db)

	publish(t, ch, queue, token, contribtest.InjectedJob)
	o := next(t, out)
	if !errors.Is(o.err, rampart.ErrBlocked) || o.rows != 0 {
		t.Fatalf("injected job: %d rows, %v; want ErrBlocked", o.rows, o.err)
	}
	if o.user != "mallory" {
		t.Errorf("the job's context names %q, want the actor of the token", o.user)
	}
	ev := m.Events.Wait(t, ramparttest.Want{Kind: rampart.KindSQLInjection}.Match)
	want := ramparttest.Want{Kind: rampart.KindSQLInjection, Action: rampart.ActionBlocked, Route: "amqp:" + queue,
		Input: rampart.Input{Source: rampart.SourceJSON, Name: "name", Value: "x' OR '1'='1"}}
	if d := want.Diff(ev); d != "" {
		t.Error(d)
	}
	if ev.ActorIP != "203.0.113.9" || ev.ActorUser != "mallory" || ev.TraceID != "4bf90000000000000000000000000000" {
		t.Errorf("event actor %q/%q trace %q; want the producer's actor and trace", ev.ActorIP, ev.ActorUser, ev.TraceID)
	}

	publish(t, ch, queue, token, `{"name": "alice"}`)
	if o := next(t, out); o.err != nil || o.rows != 1 {
		t.Errorf("benign job: %d rows, %v; want 1", o.rows, o.err)
	}
}

func TestAnActorBlockedAfterEnqueueingIsRefusedWhenItsJobRuns(t *testing.T) {
	conn, ch, queue := broker(t)
	m := contribtest.StartMesh(t, "worker", "", rampart.Config{})
	db := contribtest.SQLite(t, m.Agent)
	token := m.Token(t, mallory, time.Time{}, 0)

	publish(t, ch, queue, token, `{"name": "alice"}`) // enqueued while allowed
	id := m.Block(t, "203.0.113.9")
	contribtest.Eventually(t, "the agent learning the decision", func() bool {
		_, err := m.Agent.StartJob(context.Background(), rampart.Job{Route: "probe", ActorToken: token})
		return err != nil
	})
	out, stop := consume(t, conn, queue, m.Agent, db)
	ev := m.Events.Wait(t, func(ev rampart.Event) bool {
		return ev.Kind == rampart.KindDecisionEnforced && ev.Route == "amqp:"+queue
	})
	if ev.Decision != id || ev.ActorUser != "mallory" {
		t.Errorf("refusal event %+v, want decision %s naming mallory", ev, id)
	}
	// The refused delivery was rejected, not requeued: once the worker's
	// channel is closed, which would hand back a delivery not settled,
	// the queue is empty.
	stop()
	q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
	if err != nil || q.Messages != 0 {
		t.Errorf("queue after the refusal: %d messages, %v; want the refused one gone", q.Messages, err)
	}
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
