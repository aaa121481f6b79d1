package execguard_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/execguard"
	"github.com/rampartsec/rampart/ramparttest"
)

// newGuard returns a guard whose agent works in mode, and the agent's
// events.
func newGuard(t testing.TB, mode rampart.Mode) (*execguard.Guard, *ramparttest.Recorder) {
	t.Helper()
	agent, events := ramparttest.NewAgent(t, rampart.Config{Mode: mode})
	g, err := execguard.New(agent)
	if err != nil {
		t.Fatal(err)
	}
	return g, events
}

func TestNewRequiresAnAgent(t *testing.T) {
	if _, err := execguard.New(nil); err == nil {
		t.Fatal("New(nil) succeeded")
	}
}

// reasonCases are command lines with one untrusted input, and the reason
// the guard must give, or "" when the command must run.
var reasonCases = []struct {
	name   string
	argv   []string
	input  string
	reason string
}{
	// Shell: syntax the input adds.
	{"a separator after a plain word", []string{"sh", "-c", "printf %s x; touch y"}, "x; touch y", "input adds a command separator ';'"},
	{"a separator without blanks", []string{"sh", "-c", "printf %s x;id"}, "x;id", "input adds a command separator ';'"},
	{"and-and", []string{"sh", "-c", "ls x&&id"}, "x&&id", "input adds a command separator '&&'"},
	{"or-or", []string{"sh", "-c", "ls x||id"}, "x||id", "input adds a command separator '||'"},
	{"background", []string{"sh", "-c", "ls x&id"}, "x&id", "input adds a command separator '&'"},
	{"a pipe", []string{"sh", "-c", "ls x|id"}, "x|id", "input adds a pipe '|'"},
	{"a command substitution", []string{"sh", "-c", "ls $(id)"}, "$(id)", "input adds a command substitution '$('"},
	{"backticks", []string{"sh", "-c", "ls `id`"}, "`id`", "input adds a backtick command substitution '`'"},
	{"a variable", []string{"sh", "-c", "ls $HOME"}, "$HOME", "input adds a parameter expansion '$HOME'"},
	{"a braced variable", []string{"sh", "-c", "ls ${HOME}"}, "${HOME}", "input adds a parameter expansion '${HOME}'"},
	{"a redirection", []string{"sh", "-c", "ls x>/etc/passwd"}, "x>/etc/passwd", "input adds a redirection '>'"},
	{"an append", []string{"sh", "-c", "ls x>>f"}, "x>>f", "input adds a redirection '>>'"},
	{"stderr to stdout", []string{"sh", "-c", "ls x2>&1"}, "x2>&1", "input adds a redirection '>&'"},
	{"an input redirection", []string{"sh", "-c", "ls x</etc/shadow"}, "x</etc/shadow", "input adds a redirection '<'"},
	{"a here-document", []string{"sh", "-c", "cat x<<E"}, "x<<E", "input adds a here-document '<<'"},
	{"a newline", []string{"sh", "-c", "ls x\nid"}, "x\nid", "input adds a newline, which ends the command"},
	{"a comment", []string{"sh", "-c", "rm -f /tmp/a #/cache"}, "a #", "input adds a comment '#'"},
	{"a comment at the start", []string{"sh", "-c", "rm -f /tmp/a #/cache"}, "#/c", "input adds a comment '#'"},
	{"a subshell", []string{"sh", "-c", "ls x(id)"}, "x(id)", "input adds a subshell '('"},
	{"a space", []string{"sh", "-c", "rm -f /tmp/a /etc"}, "a /etc", "input adds white space, which starts another argument"},
	{"a glob", []string{"sh", "-c", "rm -f /uploads/*"}, "/*", "input adds a pathname pattern '*'"},
	{"a tilde", []string{"sh", "-c", "ls ~root"}, "~root", "input adds a tilde expansion '~'"},
	{"a brace expansion", []string{"bash", "-c", "ls {a,b}"}, "{a,b}", "input adds a brace '{'"},
	{"a process substitution", []string{"bash", "-c", "cat <(id)"}, "<(id)", "input adds a process substitution '<('"},
	{"arithmetic", []string{"bash", "-c", "echo $((1+2))"}, "$((1+2))", "input adds an arithmetic expansion '$(('"},

	// Shell: quotes.
	{"a single quote closed", []string{"sh", "-c", "printf %s 'x'; id; ''"}, "x'; id; '", "input closes a single-quoted string and adds a command separator ';'"},
	{"a double quote closed", []string{"sh", "-c", `printf %s "x"; id; """`}, `x"; id; "`, "input closes a double-quoted string and adds a command separator ';'"},
	{"a quote left open", []string{"sh", "-c", "printf %s 'a'b'"}, "a'b", "input closes a single-quoted string"},
	{"a quote opened", []string{"sh", "-c", "printf %s a'b; echo 'x'"}, "a'b", "input opens a quoted string"},
	{"a trailing backslash", []string{"sh", "-c", `printf %s a\ b`}, `a\`, "input ends with a backslash, which escapes what follows it"},
	{"$() inside double quotes", []string{"sh", "-c", `printf %s "$(id)"`}, "$(id)", "input adds a command substitution '$('"},
	{"backticks inside double quotes", []string{"sh", "-c", "printf %s \"`id`\""}, "`id`", "input adds a backtick command substitution '`'"},
	{"a variable inside double quotes", []string{"sh", "-c", `printf %s "$PATH"`}, "$PATH", "input adds a parameter expansion '$PATH'"},
	{"a here-document body with $()", []string{"sh", "-c", "cat <<EOF\n$(id)\nEOF"}, "$(id)", "input adds a command substitution '$('"},
	{"a here-document ended early", []string{"sh", "-c", "cat <<EOF\nx\nEOF\nid\nEOF"}, "x\nEOF\nid", "input ends the here-document"},

	// Shell: words.
	{"the whole script", []string{"sh", "-c", "reboot"}, "reboot", "input is the program name"},
	{"a program path", []string{"sh", "-c", "/usr/local/bin/../../../bin/id -a"}, "../../../bin/id", "input chooses the program's path"},
	{"an option in a script", []string{"sh", "-c", "sort '-o/etc/passwd' data"}, "-o/etc/passwd", "input adds an option '-o'"},
	{"an option after a dash", []string{"sh", "-c", "git log --output=x"}, "-output=x", "input adds an option '--output'"},
	{"a nested script", []string{"sh", "-c", "sh -c 'ls x; id'"}, "x; id", "input adds a command separator ';', in the script that sh runs"},
	{"eval", []string{"bash", "-c", "eval 'ls x; id'"}, "x; id", "input adds a command separator ';', in the script that eval runs"},
	{"an option through $1", []string{"sh", "-c", `tar -cf out.tar "$1"`, "sh", "--to-command=id"}, "--to-command=id", "input adds an option '--to-command', through $1"},
	{"an option through $@", []string{"sh", "-c", `sort "$@"`, "sh", "x", "-o/etc/passwd"}, "-o/etc/passwd", "input adds an option '-o', through $@"},
	{"eval of $1", []string{"sh", "-c", `eval "$1"`, "sh", "x; id"}, "x; id", "input adds a command separator ';', in the script that eval runs, through $1"},
	{"sh -c of $1", []string{"bash", "-c", `sh -c "ls $1"`, "bash", "x;id"}, "x;id", "input adds a command separator ';', in the script that sh runs, through $1"},
	{"$1 as the program", []string{"sh", "-c", `"$1" /tmp/x`, "sh", "touch"}, "touch", "input is the program name, through $1"},
	{"a script through env", []string{"/usr/bin/env", "LANG=C", "bash", "-lc", "ls x;id"}, "x;id", "input adds a command separator ';'"},
	{"a script through sudo", []string{"sudo", "-u", "www", "sh", "-c", "ls x;id"}, "x;id", "input adds a command separator ';'"},
	{"a script through ssh", []string{"ssh", "host", "ls x;id"}, "x;id", "input adds a command separator ';', in the command that ssh runs remotely"},

	// Direct exec.
	{"the program name", []string{"touch", "/tmp/x"}, "touch", "input is the program name"},
	{"a program path", []string{"/usr/bin/touch", "/tmp/x"}, "/usr/bin/touch", "input is the program name"},
	{"part of a program path", []string{"/opt/tools/../../usr/bin/id"}, "../../usr/bin/id", "input chooses the program's path"},
	{"a program through env", []string{"env", "id"}, "id", "input is the program name"},
	{"git upload-pack", []string{"git", "ls-remote", "--upload-pack=touch x", "."}, "--upload-pack=touch x", "input adds an option '--upload-pack'"},
	{"a short option with its value", []string{"sort", "-o/etc/passwd", "data"}, "-o/etc/passwd", "input adds an option '-o'"},
	{"an option prefix", []string{"curl", "-o/tmp/x.html", "https://example.com"}, "-o/tmp/x", "input adds an option '-o'"},
	{"ssh proxy command", []string{"ssh", "-oProxyCommand=id", "true"}, "-oProxyCommand=id", "input adds an option '-oProxyCommand'"},
	{"a dash after a dash", []string{"git", "log", "--output=x"}, "-output=x", "input adds an option '--output'"},
	{"split into arguments", []string{"find", ".", "-name", "x", "-delete"}, "x -delete", "input adds an option '-delete' among several arguments"},
	{"an option for the shell", []string{"bash", "--rcfile", "/tmp/evil", "-c", "ls"}, "--rcfile", "input adds an option '--rcfile'"},
	{"a trimmed option", []string{"sort", "-o/etc/passwd"}, "  -o/etc/passwd ", "input adds an option '-o'"},

	// Allowed.
	{"a plain word", []string{"sh", "-c", "printf %s report-2024.pdf"}, "report-2024.pdf", ""},
	{"a single-quoted word", []string{"sh", "-c", "printf %s 'a; b | c $(d) `e` > f'"}, "a; b | c $(d) `e` > f", ""},
	{"an escaped quote", []string{"sh", "-c", `printf %s 'it'\''s fine'`}, "s fine", ""},
	{"a double-quoted word", []string{"sh", "-c", `printf %s "a; b | c > f"`}, "a; b | c > f", ""},
	{"a quoted word in a pipeline", []string{"bash", "-c", "printf '%s' 'x y' | wc -c"}, "x y", ""},
	{"a here-document line", []string{"sh", "-c", "cat <<EOF\nhello; world | x > y\nEOF"}, "hello; world | x > y", ""},
	{"a quoted here-document line", []string{"sh", "-c", "cat <<'EOF'\n$(id) `id` $HOME\nEOF"}, "$(id) `id` $HOME", ""},
	{"a comment", []string{"sh", "-c", "ls # list; files"}, "list; files", ""},
	{"a positional parameter", []string{"sh", "-c", `printf %s "$1"`, "sh", "x; id $(id)"}, "x; id $(id)", ""},
	{"a dash-led positional parameter", []string{"sh", "-c", `printf %s "$1"`, "sh", "-o/etc/passwd"}, "-o/etc/passwd", ""},
	{"a dash in the middle", []string{"git", "log", "--author=a-b", "x-y"}, "a-b", ""},
	{"a dash-led value of an option", []string{"git", "log", "--grep", "-fix"}, "-fi", "input adds an option '-fix'"},
	{"a negative number", []string{"convert", "in.png", "-rotate", "-90", "out.png"}, "-90", ""},
	{"a negative number in a script", []string{"sh", "-c", "convert in.png -rotate '-0.5' out.png"}, "-0.5", ""},
	{"an operand after --", []string{"git", "log", "--", "-p"}, "-p", ""},
	{"an operand after -- in a script", []string{"sh", "-c", "rm -f -- '-rf'"}, "-rf", ""},
	{"echo's arguments", []string{"echo", "-n"}, "-n", ""},
	{"printf's arguments", []string{"sh", "-c", "printf '%s\\n' '-x'"}, "-x", ""},
	{"part of a program name", []string{"sh", "-c", "convert-png in out"}, "png", ""},
	{"a base name in a script that names the program by path", []string{"sh", "-c", "/usr/bin/tar -czf out.tgz dir"}, "tar", ""},
	{"a base name in a script", []string{"sh", "-c", "tar -czf out.tgz dir"}, "tar", "input is the program name"},
	{"a suffix of the program", []string{"/usr/bin/convert", "x"}, "convert", ""},
	{"an option value", []string{"tar", "-cf", "out.tar", "--exclude=*.log"}, "*.log", ""},
	{"an argument", []string{"git", "show", "HEAD:README.md"}, "README.md", ""},
	{"a word with spaces", []string{"printf", "%s", "hello world"}, "hello world", ""},
	{"a unicode word", []string{"sh", "-c", "printf %s 日本語.txt"}, "日本語.txt", ""},
	{"a quoted input that reads back as two quotes", []string{"sh", "-c", `echo ''\'''\'''\'''`}, `'\''`, ""},
	{"an input that coincides with a closing quote", []string{"sh", "-c", `echo 'a'\'''`}, "a'", ""},
	{"a redirection target", []string{"sh", "-c", "printf x > /tmp/out-2024.txt"}, "out-2024.txt", ""},
	{"a number in arithmetic", []string{"bash", "-c", "echo $((42 + 1))"}, "42", ""},
	{"a variable name", []string{"sh", "-c", "echo $HOME"}, "HO", "input is inside a parameter expansion"},
	{"a word in a command substitution", []string{"sh", "-c", `printf %s "$(basename report-2024.pdf)"`}, "report-2024.pdf", ""},
	{"a single quote inside double quotes", []string{"sh", "-c", `printf %s "it's"`}, "it's", ""},
	{"a double quote inside single quotes", []string{"sh", "-c", `printf %s 'say "hi"'`}, `say "hi"`, ""},
}

func TestCheckReasons(t *testing.T) {
	g, events := newGuard(t, rampart.ModeBlock)
	for _, tc := range reasonCases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := rampart.WithUntrusted(context.Background(), "query", tc.input)
			err := g.Check(ctx, tc.argv[0], tc.argv[1:]...)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Check(%q) with input %q: %v, want nil", tc.argv, tc.input, err)
				}
				return
			}
			if !errors.Is(err, rampart.ErrBlocked) {
				t.Fatalf("Check(%q) with input %q: %v, want ErrBlocked (%s)", tc.argv, tc.input, err, tc.reason)
			}
			ev := events.Next(t)
			if ev.Reason != tc.reason {
				t.Errorf("reason %q, want %q (detail %s)", ev.Reason, tc.reason, ev.Detail)
			}
			if ev.Kind != rampart.KindCommandInjection || ev.Sink != "os/exec" || ev.Input.Value != tc.input || ev.Input.Source != "query" {
				t.Errorf("event %+v", ev)
			}
			if !strings.Contains(ev.Detail, "⟦") {
				t.Errorf("detail %q does not mark the input", ev.Detail)
			}
		})
	}
}

