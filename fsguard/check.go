package fsguard

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/rampartsec/rampart"
)

// Check reports whether name, joined to base, may be used for a file
// operation: it returns nil unless an untrusted input of ctx makes the path
// leave base (see the package documentation). Otherwise it reports the event
// to agent and, in block mode, returns an error wrapping rampart.ErrBlocked.
//
// Deprecated: use [New] once, then [Guard.Check] on every call: the agent
// and the directory are bound once, as for the other guards, and the
// directory's path is resolved once instead of on every call. Code that
// keeps os.Open(filepath.Join(base, name)) becomes
//
//	files, err := fsguard.New(agent, base) // at start-up
//	...
//	if err := files.Check(ctx, name); err != nil {
//		return err
//	}
//	f, err := os.Open(filepath.Join(files.Name(), name))
//
// Check will be removed in the next release.
func Check(ctx context.Context, agent *rampart.Agent, base, name string) error {
	if agent == nil {
		return errors.New("fsguard: Check: agent is nil")
	}
	t := target{given: base}
	return check(ctx, agent, &t, name)
}

// check is Guard.Check and the package-level Check: t holds what is known of
// the directory, and is filled in as the name needs it.
func check(ctx context.Context, agent *rampart.Agent, t *target, name string) error {
	f, ok := inspect(ctx, name, t, true, true)
	if !ok {
		return rampart.CheckInputsComplete(ctx, "os")
	}
	return report(ctx, agent, "", name, t, f)
}

// minInput is the length below which an input is not considered. This is
// the guard's own rule, not one the SDK applies to every input: one
// character cannot both climb and name something, so alone it can only make
// a path fail.
const minInput = 2

// maxOccurrences bounds the occurrences of one input form examined in one
// name.
const maxOccurrences = 8

// target is the directory a name is relative to. A Guard computes it once;
// the package-level Check computes its parts only when a name needs them.
type target struct {
	given string // as the caller wrote it
	base  string // absolute and clean; "" until needed
	real  string // base with its symbolic links resolved; "" until needed
	err   bool   // base could not be made absolute or resolved

	// Spans of components that links found harmless during this call.
	harmless  [8][2]int
	nHarmless int
}

func (t *target) abs() string {
	if t.base == "" && !t.err {
		b, err := filepath.Abs(t.given)
		if err != nil {
			t.err = true
			return t.given
		}
		t.base = b
	}
	if t.base == "" {
		return t.given
	}
	return t.base
}

func (t *target) resolved() string {
	if t.real == "" && !t.err {
		r, err := filepath.EvalSymlinks(t.abs())
		if err != nil {
			t.err = true
			return ""
		}
		t.real = r
	}
	return t.real
}

// links returns why the occurrence [start,end) of an input leads name
// outside the target through a symbolic link, and where. The answer depends
// only on the path components the occurrence touches, so each span of
// components is looked at once per call, however many inputs occur in it.
// Without a resolved base yet, it first walks from the base as given: a
// name that meets no link and stays inside needs nothing more.
func (t *target) links(name string, start, end int) (reason, resolved string) {
	cs, ce := start, end
	for cs > 0 && !os.IsPathSeparator(name[cs-1]) {
		cs--
	}
	for ce < len(name) && !os.IsPathSeparator(name[ce]) {
		ce++
	}
	sp := [2]int{cs, ce}
	if slices.Contains(t.harmless[:t.nHarmless], sp) {
		return "", ""
	}
	defer func() {
		if reason == "" && t.nHarmless < len(t.harmless) {
			t.harmless[t.nHarmless] = sp
			t.nHarmless++
		}
	}()
	if t.real == "" {
		base := t.abs()
		if t.err {
			return "", ""
		}
		if reason, _, met := viaLinks(base, name, cs, ce); !met && reason == "" {
			return "", ""
		}
	}
	real := t.resolved()
	if real == "" {
		// The base does not exist or cannot be resolved: the operation
		// fails whatever the name.
		return "", ""
	}
	reason, resolved, _ = viaLinks(real, name, cs, ce)
	return reason, resolved
}

// finding is one input that makes a name leave its target.
type finding struct {
	in         rampart.Input
	start, end int // the occurrence in the name; -1 when the application cleaned it away
	reason     string
	resolved   string
}

