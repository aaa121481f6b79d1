package fsguard

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestTransformedForms(t *testing.T) {
	has := func(forms []form, v string) bool {
		return slices.ContainsFunc(forms, func(f form) bool { return f.value == v })
	}
	tests := []struct{ in, want string }{
		{"..%2f..%2fetc", "../../etc"},
		{"..%252f..%252fetc", "../../etc"},
		{"..%25252f..%25252fetc", "../../etc"},
		{"%2e%2e/%2E%2E/etc", "../../etc"},
		{"  ../etc  ", "../etc"},
		{"‥／‥／ｅｔｃ", "../../etc"},
		{"%E2%80%A5/etc", "../etc"},
		{"ᵘᵖ/secret.txt", "up/secret.txt"},
		{"‥／⼏0", "../几0"},
		{"..%2F%5C..", `../\..`},
		{"a+b%2f..", "a b/.."},
		{"%zz%2e%2e", "%zz.."},
	}
	if !os.IsPathSeparator('\\') {
		tests = append(tests, struct{ in, want string }{`..\..\etc`, "../../etc"}, struct{ in, want string }{`..%5c..%5cetc`, "../../etc"})
	}
	for _, tt := range tests {
		forms := transformedForms(tt.in)
		if !has(forms, tt.want) {
			t.Errorf("transformedForms(%q) = %+v, want a form %q", tt.in, forms, tt.want)
		}
		if len(forms) > maxForms {
			t.Errorf("transformedForms(%q) has %d forms, more than %d", tt.in, len(forms), maxForms)
		}
		if has(forms, tt.in) {
			t.Errorf("transformedForms(%q) repeats the input", tt.in)
		}
	}
	if mayTransform("report.v2.pdf") || mayTransform("a/b/c") || !mayTransform("%41") || !mayTransform("é") {
		t.Error("mayTransform misjudges plain or transformable inputs")
	}
}

func TestClimbs(t *testing.T) {
	tests := []struct {
		name       string
		start, end int // the input's occurrence
		levels     int
		overlaps   bool
	}{
		{"../x", 0, 4, 1, true},
		{"a/../../b", 2, 9, 1, true},
		{"a/../b", 0, 6, 0, false},
		{"../x", 3, 4, 1, false},   // the application's own ".."
		{"../../x", 3, 7, 2, true}, // the input goes one further
		{"..hidden/../..x", 0, 15, 0, false},
		{"img_../../etc/passwd", 4, 20, 0, false},
		{".//..//x", 0, 8, 1, true},
		{"/../etc", 0, 7, 0, false}, // absolute: judged as such, not as a climb
		{"x/..", 0, 4, 0, false},
	}
	for _, tt := range tests {
		levels, overlaps := climbs(tt.name, tt.start, tt.end)
		if levels != tt.levels || overlaps != tt.overlaps {
			t.Errorf("climbs(%q, %d, %d) = %d, %v; want %d, %v", tt.name, tt.start, tt.end, levels, overlaps, tt.levels, tt.overlaps)
		}
	}
}

func TestCleanedAway(t *testing.T) {
	tests := []struct {
		name, input string
		want        bool
	}{
		{"../etc/passwd", "../../etc/passwd", true}, // path.Join("uploads", input)
		{"../../secret", "a/../../../secret", true},
		{"../..", "../../..", true},
		{"../etc/passwd", "../../etc/shadow", false}, // a different file: not this input
		{"../etc/passwd", "etc/passwd", false},       // the input does not climb
		{"../xetc/passwd", "../../etc/passwd", false},
		{"/etc/passwd", "/etc/./passwd", true},
	}
	for _, tt := range tests {
		if got := cleanedAway(tt.name, tt.input); got != tt.want {
			t.Errorf("cleanedAway(%q, %q) = %v, want %v", tt.name, tt.input, got, tt.want)
		}
	}
}

func TestWithin(t *testing.T) {
	tests := []struct {
		p, dir string
		want   bool
	}{
		{"/srv/files", "/srv/files", true},
		{"/srv/files/a", "/srv/files", true},
		{"/srv/files-private/a", "/srv/files", false},
		{"/srv", "/srv/files", false},
		{"/etc", "/", true},
	}
	for _, tt := range tests {
		if got := within(tt.p, tt.dir); got != tt.want {
			t.Errorf("within(%q, %q) = %v, want %v", tt.p, tt.dir, got, tt.want)
		}
	}
}

// climbs must agree with filepath.Clean, which is what filepath.Join does to
// a name: a relative name goes above its base at some point exactly when its
// cleaned form starts with "..". The forms of an input are new and say how
// they were made.
func FuzzClimbs(f *testing.F) {
	for _, s := range []string{"../x", "a/../../b", "a/../b", "..hidden/..", ".//..//x", "x/..", "a/b/../../..", "...", "./.././"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if rootLen(name) > 0 {
			return
		}
		levels, _ := climbs(name, 0, len(name))
		clean := filepath.Clean(name)
		cleanClimbs := clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator))
		if (levels > 0) != cleanClimbs {
			t.Errorf("climbs(%q) = %d, but filepath.Clean gives %q", name, levels, clean)
		}
		for _, fm := range transformedForms(name) {
			if fm.value == name || fm.how == "" {
				t.Errorf("transformedForms(%q) gave %+v", name, fm)
			}
		}
	})
}
