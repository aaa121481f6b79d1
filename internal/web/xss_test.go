package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/web"
)

// xssPayloads are the attack strings of the CRS's XSS regression tests
// (testdata/crs-SOURCE.md).
func xssPayloads(t testing.TB) []string {
	t.Helper()
	f, err := os.Open("testdata/crs-941-xss.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct{ Payload string }
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		out = append(out, line.Payload)
	}
	if len(out) < 100 {
		t.Fatalf("%d payloads: the corpus is cut", len(out))
	}
	return out
}

// storeAttack stores an event whose every attacker-chosen field is p, as
// an agent would report an injection that carried it.
func storeAttack(u *ui, p string) store.Event {
	// The store refuses control characters in the fields it indexes;
	// the event's data keeps them.
	clean := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, p)
	short := func(n int) string { return truncateBytes(clean, n) }
	return u.event(short(128), "blocked", short(253), "203.0.113.66", short(256), map[string]any{
		"input":    map[string]any{"source": "query", "name": short(64), "value": p},
		"detail":   "SELECT * FROM t WHERE q = '⟦" + p + "⟧'",
		"reason":   p,
		"location": p + ":42",
		"stack":    []map[string]any{{"function": p, "file": p, "line": 42}},
		"method":   "GET",
		"path":     "/search/" + p,
		"caller":   "spiffe://example.org/svc/" + p,
		"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
		"who":      p,
	})
}

func truncateBytes(s string, n int) string {
	for len(s) > n {
		s = s[:n]
		for len(s) > 0 && s[len(s)-1]&0xC0 == 0x80 {
			s = s[:len(s)-1]
		}
	}
	return strings.ToValidUTF8(s, "")
}

// ourTags are the elements the dashboard's templates write.
var ourTags = map[string]bool{}

func init() {
	for _, t := range strings.Fields(`html head meta title link script body header a span nav form input button main div section
		h1 h2 h3 p table thead tbody tr th td ul li ol svg line text g rect label select option fieldset legend b br dl dt dd
		code pre mark details summary defs marker path i textarea`) {
		ourTags[t] = true
	}
}

// checkDOM fails if the page has an element or attribute the templates do
// not write, a script other than the dashboard's, a URL that is not the
// dashboard's or relative, or an event-handler attribute.
func checkDOM(t *testing.T, page, body string) {
	t.Helper()
	z := html.NewTokenizer(strings.NewReader(body))
	scripts := 0
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			if z.Err() != io.EOF {
				t.Fatalf("%s: %v", page, z.Err())
			}
			break
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			continue
		}
		tok := z.Token()
		if !ourTags[tok.Data] {
			t.Errorf("%s: an element <%s> the templates never write: injected", page, tok.Data)
		}
		for _, a := range tok.Attr {
			name := strings.ToLower(a.Key)
			if strings.HasPrefix(name, "on") || name == "style" || name == "srcdoc" || name == "formaction" || a.Namespace != "" || strings.Contains(name, ":") {
				t.Errorf("%s: <%s %s=%q>: injected attribute", page, tok.Data, a.Key, a.Val)
			}
			if name == "href" || name == "src" || name == "action" {
				v := strings.ToLower(strings.TrimSpace(a.Val))
				if !strings.HasPrefix(v, "/ui/") && !strings.HasPrefix(v, "?") && !strings.HasPrefix(v, "url(#") {
					t.Errorf("%s: <%s %s=%q>: a URL outside the dashboard", page, tok.Data, a.Key, a.Val)
				}
			}
		}
		if tok.Data == "script" {
			scripts++
			if len(tok.Attr) != 2 || tok.Attr[0].Val != "/ui/static/app.js" {
				t.Errorf("%s: a script that is not the dashboard's: %v", page, tok)
			}
		}
	}
	if scripts != 1 && !strings.HasPrefix(page, "/ui/live") { // the live part is a fragment
		t.Errorf("%s: %d scripts, want the dashboard's one", page, scripts)
	}
}

// textOf returns the text of the element with that id.
func textOf(body, id string) (string, bool) {
	z := html.NewTokenizer(strings.NewReader(body))
	depth := 0
	var b strings.Builder
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return b.String(), false
		case html.StartTagToken:
			tok := z.Token()
			if depth > 0 {
				depth++
				continue
			}
			for _, a := range tok.Attr {
				if a.Key == "id" && a.Val == id {
					depth = 1
				}
			}
		case html.EndTagToken:
			if depth > 0 {
				depth--
				if depth == 0 {
					return b.String(), true
				}
			}
		case html.TextToken:
			if depth > 0 {
				b.WriteString(z.Token().Data)
			}
		}
	}
}

