package execguard

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// words returns the words of script with their roles, as "role:text".
func words(script string) []string {
	lx := lex(script)
	var out []string
	for _, t := range lx.toks {
		if t.kind == tWord {
			out = append(out, fmt.Sprintf("%s:%s", roleNames[t.role], script[t.start:t.end]))
		}
	}
	return out
}

var roleNames = map[role]string{roleNone: "none", roleCommand: "cmd", roleArg: "arg", roleAssign: "assign", roleRedirect: "redir", roleKeyword: "kw", roleOther: "other"}

func TestLexRoles(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   string
	}{
		{"ls -l /tmp", "cmd:ls arg:-l arg:/tmp"},
		{"A=1 B=2 env", "assign:A=1 assign:B=2 cmd:env"},
		{"ls > out 2>&1 x", "cmd:ls redir:out other:2 redir:1 arg:x"},
		{"a | b && c || d; e & f", "cmd:a cmd:b cmd:c cmd:d cmd:e cmd:f"},
		{"if true; then ls; else rm x; fi", "kw:if cmd:true kw:then cmd:ls kw:else cmd:rm arg:x kw:fi"},
		{"for f in a b; do echo $f; done", "kw:for other:f kw:in other:a other:b kw:do cmd:echo arg:$f kw:done"},
		{"while read l; do :; done", "kw:while cmd:read arg:l kw:do cmd:: kw:done"},
		{"case $x in a|b) echo a;; *) echo b;; esac", "kw:case other:$x kw:in other:a other:b cmd:echo arg:a other:* cmd:echo arg:b kw:esac"},
		{"f() { tar cf x \"$1\"; }", "other:f kw:{ cmd:tar arg:cf arg:x arg:\"$1\" kw:}"},
		{"echo $(ls -l) `date`", "cmd:echo arg:$(ls -l) cmd:ls arg:-l arg:`date` cmd:date"},
		{"x=$(cat <<EOF\nbody\nEOF\n)", "assign:x=$(cat <<EOF\nbody\nEOF\n) cmd:cat redir:EOF"},
		{"[[ -f a && b < c ]] && ls", "kw:[[ other:-f other:a other:b other:c other:]] cmd:ls"},
		{"! grep -q x f", "kw:! cmd:grep arg:-q arg:x arg:f"},
		{"(cd /tmp; ls)", "cmd:cd arg:/tmp cmd:ls"},
		{"echo a#b #c", "cmd:echo arg:a#b"},
		{"cat <(ls) >(wc)", "cmd:cat arg:<(ls) cmd:ls arg:>(wc) cmd:wc"},
		{"echo $((1 + $(echo 2)))", "cmd:echo arg:$((1 + $(echo 2))) cmd:echo arg:2"},
	} {
		if got := strings.Join(words(tc.script), " "); got != tc.want {
			t.Errorf("lex(%q) words\n%s\nwant\n%s", tc.script, got, tc.want)
		}
	}
}

// classes renders the class of each byte of script: l text, q quoted text,
// ' quotes, \ escapes; for syntax _ blank, n newline, o operator, c comment,
// p parameter, s substitution, a arithmetic, g glob, t tilde, b brace, h
// here-document end, x opaque.
func classes(script string) string {
	lx := lex(script)
	var b strings.Builder
	for _, c := range lx.class {
		b.WriteByte("?lq''\\_nocpsagtbhx"[c])
	}
	return b.String()
}

func TestLexClasses(t *testing.T) {
	for _, tc := range []struct{ script, want string }{
		{"ls 'a b' \"c $d\"", "ll_'qqq'_'qqpp'"},
		{`a\ b`, `l\ql`},
		{"echo $(id)", "llll_sslls"},
		{"echo `id`", "llll_slls"},
		{"echo \"`id \\`x\\``\"", "llll_'sll_sslsss'"},
		{"x *.txt ~/a {b}", "l_gllll_tll_blb"},
		{"a;b&&c|d", "loloolol"},
		{"a # c\nb", "l_cqq" + "nl"},
		{"cat <<E\n$x\nE\n", "lll_ool" + "nppq" + "hh"},
		{"cat <<'E'\n$x\nE\n", "lll_oo'q'" + "nqqq" + "hh"},
		{"echo $'a\\'b'", "llll_''q" + "ppq'"},
		{"echo ${x:-y}z", "llll_pppppppl"},
		{"echo $((1+x))", "llll_aaala" + "laa"},
		{"echo 'open", "llll_'qqqq"},
	} {
		if got := classes(tc.script); got != tc.want {
			t.Errorf("classes of %q\n%s\nwant\n%s", tc.script, got, tc.want)
		}
	}
}