func TestDetailMarksTheInput(t *testing.T) {
	g, events := newGuard(t, rampart.ModeBlock)
	for _, tc := range []struct {
		argv   []string
		input  string
		detail string
	}{
		{[]string{"sh", "-c", "printf %s x; touch y"}, "; touch y", `sh -c 'printf %s x⟦; touch y⟧'`},
		{[]string{"sh", "-c", "printf %s 'x'; touch y'"}, "x'; touch y", `sh -c "printf %s '⟦x'; touch y⟧'"`},
		{[]string{"git", "ls-remote", "--upload-pack=touch x", "."}, "--upload-pack=touch x", `git ls-remote '⟦--upload-pack=touch x⟧' .`},
		{[]string{"sort", "-oout", "data"}, "-oout", `sort ⟦-oout⟧ data`},
		{[]string{"sh", "-c", `printf %s "$(date)" 'x'; echo "$HOME"`}, "x'; echo", `sh -c "printf %s \"\$(date)\" '⟦x'; echo⟧ \"\$HOME\""`},
	} {
		err := g.Check(rampart.WithUntrusted(context.Background(), "query", tc.input), tc.argv[0], tc.argv[1:]...)
		if !errors.Is(err, rampart.ErrBlocked) {
			t.Errorf("Check(%q) with input %q: %v, want ErrBlocked", tc.argv, tc.input, err)
			continue
		}
		if ev := events.Next(t); ev.Detail != tc.detail {
			t.Errorf("Check(%q) with input %q: detail\n%s\nwant\n%s", tc.argv, tc.input, ev.Detail, tc.detail)
		}
	}
}

