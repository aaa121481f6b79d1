package control

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// patch applies a unified diff to a, as patch(1) would with no fuzz: each
// hunk's context and removed lines must be at the line it names.
func patch(t *testing.T, a, diff string) string {
	t.Helper()
	lines := splitLines(a)
	var out []string
	next := 0 // the next line of a not yet copied
	hunk := regexp.MustCompile(`^@@ -(\d+),(\d+) \+(\d+),(\d+) @@$`)
	for _, l := range splitLines(diff)[2:] {
		if m := hunk.FindStringSubmatch(l); m != nil {
			start, _ := strconv.Atoi(m[1])
			n, _ := strconv.Atoi(m[2])
			if n > 0 {
				start-- // 1-based; an empty range names the line before
			}
			out = append(out, lines[next:start]...)
			next = start
			continue
		}
		switch l[0] {
		case ' ', '-':
			if lines[next] != l[1:] {
				t.Fatalf("hunk line %q, but a has %q at %d", l, lines[next], next)
			}
			if l[0] == ' ' {
				out = append(out, lines[next])
			}
			next++
		case '+':
			out = append(out, l[1:])
		default:
			t.Fatalf("diff line %q", l)
		}
	}
	out = append(out, lines[next:]...)
	if len(out) == 0 {
		return ""
	}
	return strings.Join(out, "\n") + "\n"
}

// lcsLen is the length of the longest common subsequence, by the textbook
// recursion: the oracle of the diff's minimality.
func lcsLen(x, y []string) int {
	memo := map[[2]int]int{}
	var f func(i, j int) int
	f = func(i, j int) int {
		if i == len(x) || j == len(y) {
			return 0
		}
		if v, ok := memo[[2]int{i, j}]; ok {
			return v
		}
		v := max(f(i+1, j), f(i, j+1))
		if x[i] == y[j] {
			v = max(v, 1+f(i+1, j+1))
		}
		memo[[2]int{i, j}] = v
		return v
	}
	return f(0, 0)
}

func TestUnifiedDiffPatchesAToBMinimally(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	words := []string{"services:", "  a:", "    allow:", "      - callers: [b]", "  b: {}", "edge: [gw]", ""}
	doc := func() string {
		var b strings.Builder
		for range r.IntN(30) {
			b.WriteString(words[r.IntN(len(words))] + "\n")
		}
		return b.String()
	}
	for i := range 500 {
		a, b := doc(), doc()
		d, added, removed := unifiedDiff(a, b, "a", "b")
		if got := patch(t, a, d); got != b {
			t.Fatalf("case %d: patching\n%s\nwith\n%s\ngave\n%s\nwant\n%s", i, a, d, got, b)
		}
		x, y := splitLines(a), splitLines(b)
		if l := lcsLen(x, y); added != len(y)-l || removed != len(x)-l {
			t.Fatalf("case %d: +%d -%d, want +%d -%d (a minimal diff)", i, added, removed, len(y)-l, len(x)-l)
		}
	}
}

func TestUnifiedDiffOfLargeDocumentsStaysCorrect(t *testing.T) {
	var a, b strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&a, "line %d\n", i)
		fmt.Fprintf(&b, "line %d\n", i*7%5003)
	}
	d, added, removed := unifiedDiff(a.String(), b.String(), "a", "b")
	if patch(t, a.String(), d) != b.String() || added == 0 || removed == 0 {
		t.Errorf("large diff: +%d -%d does not patch a into b", added, removed)
	}
}

func TestUnifiedDiffFormat(t *testing.T) {
	a := "services:\n  shop:\n    allow:\n      - callers: [gateway]\n        methods: [GET]\n"
	b := "services:\n  shop:\n    allow:\n      - callers: [gateway, web]\n        methods: [GET]\n"
	d, added, removed := unifiedDiff(a, b, "v1", "v2")
	want := "--- v1\n+++ v2\n@@ -1,5 +1,5 @@\n services:\n   shop:\n     allow:\n-      - callers: [gateway]\n+      - callers: [gateway, web]\n         methods: [GET]\n"
	if d != want || added != 1 || removed != 1 {
		t.Errorf("diff\n%q\nwant\n%q (+%d -%d)", d, want, added, removed)
	}
	if d, _, _ := unifiedDiff(a, a, "v1", "v1"); d != "" {
		t.Errorf("diff of equal texts %q", d)
	}
	if got := slices.Collect(func(yield func(string) bool) {
		for _, p := range []string{"/items/{id}", "/files/{path...}", "/{$}", "/static/"} {
			if !yield(samplePath(p)) {
				return
			}
		}
	}); !slices.Equal(got, []string{"/items/x", "/files/x", "/", "/static/"}) {
		t.Errorf("sample paths %v", got)
	}
}