func TestLexUnterminated(t *testing.T) {
	for _, s := range []string{"echo 'a", `echo "a`, "echo $(ls", "echo `ls", "cat <<EOF\nbody", "echo ${x", "echo $((1", "echo $'a"} {
		if !lex(s).unterminated() {
			t.Errorf("lex(%q) is not unterminated", s)
		}
	}
	for _, s := range []string{"echo 'a'", `echo "a"`, "echo $(ls)", "echo `ls`", "cat <<EOF\nbody\nEOF", "echo ${x}", "echo $((1))", "echo $'a'"} {
		if lex(s).unterminated() {
			t.Errorf("lex(%q) is unterminated", s)
		}
	}
}

// checkLex verifies the invariants of a lexing: every byte classified,
// tokens in bounds and in order, nested only inside words and here-document
// bodies, and work linear in the length.
func checkLex(t *testing.T, script string) *lexed {
	t.Helper()
	lx := lex(script)
	if len(lx.class) != len(script) {
		t.Fatalf("%d classes for %d bytes", len(lx.class), len(script))
	}
	for i, c := range lx.class {
		if c == cUnset || c > cOpaque {
			t.Fatalf("lex(%q): byte %d has class %d", script, i, c)
		}
	}
	var open []token // enclosing tokens
	for k, tk := range lx.toks {
		if tk.start < 0 || tk.end > len(script) || tk.start > tk.end {
			t.Fatalf("lex(%q): token %d [%d,%d) out of bounds", script, k, tk.start, tk.end)
		}
		if k > 0 && tk.start < lx.toks[k-1].start {
			t.Fatalf("lex(%q): token %d starts at %d, before token %d at %d", script, k, tk.start, k-1, lx.toks[k-1].start)
		}
		for len(open) > 0 && open[len(open)-1].end <= tk.start {
			open = open[:len(open)-1]
		}
		if len(open) > 0 {
			if p := open[len(open)-1]; tk.end > p.end || p.kind != tWord && p.kind != tHereDoc {
				t.Fatalf("lex(%q): token %d [%d,%d) overlaps token [%d,%d) kind %d", script, k, tk.start, tk.end, p.start, p.end, p.kind)
			}
		}
		if tk.end > tk.start {
			open = append(open, tk)
		}
	}
	if max := 12*len(script) + 16; lx.steps > max {
		t.Fatalf("lex(%q): %d steps for %d bytes", script, lx.steps, len(script))
	}
	return lx
}

func TestLexPathological(t *testing.T) {
	for _, unit := range []string{"$(", "`", "\\`", "'", "\"", "${", "$((", "<<a\n", "<<a ", "a\n", "$(case x in a) ", "\"$(", "`$(", "$(`", "<(", "{", "[[ ", "f() "} {
		for _, n := range []int{1, 10, 1000, 20000} {
			checkLex(t, strings.Repeat(unit, n))
		}
	}
}

var lexSeeds = []string{
	"",
	"ls -l /tmp",
	"printf %s 'it'\\''s fine' | wc -c",
	"echo \"$(ls -l \"$HOME\")\" `date` ${x:-y} $((1+2))",
	"cat <<EOF\nhello $x\nEOF\necho done",
	"cat <<-'EOF'\n\t$x\n\tEOF\n",
	"case $x in a) echo a;; b|c) echo b;; esac",
	"f() { tar cf x \"$1\"; }",
	"[[ -f a && b ]] || exit 1",
	"for f in *.txt; do mv \"$f\" \"${f%.txt}.md\"; done",
	"a=1 b=$(echo \"nested $(echo deep)\") env",
	"echo $'ansi\\'quote' \"dq $'not ansi'\"",
	"echo `echo \\`nested\\``",
	"x && y || z; w & v | u |& t",
	"cat <(ls) >(wc) 2>&1 >>out <in <>rw >|clobber",
	"echo 'unterminated",
	"echo $(unterminated",
	"# just a comment\n\n",
	"echo a\\\nb",
	"$($($($(x))))",
}

