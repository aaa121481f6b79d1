// Package rampartamqp carries the external actor across RabbitMQ (and
// other AMQP 0-9-1 brokers) with github.com/rabbitmq/amqp091-go. The
// producer puts the actor token and the trace context of the request that
// enqueues a job into the message's headers:
//
//	msg := amqp.Publishing{ContentType: "application/json", Body: payload}
//	rampartamqp.Inject(r.Context(), &msg)
//	ch.PublishWithContext(r.Context(), "", "imports", false, false, msg)
//
// and the worker runs each delivery through agent.StartJob:
//
//	deliveries, _ := ch.Consume("imports", "", false, false, false, false, nil)
//	rampartamqp.Serve(ctx, agent, "imports", deliveries, func(ctx context.Context, d amqp.Delivery) error { ... })
//
// In the worker, the job's events name the external actor, the control
// plane's decisions about it apply (an actor blocked after it enqueued the
// job is refused when the job runs), and the payload is read as a request
// body: each field of a JSON payload is an input of its own. The job's
// route is "amqp:<queue>", its request id the message id. AMQP's timestamp
// property, which Inject sets, is the job's enqueue time for the token's
// lifetime (see rampart.StartJob); the publisher sets it, not the broker.
package rampartamqp

import (
	"context"
	"errors"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/actor"
)

// Inject sets the job headers of ctx (rampart.PropagationHeaders: the actor token
// and the W3C trace context) in msg's headers, replacing any that msg has,
// and its timestamp to now if it has none.
func Inject(ctx context.Context, msg *amqp.Publishing) {
	if msg.Headers == nil {
		msg.Headers = amqp.Table{}
	}
	delete(msg.Headers, actor.Header)
	delete(msg.Headers, "traceparent")
	delete(msg.Headers, "tracestate")
	for k, v := range rampart.PropagationHeaders(ctx) {
		msg.Headers[k] = v
	}
	if msg.Timestamp.IsZero() {
		msg.Timestamp = time.Now()
	}
}

// Job describes d, delivered from queue, for agent.StartJob, for workers
// that settle their deliveries themselves.
func Job(queue string, d amqp.Delivery) rampart.Job {
	header := func(k string) string {
		s, _ := d.Headers[k].(string)
		return s
	}
	return rampart.Job{
		Route:       "amqp:" + queue,
		ID:          d.MessageId,
		Payload:     d.Body,
		ContentType: d.ContentType,
		ActorToken:  header(actor.Header),
		Traceparent: header("traceparent"),
		Tracestate:  header("tracestate"),
		Enqueued:    d.Timestamp,
	}
}

// Serve runs handle for each delivery of queue in the context
// agent.StartJob returns (its parent is ctx), one at a time, until
// deliveries is closed or ctx is done, and settles each delivery:
//
//   - handle returns nil: Ack;
//   - StartJob refused the job, or handle returns an error wrapping
//     rampart.ErrBlocked (a guard blocked a call): Reject without requeue
//     (to the queue's dead-letter exchange, if it has one), for a refused
//     job is refused again when redelivered; the refusal is an event;
//   - handle returns another error, or the agent is not ready yet: Nack
//     with requeue, for redelivery.
//
// It returns ctx's error, or nil when deliveries is closed. Run several
// Serve loops over the same channel for concurrent jobs.
func Serve(ctx context.Context, agent *rampart.Agent, queue string, deliveries <-chan amqp.Delivery, handle func(ctx context.Context, d amqp.Delivery) error) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case d, ok := <-deliveries:
			if !ok {
				return nil
			}
			jobCtx, err := agent.StartJob(ctx, Job(queue, d))
			if err == nil {
				err = handle(jobCtx, d)
			}
			switch {
			case err == nil:
				_ = d.Ack(false)
			case errors.Is(err, rampart.ErrBlocked):
				_ = d.Reject(false)
			default:
				_ = d.Nack(false, true)
			}
		}
	}
}