func TestLongCommandLineDetailIsCut(t *testing.T) {
	g, events := newGuard(t, rampart.ModeBlock)
	script := "printf %s " + strings.Repeat("a", 5000) + " x;id " + strings.Repeat("b", 5000)
	err := g.Check(rampart.WithUntrusted(context.Background(), "query", "x;id"), "sh", "-c", script)
	if !errors.Is(err, rampart.ErrBlocked) {
		t.Fatalf("Check: %v", err)
	}
	ev := events.Next(t)
	if len(ev.Detail) > rampart.MaxEventDetail || !strings.Contains(ev.Detail, "⟦x;id⟧") {
		t.Errorf("detail of %d bytes, %q…", len(ev.Detail), ev.Detail[:min(80, len(ev.Detail))])
	}
}

func TestDetailOfInvalidUTF8IsCut(t *testing.T) {
	g, events := newGuard(t, rampart.ModeBlock)
	junk := strings.Repeat("\x9a", 5000)
	err := g.Check(rampart.WithUntrusted(context.Background(), "query", "--output=x"), "git", "log", junk, "--output=x", junk)
	if !errors.Is(err, rampart.ErrBlocked) {
		t.Fatalf("Check: %v", err)
	}
	if ev := events.Next(t); len(ev.Detail) > rampart.MaxEventDetail || !strings.Contains(ev.Detail, "⟦--output=x⟧") {
		t.Errorf("detail of %d bytes does not hold the marked input", len(ev.Detail))
	}
}

