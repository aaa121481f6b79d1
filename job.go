package rampart

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/rampartsec/rampart/actor"
)

// A Job is one message a queue delivered to a worker, as [Agent.StartJob]
// reads it: the worker runs the job for the external actor whose request
// enqueued it, and the message's payload is untrusted input. The queue
// adapters (contrib/nats, contrib/amqp) fill it from their messages.
type Job struct {
	// Route names the queue, subject or topic ("nats:imports"): the
	// route of the job's events and of the service's inventory.
	Route string
	// ID is the message's id, the request id of the job's events when it
	// is one ([A-Za-z0-9._-], at most 128 bytes); otherwise a fresh one.
	ID string
	// Payload is the message's body. It is read as a request's body is
	// (see "What is captured" in the package documentation): each string
	// key and value of a JSON payload is an input of source "json", the
	// fields of a form are inputs, and the whole payload is one more. Up
	// to Config.MaxBodyBytes of it: a longer payload makes the job's
	// inputs incomplete, and its guarded calls fail closed.
	Payload []byte
	// ContentType is the payload's media type, "" if the message has
	// none (JSON is recognised without it).
	ContentType string
	// ActorToken is the actor token the producer put in the message
	// (the header actor.Header, see PropagationHeaders).
	ActorToken string
	// Traceparent and Tracestate are the W3C trace context the producer
	// put in the message.
	Traceparent, Tracestate string
	// Enqueued is when the broker accepted the message, zero if unknown.
	// It lets a job that waited past its token's expiry run for its
	// actor (see StartJob).
	Enqueued time.Time
}

// MaxJobDelay is how long after its actor token expired a job may still
// run for the actor: a job enqueued while the token was valid, and started
// at most MaxJobDelay after it was enqueued, is verified as of Job.Enqueued.
const MaxJobDelay = actor.MaxLifetime

// ErrNotReady is returned by StartJob while the agent is waiting for its
// policy, decisions and actor-token keys from the control plane: the
// worker should hand the message back for redelivery.
var ErrNotReady = errors.New("rampart: not ready: waiting for the policy from the control plane")

// StartJob returns the context in which a worker runs job, or an error
// when the job must not run.
//
// In the context, the job's payload is untrusted input (see Job.Payload),
// the job's events name its route, its request id and its trace, and, when
// the agent has an identity (Config.Identity), the external actor of the
// job's verified actor token: the guards attribute what they find to that
// actor, and the control plane's decisions apply to it as they would to
// its request. A job is treated as a request that writes, to a route that
// is sensitive:
//
//   - a block or block-sensitive decision refuses it;
//   - a read-only decision refuses it, or with Config.ReadOnlyAtQuery lets
//     it run with the SQL guard refusing its writes.
//
// The token must name this service in its audience (the policy must let a
// request reach the worker's service from the producer's). No mTLS peer
// presents a message, so the token's holder is not checked: whoever can
// publish to the queue can replay a token it captured, for as long as the
// token is valid plus MaxJobDelay, and the job is attributed to that
// token's actor. Protect the broker with its own authentication.
//
// Token lifetime and queue delay: a token that expired before the job
// started is verified as of Job.Enqueued, if that is known, within the
// token's validity, and at most MaxJobDelay before now; so a backlog of up
// to MaxJobDelay still runs for its actors. Otherwise the job is refused
// (an actor_invalid event): a job must not run as no one because it waited.
//
// A refusal is reported as an event and returned as an error wrapping
// ErrBlocked: the worker should drop the message (terminate or reject it;
// redelivering it would be refused again). ErrNotReady asks for
// redelivery. Without an identity, the token cannot be verified and is
// ignored: the job runs with no actor.
func (a *Agent) StartJob(ctx context.Context, job Job) (context.Context, error) {
	req, ctx := a.newCallRequest(ctx, jobMethod, job.Route, job.Route, job.ID, job.Traceparent, job.Tracestate)
	if job.ContentType != "" {
		req.r.Header.Set("Content-Type", job.ContentType)
	}
	if a.maxBody > 0 && len(job.Payload) > 0 {
		req.body = job.Payload[:min(int64(len(job.Payload)), a.maxBody)]
		if int64(len(job.Payload)) > a.maxBody {
			// The worker reads the whole payload: past the capture.
			req.bodyCut = true
			req.replay.read.Store(int64(len(job.Payload)))
		}
	}
	z := a.zt
	if z == nil {
		return ctx, nil
	}
	select {
	case <-z.sync.Ready():
	default:
		return nil, ErrNotReady
	}
	z.see(z.routes, job.Route)
	if job.ActorToken == "" {
		return ctx, nil
	}
	now := time.Now()
	act, err := z.verifier.Verify(job.ActorToken)
	if errors.Is(err, actor.ErrExpired) && !job.Enqueued.IsZero() && !job.Enqueued.After(now) && now.Sub(job.Enqueued) <= MaxJobDelay {
		act, err = z.verifier.VerifyAt(job.ActorToken, job.Enqueued)
		if err != nil {
			err = fmt.Errorf("%w (verified as of the job's enqueue time %s)", err, job.Enqueued.UTC().Format(time.RFC3339))
		}
	}
	if err != nil {
		return nil, a.refuseCall(ctx, req, KindActorInvalid, "", "the job's actor token is refused: "+err.Error())
	}
	// A job acts on state: it is a write, to a sensitive route.
	return a.applyDecisions(ctx, req, act, job.ActorToken, http.MethodPost, func() bool { return true })
}

// jobMethod is the method of a job's events.
const jobMethod = "JOB"

// PropagationHeaders returns the header fields a producer puts in a message so that
// the worker's StartJob acts for the same actor in the same trace: the
// actor token of ctx (actor.Header, the token the Handler verified for the
// request that enqueues the job) and its W3C trace context ("traceparent",
// "tracestate"). It is empty when ctx carries neither. The queue adapters
// (contrib/nats, contrib/amqp) set them on the messages they publish.
func PropagationHeaders(ctx context.Context) map[string]string {
	out := map[string]string{}
	if token, ok := actor.TokenFromContext(ctx); ok {
		out[actor.Header] = token
	}
	h := http.Header{}
	injectTrace(ctx, h)
	if v := h.Get(traceparentHeader); v != "" {
		out[traceparentHeader] = v
	}
	if v := h.Get(tracestateHeader); v != "" {
		out[tracestateHeader] = v
	}
	return out
}
