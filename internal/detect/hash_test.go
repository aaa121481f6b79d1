package detect

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// craftedNames returns n login names whose public hash (hash64) puts
// them all in the first HyperLogLog register with one leading zero: what
// an attacker who knows the hash can compute offline (one name in 8,192
// qualifies).
func craftedNames(n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		s := fmt.Sprintf("u%d", i)
		if hash64(s)>>(64-hllPrecision-1) == 1 {
			out = append(out, s)
		}
	}
	return out
}

// With the public hash, 300 crafted distinct names count as 64 (the
// exact set), then the sketch sees one register and nothing grows: a
// scenario whose capacity is above 64 never alerts. With the engine's
// random key the same names count as about 300.
func TestCraftedValuesDoNotUndercountDistinct(t *testing.T) {
	const scenario = `
name: many-names
type: leaky
filter: evt.kind == "login_failure"
groupby: evt.actor.ip
distinct: evt.login.name
capacity: 150
leakspeed: 1h
`
	names := craftedNames(300)
	run := func(fixed bool) []Alert {
		e := mustEngine(t, Config{Scenarios: mustParse(t, scenario), FixedHash: fixed})
		var alerts []Alert
		for i, n := range names {
			ev := at(time.Duration(i)*time.Millisecond, KindLoginFailure, "203.0.113.9")
			ev.Login.Name = n
			alerts = append(alerts, e.Process(ev)...)
		}
		return alerts
	}
	if alerts := run(true); len(alerts) != 0 {
		t.Fatalf("public hash: %d alerts; the crafted names were meant to undercount (is hash64 still what the test aims at?)", len(alerts))
	}
	for range 3 { // three random keys
		alerts := run(false)
		if len(alerts) != 1 || alerts[0].Distinct < 150 {
			t.Fatalf("keyed hash: alerts %+v, want one with over 150 distinct names", alerts)
		}
	}
}

// key() must not let two lists of parts make one key: a login name with
// a space could otherwise share another account's bucket.
func TestKeyIsUnambiguous(t *testing.T) {
	key := func(parts ...string) string {
		a := make([]any, len(parts))
		for i, p := range parts {
			a[i] = p
		}
		return joinKey(a)
	}
	pairs := [][2][]string{
		{{"a b", "c"}, {"a", "b c"}},
		{{`a" "b`, "c"}, {`a"`, `"b`, "c"}},
		{{`a\`, "b"}, {"a", `\b`}},
		{{`"a"`, "b"}, {"a", "b"}},
		{{"a\xff b"}, {"a\xff", "b"}},
	}
	for _, p := range pairs {
		if x, y := key(p[0]...), key(p[1]...); x == y {
			t.Errorf("key(%q) == key(%q) == %q", p[0], p[1], x)
		}
	}
	if got := key("203.0.113.9", "alice@example.com", "-"); got != "203.0.113.9 alice@example.com -" {
		t.Errorf("plain parts: %q, want them space-joined as they are", got)
	}
	if got := key("x", ""); got != "" {
		t.Errorf("a part empty: %q, want \"\"", got)
	}
}

// A key over maxKeyBytes is cut and completed by a hash of the whole, the
// same in every engine (alert ids are derived from keys).
func TestBoundKeyIsStableAndUnique(t *testing.T) {
	long := strings.Repeat("a", 300)
	a, b := boundKey(long+"1"), boundKey(long+"2")
	if a == b || len(a) > maxKeyBytes+8 {
		t.Errorf("boundKey: %q and %q", a, b)
	}
	if boundKey(long+"1") != a {
		t.Error("boundKey is not stable")
	}
}
