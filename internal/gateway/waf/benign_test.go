package waf

import (
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

type corpusRequest struct {
	name   string
	method string
	target string
	header http.Header
	body   string
}

// readCorpus parses testdata/benign.http (its format is described at its top).
func readCorpus(t *testing.T, path string) []corpusRequest {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var reqs []corpusRequest
	for _, chunk := range strings.Split(string(data), "\n### ")[1:] {
		name, rest, _ := strings.Cut(chunk, "\n")
		head, body, _ := strings.Cut(rest, "\n\n")
		lines := strings.Split(strings.TrimRight(head, "\n"), "\n")
		method, target, ok := strings.Cut(lines[0], " ")
		if !ok {
			t.Fatalf("%s: %q: want METHOD target", name, lines[0])
		}
		h := http.Header{}
		for _, l := range lines[1:] {
			k, v, ok := strings.Cut(l, ": ")
			if !ok {
				t.Fatalf("%s: %q: want Name: value", name, l)
			}
			h.Add(k, v)
		}
		body = strings.TrimSuffix(body, "\n")
		if strings.HasPrefix(h.Get("Content-Type"), "multipart/") {
			body = strings.ReplaceAll(body, "\n", "\r\n") + "\r\n"
		}
		reqs = append(reqs, corpusRequest{name: name, method: method, target: target, header: h, body: body})
	}
	return reqs
}

func (c corpusRequest) request() *http.Request {
	r := newRequest(c.method, c.target, "", c.body)
	for k, v := range c.header {
		r.Header[k] = v
	}
	if c.body != "" {
		r.Header.Set("Content-Length", strconv.Itoa(len(c.body)))
	}
	return r
}

// Ordinary API traffic must not be scored at all at paranoia level 1: a
// rule that adds to the score of a request like these is a false positive
// waiting for a second one.
func TestBenignRequestsPass(t *testing.T) {
	f := shared(t, blocking)
	reqs := readCorpus(t, "testdata/benign.http")
	if len(reqs) < 60 {
		t.Fatalf("the corpus has %d requests; it should keep at least 60", len(reqs))
	}
	for _, c := range reqs {
		t.Run(c.name, func(t *testing.T) {
			r := c.request()
			v := inspect(t, f, r)
			if v.Blocked || v.WouldBlock || v.Score != 0 {
				t.Errorf("%s %s: blocked=%v score=%d matches:", c.method, c.target, v.Blocked, v.Score)
				for _, m := range v.Matches {
					t.Errorf("  %d %s: %s", m.RuleID, m.Message, m.Data)
				}
			}
		})
	}
}

// The known false positives are blocked by the rules their names list, and
// pass once those rules are excluded for their route, which is how an
// operator tunes them away.
func TestKnownFalsePositives(t *testing.T) {
	f := shared(t, blocking)
	for _, c := range readCorpus(t, "testdata/false_positives.http") {
		t.Run(c.name, func(t *testing.T) {
			open := strings.LastIndex(c.name, "[")
			if open < 0 || !strings.HasSuffix(c.name, "]") {
				t.Fatalf("name %q does not end with [rule IDs]", c.name)
			}
			var ids []int
			for _, s := range strings.Fields(c.name[open+1 : len(c.name)-1]) {
				id, err := strconv.Atoi(s)
				if err != nil {
					t.Fatalf("name %q: %v", c.name, err)
				}
				ids = append(ids, id)
			}
			v := inspect(t, f, c.request())
			if !v.Blocked {
				t.Errorf("no longer blocked (score %d, matches %v): move it to benign.http", v.Score, ruleIDs(v))
			}
			for _, id := range ids {
				if !slices.Contains(ruleIDs(v), id) {
					t.Errorf("rule %d did not match; matched %v", id, ruleIDs(v))
				}
			}
			path, _, _ := strings.Cut(c.target, "?")
			tuned, err := New(Config{Exclusions: []Exclusion{{PathPrefix: path, RuleIDs: ids}}})
			if err != nil {
				t.Fatal(err)
			}
			if v := inspect(t, tuned, c.request()); v.Blocked || v.Score != 0 {
				t.Errorf("with %v excluded for %s: blocked=%v score=%d matches %v", ids, path, v.Blocked, v.Score, ruleIDs(v))
			}
		})
	}
}
