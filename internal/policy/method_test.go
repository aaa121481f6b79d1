package policy

import "testing"

func TestMethodIndexFollowsHTTPMethods(t *testing.T) {
	for i, m := range httpMethods {
		if got := methodIndex(m); got != i {
			t.Errorf("methodIndex(%q) = %d, want %d", m, got, i)
		}
	}
	for _, m := range []string{"", "get", "PROPFIND", "GET "} {
		if got := methodIndex(m); got != otherMethod {
			t.Errorf("methodIndex(%q) = %d, want otherMethod", m, got)
		}
	}
}
