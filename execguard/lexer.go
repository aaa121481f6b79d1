package execguard

import "strings"

// The lexer reads a shell script the way a POSIX shell (dash, bash, zsh,
// ksh) splits it into words and operators, and records for every byte what
// it is to the shell: text of a word, a quote, or syntax (a blank, an
// operator, an expansion...). Detection then needs no grammar beyond that:
// an input whose bytes are all word text or quotes cannot add syntax.
//
// Where shells differ, the lexer takes the reading that makes more bytes
// syntax: bash's brace expansion and process substitution are recognised
// even when the script runs under dash, and so is $'...' quoting, whose
// \' escape (read differently by dash) counts as syntax.

// class says what one byte of a script is to the shell.
type class uint8

const (
	cUnset      class = iota // not classified; counts as syntax, and the lexer never leaves one
	cLit                     // text of a word, unquoted
	cQuoted                  // text of a word inside quotes or escaped; text of a comment or here-document
	cQuoteOpen               // a quote that opens a quoted part: ' " $' $"
	cQuoteClose              // a quote that closes a quoted part
	cEscape                  // a backslash that escapes the next byte, or a line continuation
	cBlank                   // space or tab between words (from here on: syntax)
	cNewline                 // newline that ends a command
	cOperator                // control or redirection operator: ; & | && || ( ) < > >> <<...
	cComment                 // the # that starts a comment
	cParam                   // parameter expansion: $x, $1, $@, ${...}
	cSubst                   // delimiters of a command or process substitution: $( ) ` <( >(
	cArith                   // arithmetic expansion $(( )) other than its numbers and names
	cGlob                    // unquoted * ? [ (pathname expansion)
	cTilde                   // unquoted ~ that expands to a home directory
	cBrace                   // unquoted { or } (brace expansion, command group)
	cHereDocEnd              // the line that ends a here-document
	cOpaque                  // nested deeper than the lexer follows
)

// syntax reports whether a byte of this class is shell syntax rather than
// the text of a word.
func (c class) syntax() bool { return c == cUnset || c >= cBlank }

// tokenKind classifies a token.
type tokenKind uint8

const (
	tWord     tokenKind = iota + 1 // a word, with its quotes and expansions
	tOperator                      // an operator, or a newline that ends a command
	tComment                       // from # to the end of the line
	tHereDoc                       // a here-document body and its closing line
)

// role says what a word does in its command.
type role uint8

const (
	roleNone     role = iota
	roleCommand       // names the program of a simple command
	roleArg           // an argument of a simple command
	roleAssign        // NAME=value before the command name
	roleRedirect      // the target of a redirection, or a here-document delimiter
	roleKeyword       // a reserved word: if, then, do, {, !, ...
	roleOther         // for-loop names and lists, case words and patterns, fd numbers, [[ ]] operands
)

// token is one lexeme of a script. Tokens are in the order of their start;
// the tokens of a command substitution follow the word that contains them,
// one level deeper.
type token struct {
	kind         tokenKind
	role         role
	unterminated bool // a quote, substitution or here-document is not closed
	depth        int  // 0 at the top level; one more inside each substitution
	start, end   int
	cmd          int // for arguments: index of the command word of their simple command, or -1
}

// maxDepth bounds the nesting of substitutions the lexer follows. What lies
// deeper is classed cOpaque: syntax, so that an input there is refused.
const maxDepth = 48

// lexed is a script split into tokens, with the class of each byte.
type lexed struct {
	s     string
	class []class
	toks  []token
	steps int
}

// lex splits script into tokens. It never fails: an unclosed quote,
// substitution or here-document runs to the end of the script (and its
// tokens are marked unterminated), as the shell would read it before
// reporting the error. It runs in time linear in len(script).
func lex(script string) *lexed {
	l := lexer{s: script, lim: len(script), class: make([]class, len(script)), toks: make([]token, 0, 8+len(script)/8)}
	l.list(0, 0)
	return &lexed{s: script, class: l.class, toks: l.toks, steps: l.steps}
}

type lexer struct {
	s     string
	i     int // next byte
	lim   int // end of the region being read (a backquoted substitution ends before its closing `)
	class []class
	toks  []token

	heredocs   []heredoc // delimiters read; their bodies start after the next newline
	inBacktick bool      // inside `...`: \` \$ \\ are re-read by the inner shell, so they are syntax
	steps      int       // loop iterations, for the test that the lexer runs in linear time
}

