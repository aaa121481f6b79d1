package rampart

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ControlPlaneConfig configures NewControlSink, the Sink that ships events
// to a Rampart control plane.
type ControlPlaneConfig struct {
	// URL is the control plane's base URL, e.g. https://rampart-cp:8443.
	URL string
	// Client makes the requests. Nil means a client with a 10-second
	// timeout; give one with the service's SVID (mTLS) or the CA bundle.
	Client *http.Client
	// Token, if set, is sent as a bearer token (an admin token, for tools
	// and tests; services authenticate with their SVID through Client).
	Token string
}

// maxSinkBatch keeps each POST well under the control plane's body limit.
const maxSinkBatch = 100

// ControlSink is a Sink that posts events to a Rampart control plane's
// /v1/events. Each event naming an actor is sent with the actor token the
// service received ([Event.ActorToken]), so that the control plane can
// store the actor as verified; without it, the actor is stored as claimed
// by the service and never drives an automatic decision. A batch that
// fails for a reason worth retrying (network error, 429, 5xx) is sent
// again with the same event ids until the delivery's context ends; the
// control plane stores each id once, so a retry never duplicates. Other
// refusals (400, 401, 403) are returned at once.
type ControlSink struct {
	endpoint string
	client   *http.Client
	token    string
}

var _ Sink = (*ControlSink)(nil)

// NewControlSink validates cfg and returns the Sink that ships events to
// the control plane at cfg.URL.
func NewControlSink(cfg ControlPlaneConfig) (*ControlSink, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("rampart: ControlPlaneConfig.URL %q is not an http(s) URL", cfg.URL)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	return &ControlSink{endpoint: strings.TrimSuffix(u.String(), "/") + "/v1/events", client: cfg.Client, token: cfg.Token}, nil
}

// ControlPlaneSink returns NewControlSink(cfg) as a Sink.
//
// Deprecated: use NewControlSink, which returns the concrete type.
// ControlPlaneSink will be removed in the next release.
func ControlPlaneSink(cfg ControlPlaneConfig) (Sink, error) {
	s, err := NewControlSink(cfg)
	if err != nil {
		return nil, err // not a non-nil Sink holding a nil *ControlSink
	}
	return s, nil
}

// storedEvent is the control plane's event envelope: the fields it indexes
// and the event itself.
type storedEvent struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	Kind    Kind      `json:"kind"`
	Action  string    `json:"action"`
	Service string    `json:"service"`
	Route   string    `json:"route,omitempty"`

	ActorIP     string `json:"actor_ip,omitempty"`
	ActorUser   string `json:"actor_user,omitempty"`
	SessionHash string `json:"session_hash,omitempty"`
	TraceID     string `json:"trace_id,omitempty"`
	// ActorToken backs the actor fields: the control plane verifies it
	// and stores the actor as verified, or as claimed by this service.
	ActorToken string `json:"actor_token,omitempty"`

	Data json.RawMessage `json:"data"`
}

// WriteEvents posts events in batches of at most 100, retrying each as
// the type's documentation says, and returns the first error that is not
// worth retrying or that outlived ctx.
func (s *ControlSink) WriteEvents(ctx context.Context, events []Event) error {
	for len(events) > 0 {
		n := min(len(events), maxSinkBatch)
		if err := s.post(ctx, events[:n]); err != nil {
			return err
		}
		events = events[n:]
	}
	return nil
}

func (s *ControlSink) post(ctx context.Context, events []Event) error {
	batch := struct {
		Events []storedEvent `json:"events"`
	}{Events: make([]storedEvent, len(events))}
	for i, ev := range events {
		data, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("rampart: encode event %s: %w", ev.ID, err)
		}
		batch.Events[i] = storedEvent{ID: ev.ID, Time: ev.Time, Kind: ev.Kind, Action: string(ev.Action), Service: ev.Service, Route: ev.Route,
			ActorIP: ev.ActorIP, ActorUser: ev.ActorUser, SessionHash: ev.SessionHash, TraceID: ev.TraceID,
			ActorToken: ev.ActorToken, Data: data}
	}
	body, err := json.Marshal(batch)
	if err != nil {
		return fmt.Errorf("rampart: encode events: %w", err)
	}
	backoff := 100 * time.Millisecond
	for {
		retry, err := s.send(ctx, body)
		if err == nil || !retry {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("rampart: control plane: giving up: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// send posts one batch and says whether a failure is worth retrying.
func (s *ControlSink) send(ctx context.Context, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("rampart: control plane: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return ctx.Err() == nil, fmt.Errorf("rampart: control plane: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	var e struct {
		Error string `json:"error"`
	}
	text := strings.TrimSpace(string(msg))
	if json.Unmarshal(msg, &e) == nil && e.Error != "" {
		text = e.Error
	}
	err = fmt.Errorf("rampart: control plane refused events: HTTP %d: %s", resp.StatusCode, text)
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500, err
}
