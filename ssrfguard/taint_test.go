package ssrfguard

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

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
		// The service case-mapped the input: strings.ToLower or ToUpper
		// turned a non-ASCII letter of it into an ASCII one.
		{"http://\u212Aubernetes.default.svc/", "kubernetes.default.svc", 80, true},
		{"http://localho\u017Ft/", "LOCALHOST", 80, true},
		{"\u0131p.localhost", "IP.LOCALHOST", 80, true},
		{"\u0130p.localhost", "ip.localhost", 80, true},
		{"http%3A%2F%2F%E2%84%AAubernetes.default.svc%2F", "kubernetes.default.svc", 80, true},
		{"ca\u017Fe \u212A8s.internal:6443", "k8s.internal", 6443, true},

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
		// ...and the mapped input is held to the same rules.
		{"x\u212Aubernetes.default.svc", "kubernetes.default.svc", 80, false},
		{"\u212Aubernetes", "kubernetes.default.svc", 80, false},
		{"localho\u017Ft:8080", "localhost", 9090, false},
		{"\u212Aelvin", "kelvinx", 80, false},
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

// TestCaseMapASCIIKnowsEveryLetter checks toASCIILetter against package
// unicode: every non-ASCII rune that a case mapping of Go turns into an
// ASCII letter is in it, mapped to that letter, and no other rune is.
func TestCaseMapASCIIKnowsEveryLetter(t *testing.T) {
	n := 0
	for r := rune(utf8.RuneSelf); r <= unicode.MaxRune; r++ {
		var want byte
		for _, m := range []rune{
			unicode.ToLower(r), unicode.ToUpper(r), unicode.ToTitle(r),
			unicode.TurkishCase.ToLower(r), unicode.TurkishCase.ToUpper(r), unicode.TurkishCase.ToTitle(r),
		} {
			if m < utf8.RuneSelf {
				want = lowerByte(byte(m))
			}
		}
		if got := toASCIILetter(r); got != want {
			t.Errorf("toASCIILetter(%U %q) = %q, want %q", r, r, got, want)
		}
		if want != 0 {
			n++
		}
	}
	if n != 4 {
		t.Errorf("%d letters, want the four of caseMapASCII's documentation", n)
	}
	for in, want := range map[string]string{
		"":                          "",
		"kubernetes.default.svc":    "kubernetes.default.svc",
		"\u212Aubernetes":           "kubernetes",
		"LOCALHO\u017FT":            "LOCALHOsT",
		"\u0130P \u0131p caf\u00e9": "iP ip caf\u00e9",
		"\xff\u212A\xe2\x84":        "\xffk\xe2\x84", // invalid UTF-8 is kept as it is
	} {
		if got := caseMapASCII(in); got != want {
			t.Errorf("caseMapASCII(%q) = %q, want %q", in, got, want)
		}
	}
}

// The common input, with no letter to map, costs no allocation.
func TestHostInInputDoesNotAllocate(t *testing.T) {
	h := newHostMatch("orders.internal")
	inputs := []string{"Jane O'Brien", "https://shop.example.com/cart", "caf\u00e9 cr\u00e8me " + strings.Repeat("x", 100), "\u212Aelvin"}
	if n := testing.AllocsPerRun(100, func() {
		for _, v := range inputs {
			if h.in(v, 80) {
				t.Fatalf("orders.internal found in %q", v)
			}
		}
	}); n != 0 {
		t.Errorf("%v allocations per run, want none", n)
	}
}