type heredoc struct {
	tok       int // index of the delimiter word
	delim     string
	quoted    bool // the delimiter was quoted: the body is not expanded
	stripTabs bool // <<-
	depth     int
}

// expect says what the next word of a command is.
type expect uint8

const (
	expectNone     expect = iota
	expectRedirect        // after < > >> ...: a file name or fd
	expectHereDoc         // after << or <<-: a delimiter
	expectForName         // after for or select
	expectForIn           // after the name of a for loop: in or do
	expectForList         // the words of a for loop
	expectFuncName        // after function
)

// caseState tracks a case command, which reuses ) and | for its patterns.
type caseState uint8

const (
	caseWord    caseState = iota + 1 // after case: the word to match
	caseIn                           // after the word: in
	casePattern                      // reading patterns up to )
	caseBody                         // reading commands up to ;; or esac
)

// cmdState is the state of the command being read by one list.
type cmdState struct {
	cmdPos   bool // the next word may be a command name or reserved word
	cmd      int  // token index of the current simple command's name, or -1
	expect   expect
	stripTab bool        // the pending here-document is <<-
	cases    []caseState // open case commands, innermost last
	cond     bool        // inside [[ ]]
	funcDef  bool        // after name ( : the next ) opens a function body
}

func (st *cmdState) caseTop() caseState {
	if len(st.cases) == 0 {
		return 0
	}
	return st.cases[len(st.cases)-1]
}

// separate starts a new command after a control operator.
func (st *cmdState) separate() {
	st.cmdPos = true
	st.cmd = -1
	st.expect = expectNone
}

func (l *lexer) emit(k tokenKind, depth, start, end int) int {
	l.toks = append(l.toks, token{kind: k, depth: depth, start: start, end: end, cmd: -1})
	return len(l.toks) - 1
}

func (l *lexer) setClass(from, to int, c class) {
	for j := from; j < to; j++ {
		l.class[j] = c
	}
}

// opaque gives up on the rest of the region: it is too deeply nested.
func (l *lexer) opaque() {
	l.setClass(l.i, l.lim, cOpaque)
	l.i = l.lim
}

// list reads commands until the end of the region or, when closer is ')',
// until the ) that closes the substitution; it reports whether it found the
// closer (and consumed it).
func (l *lexer) list(depth int, closer byte) bool {
	st := cmdState{cmdPos: true, cmd: -1}
	parens := 0
	for l.i < l.lim {
		l.steps++
		c := l.s[l.i]
		switch {
		case c == ' ' || c == '\t':
			l.class[l.i] = cBlank
			l.i++
		case c == '\n':
			l.class[l.i] = cNewline
			l.emit(tOperator, depth, l.i, l.i+1)
			l.i++
			if !st.cond && st.caseTop() != casePattern && st.caseTop() != caseIn {
				st.separate()
			}
			l.readHereDocs(depth)
		case c == '#':
			l.comment(depth)
		case c == ')' && closer == ')' && parens == 0 && st.caseTop() != casePattern && !st.funcDef:
			l.class[l.i] = cSubst
			l.i++
			return true
		case (c == '<' || c == '>') && l.i+1 < l.lim && l.s[l.i+1] == '(':
			l.word(depth, &st) // process substitution
		case c == ';' || c == '&' || c == '|' || c == '(' || c == ')' || c == '<' || c == '>':
			l.operator(depth, &st, &parens)
		default:
			l.word(depth, &st)
		}
	}
	return false
}

// operatorAt returns the length of the operator at i (longest match).
func operatorAt(s string, i, lim int) int {
	rest := s[i:lim]
	for _, op := range [...]string{";;&", "<<<", "<<-", "&>>", "&&", "&>", "||", "|&", ";;", ";&", "<<", "<&", "<>", ">>", ">&", ">|"} {
		if strings.HasPrefix(rest, op) {
			return len(op)
		}
	}
	return 1
}

