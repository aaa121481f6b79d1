package execguard

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// minInput is the length below which an input is not considered. This is
// the guard's own rule, not one the SDK applies to every input: a single
// character occurs in almost every command line, and on its own it can add
// at most one operator with nothing to run after it.
const minInput = 2

// maxOccurrences bounds how many occurrences of one input in one script are
// examined; each costs a lexing of the script. An input that occurs more
// often is refused.
const maxOccurrences = 64

// maxNesting bounds how many scripts within scripts (sh -c "sh -c '...'",
// eval) are followed.
const maxNesting = 4

// finding is an injection: the input at argv[arg][start:end], and why.
type finding struct {
	arg        int
	start, end int
	reason     string
}

// command is a command line being checked: its words, how they are read,
// and the scripts among them, lexed when an input first occurs in them.
type command struct {
	argv    []string
	slots   []slot
	scripts map[int]*lexed
	codes   *[]code // see nested
}

func newCommand(name string, args []string) *command {
	argv := make([]string, 0, 1+len(args))
	argv = append(append(argv, name), args...)
	return &command{argv: argv, slots: analyze(argv)}
}

// script returns the lexed script that word i belongs to (see scriptOf),
// and the offset of word i in it.
func (c *command) script(i int) (*lexed, int) {
	first := c.slots[i].script
	text, off := scriptOf(c.argv, c.slots, i)
	if lx, ok := c.scripts[first]; ok {
		return lx, off
	}
	if c.scripts == nil {
		c.scripts = make(map[int]*lexed)
	}
	lx := lex(text)
	c.scripts[first] = lx
	return lx, off
}

// detect reports whether the input v, occurring in the command line, is an
// injection.
func (c *command) detect(v string) (finding, bool) {
	for i, a := range c.argv {
		n := 0
		for off := 0; off <= len(a)-len(v); {
			k := strings.Index(a[off:], v)
			if k < 0 {
				break
			}
			start := off + k
			end := start + len(v)
			if n++; n > maxOccurrences && c.slots[i].kind == slotScript {
				return finding{i, start, end, fmt.Sprintf("input occurs more than %d times in the script", maxOccurrences)}, true
			}
			if r := c.occurrence(i, start, end, v); r != "" {
				return finding{i, start, end, r}, true
			}
			off = start + 1
		}
	}
	return c.split(v)
}

// occurrence returns why v at argv[i][start:end] is an injection, or "".
func (c *command) occurrence(i, start, end int, v string) string {
	a := c.argv[i]
	sl := c.slots[i]
	switch sl.kind {
	case slotProgram:
		return programReason(start == 0 && end == len(a), v)
	case slotArg:
		if suppliesDash(a, start, v) {
			return "input adds an option '" + optionName(a) + "'"
		}
	case slotScript:
		lx, off := c.script(i)
		r := lx.occurrence(off+start, off+end, v, 0)
		if r != "" && sl.prog != i && c.slots[sl.prog].kind == slotProgram && baseName(c.argv[sl.prog]) == "ssh" {
			r += ", in the command that ssh runs remotely"
		}
		return r
	case slotData:
		if sl.script >= 0 {
			lx, _ := c.script(sl.script)
			return lx.positional(sl.param, a, start, end, v)
		}
	}
	return ""
}

func programReason(whole bool, v string) string {
	switch {
	case whole:
		return "input is the program name"
	case strings.Contains(v, "/"):
		return "input chooses the program's path"
	}
	return ""
}

// suppliesDash reports whether v, at a[start:], supplies the leading dash
// of an argument that starts with one: v starts the argument, or v starts
// with a dash and only dashes come before it ("-" + "-upload-pack=...").
func suppliesDash(a string, start int, v string) bool {
	if len(a) < 2 || a[0] != '-' || isNegativeNumber(a) {
		return false
	}
	if start == 0 {
		return true
	}
	return v[0] == '-' && strings.Trim(a[:start], "-") == ""
}