// inspect looks for an untrusted input of ctx that makes name leave t. lex
// enables the checks on the name's text (NUL, absolute, ".." above the
// base), links the resolution of symbolic links on the file system.
func inspect(ctx context.Context, name string, t *target, lex, links bool) (finding, bool) {
	escapeKnown, nameEscapes := false, false
	cleanName := ""
	for in := range rampart.Inputs(ctx) {
		v := in.Value
		if len(v) < minInput {
			continue
		}
		occurred := false
		if len(v) <= len(name) && strings.Contains(name, v) {
			occurred = true
			if f, ok := inspectForm(name, v, "", t, lex, links); ok {
				f.in = in
				return f, true
			}
		}
		var forms []form
		if mayTransform(v) {
			forms = transformedForms(v)
			for _, fm := range forms {
				if len(fm.value) < minInput || len(fm.value) > len(name) || !strings.Contains(name, fm.value) {
					continue
				}
				occurred = true
				if f, ok := inspectForm(name, fm.value, fm.how, t, lex, links); ok {
					f.in = in
					return f, true
				}
			}
		}
		if occurred {
			continue
		}
		// The application may have cleaned the path (path.Join,
		// filepath.Clean) or transformed the input otherwise, which
		// removes the occurrence.
		if lex {
			if !escapeKnown {
				escapeKnown = true
				if suspicious(name) {
					levels, _ := climbs(name, 0, len(name))
					nameEscapes = levels > 0 || rootLen(name) > 0
					cleanName = filepath.Clean(name)
				}
			}
			if nameEscapes {
				if how, ok := escapeOf(cleanName, v, forms); ok {
					reason := "input makes the path absolute"
					if levels, _ := climbs(name, 0, len(name)); levels > 0 {
						reason = climbReason(levels)
					}
					return finding{in: in, start: -1, end: -1, reason: qualify(reason, how), resolved: textResolved(t, name)}, true
				}
			}
		}
		if !links {
			continue
		}
		for i := -1; i < len(forms); i++ {
			fm := form{v, ""}
			if i >= 0 {
				fm = forms[i]
			}
			if !lastComponentIn(fm.value, name) || !cleaningChanges(fm.value) {
				continue
			}
			// What is left of the form once cleaned is the input's part
			// of the name; it may lead through a link.
			tail := cleanedTail(fm.value)
			if len(tail) < minInput {
				continue
			}
			if start := componentIndex(name, tail); start >= 0 {
				if reason, resolved := t.links(name, start, start+len(tail)); reason != "" {
					return finding{in: in, start: start, end: start + len(tail), reason: qualify(reason, join(fm.how, "path-cleaned")), resolved: resolved}, true
				}
			}
		}
	}
	return finding{}, false
}

// escapeOf says whether an input v, with its forms, explains a name that
// leaves its base though no form occurs in it, and how the application got
// from the input to the name. Preferably, cleaning a form leaves the end of
// the name (path.Join("docs", input)); failing that, for a name that climbs,
// any form that climbs itself is taken as the cause, whatever else the
// application did to it (lowercased it, say): untrusted input with a ".."
// that goes above its start is not a file name. An absolute name is
// attributed only to an input that is the same path, up to case.
func escapeOf(cleanName, v string, forms []form) (how string, ok bool) {
	for i := -1; i < len(forms); i++ {
		fm := form{v, ""}
		if i >= 0 {
			fm = forms[i]
		}
		if cleaningChanges(fm.value) && cleanedAway(cleanName, fm.value) {
			return join(fm.how, "path-cleaned"), true
		}
	}
	if rootLen(cleanName) > 0 {
		for i := -1; i < len(forms); i++ {
			fm := form{v, ""}
			if i >= 0 {
				fm = forms[i]
			}
			if rootLen(fm.value) > 0 && strings.EqualFold(filepath.Clean(fm.value), cleanName) {
				return join(fm.how, "transformed"), true
			}
		}
		return "", false
	}
	for i := -1; i < len(forms); i++ {
		fm := form{v, ""}
		if i >= 0 {
			fm = forms[i]
		}
		rel := relative(fm.value)
		if levels, _ := climbs(rel, 0, len(rel)); levels > 0 {
			return join(fm.how, "transformed"), true
		}
	}
	return "", false
}

// cleaningChanges reports whether filepath.Clean may change s in a way that
// removes it from a name: a ".." or "." segment, or a doubled separator (a
// superset, found with three vectorised searches rather than by cleaning).
func cleaningChanges(s string) bool {
	if filepath.Separator != '/' {
		return filepath.Clean(s) != s
	}
	return strings.Contains(s, "..") || strings.Contains(s, "./") || strings.Contains(s, "//") || strings.HasSuffix(s, "/.")
}

