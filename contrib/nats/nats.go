// Package rampartnats carries the external actor across NATS JetStream
// (github.com/nats-io/nats.go/jetstream). The producer puts the actor
// token and the trace context of the request that enqueues a job into the
// message's headers:
//
//	msg := nats.NewMsg("imports.new")
//	msg.Data = payload
//	rampartnats.Inject(r.Context(), msg)
//	js.PublishMsg(r.Context(), msg)
//
// and the worker runs each message through agent.StartJob:
//
//	consumer.Consume(rampartnats.Handler(ctx, agent, func(ctx context.Context, msg jetstream.Msg) error { ... }))
//
// In the worker, the job's events name the external actor, the control
// plane's decisions about it apply (an actor blocked after it enqueued the
// job is refused when the job runs), and the payload is read as a request
// body: each field of a JSON payload is an input of its own. The job's
// route is "nats:<stream>/<consumer>", and its request id the stream's
// sequence number. See rampart.StartJob for the token's lifetime: the
// stream's timestamp of the message is the job's enqueue time.
package rampartnats

import (
	"context"
	"errors"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/actor"
)

// Inject sets the job headers of ctx (rampart.PropagationHeaders: the actor token
// and the W3C trace context) on msg, replacing any that msg has.
func Inject(ctx context.Context, msg *nats.Msg) {
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	// A message built from another (a retry, a relay) must not keep a
	// token that ctx does not back.
	msg.Header.Del(actor.Header)
	msg.Header.Del("traceparent")
	msg.Header.Del("tracestate")
	for k, v := range rampart.PropagationHeaders(ctx) {
		msg.Header.Set(k, v)
	}
}

// Handler returns a message handler for jetstream's Consume that runs
// handle in the context agent.StartJob returns for each message (its
// parent is ctx), and settles the message:
//
//   - handle returns nil: Ack;
//   - StartJob refused the job, or handle returns an error wrapping
//     rampart.ErrBlocked (a guard blocked a call): Term, for a refused job
//     is refused again when redelivered; the refusal is an event;
//   - handle returns another error, or the agent is not ready yet: Nak,
//     for redelivery.
func Handler(ctx context.Context, agent *rampart.Agent, handle func(ctx context.Context, msg jetstream.Msg) error) jetstream.MessageHandler {
	return func(msg jetstream.Msg) {
		jobCtx, err := agent.StartJob(ctx, Job(msg))
		if err == nil {
			err = handle(jobCtx, msg)
		}
		switch {
		case err == nil:
			_ = msg.Ack()
		case errors.Is(err, rampart.ErrBlocked):
			_ = msg.Term()
		default:
			_ = msg.Nak()
		}
	}
}

// Job describes msg for agent.StartJob, for workers that settle their
// messages themselves.
func Job(msg jetstream.Msg) rampart.Job {
	h := msg.Headers()
	job := rampart.Job{
		Route:       "nats:" + msg.Subject(),
		Payload:     msg.Data(),
		ContentType: h.Get("Content-Type"),
		ActorToken:  h.Get(actor.Header),
		Traceparent: h.Get("traceparent"),
		Tracestate:  h.Get("tracestate"),
	}
	if md, err := msg.Metadata(); err == nil {
		job.Route = "nats:" + md.Stream + "/" + md.Consumer
		job.ID = md.Stream + "." + strconv.FormatUint(md.Sequence.Stream, 10)
		job.Enqueued = md.Timestamp
	}
	return job
}
