// Package corpus reads the corpora that tests keep in testdata/: the line
// files of exploits and benign inputs that the guards' tests share a format
// for, and the seed corpora of fuzz targets.
//
// A line file holds one entry a line; blank lines and lines starting with #
// are skipped. An entry is cut into fields at runs of a separator (a tab, or
// a space where the columns are aligned), the last field being the rest of
// the line; a last field that starts with a double quote is Go-quoted, the
// way to write leading or trailing spaces, tabs, newlines, or a leading #
// or ".
package corpus

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// Line is an entry of a line file.
type Line struct {
	Path   string // the file, as given to Lines
	Number int    // from 1, counting every line of the file
	Text   string
}

// Pos is where the entry is, "testdata/exploits.txt:12", for a message
// that points at it.
func (l Line) Pos() string { return l.Path + ":" + strconv.Itoa(l.Number) }

// Lines returns the entries of the line file at path, in order: the lines
// that are neither blank nor start with #, without their line ending. A
// line may be up to 1 MiB long. A file that cannot be read fails tb.
func Lines(tb testing.TB, path string) []Line {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatalf("corpus: %v", err)
	}
	defer f.Close()
	var out []Line
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" || strings.HasPrefix(text, "#") {
			continue
		}
		out = append(out, Line{Path: path, Number: n, Text: text})
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("corpus: %s: %v", path, err)
	}
	return out
}

// Fields cuts the entry into n fields at runs of sep, the last one being
// the rest of the line, Go-unquoted when it starts with a double quote. An
// entry with fewer fields, or with a bad quoted one, fails tb naming its
// place.
func (l Line) Fields(tb testing.TB, sep byte, n int) []string {
	tb.Helper()
	fields := make([]string, 0, n)
	rest := l.Text
	for len(fields) < n-1 {
		i := strings.IndexByte(rest, sep)
		if i < 0 {
			tb.Fatalf("corpus: %s: want %d fields separated by %q: %q", l.Pos(), n, sep, l.Text)
		}
		fields = append(fields, rest[:i])
		rest = strings.TrimLeft(rest[i:], string(sep))
	}
	if strings.HasPrefix(rest, `"`) {
		u, err := strconv.Unquote(rest)
		if err != nil {
			tb.Fatalf("corpus: %s: bad Go-quoted field %s: %v", l.Pos(), rest, err)
		}
		rest = u
	}
	return append(fields, rest)
}

// Seed is one file of a fuzz target's seed corpus, in the format go test
// reads: the line "go test fuzz v1", then one value a line, T(literal).
type Seed struct {
	Name string // the file's name
	// Values are the fuzz function's arguments after t, of the types the
	// file names: string, []byte, bool, byte or uint16, the types of this
	// module's fuzz targets.
	Values []any
}

// Seeds returns the seed corpus of a fuzz target, the files of
// testdata/fuzz/<target>, in the order of their names. A file that is not
// in go test's format, or holds a value of another type, fails tb.
func Seeds(tb testing.TB, target string) []Seed {
	tb.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatalf("corpus: %v", err)
	}
	var out []Seed
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			tb.Fatalf("corpus: %v", err)
		}
		header, body, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
		if header != "go test fuzz v1" {
			tb.Fatalf("corpus: %s: first line %q, want \"go test fuzz v1\"", path, header)
		}
		s := Seed{Name: e.Name()}
		for i, line := range strings.Split(body, "\n") {
			v, err := seedValue(strings.TrimSpace(line))
			if err != nil {
				tb.Fatalf("corpus: %s:%d: %v", path, i+2, err)
			}
			s.Values = append(s.Values, v)
		}
		out = append(out, s)
	}
	return out
}

// seedValue decodes one value of a seed file, as go test wrote it.
func seedValue(line string) (any, error) {
	typ, lit, ok := strings.Cut(line, "(")
	lit, ok2 := strings.CutSuffix(lit, ")")
	if !ok || !ok2 {
		return nil, fmt.Errorf("%q is not T(literal)", line)
	}
	switch typ {
	case "string":
		return strconv.Unquote(lit)
	case "[]byte":
		s, err := strconv.Unquote(lit)
		return []byte(s), err
	case "bool":
		return strconv.ParseBool(lit)
	case "byte", "uint8":
		if !strings.HasPrefix(lit, "'") {
			u, err := strconv.ParseUint(lit, 0, 8)
			return byte(u), err
		}
		s, err := strconv.Unquote(lit)
		if err == nil && len(s) == 1 { // '\x03', or '\xff'
			return s[0], nil
		}
		// go test writes 255 as 'ÿ', which unquotes to its UTF-8 encoding.
		r, size := utf8.DecodeRuneInString(s)
		if err != nil || size != len(s) || r > 0xff {
			return nil, fmt.Errorf("%s is not a byte", lit)
		}
		return byte(r), nil
	case "uint16":
		u, err := strconv.ParseUint(lit, 0, 16)
		return uint16(u), err
	}
	return nil, fmt.Errorf("values of type %s are not read (add the type to corpus.seedValue)", typ)
}
