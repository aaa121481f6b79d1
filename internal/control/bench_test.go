package control_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
)

// BenchmarkDecisionPropagation measures how long a new decision takes to
// reach 100 watchers long-polling GET /v1/watch (SQLite store, loopback
// HTTP), and reports the p50 and p99 over all watchers and iterations.
func BenchmarkDecisionPropagation(b *testing.B) {
	const watchers = 100
	e := newBenchEnv(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * watchers}}
	var latencies []time.Duration
	var mu sync.Mutex
	for i := 0; b.Loop(); i++ {
		var rev int64
		{
			req, _ := http.NewRequest("GET", e.url+"/v1/watch?timeout=0s&since=0", nil)
			req.Header.Set("Authorization", "Bearer "+e.admin)
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			var w control.WatchResult
			json.NewDecoder(resp.Body).Decode(&w)
			resp.Body.Close()
			rev = w.Revision
		}
		var wg sync.WaitGroup
		var created time.Time
		var createdMu sync.Mutex
		for range watchers {
			wg.Go(func() {
				req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/watch?since=%d&timeout=10s", e.url, rev), nil)
				req.Header.Set("Authorization", "Bearer "+e.admin)
				resp, err := client.Do(req)
				at := time.Now()
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				createdMu.Lock()
				d := at.Sub(created)
				createdMu.Unlock()
				mu.Lock()
				latencies = append(latencies, d)
				mu.Unlock()
			})
		}
		time.Sleep(200 * time.Millisecond) // every watcher is waiting
		createdMu.Lock()
		created = time.Now()
		createdMu.Unlock()
		_, err := e.store.CreateDecision(b.Context(), store.Decision{Scope: store.ScopeUser, Value: fmt.Sprint("u", i), Action: store.ActionBlock})
		if err != nil {
			b.Fatal(err)
		}
		wg.Wait()
	}
	slices.Sort(latencies)
	b.ReportMetric(0, "ns/op") // an iteration is mostly the wait for watchers to settle
	if len(latencies) > 0 {
		b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
	}
}

// BenchmarkJoin measures SVID issuances through POST /v1/svid: a token
// consumed, a P-256 CSR signed, the response written.
func BenchmarkJoin(b *testing.B) {
	e := newBenchEnv(b)
	_, csr := keyAndCSRTB(b)
	tokens := make([]string, 0, 1024)
	for b.Loop() {
		b.StopTimer()
		if len(tokens) == 0 {
			for range cap(tokens) {
				tok, _, err := e.store.CreateJoinToken(b.Context(), store.JoinTokenSpec{Service: "api", TTL: time.Hour})
				if err != nil {
					b.Fatal(err)
				}
				tokens = append(tokens, tok)
			}
		}
		tok := tokens[len(tokens)-1]
		tokens = tokens[:len(tokens)-1]
		b.StartTimer()
		r := e.doTB(b, "POST", "/v1/svid", control.SVIDRequest{Token: tok, Service: "api", CSR: csr}, "", "application/json")
		if r.status != http.StatusCreated {
			b.Fatalf("join: %d %s", r.status, r.body)
		}
	}
}