// isNegativeNumber reports whether a is a negative decimal number ("-90",
// "-0.5"): a value (convert -rotate -90) rather than an option.
func isNegativeNumber(a string) bool {
	digits, dot := 0, false
	for i := 1; i < len(a); i++ {
		switch c := a[i]; {
		case '0' <= c && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return a != "" && a[0] == '-' && digits > 0
}

// optionName returns the option an argument names, without its value:
// "--output" for "--output=x", "-o" for "-o/tmp/x", "-oProxyCommand" for
// "-oProxyCommand=x".
func optionName(a string) string {
	i := 0
	for i < len(a) && a[i] == '-' {
		i++
	}
	for i < len(a) && (isNameChar(a[i]) || a[i] == '-') {
		i++
	}
	return clip(a[:max(i, min(2, len(a)))], 32)
}

// clip cuts s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for k := 0; k < 3 && n > 0 && !utf8.RuneStart(s[n]); k++ {
		n--
	}
	return s[:n] + "…"
}

// split catches an application that splits an input into several
// arguments (strings.Fields): an argument equal to one of the input's
// words that starts with a dash, beside an argument made of its neighbour.
func (c *command) split(v string) (finding, bool) {
	if strings.IndexAny(v, " \t\n\r\v\f") < 0 {
		return finding{}, false
	}
	fields := strings.Fields(v)
	if len(fields) < 2 {
		return finding{}, false
	}
	for i, a := range c.argv {
		if c.slots[i].kind != slotArg || len(a) < 2 || a[0] != '-' {
			continue
		}
		for j, f := range fields {
			if a != f {
				continue
			}
			before := j > 0 && i > 0 && strings.HasSuffix(c.argv[i-1], fields[j-1])
			after := j+1 < len(fields) && i+1 < len(c.argv) && strings.HasPrefix(c.argv[i+1], fields[j+1])
			if before || after {
				return finding{i, 0, len(a), "input adds an option '" + optionName(a) + "' among several arguments"}, true
			}
		}
	}
	return finding{}, false
}

// occurrence returns why the input v at [start,end) of the script is an
// injection, or "". It is not when every byte of it is text or quoting of
// one word (or of a comment or here-document), the word is not the whole
// program name nor an option, and the rest of the script reads the same as
// with plain letters in the input's place.
func (lx *lexed) occurrence(start, end int, v string, nesting int) string {
	blank := -1
	for i := start; i < end; i++ {
		if c := lx.class[i]; c == cBlank {
			if blank < 0 {
				blank = i
			}
		} else if c.syntax() {
			return lx.syntaxReason(i, start) // an operator or expansion says more than a blank
		}
	}
	if blank >= 0 {
		return lx.syntaxReason(blank, start)
	}
	if t := lx.innermost(start, end); t >= 0 && lx.toks[t].kind == tWord {
		if r := lx.wordReason(t, start, end, v, nesting); r != "" {
			return r
		}
	}
	return lx.fillerReason(start, end)
}

// innermost returns the index of the deepest token that holds [start,end),
// or -1.
func (lx *lexed) innermost(start, end int) int {
	best := -1
	for k, t := range lx.toks {
		if t.start > start {
			break
		}
		if end <= t.end && (t.kind != tOperator) {
			best = k
		}
	}
	return best
}

// text returns the first and last byte of a word's text, or -1, -1.
func (lx *lexed) textBounds(t token) (first, last int) {
	first, last = -1, -1
	for j := t.start; j < t.end; j++ {
		if c := lx.class[j]; c == cLit || c == cQuoted {
			if first < 0 {
				first = j
			}
			last = j
		}
	}
	return first, last
}

