package rampart

import (
	"context"
	"iter"
)

// Source says where an untrusted input came from.
type Source string

// Sources recorded by [Agent.Handler]. Code that marks its own input with
// [WithUntrusted] may use any other name ("job", "grpc", "kafka").
const (
	SourceQuery  Source = "query"  // URL query parameter, name and value
	SourceForm   Source = "form"   // urlencoded or multipart field, name and value; a file's name
	SourcePath   Source = "path"   // wildcard of the route pattern (r.PathValue), subtree segment
	SourceJSON   Source = "json"   // string key or string leaf of a JSON body
	SourceBody   Source = "body"   // the whole body as text
	SourceCookie Source = "cookie" // cookie value
	SourceHeader Source = "header" // request header value, and the Host
)

// Input is one untrusted value and where it came from.
type Input struct {
	Source Source `json:"source"`
	Name   string `json:"name,omitempty"` // parameter, key, cookie or header name
	Value  string `json:"value"`
}

// inputSet is what the context carries: the request (if any) and the values
// marked with WithUntrusted along the way, as an immutable list so that a
// derived context never changes what its parent sees.
type inputSet struct {
	parent *inputSet
	req    *request
	inputs []Input

	readOnly string // the read-only decision of NewReadOnlyContext, "" if none
}

type inputSetKey struct{}

func inputSetFrom(ctx context.Context) *inputSet {
	s, _ := ctx.Value(inputSetKey{}).(*inputSet)
	return s
}

// WithUntrusted returns a context in which values are untrusted input from
// source, in addition to any the context already carries. Use it where no
// HTTP request delivered the data, value by value: each value is one input,
// so a JSON document passed whole does not make its fields inputs. A queue
// worker uses [Agent.StartJob] instead, which parses the payload.
func WithUntrusted(ctx context.Context, source Source, values ...string) context.Context {
	parent := inputSetFrom(ctx)
	s := &inputSet{parent: parent, inputs: make([]Input, 0, len(values))}
	if parent != nil {
		s.req = parent.req
	}
	for _, v := range values {
		s.inputs = append(s.inputs, Input{Source: source, Value: v})
	}
	return context.WithValue(ctx, inputSetKey{}, s)
}

// Inputs yields the untrusted inputs known in ctx: those marked with
// [WithUntrusted], then those of the HTTP request that [Agent.Handler] is
// serving, in request order (the package documentation lists them). Guards
// call it at the dangerous call, and end with [CheckInputsComplete] when no
// input exploits the call; parsing of the request happens on the first call
// and is cached for the rest of the request.
//
// When ctx carries nothing (a call such as db.Query made without a context)
// the inputs of the request served by the calling goroutine are used.
func Inputs(ctx context.Context) iter.Seq[Input] {
	return func(yield func(Input) bool) {
		s := inputSetFrom(ctx)
		var req *request
		if s != nil {
			req = s.req
		} else {
			req = requestOfGoroutine()
		}
		for n := s; n != nil; n = n.parent {
			for _, in := range n.inputs {
				if !yield(in) {
					return
				}
			}
		}
		if req != nil {
			for _, in := range req.inputs() {
				if !yield(in) {
					return
				}
			}
			for _, in := range req.lateInputs() {
				if !yield(in) {
					return
				}
			}
			added, _ := req.addedInputs()
			for _, in := range added {
				if !yield(in) {
					return
				}
			}
		}
	}
}

// CheckInputsComplete is what a guard returns in place of nil when none of
// the inputs of ctx exploits its call: nil when every input of the request
// was recorded, and otherwise a refusal. A request is incomplete when it
// carries more distinct input values than Config.MaxInputs, JSON nested in
// strings deeper than the SDK reads, or a multipart body it cannot read
// whole; or when the handler has read its body past Config.MaxBodyBytes. A
// guard cannot tell whether what was not recorded reaches its call, so in
// block mode the call fails closed: the first such call reports an
// inputs_truncated event and every call returns an error wrapping
// [ErrBlocked]. In monitor mode the event is reported once and calls go on.
//
// sink names the guarded call in the event, as in [Finding]. Contexts
// without a request (see [WithUntrusted]) are always complete. The check
// costs a context lookup once the request's inputs are parsed.
func CheckInputsComplete(ctx context.Context, sink string) error {
	req := requestFor(ctx)
	if req == nil {
		return nil
	}
	why := req.incomplete()
	if why == "" {
		return nil
	}
	req.incompleteOnce.Do(func() {
		a := req.agent
		a.stats.inputsTruncated.Add(1)
		err := a.Report(ctx, Finding{
			Kind:   KindInputsTruncated,
			Sink:   sink,
			Detail: why,
			Reason: "the request's inputs could not all be recorded (" + why + "); what was not recorded may reach this call",
		})
		req.incompleteErr, _ = err.(*BlockedError)
	})
	if req.incompleteErr == nil {
		return nil
	}
	return req.incompleteErr
}
