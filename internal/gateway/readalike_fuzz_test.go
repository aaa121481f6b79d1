package gateway

import (
	"strings"
	"testing"
)

// FuzzReadAlike checks what the gateway relies on when it compares the
// route of a path with the route of its servlet/IIS reading: a path with
// nothing to read differently is returned as it is (no refusal, no cost),
// and otherwise the reading holds no ";" parameter, no backslash, no segment with a
// trailing dot (other than "." and "..") and no empty segment inside, and
// reading it again changes nothing.
func FuzzReadAlike(f *testing.F) {
	for _, s := range []string{"/", "/api/admin;jsessionid=1/users", `/api/admin\users`, "/api/admin./users",
		"/api/;x/admin", "/static/app.js", "/a/../b", "/a/.;x/b", "/v1.2/x.", "/a//b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		got := readAlike(path)
		if !strings.ContainsAny(path, ";\\\\") && !strings.Contains(path, "./") && !strings.HasSuffix(path, ".") {
			if got != path {
				t.Fatalf("readAlike(%q) = %q, want it unchanged", path, got)
			}
			return // "//" and the like are the routable check's to refuse
		}
		if again := readAlike(got); again != got {
			t.Fatalf("readAlike(%q) = %q, but readAlike of that is %q", path, got, again)
		}
		if strings.ContainsAny(got, ";\\\\") {
			t.Fatalf("readAlike(%q) = %q holds a parameter or a backslash", path, got)
		}
		segs := strings.Split(got, "/")
		for i, seg := range segs {
			if seg == "" && i > 0 && i < len(segs)-1 {
				t.Fatalf("readAlike(%q) = %q holds an empty segment", path, got)
			}
			if seg != "." && seg != ".." && strings.HasSuffix(seg, ".") {
				t.Fatalf("readAlike(%q) = %q holds a segment with a trailing dot", path, got)
			}
		}
	})
}