// value returns a word's text after quote removal; expansions stay as
// written.
func (lx *lexed) value(t token) string {
	var b strings.Builder
	b.Grow(t.end - t.start)
	for j := t.start; j < t.end; j++ {
		switch lx.class[j] {
		case cQuoteOpen, cQuoteClose, cEscape:
		default:
			b.WriteByte(lx.s[j])
		}
	}
	return b.String()
}

// simpleCommand returns the words of the simple command that word t is an
// argument of, and t's index among them.
func (lx *lexed) simpleCommand(t int) ([]string, int) {
	argv, words := lx.commandWords(t)
	at := 0
	for k, w := range words {
		if w == t {
			at = k
		}
	}
	return argv, at
}

// commandWords returns the words of the simple command that word t is an
// argument of, and their token indexes; the command word comes first (""
// when the command has none).
func (lx *lexed) commandWords(t int) ([]string, []int) {
	cmd := lx.toks[t].cmd
	if cmd < 0 {
		return []string{"", lx.value(lx.toks[t])}, []int{-1, t}
	}
	argv := []string{lx.value(lx.toks[cmd])}
	words := []int{cmd}
	depth := lx.toks[cmd].depth
	for k := cmd + 1; k < len(lx.toks); k++ {
		tk := lx.toks[k]
		if tk.depth < depth || tk.depth == depth && tk.kind == tOperator && !isRedirection(lx.s[tk.start:tk.end]) {
			break // the command ends here
		}
		if tk.kind == tWord && tk.role == roleArg && tk.cmd == cmd {
			argv = append(argv, lx.value(tk))
			words = append(words, k)
		}
	}
	return argv, words
}

func isRedirection(op string) bool {
	return op != "" && (op[0] == '<' || op[0] == '>' || op == "&>" || op == "&>>")
}

// wordReason applies the rules of command lines to the word that holds the
// input: a command name must not be the input, an argument must not get
// its leading dash from it, a script passed to sh -c or eval is checked in
// turn.
func (lx *lexed) wordReason(t, start, end int, v string, nesting int) string {
	tk := lx.toks[t]
	switch tk.role {
	case roleCommand:
		first, last := lx.textBounds(tk)
		return programReason(first >= start && last < end, v)
	case roleArg:
	default:
		return ""
	}
	argv, at := lx.simpleCommand(t)
	slots := analyze(argv)
	switch sl := slots[at]; sl.kind {
	case slotProgram:
		first, last := lx.textBounds(tk)
		return programReason(first >= start && last < end, v)
	case slotArg:
		first, _ := lx.textBounds(tk)
		if first < 0 || lx.s[first] != '-' || isNegativeNumber(argv[at]) {
			return ""
		}
		for j := tk.start; j < first; j++ {
			if lx.class[j].syntax() {
				return "" // the word starts with an expansion
			}
		}
		if start <= first || v[0] == '-' && lx.onlyDashes(first, start) {
			return "input adds an option '" + optionName(argv[at]) + "'"
		}
	case slotScript:
		// The shell removes the quotes of the word before the inner script
		// sees it: the input's text there is what the occurrence's text
		// bytes become.
		inner, off := scriptOf(argv, slots, at)
		from := off + lx.kept(tk.start, start)
		to := from + lx.kept(start, end)
		if nesting >= maxNesting {
			return "input is in a script nested too deeply to check"
		}
		if from < to && to <= len(inner) {
			if r := lex(inner).occurrence(from, to, inner[from:to], nesting+1); r != "" {
				return r + ", in the script that " + baseName(argv[sl.prog]) + " runs"
			}
		}
		if r := scriptReason(inner, v, nesting); r != "" {
			return r + ", in the script that " + baseName(argv[sl.prog]) + " runs"
		}
	}
	return ""
}

// kept returns how many bytes of [from,to) quote removal keeps.
func (lx *lexed) kept(from, to int) int {
	n := 0
	for j := from; j < to; j++ {
		switch lx.class[j] {
		case cQuoteOpen, cQuoteClose, cEscape:
		default:
			n++
		}
	}
	return n
}