func (l *lexer) operator(depth int, st *cmdState, parens *int) {
	n := operatorAt(l.s, l.i, l.lim)
	op := l.s[l.i : l.i+n]
	l.setClass(l.i, l.i+n, cOperator)
	l.emit(tOperator, depth, l.i, l.i+n)
	l.i += n
	if st.cond { // inside [[ ]], && || < > ( ) are operators of the test
		switch op {
		case "(":
			*parens++
		case ")":
			if *parens > 0 {
				*parens--
			}
		}
		return
	}
	switch op {
	case "<", ">", ">>", ">|", "<>", "<&", ">&", "&>", "&>>", "<<<":
		st.expect = expectRedirect
	case "<<", "<<-":
		st.expect = expectHereDoc
		st.stripTab = op == "<<-"
	case "(":
		if st.caseTop() == casePattern {
			return // optional ( before a pattern
		}
		*parens++
		if st.cmd >= 0 && len(l.toks) >= 2 && l.toks[len(l.toks)-2].start == l.toks[st.cmd].start {
			// name ( ) { ... }: a function definition, not a call.
			l.toks[st.cmd].role = roleOther
			st.funcDef = true
		}
		st.separate()
	case ")":
		if st.caseTop() == casePattern {
			st.cases[len(st.cases)-1] = caseBody
			st.separate()
			return
		}
		if *parens > 0 {
			*parens--
		}
		if st.funcDef {
			st.funcDef = false
			st.separate()
			return
		}
		st.separate()
		st.cmdPos = false
	case ";;", ";&", ";;&":
		if st.caseTop() == caseBody {
			st.cases[len(st.cases)-1] = casePattern
		}
		st.separate()
	case "|":
		if st.caseTop() == casePattern {
			return // between two patterns
		}
		st.separate()
	default: // ; & && || |&
		st.separate()
	}
}

func (l *lexer) comment(depth int) {
	start := l.i
	l.class[l.i] = cComment
	end := l.lim
	if nl := strings.IndexByte(l.s[l.i:l.lim], '\n'); nl >= 0 {
		end = l.i + nl
	}
	l.setClass(l.i+1, end, cQuoted)
	l.i = end
	l.emit(tComment, depth, start, end)
}

