package execguard

import (
	"context"
	"errors"
	"os/exec"
	"strings"

	"github.com/rampartsec/rampart"
)

// Guard checks command lines against the untrusted inputs of their context
// before they run. It is safe for concurrent use.
type Guard struct {
	agent *rampart.Agent
}

// New returns a guard that reports to agent.
func New(agent *rampart.Agent) (*Guard, error) {
	if agent == nil {
		return nil, errors.New("execguard: New: agent is nil")
	}
	return &Guard{agent: agent}, nil
}

// CommandContext is exec.CommandContext for a command line that may carry
// untrusted input: it returns exec.CommandContext(ctx, name, arg...) and,
// when an untrusted input of ctx would inject into the command line (see
// [Guard.Check]), reports the event. In block mode the returned Cmd's Err
// field holds the error wrapping rampart.ErrBlocked, so Start, Run, Output
// and CombinedOutput return it and nothing runs, as they return a program
// that exec.LookPath did not find; in monitor mode the Cmd runs. Switching
// from os/exec is therefore a mechanical edit, and the error is handled
// where the Cmd runs, as it already is.
//
// The check covers name and arg as passed: fields of the Cmd changed
// afterwards (Args, Path) are not checked, and clearing Err runs a command
// the guard refused. A nil ctx does not panic as it does in os/exec: the
// Cmd's Err says so.
func (g *Guard) CommandContext(ctx context.Context, name string, arg ...string) *exec.Cmd {
	if ctx == nil {
		cmd := exec.Command(name, arg...)
		cmd.Err = errors.New("execguard: CommandContext: nil context")
		return cmd
	}
	cmd := exec.CommandContext(ctx, name, arg...)
	if err := g.Check(ctx, name, arg...); err != nil {
		cmd.Err = err
	}
	return cmd
}

// Command returns exec.CommandContext(ctx, name, args...) when the command
// line may run (see [Guard.Check]). When an untrusted input of ctx would
// inject into it, Command reports the event and, in block mode, returns a
// nil Cmd and an error wrapping rampart.ErrBlocked; in monitor mode it
// returns the Cmd and nil.
//
// Deprecated: use [Guard.CommandContext], which has exec.CommandContext's
// shape and reports a refusal through the Cmd's Err field. Command will be
// removed in the next release.
func (g *Guard) Command(ctx context.Context, name string, args ...string) (*exec.Cmd, error) {
	if ctx == nil {
		return nil, errors.New("execguard: Command: nil context")
	}
	if err := g.Check(ctx, name, args...); err != nil {
		return nil, err
	}
	return exec.CommandContext(ctx, name, args...), nil
}

// Check returns nil when the command line name args... may run: no
// untrusted input of ctx occurs in it as the program name, as the leading
// dash of an option, or in a shell script (sh -c, bash -lc, eval, ssh's
// remote command) where it is not wholly inside one word. Otherwise it
// reports the event and, in block mode, returns an error wrapping
// rampart.ErrBlocked. [Guard.CommandContext] calls it; call it directly
// for commands that are not built that way (an exec.Cmd assembled by hand,
// a library that takes argv).
//
// When no input occurs in the command line, Check costs one substring
// search per input and word, and nothing is allocated; only a script that
// itself runs a script (eval, sh -c in sh -c), where an input may arrive
// quoted for the outer shell, is lexed on every call.
func (g *Guard) Check(ctx context.Context, name string, args ...string) error {
	longest, dashes, nesting := len(name), false, false
	for _, a := range args {
		longest = max(longest, len(a))
		dashes = dashes || len(a) > 1 && a[0] == '-'
		nesting = nesting || mayNest(a)
	}
	var c *command
	for in := range rampart.Inputs(ctx) {
		v := in.Value
		if len(v) < minInput {
			continue
		}
		found := len(v) <= longest && occurs(v, name, args)
		if !found {
			// An application that trims its input still passes what the
			// attacker sent; padding must not hide a payload.
			if t := strings.TrimSpace(v); len(t) != len(v) && len(t) >= minInput && len(t) <= longest && occurs(t, name, args) {
				v, found = t, true
			} else {
				found = dashes && strings.IndexByte(v, '-') >= 0 && splitInto(v, args)
			}
		}
		if !found && !nesting {
			continue
		}
		if c == nil {
			c = newCommand(name, args)
		}
		var f finding
		ok := false
		if found {
			f, ok = c.detect(v)
		}
		if !ok && nesting {
			// A script that runs a script (eval, sh -c) may receive the
			// input quoted for the outer one, where it does not occur as sent.
			f, ok = c.detectNested(v)
		}
		if !ok {
			continue
		}
		return g.agent.Report(ctx, rampart.Finding{
			Kind:   rampart.KindCommandInjection,
			Input:  in,
			Sink:   "os/exec",
			Detail: c.render(f),
			Reason: f.reason,
		})
	}
	return rampart.CheckInputsComplete(ctx, "os/exec")
}