func TestNoInputNoCheck(t *testing.T) {
	g, _ := newGuard(t, rampart.ModeBlock)
	if err := g.Check(context.Background(), "sh", "-c", "ls; id $(whoami) > /dev/null"); err != nil {
		t.Fatalf("Check without inputs: %v", err)
	}
	ctx := rampart.WithUntrusted(context.Background(), "query", "a", "unrelated value")
	if err := g.Check(ctx, "sh", "-c", "ls a; id"); err != nil {
		t.Fatalf("Check with a one-byte input and an unrelated one: %v", err)
	}
}

func TestMonitorModeRunsTheCommand(t *testing.T) {
	g, events := newGuard(t, rampart.ModeMonitor)
	ctx := rampart.WithUntrusted(context.Background(), "query", "x; printf y")
	cmd := g.CommandContext(ctx, "sh", "-c", "printf %s x; printf y")
	if cmd.Err != nil {
		t.Fatalf("CommandContext in monitor mode: Err = %v", cmd.Err)
	}
	if out, err := cmd.Output(); err != nil || string(out) != "xy" {
		t.Fatalf("Output in monitor mode: %q, %v, want \"xy\"", out, err)
	}
	if ev := events.Next(t); ev.Action != rampart.ActionMonitored || ev.Kind != rampart.KindCommandInjection {
		t.Errorf("event %+v", ev)
	}
}

