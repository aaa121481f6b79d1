package ssrfguard

import "testing"

func TestHostInInputWantsTheWholeHostAsAToken(t *testing.T) {
	tests := []struct {
		input, host string
		port        uint16
		want        bool
	}{
		{"127.0.0.1", "127.0.0.1", 80, true},
		{"http://127.0.0.1/", "127.0.0.1", 80, true},
		{"http://127.0.0.1:8080/x", "127.0.0.1", 8080, true},
		{"127.0.0.1:8080", "127.0.0.1", 8080, true},
		{"http://public.example@127.0.0.1/", "127.0.0.1", 80, true},
		{"http://user:pw@localhost:9000/", "localhost", 9000, true},
		{"http://LOCALHOST/", "localhost", 80, true},
		{"http://localhost/", "LOCALHOST", 80, true},
		{"http://localhost./", "localhost", 80, true},
		{"http://localhost/", "localhost.", 80, true},
		{"http://[::1]:8080/", "::1", 8080, true},
		{"[::1]", "::1", 80, true},
		{"http://[fe80::1%25eth0]/", "fe80::1%eth0", 80, true},
		{"http%3A%2F%2F127.0.0.1%2F", "127.0.0.1", 80, true},
		{"http%253A%252F%252F127.0.0.1%252F", "127.0.0.1", 80, true},
		{"please fetch http://10.0.0.5/admin now", "10.0.0.5", 80, true},
		{`{"url":"http://metadata.google.internal/x"}`, "metadata.google.internal", 80, true},
		{"0x7f.1", "0x7f.1", 80, true},
		{"ⓛⓞⓒⓐⓛⓗⓞⓢⓣ", "ⓛⓞⓒⓐⓛⓗⓞⓢⓣ", 80, true},
		{"café127.0.0.1", "127.0.0.1", 80, true}, // non-ASCII neighbours count as separators
		{"localhost:99999", "localhost", 80, true},
		{"localhost:0080", "localhost", 80, true},

		// A word of the host did not choose the host.
		{"api", "api.internal", 80, false},
		{"internal", "api.internal", 80, false},
		{"xapi.internal", "api.internal", 80, false},
		{"api.internal.evil.com", "api.internal", 80, false},
		{"1", "127.0.0.1", 80, false},
		{"0.0.1", "10.0.0.1", 80, false},
		{"127.0.0.10", "127.0.0.1", 80, false},
		{"fe80::1", "::1", 80, false},
		{"::", "::1", 80, false},
		{"", "localhost", 80, false},
		{"localhost", "", 80, false},
		// The input names the host with another port: the service built
		// this URL itself (the Referer of a page served on 8080, say).
		{"http://localhost:8080/page", "localhost", 9090, false},
		{"http://[::1]:8080/", "::1", 9090, false},
		{"127.0.0.1:1", "127.0.0.1", 6379, false},
		// ...unless another occurrence has the right port or none.
		{"http://localhost:8080/?next=http://localhost/", "localhost", 9090, true},
	}
	for _, tt := range tests {
		if got := hostInInput(tt.input, tt.host, tt.port); got != tt.want {
			t.Errorf("hostInInput(%q, %q, %d) = %v, want %v", tt.input, tt.host, tt.port, got, tt.want)
		}
	}
}

func TestPercentDecodeKeepsWhatIsNotAnEscape(t *testing.T) {
	for in, want := range map[string]string{
		"a%41b":   "aAb",
		"%":       "%",
		"%4":      "%4",
		"%zz%41":  "%zzA",
		"%%4141":  "%A41",
		"100%":    "100%",
		"%E2%93%": "\xe2\x93%",
	} {
		if got := percentDecode(in); got != want {
			t.Errorf("percentDecode(%q) = %q, want %q", in, got, want)
		}
	}
}