// lastComponentIn is a cheap necessary condition for what is left of s
// after cleaning to occur in name: cleaning keeps the last component of s
// when it is an ordinary one, so name must contain it.
func lastComponentIn(s, name string) bool {
	end := len(s)
	for {
		for end > 0 && os.IsPathSeparator(s[end-1]) {
			end--
		}
		start := end
		for start > 0 && !os.IsPathSeparator(s[start-1]) {
			start--
		}
		switch s[start:end] {
		case "":
			return true // nothing left
		case ".":
			end = start
			continue
		case "..":
			return true // it climbs: cleaning drops earlier components, no shortcut
		}
		return strings.Contains(name, s[start:end])
	}
}

// componentIndex returns the first index of sub in name that starts a path
// component, or -1.
func componentIndex(name, sub string) int {
	for off := 0; off < len(name); {
		i := strings.Index(name[off:], sub)
		if i < 0 {
			return -1
		}
		i += off
		if i == 0 || os.IsPathSeparator(name[i-1]) {
			return i
		}
		off = i + 1
	}
	return -1
}

// inspectForm examines the occurrences of one form of an input in name.
func inspectForm(name, value, how string, t *target, lex, links bool) (finding, bool) {
	for off, n := 0, 0; n < maxOccurrences; n++ {
		i := strings.Index(name[off:], value)
		if i < 0 {
			break
		}
		start, end := off+i, off+i+len(value)
		off = start + 1
		if lex {
			if reason := lexical(name, start, end); reason != "" {
				return finding{start: start, end: end, reason: qualify(reason, how), resolved: textResolved(t, name)}, true
			}
		}
		if !links {
			continue
		}
		if reason, resolved := t.links(name, start, end); reason != "" {
			return finding{start: start, end: end, reason: qualify(reason, how), resolved: resolved}, true
		}
	}
	return finding{}, false
}

// qualify says in the reason how the application transformed the input:
// "input (percent-decoded twice) climbs 2 directories above the base".
func qualify(reason, how string) string {
	if how == "" {
		return reason
	}
	rest, ok := strings.CutPrefix(reason, "input ")
	if !ok {
		return reason + " (input " + how + ")"
	}
	return "input (" + how + ") " + rest
}

// textResolved is where name leads by its text alone: the name itself when
// it is absolute, else the base joined with it.
func textResolved(t *target, name string) string {
	name = strings.ReplaceAll(name, "\x00", `\x00`)
	if rootLen(name) > 0 {
		return filepath.Clean(name)
	}
	return filepath.Join(t.abs(), name)
}

// report hands a finding to the agent.
func report(ctx context.Context, agent *rampart.Agent, op, name string, t *target, f finding) error {
	return agent.Report(ctx, rampart.Finding{
		Kind:   rampart.KindPathTraversal,
		Input:  f.in,
		Sink:   "os",
		Detail: detail(op, t.abs(), name, f.start, f.end, f.resolved),
		Reason: f.reason,
	})
}

// detail shows the path as the application built it, the input between
// ⟦ and ⟧, and where it leads: "open /srv/files/⟦../../etc/passwd⟧ →
// /etc/passwd". NUL bytes are shown as \x00. Long names are cut around the
// input so that the event keeps both ends of the mark.
func detail(op, base, name string, start, end int, resolved string) string {
	const room = 600 // bytes of each of: before, input, after
	var b strings.Builder
	if op != "" {
		b.WriteString(op)
		b.WriteByte(' ')
	}
	if rootLen(name) == 0 {
		b.WriteString(base)
		if base != "" && !os.IsPathSeparator(base[len(base)-1]) {
			b.WriteByte(filepath.Separator)
		}
	}
	if start < 0 {
		b.WriteString(shorten(name, room, false))
	} else {
		b.WriteString(shorten(name[:start], room, true))
		b.WriteString("⟦")
		b.WriteString(shorten(name[start:end], room, false))
		b.WriteString("⟧")
		b.WriteString(shorten(name[end:], room, false))
	}
	b.WriteString(" → ")
	b.WriteString(shorten(resolved, room, false))
	return strings.ReplaceAll(b.String(), "\x00", `\x00`)
}

// shorten cuts s to about n bytes, keeping its end when keepEnd is set and
// its start otherwise, without splitting a UTF-8 sequence.
func shorten(s string, n int, keepEnd bool) string {
	if len(s) <= n {
		return s
	}
	if keepEnd {
		cut := len(s) - n
		for cut < len(s) && !utf8.RuneStart(s[cut]) {
			cut++
		}
		return "…" + s[cut:]
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
