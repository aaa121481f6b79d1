package fsguard_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/fsguard"
	"github.com/rampartsec/rampart/internal/corpus"
	"github.com/rampartsec/rampart/ramparttest"
	"golang.org/x/text/unicode/norm"
)

// secretPrefix starts the content of every file that an attacker wants.
const secretPrefix = "TOP SECRET"

// layout is the directory tree described at the top of
// testdata/exploits.txt.
type layout struct {
	root    string // T
	outside string // T/outside
	base    string // T/srv/files
}

func newLayout(t testing.TB) layout {
	t.Helper()
	root := t.TempDir()
	l := layout{root: root, outside: filepath.Join(root, "outside"), base: filepath.Join(root, "srv", "files")}
	for _, d := range []string{l.outside, l.base, filepath.Join(root, "srv", "files-private"),
		filepath.Join(l.base, "public"), filepath.Join(l.base, "docs"), filepath.Join(l.base, "nested", "deep")} {
		must(t, os.MkdirAll(d, 0o755))
	}
	files := map[string]string{
		filepath.Join(l.outside, "secret.txt"):                 secretPrefix + " outside the base",
		filepath.Join(l.outside, "victim.txt"):                 secretPrefix + " victim",
		filepath.Join(root, "srv", "secret.txt"):               secretPrefix + " above the base",
		filepath.Join(root, "srv", "files-private", "key.txt"): secretPrefix + " sibling",
		filepath.Join(l.base, "public", "readme.txt"):          "public readme",
		filepath.Join(l.base, "docs", "guide.md"):              "guide",
	}
	for name, content := range files {
		must(t, os.WriteFile(name, []byte(content), 0o644))
	}
	links := [][2]string{
		{"../../outside", "up"},
		{l.outside, "abs"},
		{filepath.Join(l.outside, "secret.txt"), "leak.txt"},
		{"../../../../outside", "nested/deep/up2"},
		{"../../outside/created.txt", "new.txt"},
		{"public", "alias"},
		{"../nested/deep", "public/deep"},
		{"../..", "nested/deep/top"},
	}
	for _, ln := range links {
		must(t, os.Symlink(filepath.FromSlash(ln[0]), filepath.Join(l.base, filepath.FromSlash(ln[1]))))
	}
	return l
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// snapshot records everything in the tree outside the base: its files'
// contents, directories and links. Comparing two snapshots shows whether an
// operation created, changed or removed anything there.
func (l layout) snapshot(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(l.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == l.base {
			return filepath.SkipDir
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[p] = "link " + target
		case d.IsDir():
			out[p] = "dir"
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[p] = string(b)
		}
		return nil
	})
	must(t, err)
	return out
}

// entry is an entry of testdata/exploits.txt or benign.txt: fields
// separated by spaces, {outside} in the input standing for layout.outside.
type entry struct {
	line      int
	op        string // exploits only
	transform string
	input     string
}

func (e entry) String() string {
	s := fmt.Sprintf("line %d %s %q", e.line, e.transform, e.input)
	if e.op != "" {
		s = e.op + " " + s
	}
	return s
}

// readCorpus returns the entries of testdata/file: op (when fields is 3),
// transform and input.
func readCorpus(t testing.TB, file string, fields int, outside string) []entry {
	t.Helper()
	var out []entry
	for _, l := range corpus.Lines(t, filepath.Join("testdata", file)) {
		f := l.Fields(t, ' ', fields)
		e := entry{line: l.Number, transform: f[fields-2], input: strings.ReplaceAll(f[fields-1], "{outside}", outside)}
		if fields == 3 {
			e.op = f[0]
		}
		out = append(out, e)
	}
	return out
}