func TestAttackerValuesAreEscapedOnEveryPage(t *testing.T) {
	eachSource(t, func(t *testing.T, start func(testing.TB, func(*web.Config)) *ui) {
		u := start(t, nil)
		payloads := xssPayloads(t)
		events := make([]store.Event, len(payloads))
		for i, p := range payloads {
			events[i] = storeAttack(u, p)
			// A decision whose reason and value are the attacker's (a user
			// name is one).
			if _, err := u.st.CreateDecision(context.Background(), store.Decision{Scope: store.ScopeUser, Value: events[i].ActorUser,
				Action: store.ActionBlock, Reason: truncateBytes(p, 500), Origin: truncateBytes(p, 64), Expires: time.Now().Add(time.Hour)}); err != nil {
				t.Logf("decision for payload %d not stored (%v): its fields are checked on the event pages", i, err)
			}
		}
		// Alerts whose key (an actor the scenario counted) is the attacker's.
		var alertIDs []string
		for i, p := range payloads[:40] {
			a := store.Alert{ID: fmt.Sprintf("a-xss-%d", i), Scenario: "injection-escalation", Key: events[i].ActorUser, Count: 3,
				First: time.Now().Add(-time.Minute), Last: time.Now(), Evidence: []string{events[i].ID}}
			ds := []store.Decision{{ID: fmt.Sprintf("d-xss-%d", i), Scope: store.ScopeUser, Value: events[i].ActorUser, Action: store.ActionBlock,
				Reason: truncateBytes(strings.ToValidUTF8(p, ""), 100), Origin: "injection-escalation", Expires: time.Now().Add(time.Hour), AlertID: a.ID}}
			if _, err := u.st.PutAlert(context.Background(), a, ds); err != nil {
				t.Logf("alert for payload %d not stored (%v)", i, err)
				continue
			}
			alertIDs = append(alertIDs, a.ID)
		}
		if len(alertIDs) < 20 {
			t.Fatalf("only %d alerts stored", len(alertIDs))
		}
		c := u.signIn()
		pages := []string{"/ui/", "/ui/live", "/ui/alerts", "/ui/events", "/ui/events?attacks=1", "/ui/decisions", "/ui/decisions?state=all",
			"/ui/services", "/ui/actor?scope=ip&value=203.0.113.66"}
		for _, id := range alertIDs {
			pages = append(pages, "/ui/alerts/"+id)
		}
		// Under the race detector, the control plane's sources (the same
		// templates over other queries) get every 4th payload's pages.
		every := 1
		if raceEnabled && !strings.HasSuffix(t.Name(), "over_the_store") {
			every = 4
		}
		for i, ev := range events {
			if i%every != 0 {
				continue
			}
			pages = append(pages, "/ui/events/"+url.PathEscape(ev.ID), "/ui/actor?"+url.Values{"scope": {"user"}, "value": {ev.ActorUser}}.Encode(),
				"/ui/events?"+url.Values{"service": {ev.Service}, "user": {ev.ActorUser}}.Encode())
			if i%10 == 0 {
				pages = append(pages, "/ui/services/"+url.PathEscape(ev.Service))
			}
		}
		for _, page := range pages {
			resp, body := u.do(c, "GET", page, nil)
			if resp.StatusCode != 200 && resp.StatusCode != 404 && resp.StatusCode != 400 { // 400: not a service name
				t.Errorf("%s: %s", page, resp.Status)
			}
			checkDOM(t, page, body)
		}
		// And the values are shown, as text, whole.
		for i, ev := range events {
			if i%every != 0 {
				continue
			}
			_, body := u.do(c, "GET", "/ui/events/"+url.PathEscape(ev.ID), nil)
			if got, ok := textOf(body, "input-value"); !ok || got != payloads[i] {
				t.Errorf("payload %d: the input shown is %q, want %q", i, got, payloads[i])
			}
			if got, _ := textOf(body, "statement"); !strings.Contains(got, payloads[i]) {
				t.Errorf("payload %d: the statement shown lacks the input", i)
			}
		}
	})
}