// occurs reports whether v occurs in a word of the command line.
func occurs(v, name string, args []string) bool {
	if strings.Contains(name, v) {
		return true
	}
	for _, a := range args {
		if strings.Contains(a, v) {
			return true
		}
	}
	return false
}

// mayNest reports whether a word may be a script that runs another script:
// a cheap test, before lexing, for eval, sh -c, bash -lc, ssh host.
func mayNest(a string) bool {
	return strings.Contains(a, "eval") || strings.Contains(a, "sh ") || strings.Contains(a, "sh\t")
}

// splitInto reports whether an argument that starts with a dash occurs in
// v: the application may have split the input into several arguments.
func splitInto(v string, args []string) bool {
	for _, a := range args {
		if len(a) > 1 && a[0] == '-' && len(a) < len(v) && strings.Contains(v, a) {
			return true
		}
	}
	return false
}

// render returns the command line as a shell would be given it, with the
// input between ⟦ and ⟧, cut around the input when it is longer than an
// event holds.
func (c *command) render(f finding) string {
	var b strings.Builder
	mark := 0
	for i, a := range c.argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if i != f.arg {
			b.WriteString(shellQuote(a))
			continue
		}
		pre, in, post := a[:f.start], a[f.start:f.end], a[f.end:]
		q, esc := quoting(a)
		b.WriteString(q)
		b.WriteString(esc(pre))
		mark = b.Len()
		b.WriteString("⟦" + esc(in) + "⟧")
		b.WriteString(esc(post))
		b.WriteString(q)
	}
	return cutAround(b.String(), mark)
}

func needsQuotes(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_@%+=:,./-", c) >= 0) {
			return true
		}
	}
	return false
}

// quoting returns how a word is quoted for display: not at all when it is
// plain, in single quotes unless it holds one, else in double quotes.
func quoting(s string) (string, func(string) string) {
	switch {
	case !needsQuotes(s):
		return "", func(s string) string { return s }
	case !strings.Contains(s, "'"):
		return "'", func(s string) string { return s }
	}
	return `"`, doubleQuoteEscaper.Replace
}

var doubleQuoteEscaper = strings.NewReplacer(`"`, `\"`, `$`, `\$`, "`", "\\`", `\`, `\\`)

func shellQuote(s string) string {
	q, esc := quoting(s)
	return q + esc(s) + q
}

// cutAround cuts s to what an event's Detail holds, keeping the text around
// byte mark.
func cutAround(s string, mark int) string {
	const room = rampart.MaxEventDetail - 16
	if len(s) <= room {
		return s
	}
	// Step back at most three bytes to a rune start: invalid UTF-8 (which
	// an argument may hold) has no rune start to find.
	from := max(0, mark-room/4)
	for k := 0; k < 3 && from > 0 && !isRuneStart(s[from]); k++ {
		from--
	}
	to := min(len(s), from+room)
	for k := 0; k < 3 && to < len(s) && !isRuneStart(s[to]); k++ {
		to--
	}
	prefix, suffix := "", ""
	if from > 0 {
		prefix = "…"
	}
	if to < len(s) {
		suffix = "…"
	}
	return prefix + s[from:to] + suffix
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