// transform turns an input into the name the way the application does.
func transform(t testing.TB, how, input string) string {
	t.Helper()
	switch how {
	case "as-is":
		return input
	case "decode":
		s, err := url.PathUnescape(input)
		must(t, err)
		return s
	case "decode-all":
		s := input
		for i := 0; i < 3 && strings.Contains(s, "%"); i++ {
			d, err := url.PathUnescape(s)
			must(t, err)
			s = d
		}
		return s
	case "nfkc":
		return norm.NFKC.String(input)
	case "backslash":
		return strings.ReplaceAll(input, `\`, "/")
	case "trim":
		return strings.TrimSpace(input)
	case "docs":
		return "docs/" + input
	case "docs-clean":
		return path.Join("docs", input)
	case "c-png":
		return input + ".png"
	case "lower":
		return strings.ToLower(input)
	}
	t.Fatalf("unknown transformation %q", how)
	return ""
}

// outcome is what an operation gave the caller.
type outcome struct {
	data string // read, open: the content; readdir: the entries; stat: the size
	ran  bool   // the operation was attempted at all
	err  error
	line int // the line of the guarded call in this file
}

// vulnerable performs op the way unprotected code does: a relative name is
// joined to the base, an absolute one used as it is, and with cString the
// name stops at its first NUL byte as it would in C.
func vulnerable(base, op, name string, cString bool) outcome {
	if cString {
		name, _, _ = strings.Cut(name, "\x00")
	}
	full := name
	if !filepath.IsAbs(full) {
		full = filepath.Join(base, name)
	}
	o := outcome{ran: true}
	switch op {
	case "read":
		b, err := os.ReadFile(full)
		o.data, o.err = string(b), err
	case "open":
		f, err := os.Open(full)
		if o.err = err; err == nil {
			b, err := io.ReadAll(f)
			f.Close()
			o.data, o.err = string(b), err
		}
	case "stat":
		fi, err := os.Stat(full)
		if o.err = err; err == nil {
			o.data = strconv.FormatInt(fi.Size(), 10)
		}
	case "readdir":
		es, err := os.ReadDir(full)
		o.data, o.err = entryNames(es), err
	case "write":
		o.err = os.WriteFile(full, []byte("pwned"), 0o644)
	case "create":
		f, err := os.Create(full)
		if o.err = err; err == nil {
			f.Close()
		}
	case "remove":
		o.err = os.Remove(full)
	default:
		panic("unknown operation " + op)
	}
	return o
}

func entryNames(es []fs.DirEntry) string {
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = e.Name()
	}
	return strings.Join(names, ",")
}

// here returns the line it is called from.
func here() int {
	_, _, line, _ := runtime.Caller(1)
	return line
}

// guarded performs op through d, recording the line of the guarded call.
func guarded(ctx context.Context, d *fsguard.Guard, op, name string) outcome {
	o := outcome{ran: true}
	switch op {
	case "read":
		o.line = here() + 1
		b, err := d.ReadFile(ctx, name)
		o.data, o.err = string(b), err
	case "open":
		o.line = here() + 1
		f, err := d.Open(ctx, name)
		if o.err = err; err == nil {
			b, err := io.ReadAll(f)
			f.Close()
			o.data, o.err = string(b), err
		}
	case "stat":
		o.line = here() + 1
		fi, err := d.Stat(ctx, name)
		if o.err = err; err == nil {
			o.data = strconv.FormatInt(fi.Size(), 10)
		}
	case "readdir":
		o.line = here() + 1
		es, err := d.ReadDir(ctx, name)
		o.data, o.err = entryNames(es), err
	case "write":
		o.line = here() + 1
		o.err = d.WriteFile(ctx, name, []byte("pwned"), 0o644)
	case "create":
		o.line = here() + 1
		f, err := d.Create(ctx, name)
		if o.err = err; err == nil {
			f.Close()
		}
	case "remove":
		o.line = here() + 1
		o.err = d.Remove(ctx, name)
	default:
		panic("unknown operation " + op)
	}
	return o
}

// checkedThenVulnerable is unprotected code with Guard.Check in front of
// it, joining the name to the guard's directory itself.
func checkedThenVulnerable(ctx context.Context, g *fsguard.Guard, op, name string, cString bool) outcome {
	line := here() + 1
	if err := g.Check(ctx, name); err != nil {
		return outcome{err: err, line: line}
	}
	o := vulnerable(g.Name(), op, name, cString)
	o.line = line
	return o
}

// deprecatedCheckThenVulnerable is the same code with the deprecated
// package-level fsguard.Check, which must keep blocking what it blocked.
func deprecatedCheckThenVulnerable(ctx context.Context, agent *rampart.Agent, base, op, name string, cString bool) outcome {
	line := here() + 1
	if err := fsguard.Check(ctx, agent, base, name); err != nil {
		return outcome{err: err, line: line}
	}
	o := vulnerable(base, op, name, cString)
	o.line = line
	return o
}

// escaped reports whether the unprotected operation really reached outside
// the base: it read a secret, listed or examined what is outside, or changed
// the tree outside.
func escaped(l layout, op string, o outcome, before, after map[string]string) bool {
	if o.err != nil {
		return false
	}
	switch op {
	case "read", "open":
		return strings.HasPrefix(o.data, secretPrefix)
	case "readdir":
		return slices.Contains(strings.Split(o.data, ","), "secret.txt")
	case "stat":
		return o.data != ""
	}
	return !mapsEqual(before, after)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	return true
}

// The exploits of testdata/exploits.txt reach outside the base in the usual
// vulnerable code, and are blocked both by a Guard's operations and by
// Guard.Check (or the deprecated fsguard.Check) in front of that code: nothing outside is read, created, changed or removed, and the
// event names the line of the guarded call.
func TestEveryExploitWorksUnguardedAndIsBlockedWhenGuarded(t *testing.T) {
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	probe := newLayout(t)
	exploits := readCorpus(t, "exploits.txt", 3, probe.outside)
	if len(exploits) < 30 {
		t.Fatalf("%d exploits in testdata/exploits.txt, want at least 30", len(exploits))
	}
	for _, ex := range exploits {
		t.Run(ex.String(), func(t *testing.T) {
			l := newLayout(t)
			input := strings.ReplaceAll(ex.input, probe.outside, l.outside)
			name := transform(t, ex.transform, input)
			cString := ex.transform == "c-png"
			ctx := rampart.WithUntrusted(context.Background(), "job", input)

			before := l.snapshot(t)
			off := vulnerable(l.base, ex.op, name, cString)
			if after := l.snapshot(t); !escaped(l, ex.op, off, before, after) {
				t.Fatalf("unguarded %s of %q did not reach outside the base (err %v, data %q): not an exploit", ex.op, name, off.err, off.data)
			}

			l = newLayout(t)
			input = strings.ReplaceAll(ex.input, probe.outside, l.outside)
			name = transform(t, ex.transform, input)
			ctx = rampart.WithUntrusted(context.Background(), "job", input)
			d, err := fsguard.New(agent, l.base)
			must(t, err)
			defer d.Close()
			before = l.snapshot(t)
			on := guarded(ctx, d, ex.op, name)
			assertBlocked(t, "Guard", on, input)
			assertUntouched(t, l, before, on)

			on = checkedThenVulnerable(ctx, d, ex.op, name, cString)
			assertBlocked(t, "Guard.Check", on, input)
			if on.ran {
				t.Error("Guard.Check let the vulnerable operation run")
			}
			assertUntouched(t, l, before, on)

			on = deprecatedCheckThenVulnerable(ctx, agent, l.base, ex.op, name, cString)
			assertBlocked(t, "fsguard.Check", on, input)
			if on.ran {
				t.Error("fsguard.Check let the vulnerable operation run")
			}
			assertUntouched(t, l, before, on)
		})
	}
}

func assertBlocked(t *testing.T, via string, o outcome, input string) {
	t.Helper()
	if !errors.Is(o.err, rampart.ErrBlocked) {
		t.Fatalf("%s: err = %v, want an error wrapping rampart.ErrBlocked", via, o.err)
	}
	var be *rampart.BlockedError
	if !errors.As(o.err, &be) {
		t.Fatalf("%s: %T is not a *rampart.BlockedError", via, o.err)
	}
	ev := be.Event
	if ev.Kind != "path_traversal" || ev.Sink != "os" || ev.Action != rampart.ActionBlocked {
		t.Errorf("%s: event kind %q sink %q action %q", via, ev.Kind, ev.Sink, ev.Action)
	}
	if ev.Input.Source != "job" || ev.Input.Value != input {
		t.Errorf("%s: event input %+v, want the job's %q", via, ev.Input, input)
	}
	if want := "fsguard_test.go:" + strconv.Itoa(o.line); !strings.HasSuffix(ev.Location, want) {
		t.Errorf("%s: event location %q, want …%s", via, ev.Location, want)
	}
	if ev.Reason == "" || !strings.Contains(ev.Detail, " → ") {
		t.Errorf("%s: event reason %q detail %q", via, ev.Reason, ev.Detail)
	}
	t.Logf("%s: %s | %s", via, ev.Reason, ev.Detail)
}

func assertUntouched(t *testing.T, l layout, before map[string]string, o outcome) {
	t.Helper()
	if o.data != "" {
		t.Errorf("the guarded call returned data %q", o.data)
	}
	if after := l.snapshot(t); !mapsEqual(before, after) {
		t.Errorf("the tree outside the base changed:\nbefore %v\nafter  %v", before, after)
	}
}

// The benign inputs of testdata/benign.txt read the file they name, through
// a Guard and through Guard.Check (or the deprecated fsguard.Check) in front
// of unprotected code, and none is blocked.
func TestNoBenignInputIsBlockedAndEachReadsItsFile(t *testing.T) {
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	l := newLayout(t)
	d, err := fsguard.New(agent, l.base)
	must(t, err)
	defer d.Close()
	benign := readCorpus(t, "benign.txt", 2, l.outside)
	if len(benign) < 100 {
		t.Fatalf("%d benign inputs in testdata/benign.txt, want at least 100", len(benign))
	}
	type tc struct {
		entry
		name string
	}
	var cases []tc
	for _, b := range benign {
		if os.IsPathSeparator('\\') && strings.Contains(b.input, `\`) && b.transform != "backslash" {
			continue
		}
		name := transform(t, b.transform, b.input)
		full := filepath.Join(l.base, name)
		must(t, os.MkdirAll(filepath.Dir(full), 0o755))
		must(t, os.WriteFile(full, []byte(filepath.Clean(name)), 0o644))
		cases = append(cases, tc{b, name})
	}
	blocked := 0
	for _, c := range cases {
		ctx := rampart.WithUntrusted(context.Background(), "job", c.input)
		want := filepath.Clean(c.name)
		for _, via := range []string{"Guard", "Guard.Check", "fsguard.Check"} {
			var o outcome
			switch via {
			case "Guard":
				o = guarded(ctx, d, "read", c.name)
			case "Guard.Check":
				o = checkedThenVulnerable(ctx, d, "read", c.name, false)
			default:
				o = deprecatedCheckThenVulnerable(ctx, agent, l.base, "read", c.name, false)
			}
			if errors.Is(o.err, rampart.ErrBlocked) {
				blocked++
				var be *rampart.BlockedError
				errors.As(o.err, &be)
				t.Errorf("%s: %v blocked: %s | %s", via, c.entry, be.Event.Reason, be.Event.Detail)
				continue
			}
			if o.err != nil || o.data != want {
				t.Errorf("%s: %v read %q, %v; want the file holding %q", via, c.entry, o.data, o.err, want)
			}
		}
	}
	t.Logf("%d benign inputs, %d blocks", len(cases), blocked)
}

// A queue worker has no request: it marks its job's payload as untrusted
// and gets the same protection.
func TestAQueueWorkerIsProtectedThroughWithUntrusted(t *testing.T) {
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	l := newLayout(t)
	d, err := fsguard.New(agent, l.base)
	must(t, err)
	defer d.Close()

	type job struct{ Name, Content string }
	worker := func(ctx context.Context, j job) error {
		ctx = rampart.WithUntrusted(ctx, "job", j.Name)
		return d.WriteFile(ctx, "public/"+j.Name, []byte(j.Content), 0o644)
	}
	if err := worker(context.Background(), job{"thumbnail.png", "png"}); err != nil {
		t.Fatalf("benign job: %v", err)
	}
	err = worker(context.Background(), job{"../../../outside/pwned.txt", "pwned"})
	if !errors.Is(err, rampart.ErrBlocked) {
		t.Fatalf("traversing job: err = %v, want ErrBlocked", err)
	}
	if _, err := os.Stat(filepath.Join(l.outside, "pwned.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the job wrote outside the base: %v", err)
	}
	var be *rampart.BlockedError
	errors.As(err, &be)
	if be.Event.Input.Source != "job" || be.Event.Reason != "input climbs 2 directories above the base" {
		t.Errorf("event %+v", be.Event)
	}
}

// In monitor mode the event is reported and the call goes on, but a Guard
// still cannot leave its directory: os.Root refuses, and the caller gets
// os.Root's error.
func TestMonitorModeReportsAndAGuardStillCannotEscape(t *testing.T) {
	agent, events := ramparttest.NewAgent(t, rampart.Config{Mode: rampart.ModeMonitor})
	l := newLayout(t)
	d, err := fsguard.New(agent, l.base)
	must(t, err)
	defer d.Close()
	for _, name := range []string{"../../outside/secret.txt", "up/secret.txt"} {
		ctx := rampart.WithUntrusted(context.Background(), "job", name)
		b, err := d.ReadFile(ctx, name)
		if err == nil || errors.Is(err, rampart.ErrBlocked) || len(b) != 0 {
			t.Errorf("%q: read %q, %v; want os.Root's refusal", name, b, err)
		}
		if err := d.Check(ctx, name); err != nil {
			t.Errorf("%q: Check in monitor mode returned %v", name, err)
		}
	}
	must(t, agent.Close(context.Background()))
	evs := events.Events()
	for _, ev := range evs {
		if ev.Action != rampart.ActionMonitored {
			t.Errorf("event action %q", ev.Action)
		}
	}
	if len(evs) != 4 {
		t.Errorf("%d events, want one per call (4)", len(evs))
	}
}

// What the application itself writes is its choice: its own "..", absolute
// names and links are os.Root's business, not an attack by the input.
func TestTheApplicationsOwnPartOfTheNameIsNotHeldAgainstTheInput(t *testing.T) {
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	l := newLayout(t)
	d, err := fsguard.New(agent, l.base)
	must(t, err)
	defer d.Close()
	must(t, os.WriteFile(filepath.Join(l.outside, "report.pdf"), []byte("report"), 0o644))
	tests := []struct{ input, name string }{
		{"report.pdf", "../../outside/report.pdf"},
		{"report.pdf", "up/report.pdf"},
		{"report.pdf", filepath.Join(l.outside, "report.pdf")},
		{"secret.txt", "up/secret.txt"},
	}
	for _, tt := range tests {
		ctx := rampart.WithUntrusted(context.Background(), "job", tt.input)
		if err := d.Check(ctx, tt.name); err != nil {
			t.Errorf("Check(%q) with input %q: %v", tt.name, tt.input, err)
		}
		if _, err := d.ReadFile(ctx, tt.name); errors.Is(err, rampart.ErrBlocked) {
			t.Errorf("ReadFile(%q) with input %q: %v", tt.name, tt.input, err)
		}
	}
	// Scary inputs that do not reach the name block nothing.
	ctx := rampart.WithUntrusted(context.Background(), "job", "../../etc/passwd", "/etc/passwd", "up", "x\x00y")
	if _, err := d.ReadFile(ctx, "public/readme.txt"); err != nil {
		t.Errorf("unrelated scary inputs: %v", err)
	}
}

// Code that concatenates lets the kernel resolve the name, and after a link
// ".." is the parent of the link's target, not of the link: an input that
// stays inside the base by its text can climb out through a link in the
// application's part of the name.
func TestAnInputClimbingOutThroughTheApplicationsLinkIsBlocked(t *testing.T) {
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	l := newLayout(t)
	must(t, os.MkdirAll(filepath.Join(l.base, "a", "b"), 0o755))
	must(t, os.Symlink(filepath.FromSlash("../.."), filepath.Join(l.base, "a", "b", "top"))) // the base itself
	input := "../../outside/secret.txt"
	name := "a/b/top/" + input

	data, err := os.ReadFile(l.base + "/" + name)
	if err != nil || !strings.HasPrefix(string(data), secretPrefix) {
		t.Fatalf("unguarded concatenation read %q, %v: not an exploit", data, err)
	}
	ctx := rampart.WithUntrusted(context.Background(), "job", input)
	d, err := fsguard.New(agent, l.base)
	must(t, err)
	defer d.Close()
	if err := d.Check(ctx, name); !errors.Is(err, rampart.ErrBlocked) {
		t.Errorf("Check: %v, want ErrBlocked", err)
	} else {
		var be *rampart.BlockedError
		errors.As(err, &be)
		t.Logf("%s | %s", be.Event.Reason, be.Event.Detail)
	}
	if b, err := d.ReadFile(ctx, name); !errors.Is(err, rampart.ErrBlocked) || len(b) != 0 {
		t.Errorf("ReadFile: %q, %v; want ErrBlocked", b, err)
	}
}

func TestNewValidatesTheBase(t *testing.T) {
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	dir := t.TempDir()
	file := filepath.Join(dir, "file.txt")
	must(t, os.WriteFile(file, nil, 0o644))
	for _, tt := range []struct {
		agent *rampart.Agent
		base  string
		want  string
	}{
		{nil, dir, "agent is nil"},
		{agent, "", "base is empty"},
		{agent, filepath.Join(dir, "missing"), "missing"},
		{agent, file, "is not a directory"},
	} {
		d, err := fsguard.New(tt.agent, tt.base)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "fsguard: New: ") {
			t.Errorf("New(%q): %v, %v; want an error saying %q", tt.base, d, err, tt.want)
		}
	}
	d, err := fsguard.New(agent, dir)
	must(t, err)
	defer d.Close()
	if d.Name() != dir || d.Root() == nil {
		t.Errorf("Name() = %q, want %q", d.Name(), dir)
	}
}

// Every operation of a Dir works on benign names that come from input.
func TestDirOperationsOnBenignNames(t *testing.T) {
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	l := newLayout(t)
	d, err := fsguard.New(agent, l.base)
	must(t, err)
	defer d.Close()
	ctx := rampart.WithUntrusted(context.Background(), "job", "notes v1.2.txt", "leak.txt", "docs")

	f, err := d.Create(ctx, "docs/notes v1.2.txt")
	must(t, err)
	_, err = f.WriteString("draft")
	must(t, err)
	must(t, f.Close())
	must(t, d.WriteFile(ctx, "docs/notes v1.2.txt", []byte("final"), 0o644))
	f, err = d.OpenFile(ctx, "docs/notes v1.2.txt", os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = f.WriteString("!")
	must(t, err)
	must(t, f.Close())
	if b, err := d.ReadFile(ctx, "docs/notes v1.2.txt"); err != nil || string(b) != "final!" {
		t.Errorf("ReadFile: %q, %v", b, err)
	}
	if fi, err := d.Stat(ctx, "docs/notes v1.2.txt"); err != nil || fi.Size() != 6 {
		t.Errorf("Stat: %v, %v", fi, err)
	}
	entries, err := d.ReadDir(ctx, "docs")
	if err != nil || entryNames(entries) != "guide.md,notes v1.2.txt" {
		t.Errorf("ReadDir: %q, %v", entryNames(entries), err)
	}
	must(t, d.Remove(ctx, "docs/notes v1.2.txt"))
	if _, err := d.Stat(ctx, "docs/notes v1.2.txt"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat after Remove: %v", err)
	}
	// Removing a link removes the link, inside the base, not its target.
	must(t, d.Remove(ctx, "leak.txt"))
	if _, err := os.Stat(filepath.Join(l.outside, "secret.txt")); err != nil {
		t.Errorf("the link's target is gone: %v", err)
	}
}
