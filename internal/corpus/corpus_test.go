package corpus_test

import (
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/corpus"
)

func TestLinesSkipsBlanksAndComments(t *testing.T) {
	got := corpus.Lines(t, "testdata/lines.txt")
	want := []corpus.Line{
		{"testdata/lines.txt", 3, "sh-raw\tx; touch CANARY"},
		{"testdata/lines.txt", 6, "read        as-is       ../../outside/secret.txt"},
		{"testdata/lines.txt", 7, "str\trows\t\"\\tx\\n\""},
		{"testdata/lines.txt", 9, "live url http://127.0.0.1:{port}/a  b"},
		{"testdata/lines.txt", 10, "alone"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Lines =\n%+v\nwant\n%+v", got, want)
	}
	if pos := got[2].Pos(); pos != "testdata/lines.txt:7" {
		t.Errorf("Pos = %q", pos)
	}
}

func TestFields(t *testing.T) {
	lines := corpus.Lines(t, "testdata/lines.txt")
	for _, tc := range []struct {
		name string
		line corpus.Line
		sep  byte
		n    int
		want []string
	}{
		{"tab-separated, the last field the rest of the line", lines[0], '\t', 2, []string{"sh-raw", "x; touch CANARY"}},
		{"columns aligned with spaces", lines[1], ' ', 3, []string{"read", "as-is", "../../outside/secret.txt"}},
		{"a Go-quoted last field", lines[2], '\t', 3, []string{"str", "rows", "\tx\n"}},
		{"spaces inside the last field are kept", lines[3], ' ', 3, []string{"live", "url", "http://127.0.0.1:{port}/a  b"}},
		{"one field is the whole line", lines[0], '\t', 1, []string{"sh-raw\tx; touch CANARY"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.line.Fields(t, tc.sep, tc.n); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Fields(%q, %d) = %q, want %q", tc.sep, tc.n, got, tc.want)
			}
		})
	}
}

// fatalTB records the message of Fatalf and ends its goroutine, as
// testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// failure runs fn with a fatalTB and returns what it failed with.
func failure(fn func(testing.TB)) string {
	tb := &fatalTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(tb)
	}()
	<-done
	return tb.msg
}

func TestAMalformedEntryFailsNamingItsPlace(t *testing.T) {
	bad := corpus.Line{Path: "testdata/x.txt", Number: 4, Text: `a	"unterminated`}
	for _, tc := range []struct {
		name string
		fn   func(testing.TB)
		want string
	}{
		{"too few fields", func(tb testing.TB) { bad.Fields(tb, '\t', 3) }, `corpus: testdata/x.txt:4: want 3 fields separated by '\t'`},
		{"a bad quoted field", func(tb testing.TB) { bad.Fields(tb, '\t', 2) }, `corpus: testdata/x.txt:4: bad Go-quoted field "unterminated`},
		{"a missing file", func(tb testing.TB) { corpus.Lines(tb, "testdata/none.txt") }, "corpus: open testdata/none.txt"},
		{"a seed of a type not read", func(tb testing.TB) { corpus.Seeds(tb, "FuzzBad") }, "corpus: testdata/fuzz/FuzzBad/float:2: values of type float64 are not read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if msg := failure(tc.fn); !strings.HasPrefix(msg, tc.want) {
				t.Errorf("failed with %q, want %q…", msg, tc.want)
			}
		})
	}
}

func TestSeedsDecodeTheValuesGoTestWrites(t *testing.T) {
	got := corpus.Seeds(t, "FuzzEveryType")
	want := []corpus.Seed{
		{Name: "all", Values: []any{"O'Brien", []byte("\x00\xffab"), true, byte(3), byte(255), byte(65), uint16(8080)}},
		{Name: "raw", Values: []any{"raw"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Seeds =\n%#v\nwant\n%#v", got, want)
	}
}