// A refused command reports the refusal through Cmd.Err, the way
// exec.CommandContext reports a program that LookPath did not find: every
// method that would start the process returns it, and nothing runs.
func TestRefusedCommandDoesNotRun(t *testing.T) {
	g, events := newGuard(t, rampart.ModeBlock)
	for name, run := range map[string]func(*exec.Cmd) error{
		"Run":            (*exec.Cmd).Run,
		"Start":          (*exec.Cmd).Start,
		"Output":         func(c *exec.Cmd) error { _, err := c.Output(); return err },
		"CombinedOutput": func(c *exec.Cmd) error { _, err := c.CombinedOutput(); return err },
	} {
		t.Run(name, func(t *testing.T) {
			canary := filepath.Join(t.TempDir(), "canary")
			in := "x; touch " + canary
			cmd := g.CommandContext(rampart.WithUntrusted(context.Background(), "query", in), "sh", "-c", "printf %s "+in)
			if !errors.Is(cmd.Err, rampart.ErrBlocked) {
				t.Fatalf("Cmd.Err = %v, want ErrBlocked", cmd.Err)
			}
			if err := run(cmd); !errors.Is(err, rampart.ErrBlocked) {
				t.Fatalf("%s: %v, want ErrBlocked", name, err)
			}
			if cmd.Process != nil {
				t.Errorf("%s started process %d", name, cmd.Process.Pid)
			}
			if ok, _ := exists(canary); ok {
				t.Errorf("the injected command ran: %s exists", canary)
			}
			if ev := events.Next(t); ev.Action != rampart.ActionBlocked || ev.Input.Value != in {
				t.Errorf("event %+v", ev)
			}
		})
	}
}

func TestAllowedCommandRuns(t *testing.T) {
	agent, _ := ramparttest.NewAgent(t, rampart.Config{})
	g, err := execguard.New(agent)
	if err != nil {
		t.Fatal(err)
	}
	name := "x'; touch pwned; '"
	ctx := rampart.WithUntrusted(context.Background(), "job", name)
	dir := t.TempDir()
	cmd := g.CommandContext(ctx, "sh", "-c", `printf %s "$1"`, "sh", name)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil || string(out) != name {
		t.Fatalf("Output: %q, %v, want %q", out, err, name)
	}
	if ok, _ := exists(filepath.Join(dir, "pwned")); ok {
		t.Error("the input ran as a command")
	}
	if n := agent.Stats().Events; n != 0 {
		t.Errorf("an allowed command reported %d events", n)
	}
}