func FuzzLex(f *testing.F) {
	for _, s := range lexSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script string) {
		checkLex(t, script)
	})
}

// quoteSingle quotes s for a POSIX shell.
func quoteSingle(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// quoteDouble quotes s between double quotes.
func quoteDouble(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`").Replace(s) + `"`
}

// FuzzQuoted checks the metamorphic property of the rule: an input quoted
// correctly is never an injection, whatever it contains. Only occurrences
// inside the quoted word are considered: elsewhere (an input "echo") the
// input coincides with what the application wrote, which is no longer the
// property.
func FuzzQuoted(f *testing.F) {
	for _, s := range []string{"x", "it's", "'", "''", "'\\''", "a'b'c", "a; b", "$(id)", "`id`", "\"", "\\", "a\nb", "-rf", "'leading", "trailing'", "$HOME", "x' ; touch y; '", "é'😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		if input == "" || strings.IndexByte(input, 0) >= 0 {
			return
		}
		line := strings.ReplaceAll(input, "\n", "")
		for _, tc := range []struct {
			prefix, quoted, suffix string
		}{
			{"echo ", quoteSingle(input), ""},
			{"printf %s ", quoteDouble(input), " | wc -c"},
			{"cat <<'EOF'\n", line + ".", "\nEOF\n"}, // never the delimiter line
		} {
			script := tc.prefix + tc.quoted + tc.suffix
			lx := checkLex(t, script)
			from, to := len(tc.prefix), len(tc.prefix)+len(tc.quoted)
			for off := from; ; {
				k := strings.Index(script[off:to], input)
				if k < 0 {
					break
				}
				start := off + k
				if r := lx.occurrence(start, start+len(input), input, 0); r != "" {
					t.Fatalf("script %q: input %q at %d: %s", script, input, start, r)
				}
				off = start + 1
			}
		}
	})
}

// FuzzCommand runs the whole check on arbitrary command lines: it must not
// panic, and a finding must point inside the command line and be rendered
// with the input marked.
func FuzzCommand(f *testing.F) {
	f.Add("sh", "-c", "printf %s x; id", "x; id")
	f.Add("git", "ls-remote", "--upload-pack=touch x", "--upload-pack=touch x")
	f.Add("env", "A=1", "bash -lc", "bash")
	f.Add("find", ".", "-name x -delete", "x -delete")
	f.Add("sh", "-c", `tar cf x "$1"`, "-x")
	f.Add("ssh", "host", "ls; id", "; id")
	f.Add("sudo", "-u", "sh -c 'ls x;id'", "x;id")
	f.Fuzz(func(t *testing.T, name, arg1, arg2, input string) {
		if len(input) < minInput {
			return
		}
		args := []string{arg1}
		args = append(args, strings.Fields(arg2)...)
		if strings.HasPrefix(arg2, "sh") || strings.HasPrefix(arg2, "bash") {
			args = append([]string{arg1}, arg2[:strings.IndexByte(arg2+" ", ' ')], "-c", arg2)
		}
		c := newCommand(name, args)
		fd, ok := c.detect(input)
		if !ok {
			return
		}
		if fd.arg < 0 || fd.arg >= len(c.argv) || fd.start < 0 || fd.end > len(c.argv[fd.arg]) || fd.start > fd.end || fd.reason == "" {
			t.Fatalf("finding %+v for argv %q", fd, c.argv)
		}
		d := c.render(fd)
		if !strings.Contains(d, "⟦") || !utf8.ValidString(d) && utf8.ValidString(strings.Join(c.argv, " ")) {
			t.Fatalf("render %q", d)
		}
	})
}
