// Package controlsync keeps a process's copy of control-plane state — the
// policy, the decisions, the actor-token keys, the revoked services —
// current through the watch API. Services (the SDK) and gateways both use
// it, so they learn of a new decision or a revocation the same way, within
// the watch's latency. [Revocations] also tracks the mTLS connections with
// each service, so that a revocation closes them at once.
//
// The order that loses nothing: read the current revision, then load every
// piece of state, then watch for changes after that revision; a change
// reloads the pieces that depend on its kind. A watcher so far behind that
// the control plane no longer keeps the changes it missed gets a change of
// kind "reset" (KindReset) and reloads every piece. Any failure starts over
// after a pause, and what was loaded stays in force meanwhile.
package controlsync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Client calls the control plane's API.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a Client for the API at base ("https://host:port"),
// through hc (which authenticates, typically with the caller's SVID).
func NewClient(base string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("control plane URL %q is not an https:// URL", base)
	}
	if hc == nil {
		return nil, errors.New("control plane client: no HTTP client")
	}
	return &Client{base: strings.TrimSuffix(u.String(), "/"), http: hc}, nil
}

// URL returns the API's base URL.
func (c *Client) URL() string { return c.base }

// StatusError is a non-2xx answer.
type StatusError struct {
	Status int
	Body   string
}

func (e *StatusError) Error() string { return fmt.Sprintf("control plane: %d %s", e.Status, e.Body) }

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == http.StatusNotFound
}

// Get decodes the JSON answer of GET path into out.
func (c *Client) Get(ctx context.Context, path string, out any) error {
	return c.Do(ctx, http.MethodGet, path, nil, out)
}

// Do sends in (JSON, if not nil) with method to path and decodes the answer
// into out (if not nil).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &StatusError{Status: resp.StatusCode, Body: strings.TrimSpace(string(data))}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// Source is one piece of state: Load fetches it whole, at the start, after
// each change of one of Kinds ("decision", "policy", "trust_bundle",
// "actor_keys", "service"), and after a reset (KindReset), whatever its
// Kinds.
type Source struct {
	Name  string
	Kinds []string
	Load  func(ctx context.Context, c *Client) error
}

// KindReset is the kind of the change the watch API answers to a watcher
// behind the changes it still keeps: every source must load again.
const KindReset = "reset"

// Config configures a Syncer.
type Config struct {
	Client  *Client
	Sources []Source
	Logger  *slog.Logger // nil discards
	// WatchTimeout is the long poll's timeout; 0 means 30 s.
	WatchTimeout time.Duration
}

// Syncer runs the watch loop.
type Syncer struct {
	cfg       Config
	log       *slog.Logger
	ready     chan struct{}
	readyOnce sync.Once
	refresh   chan string

	mu       sync.Mutex
	lastLoad map[string]time.Time
}

// New returns a Syncer; call Run.
func New(cfg Config) *Syncer {
	if cfg.WatchTimeout == 0 {
		cfg.WatchTimeout = 30 * time.Second
	}
	s := &Syncer{cfg: cfg, log: cfg.Logger, ready: make(chan struct{}), refresh: make(chan string, 8), lastLoad: map[string]time.Time{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Ready is closed once every source has loaded once.
func (s *Syncer) Ready() <-chan struct{} { return s.ready }

// Refresh asks for the sources watching kind to load again, without waiting
// for the watch: a token signed by a key not seen yet, say. Requests beyond
// one a second per source are ignored, so an attacker sending unknown key
// ids cannot make the process hammer the control plane.
func (s *Syncer) Refresh(kind string) {
	select {
	case s.refresh <- kind:
	default:
	}
}

// Run syncs until ctx ends.
func (s *Syncer) Run(ctx context.Context) {
	pause := 200 * time.Millisecond
	for ctx.Err() == nil {
		err := s.sync(ctx)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("rampart: control plane sync failed; the last state loaded stays in force", "err", err, "retry_in", pause)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(pause*2, 10*time.Second)
	}
}

type watchResult struct {
	Changes []struct {
		Kind string `json:"kind"`
	} `json:"changes"`
	Revision int64 `json:"revision"`
	err      error
}

// requestTimeout bounds each load and the read of the current revision;
// watchGrace is how long past its own timeout a long poll may take to be
// answered. Without a bound, a request sent on a connection whose packets
// vanish (a network partition) waits until TCP gives up, many minutes, and
// the loop with it; with one, the loop starts over, on a new connection,
// soon after the network returns.
const (
	requestTimeout = 30 * time.Second
	watchGrace     = 15 * time.Second
)

func (s *Syncer) load(ctx context.Context, src Source) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if err := src.Load(ctx, s.cfg.Client); err != nil {
		return fmt.Errorf("%s: %w", src.Name, err)
	}
	s.mu.Lock()
	s.lastLoad[src.Name] = time.Now()
	s.mu.Unlock()
	return nil
}

func (s *Syncer) sync(ctx context.Context) error {
	var latest watchResult
	lctx, cancel := context.WithTimeout(ctx, requestTimeout)
	err := s.cfg.Client.Get(lctx, "/v1/watch?since=latest", &latest)
	cancel()
	if err != nil {
		return err
	}
	for _, src := range s.cfg.Sources {
		if err := s.load(ctx, src); err != nil {
			return err
		}
	}
	s.readyOnce.Do(func() { close(s.ready) })
	// The long poll runs in its own goroutine so that Refresh is served
	// while it waits.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan watchResult, 1)
	timeout := s.cfg.WatchTimeout.String()
	watch := func(since int64) {
		var res watchResult
		pctx, cancel := context.WithTimeout(wctx, s.cfg.WatchTimeout+watchGrace)
		res.err = s.cfg.Client.Get(pctx, "/v1/watch?timeout="+timeout+"&since="+strconv.FormatInt(since, 10), &res)
		cancel()
		results <- res
	}
	go watch(latest.Revision)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case kind := <-s.refresh:
			for _, src := range s.cfg.Sources {
				s.mu.Lock()
				recent := time.Since(s.lastLoad[src.Name]) < time.Second
				s.mu.Unlock()
				if slices.Contains(src.Kinds, kind) && !recent {
					if err := s.load(ctx, src); err != nil {
						return err
					}
				}
			}
		case res := <-results:
			if res.err != nil {
				return res.err
			}
			for _, src := range s.cfg.Sources {
				for _, c := range res.Changes {
					if c.Kind == KindReset || slices.Contains(src.Kinds, c.Kind) {
						if err := s.load(ctx, src); err != nil {
							return err
						}
						break
					}
				}
			}
			go watch(res.Revision)
		}
	}
}
