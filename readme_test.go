package rampart_test

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// The README's Go code is compiled: each ```go block in README.md must be,
// line for line, a region of readme_example_test.go between a
// "// README: name" line and a "// README end" line. go vet and go test
// compile those examples, so a snippet that no longer compiles, or that
// drifts from the code that does, fails here.
func TestREADMECodeIsCompiledExampleCode(t *testing.T) {
	blocks := readmeGoBlocks(t, "README.md")
	if len(blocks) == 0 {
		t.Fatal("README.md has no ```go block: the test reads the wrong file")
	}
	regions := exampleRegions(t, "readme_example_test.go")
	used := map[string]bool{}
	for _, b := range blocks {
		name, ok := regions[normalizeCode(b.text)]
		if !ok {
			t.Errorf("README.md:%d: this ```go block is not a region of readme_example_test.go, so nothing compiles it; copy it there between \"// README: name\" and \"// README end\":\n%s", b.line, b.text)
			continue
		}
		used[name] = true
	}
	for _, name := range regions {
		if !used[name] {
			t.Errorf("readme_example_test.go: region %q is in no ```go block of README.md (the README changed: update the region or remove it)", name)
		}
	}
}

type codeBlock struct {
	line int
	text string
}

func readmeGoBlocks(t *testing.T, path string) []codeBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		blocks []codeBlock
		cur    *codeBlock
		sb     strings.Builder
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```go":
			cur = &codeBlock{line: n + 1}
			sb.Reset()
		case cur != nil && strings.TrimSpace(line) == "```":
			cur.text = sb.String()
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			sb.WriteString(line + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s:%d: ```go block never closed", path, cur.line)
	}
	return blocks
}

// exampleRegions maps the normalized text of each region to its name.
func exampleRegions(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	regions := map[string]string{}
	var (
		name string
		sb   strings.Builder
	)
	for i, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "// README: "):
			if name != "" {
				t.Fatalf("%s:%d: region %q opened inside region %q", path, i+1, trimmed, name)
			}
			name = strings.TrimPrefix(trimmed, "// README: ")
			sb.Reset()
		case trimmed == "// README end":
			if name == "" {
				t.Fatalf("%s:%d: README end outside a region", path, i+1)
			}
			regions[normalizeCode(sb.String())] = name
			name = ""
		case name != "":
			sb.WriteString(line + "\n")
		}
	}
	if name != "" {
		t.Fatalf("%s: region %q never ends", path, name)
	}
	return regions
}

// normalizeCode makes indentation and the alignment gofmt gives comments
// irrelevant: each line trimmed, runs of blanks made one space, blank lines
// dropped.
func normalizeCode(s string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			out = append(out, strings.Join(f, " "))
		}
	}
	return strings.Join(out, "\n")
}