// code is a script that a script runs: the argument of eval or sh -c in
// it, with the quotes of the outer script removed.
type code struct {
	arg  int    // the argv word that holds it
	text string // the inner script
	prog string // the program that runs it
}

// nested returns the scripts that the command's scripts run, down to
// maxNesting levels: an input that the application quoted for the outer
// script appears unquoted in them.
func (c *command) nested() []code {
	if c.codes != nil {
		return *c.codes
	}
	var out []code
	seen := make(map[int]bool)
	for i, sl := range c.slots {
		if sl.kind != slotScript || seen[sl.script] {
			continue
		}
		seen[sl.script] = true
		lx, _ := c.script(i)
		lx.collect(i, 1, &out)
	}
	c.codes = &out
	return out
}

func (lx *lexed) collect(arg, nesting int, out *[]code) {
	if nesting > maxNesting || len(*out) > maxOccurrences {
		return
	}
	done := make(map[int]bool) // command words
	for t, tk := range lx.toks {
		if tk.kind != tWord || tk.role != roleArg || done[tk.cmd] {
			continue
		}
		if tk.cmd >= 0 {
			done[tk.cmd] = true
		}
		argv, _ := lx.commandWords(t)
		slots := analyze(argv)
		firsts := make(map[int]bool)
		for k, sl := range slots {
			if sl.kind != slotScript || firsts[sl.script] {
				continue
			}
			firsts[sl.script] = true
			text, _ := scriptOf(argv, slots, k)
			*out = append(*out, code{arg: arg, text: text, prog: baseName(argv[sl.prog])})
			lex(text).collect(arg, nesting+1, out)
		}
	}
}

// detectNested reports whether v is an injection in a script that one of
// the command's scripts runs.
func (c *command) detectNested(v string) (finding, bool) {
	for _, cd := range c.nested() {
		if r := scriptReason(cd.text, v, 1); r != "" {
			return finding{cd.arg, 0, len(c.argv[cd.arg]), r + ", in the script that " + cd.prog + " runs"}, true
		}
	}
	return finding{}, false
}

// scriptReason checks the occurrences of v in a script that a script runs
// (sh -c, eval).
func scriptReason(script, v string, nesting int) string {
	if !strings.Contains(script, v) {
		return ""
	}
	if nesting >= maxNesting {
		return "input is in a script nested too deeply to check"
	}
	sub := lex(script)
	n := 0
	for off := 0; ; {
		k := strings.Index(script[off:], v)
		if k < 0 {
			return ""
		}
		s := off + k
		if n++; n > maxOccurrences {
			return fmt.Sprintf("input occurs more than %d times in the script", maxOccurrences)
		}
		if r := sub.occurrence(s, s+len(v), v, nesting+1); r != "" {
			return r
		}
		off = s + 1
	}
}

// onlyDashes reports whether the text bytes in [from,to) are all dashes.
func (lx *lexed) onlyDashes(from, to int) bool {
	for j := from; j < to; j++ {
		if c := lx.class[j]; (c == cLit || c == cQuoted) && lx.s[j] != '-' {
			return false
		}
	}
	return true
}

