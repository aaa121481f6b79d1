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
)

// An import fetches a product feed from a URL the customer gives, in a
// background worker: the asynchronous server-side request forgery vector.
// The worker has no HTTP request, so it marks the job's URL as untrusted
// with rampart.WithUntrusted, and its client is the SSRF guard's: a feed URL
// that points at 127.0.0.1, the private network or the cloud's metadata
// endpoint is refused at the dial.

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
	jobs   chan int64
	wg     sync.WaitGroup
}

// StartWorker starts the import worker with client (the SSRF guard's); it
// stops when ctx is done or Close is called. The queue holds 64 jobs; a full
// queue makes POST /imports answer 503 rather than wait.
func (s *Shop) StartWorker(ctx context.Context, client *http.Client) {
	w := &worker{shop: s, client: client, jobs: make(chan int64, 64)}
	ctx, cancel := context.WithCancel(ctx)
	s.stopWorker = func() { cancel(); w.wg.Wait() }
	s.worker = w
	w.wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case id := <-w.jobs:
				w.run(ctx, id)
			}
		}
	})
}

func (w *worker) run(ctx context.Context, id int64) {
	var feedURL string
	if err := w.shop.db.QueryRowContext(ctx, `SELECT url FROM imports WHERE id = ?`, id).Scan(&feedURL); err != nil {
		w.shop.logger.ErrorContext(ctx, "shop: import job vanished", "id", id, "err", err)
		return
	}
	// The job's payload came from a customer: untrusted, like a request's.
	jobCtx := rampart.WithUntrusted(ctx, "job", feedURL)
	status, n, ferr := w.fetch(jobCtx, feedURL)
	msg := ""
	if ferr != nil {
		msg = ferr.Error()
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
	case s.worker.jobs <- id:
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