func TestCommandContextWithoutAContext(t *testing.T) {
	g, _ := newGuard(t, rampart.ModeBlock)
	canary := filepath.Join(t.TempDir(), "canary")
	//lint:ignore SA1012 the nil context is what is tested
	cmd := g.CommandContext(nil, "touch", canary)
	if err := cmd.Run(); err == nil || errors.Is(err, rampart.ErrBlocked) {
		t.Fatalf("Run of CommandContext(nil, ...): %v, want an error that is not ErrBlocked", err)
	}
	if ok, _ := exists(canary); ok {
		t.Error("the command ran without a context")
	}
}

// Command is deprecated but keeps its behaviour for one release: no Cmd
// and the error when refused, the Cmd in monitor mode.
func TestDeprecatedCommand(t *testing.T) {
	ctx := rampart.WithUntrusted(context.Background(), "query", "x; id")
	block, _ := newGuard(t, rampart.ModeBlock)
	if cmd, err := block.Command(ctx, "sh", "-c", "printf %s x; id"); cmd != nil || !errors.Is(err, rampart.ErrBlocked) {
		t.Errorf("Command in block mode: %v, %v, want no Cmd and ErrBlocked", cmd, err)
	}
	monitor, _ := newGuard(t, rampart.ModeMonitor)
	if cmd, err := monitor.Command(ctx, "sh", "-c", "printf %s x; id"); cmd == nil || err != nil {
		t.Errorf("Command in monitor mode: %v, %v, want the Cmd", cmd, err)
	}
	//lint:ignore SA1012 the nil context is what is tested
	if _, err := block.Command(nil, "true"); err == nil {
		t.Error("Command(nil, ...) succeeded")
	}
}

// A queue worker has no HTTP request: it marks the job's payload and gets
// the same protection.
func TestQueueWorker(t *testing.T) {
	g, events := newGuard(t, rampart.ModeBlock)
	dir := t.TempDir()
	canary := dir + "/canary"
	for _, job := range []struct {
		payload string
		blocked bool
	}{
		{"photo.png", false},
		{"photo.png; touch " + canary, true},
		{"$(touch " + canary + ")", true},
		{"--checkpoint-action=exec=touch " + canary, true},
	} {
		ctx := rampart.WithUntrusted(context.Background(), "job", job.payload)
		cmd := g.CommandContext(ctx, "sh", "-c", "printf %s "+job.payload+" >/dev/null")
		out, err := cmd.CombinedOutput()
		if job.blocked {
			if !errors.Is(err, rampart.ErrBlocked) {
				t.Errorf("job %q: %v, want ErrBlocked", job.payload, err)
				continue
			}
			if ev := events.Next(t); ev.Input.Source != "job" || ev.Input.Value != job.payload {
				t.Errorf("event input %+v", ev.Input)
			}
			continue
		}
		if err != nil {
			t.Errorf("job %q: %v %s", job.payload, err, out)
		}
	}
	if _, err := exists(canary); err == nil {
		t.Errorf("canary %s exists", canary)
	}
}

// Through the middleware, a blocked command makes the request fail with 403.
func TestHTTPRequest(t *testing.T) {
	agent, events := ramparttest.NewAgent(t, rampart.Config{})
	g, _ := execguard.New(agent)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /echo", func(w http.ResponseWriter, r *http.Request) {
		out, err := g.CommandContext(r.Context(), "sh", "-c", "printf %s "+r.URL.Query().Get("text")).Output()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(out)
	})
	srv := httptest.NewServer(agent.Handler(mux))
	defer srv.Close()
	for _, tc := range []struct {
		text   string
		status int
		body   string
	}{
		{"hello-world.txt", 200, "hello-world.txt"},
		{"x; id", 403, ""},
		{"$(id)", 403, ""},
	} {
		resp, err := http.Get(srv.URL + "/echo?text=" + url.QueryEscape(tc.text))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || tc.status == 200 && string(b) != tc.body {
			t.Errorf("text %q: %d %s, want %d %s", tc.text, resp.StatusCode, b, tc.status, tc.body)
		}
		if tc.status == 403 {
			if ev := events.Next(t); ev.Route != "GET /echo" || ev.Input.Source != rampart.SourceQuery || ev.Input.Name != "text" {
				t.Errorf("event %+v", ev)
			}
		}
	}
}