// word reads one word and gives it its role in the command.
func (l *lexer) word(depth int, st *cmdState) {
	idx := l.emit(tWord, depth, l.i, l.i)
	start := l.i
	unterminated := l.wordBody(depth)
	t := &l.toks[idx] // inner tokens may have moved the slice
	t.end = l.i
	t.unterminated = unterminated
	end := l.i

	plain := true // no quotes, escapes or expansions: may be a reserved word or assignment
	for j := start; j < end; j++ {
		switch l.class[j] {
		case cLit, cBrace, cGlob:
		default:
			plain = false
		}
	}
	text := l.s[start:end]
	kw := func(w string) bool { return plain && text == w }

	switch {
	case st.expect == expectRedirect:
		t.role = roleRedirect
		st.expect = expectNone
		return
	case st.expect == expectHereDoc:
		t.role = roleRedirect
		st.expect = expectNone
		quoted := false
		for j := start; j < end; j++ {
			if c := l.class[j]; c == cQuoteOpen || c == cQuoteClose || c == cEscape {
				quoted = true
			}
		}
		l.heredocs = append(l.heredocs, heredoc{tok: idx, delim: l.unquote(start, end), quoted: quoted, stripTabs: st.stripTab, depth: depth})
		return
	case plain && end < l.lim && (l.s[end] == '<' || l.s[end] == '>') && allDigits(text):
		t.role = roleOther // 2>&1: a file descriptor number
		return
	case st.cond:
		t.role = roleOther
		if kw("]]") {
			st.cond = false
			st.cmdPos = false
		}
		return
	}
	switch st.expect {
	case expectForName:
		t.role = roleOther
		st.expect = expectForIn
		return
	case expectForIn:
		switch {
		case kw("in"):
			t.role = roleKeyword
			st.expect = expectForList
		case kw("do"):
			t.role = roleKeyword
			st.expect = expectNone
			st.cmdPos = true
		default:
			t.role = roleOther
		}
		return
	case expectForList:
		t.role = roleOther
		return
	case expectFuncName:
		t.role = roleOther
		st.expect = expectNone
		st.cmdPos = true
		return
	}
	switch st.caseTop() {
	case caseWord:
		t.role = roleOther
		st.cases[len(st.cases)-1] = caseIn
		return
	case caseIn:
		t.role = roleOther
		if kw("in") {
			t.role = roleKeyword
			st.cases[len(st.cases)-1] = casePattern
		}
		return
	case casePattern:
		t.role = roleOther
		if kw("esac") {
			t.role = roleKeyword
			st.cases = st.cases[:len(st.cases)-1]
			st.cmdPos = false
		}
		return
	}
	if !st.cmdPos {
		t.role = roleArg
		t.cmd = st.cmd
		return
	}
	if plain {
		switch text {
		case "if", "then", "else", "elif", "do", "while", "until", "!", "{", "time":
			t.role = roleKeyword
			return
		case "fi", "done", "}":
			t.role = roleKeyword
			st.cmdPos = false
			return
		case "esac":
			t.role = roleKeyword
			if top := st.caseTop(); top == caseBody || top == casePattern {
				st.cases = st.cases[:len(st.cases)-1]
			}
			st.cmdPos = false
			return
		case "case":
			t.role = roleKeyword
			st.cases = append(st.cases, caseWord)
			st.cmdPos = false
			return
		case "for", "select":
			t.role = roleKeyword
			st.expect = expectForName
			st.cmdPos = false
			return
		case "function":
			t.role = roleKeyword
			st.expect = expectFuncName
			st.cmdPos = false
			return
		case "[[":
			t.role = roleKeyword
			st.cond = true
			return
		}
	}
	if isAssignment(l.s[start:end], l.class[start:end]) {
		t.role = roleAssign
		return
	}
	t.role = roleCommand
	st.cmd = idx
	st.cmdPos = false
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isAssignment reports whether a word is NAME=value (or NAME+=value), with
// an unquoted name.
func isAssignment(w string, cl []class) bool {
	for j := 0; j < len(w); j++ {
		c := w[j]
		if cl[j] != cLit {
			return false
		}
		switch {
		case c == '=' || c == '+' && j+1 < len(w) && w[j+1] == '=' && cl[j+1] == cLit:
			return j > 0
		case c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || j > 0 && '0' <= c && c <= '9':
		default:
			return false
		}
	}
	return false
}

// unquote returns the text of s[start:end] after quote removal, as the shell
// compares here-document delimiters.
func (l *lexer) unquote(start, end int) string {
	var b strings.Builder
	for j := start; j < end; j++ {
		switch l.class[j] {
		case cQuoteOpen, cQuoteClose, cEscape:
		default:
			b.WriteByte(l.s[j])
		}
	}
	return b.String()
}

func isMeta(c byte) bool {
	switch c {
	case ' ', '\t', '\n', ';', '&', '|', '(', ')', '<', '>':
		return true
	}
	return false
}

// wordBody reads the bytes of a word up to an unquoted metacharacter and
// reports whether a quote or substitution in it is left open.
func (l *lexer) wordBody(depth int) (unterminated bool) {
	start := l.i
	for l.i < l.lim {
		l.steps++
		c := l.s[l.i]
		switch c {
		case '<', '>':
			if l.i == start && l.i+1 < l.lim && l.s[l.i+1] == '(' {
				l.class[l.i], l.class[l.i+1] = cSubst, cSubst
				l.i += 2
				if !l.nest(depth, ')') {
					unterminated = true
				}
				continue
			}
			return
		case ' ', '\t', '\n', ';', '&', '|', '(', ')':
			return
		case '\\':
			l.escape(cQuoted)
		case '\'':
			if l.single() {
				unterminated = true
			}
		case '"':
			if l.double(depth) {
				unterminated = true
			}
		case '$':
			if l.dollar(depth, false) {
				unterminated = true
			}
		case '`':
			if l.backtick(depth) {
				unterminated = true
			}
		case '*', '?', '[':
			l.class[l.i] = cGlob
			l.i++
		case '{', '}':
			l.class[l.i] = cBrace
			l.i++
		case '~':
			l.class[l.i] = cLit
			if l.i == start || l.class[l.i-1] == cLit && (l.s[l.i-1] == '=' || l.s[l.i-1] == ':') {
				l.class[l.i] = cTilde
			}
			l.i++
		default:
			l.class[l.i] = cLit
			l.i++
		}
	}
	return
}

// escape reads a backslash and the byte it escapes; text is the class of
// the escaped byte.
func (l *lexer) escape(text class) {
	if l.i+1 >= l.lim { // a trailing backslash is itself
		l.class[l.i] = text
		l.i++
		return
	}
	switch n := l.s[l.i+1]; {
	case l.inBacktick && (n == '`' || n == '$' || n == '\\'):
		// The inner shell sees ` $ or \ unescaped: a nested substitution,
		// an expansion, or an escape of what follows.
		l.class[l.i], l.class[l.i+1] = cSubst, cSubst
	case n == '\n':
		l.class[l.i], l.class[l.i+1] = cEscape, cEscape // line continuation
	default:
		l.class[l.i], l.class[l.i+1] = cEscape, text
	}
	l.i += 2
}

// single reads '...'.
func (l *lexer) single() (unterminated bool) {
	l.class[l.i] = cQuoteOpen
	l.i++
	end := strings.IndexByte(l.s[l.i:l.lim], '\'')
	if end < 0 {
		l.setClass(l.i, l.lim, cQuoted)
		l.i = l.lim
		return true
	}
	l.setClass(l.i, l.i+end, cQuoted)
	l.i += end
	l.class[l.i] = cQuoteClose
	l.i++
	return false
}

// double reads "...", in which $ and ` still expand.
func (l *lexer) double(depth int) (unterminated bool) {
	l.class[l.i] = cQuoteOpen
	l.i++
	for l.i < l.lim {
		l.steps++
		switch c := l.s[l.i]; c {
		case '"':
			l.class[l.i] = cQuoteClose
			l.i++
			return unterminated
		case '\\':
			if l.i+1 < l.lim && strings.IndexByte("$`\"\\\n", l.s[l.i+1]) >= 0 {
				l.escape(cQuoted)
			} else {
				l.class[l.i] = cQuoted
				l.i++
			}
		case '$':
			if l.dollar(depth, true) {
				unterminated = true
			}
		case '`':
			if l.backtick(depth) {
				unterminated = true
			}
		default:
			l.class[l.i] = cQuoted
			l.i++
		}
	}
	return true
}

func isNameStart(c byte) bool { return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isNameChar(c byte) bool  { return isNameStart(c) || '0' <= c && c <= '9' }

// dollar reads what starts with $; inDQ says whether it is inside double
// quotes (or a here-document), where $' and $" are not quotes.
func (l *lexer) dollar(depth int, inDQ bool) (unterminated bool) {
	i := l.i
	lit := cLit
	if inDQ {
		lit = cQuoted
	}
	if i+1 >= l.lim {
		l.class[i] = lit
		l.i++
		return false
	}
	switch n := l.s[i+1]; {
	case n == '(' && i+2 < l.lim && l.s[i+2] == '(':
		return l.arith(depth)
	case n == '(':
		l.class[i], l.class[i+1] = cSubst, cSubst
		l.i += 2
		return !l.nest(depth, ')')
	case n == '{':
		return l.braceParam()
	case n == '\'' && !inDQ:
		return l.ansi()
	case n == '"' && !inDQ:
		l.class[i] = cQuoteOpen
		l.i++
		return l.double(depth)
	case isNameStart(n):
		j := i + 2
		for j < l.lim && isNameChar(l.s[j]) {
			j++
		}
		l.setClass(i, j, cParam)
		l.i = j
	case '0' <= n && n <= '9' || strings.IndexByte("@*#?-$!", n) >= 0:
		l.class[i], l.class[i+1] = cParam, cParam
		l.i += 2
	default:
		l.class[i] = lit // a $ that expands nothing is itself
		l.i++
	}
	return false
}

// nest reads the commands of a substitution whose opening delimiter has
// been read, up to its closer; it reports whether the closer was found.
func (l *lexer) nest(depth int, closer byte) bool {
	if depth+1 > maxDepth {
		l.opaque()
		return false
	}
	return l.list(depth+1, closer)
}

// arith reads $(( ... )). Numbers and names inside are text (an input "42"
// there is data); everything else is arithmetic syntax, which bash evaluates
// recursively and which can therefore run commands.
func (l *lexer) arith(depth int) (unterminated bool) {
	l.setClass(l.i, l.i+3, cArith)
	l.i += 3
	if depth+1 > maxDepth {
		l.opaque()
		return true
	}
	parens := 0
	for l.i < l.lim {
		l.steps++
		c := l.s[l.i]
		switch {
		case c == ')' && parens == 0 && l.i+1 < l.lim && l.s[l.i+1] == ')':
			l.class[l.i], l.class[l.i+1] = cArith, cArith
			l.i += 2
			return unterminated
		case c == '(':
			parens++
			l.class[l.i] = cArith
			l.i++
		case c == ')':
			if parens > 0 {
				parens--
			}
			l.class[l.i] = cArith
			l.i++
		case c == '$':
			if l.dollar(depth+1, true) {
				unterminated = true
			}
		case c == '`':
			if l.backtick(depth + 1) {
				unterminated = true
			}
		case isNameChar(c):
			l.class[l.i] = cLit
			l.i++
		default:
			l.class[l.i] = cArith
			l.i++
		}
	}
	return true
}

// braceParam reads ${ ... } as one expansion; quotes and braces inside are
// followed only to find its end.
func (l *lexer) braceParam() (unterminated bool) {
	start := l.i
	j := l.i + 2
	braces := 1
	for j < l.lim && braces > 0 {
		l.steps++
		switch l.s[j] {
		case '\\':
			j++
		case '\'':
			if k := strings.IndexByte(l.s[j+1:l.lim], '\''); k >= 0 {
				j += 1 + k
			} else {
				j = l.lim
			}
		case '"':
			for j++; j < l.lim && l.s[j] != '"'; j++ {
				if l.s[j] == '\\' {
					j++
				}
			}
		case '{':
			braces++
		case '}':
			braces--
		}
		j++
	}
	j = min(j, l.lim)
	l.setClass(start, j, cParam)
	l.i = j
	return braces > 0
}

// ansi reads bash's $'...', in which backslash escapes. Dash reads $'a\'b'
// differently ($ then 'a\' then b...), so \' is syntax.
func (l *lexer) ansi() (unterminated bool) {
	l.class[l.i], l.class[l.i+1] = cQuoteOpen, cQuoteOpen
	l.i += 2
	for l.i < l.lim {
		l.steps++
		switch l.s[l.i] {
		case '\'':
			l.class[l.i] = cQuoteClose
			l.i++
			return false
		case '\\':
			if l.i+1 < l.lim && l.s[l.i+1] == '\'' {
				l.class[l.i], l.class[l.i+1] = cParam, cParam
				l.i += 2
				continue
			}
			l.escape(cQuoted)
		default:
			l.class[l.i] = cQuoted
			l.i++
		}
	}
	return true
}

// backtick reads `...`. POSIX ends it at the first backquote not escaped by
// a backslash; the text in between is a script, read here in place.
func (l *lexer) backtick(depth int) (unterminated bool) {
	open := l.i
	j := open + 1
	for j < l.lim && l.s[j] != '`' {
		l.steps++
		if l.s[j] == '\\' {
			j++
		}
		j++
	}
	end := min(j, l.lim)
	l.class[open] = cSubst
	l.i = open + 1
	lim, inBacktick := l.lim, l.inBacktick
	l.lim, l.inBacktick = end, true
	if depth+1 > maxDepth {
		l.opaque()
	} else {
		l.list(depth+1, 0)
		l.setClass(l.i, end, cOperator) // a stray ) left by the inner list
	}
	l.lim, l.inBacktick = lim, inBacktick
	l.i = end
	if end >= l.lim {
		return true
	}
	l.class[end] = cSubst
	l.i = end + 1
	return false
}

// readHereDocs reads the bodies of the here-documents whose delimiters were
// read on the line that a newline just ended.
func (l *lexer) readHereDocs(depth int) {
	pending := l.heredocs
	l.heredocs = nil
	for _, hd := range pending {
		start := l.i
		idx := l.emit(tHereDoc, hd.depth, start, start)
		bodyEnd, end := l.lim, l.lim
		found := false
		for p := l.i; p < l.lim; {
			l.steps++
			e := l.lim
			if nl := strings.IndexByte(l.s[p:l.lim], '\n'); nl >= 0 {
				e = p + nl
			}
			line := l.s[p:e]
			if hd.stripTabs {
				line = strings.TrimLeft(line, "\t")
			}
			if line == hd.delim {
				bodyEnd, end, found = p, e, true
				if e < l.lim {
					end = e + 1
				}
				break
			}
			p = e + 1
		}
		l.body(hd, start, bodyEnd)
		l.setClass(bodyEnd, end, cHereDocEnd)
		l.i = end
		l.toks[idx].end = end
		l.toks[idx].unterminated = !found
	}
}

// body classes a here-document body: text, with $ and ` expansions unless
// the delimiter was quoted.
func (l *lexer) body(hd heredoc, start, end int) {
	if hd.quoted {
		l.setClass(start, end, cQuoted)
		return
	}
	lim := l.lim
	l.lim, l.i = end, start
	for l.i < l.lim {
		l.steps++
		switch c := l.s[l.i]; c {
		case '\\':
			if l.i+1 < l.lim && strings.IndexByte("$`\\\n", l.s[l.i+1]) >= 0 {
				l.escape(cQuoted)
			} else {
				l.class[l.i] = cQuoted
				l.i++
			}
		case '$':
			if l.dollar(hd.depth, true) {
				l.toks[hd.tok].unterminated = true
			}
		case '`':
			if l.backtick(hd.depth) {
				l.toks[hd.tok].unterminated = true
			}
		default:
			l.class[l.i] = cQuoted
			l.i++
		}
	}
	l.lim = lim
}
