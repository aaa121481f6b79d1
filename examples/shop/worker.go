package shop

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/actor"
)

// An import fetches a product feed from a URL the customer gives, in a
// background worker: the asynchronous server-side request forgery vector.
// The worker has no HTTP request: the job carries what the request that
// queued it knew (its payload, and rampart.PropagationHeaders: the actor
// token and trace context), and the worker runs it in the context
// agent.StartJob returns, where the payload's fields are untrusted input
// and the events name the actor. Its client is the SSRF guard's: a feed URL
// that points at 127.0.0.1, the private network or the cloud's metadata
// endpoint is refused at the dial. A broker would carry the same headers
// (contrib/nats, contrib/amqp); the demo keeps its queue in process.

// Import is one feed import job and its outcome.
type Import struct {
	ID     int64  `json:"id"`
	URL    string `json:"url"`
	Status string `json:"status"` // queued, done, failed, blocked
	Bytes  int64  `json:"bytes,omitempty"`
	Error  string `json:"error,omitempty"`
}

// maxFeedBytes bounds what a worker reads of a feed.
const maxFeedBytes = 1 << 20

type worker struct {
	shop   *Shop
	client *http.Client
	jobs   chan job
	wg     sync.WaitGroup
}

// job is one queued import: its id, and the actor token and trace context
// of the request that queued it.
type job struct {
	id       int64
	headers  map[string]string
	enqueued time.Time
}

// StartWorker starts the import worker with client (the SSRF guard's); it
// stops when ctx is done or Close is called. The queue holds 64 jobs; a full
// queue makes POST /imports answer 503 rather than wait.
func (s *Shop) StartWorker(ctx context.Context, client *http.Client) {
	w := &worker{shop: s, client: client, jobs: make(chan job, 64)}
	ctx, cancel := context.WithCancel(ctx)
	s.stopWorker = func() { cancel(); w.wg.Wait() }
	s.worker = w
	w.wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case j := <-w.jobs:
				w.run(ctx, j)
			}
		}
	})
}

func (w *worker) run(ctx context.Context, j job) {
	id := j.id
	var feedURL string
	if err := w.shop.db.QueryRowContext(ctx, `SELECT url FROM imports WHERE id = ?`, id).Scan(&feedURL); err != nil {
		w.shop.logger.ErrorContext(ctx, "shop: import job vanished", "id", id, "err", err)
		return
	}
	// The job's payload came from a customer: untrusted, like a request's,
	// and the job runs for that customer, whose decisions apply.
	payload, _ := json.Marshal(map[string]string{"url": feedURL})
	jobCtx, err := w.shop.agent.StartJob(ctx, rampart.Job{
		Route: "imports", ID: fmt.Sprintf("import-%d", id), Payload: payload, ContentType: "application/json",
		ActorToken: j.headers[actor.Header], Traceparent: j.headers["traceparent"], Tracestate: j.headers["tracestate"],
		Enqueued: j.enqueued,
	})
	var status, msg string
	var n int64
	if err != nil {
		status, msg = "failed", err.Error()
		if errors.Is(err, rampart.ErrBlocked) {
			status, msg = "blocked", "the job was refused: its actor is refused"
		}
	} else {
		var ferr error
		status, n, ferr = w.fetch(jobCtx, feedURL)
		if ferr != nil {
			msg = ferr.Error()
		}
	}
	if _, err := w.shop.db.ExecContext(ctx, `UPDATE imports SET status = ?, bytes = ?, error = ? WHERE id = ?`, status, n, msg, id); err != nil {
		w.shop.logger.ErrorContext(ctx, "shop: record import", "id", id, "err", err)
	}
}

func (w *worker) fetch(ctx context.Context, feedURL string) (string, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, feedURL, nil)
	if err != nil {
		return "failed", 0, err
	}
	resp, err := w.client.Do(req) // the SSRF vector: a URL chosen by a customer
	if errors.Is(err, rampart.ErrBlocked) {
		return "blocked", 0, errors.New("the feed URL points inside the network")
	}
	if err != nil {
		return "failed", 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxFeedBytes))
	if err != nil {
		return "failed", n, err
	}
	if resp.StatusCode != http.StatusOK {
		return "failed", n, fmt.Errorf("feed answered %s", resp.Status)
	}
	return "done", n, nil
}

func (s *Shop) createImport(w http.ResponseWriter, r *http.Request) {
	if s.worker == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "imports are not enabled"})
		return
	}
	var body struct {
		URL string `json:"url"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<10)).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be {\"url\": \"http(s)://...\"}: " + err.Error()})
		return
	}
	u, err := url.Parse(body.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "url must be an absolute http or https URL"})
		return
	}
	res, err := s.db.ExecContext(r.Context(), `INSERT INTO imports (url, status) VALUES (?, 'queued')`, body.URL)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id, _ := res.LastInsertId()
	select {
	case s.worker.jobs <- job{id: id, headers: rampart.PropagationHeaders(r.Context()), enqueued: time.Now()}:
	default:
		_, _ = s.db.ExecContext(r.Context(), `UPDATE imports SET status = 'failed', error = 'queue full' WHERE id = ?`, id)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the import queue is full, try again later"})
		return
	}
	writeJSON(w, http.StatusAccepted, Import{ID: id, URL: body.URL, Status: "queued"})
}

func (s *Shop) getImport(w http.ResponseWriter, r *http.Request) {
	var im Import
	var errText sql.NullString
	err := s.db.QueryRowContext(r.Context(), `SELECT id, url, status, bytes, error FROM imports WHERE id = ?`, r.PathValue("id")).Scan(&im.ID, &im.URL, &im.Status, &im.Bytes, &errText)
	if errors.Is(err, sql.ErrNoRows) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such import"})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	im.Error = errText.String
	writeJSON(w, http.StatusOK, im)
}