// positional returns why an input in positional parameter n of a script,
// whose value is a, is an injection: the script uses $n (or $@, $*) as a
// program name, as an argument where options are read (and the input
// supplies its leading dash), or inside code that it runs (eval, sh -c).
func (lx *lexed) positional(n int, a string, start, end int, v string) string {
	analysed := make(map[int][]slot) // by command word
	for t, tk := range lx.toks {
		if tk.kind != tWord {
			continue
		}
		w := lx.s[tk.start:tk.end]
		ref := paramRef(w, n)
		if ref == "" {
			continue
		}
		leading := strings.HasPrefix(strings.TrimPrefix(w, `"`), ref)
		through := ", through " + ref
		switch tk.role {
		case roleCommand:
			if r := programReason(start == 0 && end == len(a), v); r != "" && leading {
				return r + through
			}
			continue
		case roleArg:
		default:
			continue
		}
		argv, words := lx.commandWords(t)
		slots, ok := analysed[tk.cmd]
		if !ok || tk.cmd < 0 {
			slots = analyze(argv)
			analysed[tk.cmd] = slots
		}
		k := 0
		for j, wi := range words {
			if wi == t {
				k = j
			}
		}
		switch sl := slots[k]; sl.kind {
		case slotArg:
			if leading && suppliesDash(a, start, v) {
				return "input adds an option '" + optionName(a) + "'" + through
			}
		case slotProgram:
			if r := programReason(start == 0 && end == len(a), v); r != "" && leading {
				return r + through
			}
		case slotScript:
			code := strings.Replace(lx.value(tk), ref, a, 1)
			if r := scriptReason(code, v, 1); r != "" {
				return r + ", in the script that " + baseName(argv[sl.prog]) + " runs" + through
			}
		}
	}
	return ""
}

// paramRef returns the first expansion of positional parameter n in a
// word ($n, ${n}, $@, $*, ${@}, ${*}), or "".
func paramRef(w string, n int) string {
	for i := 0; i+1 < len(w); i++ {
		if w[i] != '$' {
			continue
		}
		rest := w[i+1:]
		if n >= 1 && (rest[0] == '@' || rest[0] == '*') {
			return w[i : i+2]
		}
		if n >= 1 && (strings.HasPrefix(rest, "{@}") || strings.HasPrefix(rest, "{*}")) {
			return w[i : i+4]
		}
		if rest[0] >= '0' && rest[0] <= '9' {
			if int(rest[0]-'0') == n {
				return w[i : i+2]
			}
			continue
		}
		if rest[0] == '{' {
			j := 1
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' && j < 8 {
				j++
			}
			if j > 1 && j < len(rest) && (rest[j] == '}' || rest[j] == ':') && atoi(rest[1:j]) == n {
				return w[i : i+1+j+1]
			}
		}
	}
	return ""
}

func atoi(d string) int {
	m := 0
	for i := 0; i < len(d); i++ {
		m = m*10 + int(d[i]-'0')
	}
	return m
}

// syntaxReason says what syntax the input adds: the byte at i, the first
// syntax byte of the occurrence that starts at start.
func (lx *lexed) syntaxReason(i, start int) string {
	prefix := ""
	open := 0
	for j := start; j < i; j++ {
		switch lx.class[j] {
		case cQuoteOpen:
			open++
		case cQuoteClose:
			if open > 0 {
				open--
			} else if prefix == "" {
				prefix = "closes a " + quoteName(lx.s[j]) + " and "
			}
		}
	}
	c := lx.class[i]
	inside := i == start && start > 0 && lx.class[start-1] == c
	var what string
	switch c {
	case cBlank:
		what = "adds white space, which starts another argument"
	case cNewline:
		what = "adds a newline, which ends the command"
	case cOperator:
		what = "adds " + describeOperator(lx.operator(i))
	case cComment:
		what = "adds a comment '#'"
	case cParam:
		if inside {
			what = "is inside a parameter expansion"
		} else {
			what = "adds a parameter expansion '" + lx.run(i, cParam) + "'"
		}
	case cSubst:
		switch {
		case lx.s[i] == '`':
			what = "adds a backtick command substitution '`'"
		case lx.s[i] == '$':
			what = "adds a command substitution '$('"
		case lx.s[i] == '<' || lx.s[i] == '>':
			what = "adds a process substitution '" + lx.s[i:i+2] + "'"
		case lx.s[i] == ')':
			what = "closes a command substitution ')'"
		default:
			what = "adds a nested command substitution or expansion '" + lx.s[i:min(i+2, len(lx.s))] + "'"
		}
	case cArith:
		if inside {
			what = "is inside an arithmetic expansion"
		} else {
			what = "adds an arithmetic expansion '" + lx.run(i, cArith) + "'"
		}
	case cGlob:
		what = "adds a pathname pattern '" + lx.s[i:i+1] + "'"
	case cTilde:
		what = "adds a tilde expansion '~'"
	case cBrace:
		what = "adds a brace '" + lx.s[i:i+1] + "'"
	case cHereDocEnd:
		what = "ends the here-document"
	case cOpaque:
		what = "is in a part of the script nested too deeply to check"
	default:
		what = "adds shell syntax"
	}
	return "input " + prefix + what
}

func quoteName(q byte) string {
	if q == '"' {
		return "double-quoted string"
	}
	return "single-quoted string"
}

// run returns the bytes of class c from i on, clipped for a reason.
func (lx *lexed) run(i int, c class) string {
	j := i
	for j < len(lx.s) && lx.class[j] == c && j-i < 24 {
		j++
	}
	return lx.s[i:j]
}

// operator returns the operator token that holds byte i.
func (lx *lexed) operator(i int) string {
	for _, t := range lx.toks {
		if t.kind == tOperator && t.start <= i && i < t.end {
			return lx.s[t.start:t.end]
		}
	}
	return lx.s[i : i+1]
}

func describeOperator(op string) string {
	switch op {
	case ";", "&", "&&", "||":
		return "a command separator '" + op + "'"
	case ";;", ";&", ";;&":
		return "a case terminator '" + op + "'"
	case "|", "|&":
		return "a pipe '" + op + "'"
	case "(", ")":
		return "a subshell '" + op + "'"
	case "<<", "<<-":
		return "a here-document '" + op + "'"
	case "<<<":
		return "a here-string '<<<'"
	}
	return "a redirection '" + op + "'"
}

// fillerReason lexes the script again with the occurrence replaced by
// letters, and returns why the input changes how the rest of the script is
// read ("" if it does not): a quote it leaves open or closes, or a
// backslash that escapes the byte after it.
func (lx *lexed) fillerReason(start, end int) string {
	alt := lex(lx.s[:start] + strings.Repeat("x", end-start) + lx.s[end:])
	if lx.sameShape(alt, start, end) {
		return ""
	}
	if alt.unterminated() && !lx.unterminated() {
		// Without the input's quotes the script would not even be well
		// formed: they are the application's own quoting that the input
		// happens to match ('\'' escapes, empty quotes), not quotes the
		// input brought. An application whose script works only when its
		// input supplies a quote has made its input code.
		return ""
	}
	open, closed := 0, byte(0)
	for j := start; j < end; j++ {
		switch lx.class[j] {
		case cQuoteOpen:
			open++
		case cQuoteClose:
			if open > 0 {
				open--
			} else if closed == 0 {
				closed = lx.s[j]
			}
		}
	}
	switch {
	case closed != 0:
		return "input closes a " + quoteName(closed)
	case open > 0:
		return "input opens a quoted string"
	case lx.class[end-1] == cEscape:
		return "input ends with a backslash, which escapes what follows it"
	}
	return "input changes how the rest of the script is read"
}

// unterminated reports whether a quote, substitution or here-document of
// the script is left open.
func (lx *lexed) unterminated() bool {
	for _, t := range lx.toks {
		if t.unterminated {
			return true
		}
	}
	return false
}

// sameShape reports whether alt has the same tokens and the same syntax
// outside [start,end) as lx.
func (lx *lexed) sameShape(alt *lexed, start, end int) bool {
	if len(alt.toks) != len(lx.toks) {
		return false
	}
	for k, a := range lx.toks {
		if a != alt.toks[k] {
			return false
		}
	}
	for j, a := range lx.class {
		if j >= start && j < end {
			continue
		}
		if b := alt.class[j]; a != b && (a.syntax() || b.syntax()) {
			return false
		}
	}
	return true
}
