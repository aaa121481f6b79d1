package sqlguard

// tokenKind classifies a token.
type tokenKind uint8

const (
	tokWord        tokenKind = iota + 1 // identifier or keyword, unquoted
	tokKeyword                          // a tokWord that is a reserved word of the dialect
	tokQuotedIdent                      // "x", `x`, [x]
	tokString                           // '...', E'...', $tag$...$tag$, X'..', N'..'
	tokNumber                           // 42, 1.5e3, 0x1F
	tokParam                            // $1, ?, ?2, :name, @name
	tokOperator                         // = <> || :: -> ...
	tokPunct                            // ( ) , ; . and the delimiters of MySQL executable comments
	tokComment                          // -- ..., # ..., /* ... */
)

var kindNames = [...]string{"", "word", "keyword", "quoted identifier", "string", "number", "parameter", "operator", "punctuation", "comment"}

func (k tokenKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// token is one lexeme of a statement. Start and End delimit it in the
// statement; for strings, quoted identifiers and comments, Inner and InnerEnd
// delimit the content between the delimiters (for other kinds they equal
// Start and End). Unterminated is set when a quote or comment is not closed
// before the end of the statement.
type token struct {
	Kind         tokenKind
	Start, End   int
	Inner        int
	InnerEnd     int
	Unterminated bool

	// esc is how the database decodes the content of a string or quoted
	// identifier: which escape sequences it reads there.
	esc escStyle
}

// tokenize splits a statement into tokens, dropping white space. It never
// fails: bytes it does not know become one-byte tokPunct tokens, and an
// unterminated quote or comment runs to the end of the statement, as the
// database would read it. Appending to dst lets a caller reuse its slice.
// keywords tells tokKeyword from tokWord: the injection rule looks only at
// token boundaries, so the guard skips the lookup that would otherwise cost
// a quarter of the lexing time, and the tests ask for it.
func tokenize(d Dialect, stmt string, dst []token, keywords bool) []token {
	l := lexer{d: d, s: stmt, toks: dst[:0], keywords: keywords}
	l.run()
	return l.toks
}

type lexer struct {
	d    Dialect
	s    string
	i    int
	toks []token

	keywords bool // tell tokKeyword from tokWord

	// execComment is set inside a MySQL /*! ... */ comment, whose content the
	// server executes and which we therefore lex as code.
	execComment bool
}

func (l *lexer) emit(k tokenKind, start, end int) {
	l.toks = append(l.toks, token{Kind: k, Start: start, End: end, Inner: start, InnerEnd: end})
}

func (l *lexer) emitQuoted(k tokenKind, start, inner, innerEnd, end int, unterminated bool) {
	l.toks = append(l.toks, token{Kind: k, Start: start, End: end, Inner: inner, InnerEnd: innerEnd, Unterminated: unterminated})
}

// emitLiteral emits a string or quoted identifier whose content the database
// decodes with the escapes es.
func (l *lexer) emitLiteral(k tokenKind, start, inner, innerEnd, end int, unterminated bool, es escStyle) {
	l.toks = append(l.toks, token{Kind: k, Start: start, End: end, Inner: inner, InnerEnd: innerEnd, Unterminated: unterminated, esc: es})
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isIdentStart accepts ASCII letters, underscore and any byte of a multi-byte
// UTF-8 sequence: every dialect here allows non-ASCII letters in identifiers.
func isIdentStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentPart(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '$' }

func (l *lexer) run() {
	s := l.s
	for l.i < len(s) {
		c := s[l.i]
		start := l.i
		switch {
		case isSpace(c):
			l.i++
		case c == '\'':
			l.quoted(tokString, start, start+1, '\'', l.d.stringEscapes())
		case c == '"':
			if l.d == MySQL {
				l.quoted(tokString, start, start+1, '"', escMySQL)
			} else {
				l.quoted(tokQuotedIdent, start, start+1, '"', escDouble)
			}
		case c == '`' && l.d != Postgres:
			l.quoted(tokQuotedIdent, start, start+1, '`', escDouble)
		case c == '[' && l.d == SQLite:
			l.bracketIdent(start)
		case c == '-' && l.at(start+1, '-') && l.lineCommentDash(start):
			inner := start + 2
			if l.d == MySQL && inner < len(s) && s[inner] != '\n' && s[inner] != 0 {
				// The white space after "--" is part of MySQL's delimiter:
				// an input that starts with it is what makes the comment.
				inner++
			}
			l.lineComment(start, inner)
		case c == '#' && l.d == MySQL:
			l.lineComment(start, start+1)
		case c == '/' && l.at(start+1, '*'):
			l.blockComment(start)
		case c == '*' && l.execComment && l.at(start+1, '/'):
			l.execComment = false
			l.i += 2
			l.emit(tokPunct, start, l.i)
		case isDigit(c) || c == '.' && start+1 < len(s) && isDigit(s[start+1]):
			l.number(start)
		case isIdentStart(c):
			l.word(start)
		case c == '$' && l.d == Postgres:
			l.dollar(start)
		case c == '$' && l.d == SQLite:
			l.namedParam(start)
		case c == '?':
			l.i++
			if l.d == SQLite {
				for l.i < len(s) && isDigit(s[l.i]) {
					l.i++
				}
			}
			l.emit(tokParam, start, l.i)
		case c == ':' && l.d == SQLite && start+1 < len(s) && isIdentStart(s[start+1]):
			l.namedParam(start)
		case c == '@' && (l.d == SQLite || l.d == MySQL):
			l.namedParam(start)
		case c == '(' || c == ')' || c == ',' || c == ';' || c == '[' || c == ']' || c == '{' || c == '}' || c == '.':
			l.i++
			l.emit(tokPunct, start, l.i)
		case isOperatorChar(c):
			l.operator(start)
		default:
			l.i++
			l.emit(tokPunct, start, l.i)
		}
	}
}

func (l *lexer) at(i int, c byte) bool { return i < len(l.s) && l.s[i] == c }

// lineCommentDash reports whether "--" at start opens a comment. MySQL needs
// white space or a control character (DEL included) after it, or the end of
// the statement; elsewhere "--" always does.
func (l *lexer) lineCommentDash(start int) bool {
	if l.d != MySQL {
		return true
	}
	j := start + 2
	return j >= len(l.s) || l.s[j] <= ' ' || l.s[j] == 0x7f
}

// lineComment lexes a comment to the end of the line: PostgreSQL ends it at
// \r as well as \n; MySQL and SQLite end it at a NUL byte too, which both
// then read as the end of the statement.
func (l *lexer) lineComment(start, inner int) {
	s := l.s
	j := inner
	for j < len(s) && s[j] != '\n' && !(s[j] == '\r' && l.d == Postgres) && !(s[j] == 0 && l.d != Postgres) {
		j++
	}
	l.i = j
	l.emitQuoted(tokComment, start, inner, j, j, false)
}

func (l *lexer) blockComment(start int) {
	s := l.s
	// MySQL and MariaDB execute the content of /*! ... */, /*!50001 ... */
	// and /*M! ... */: lex it as code.
	if l.d == MySQL {
		j := start + 2
		if l.at(j, 'M') && l.at(j+1, '!') {
			j++
		}
		if l.at(j, '!') {
			j++
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			l.execComment = true
			l.i = j
			l.emit(tokPunct, start, j)
			return
		}
	}
	depth := 1
	j := start + 2
	for j < len(s) {
		if s[j] == '*' && j+1 < len(s) && s[j+1] == '/' {
			depth--
			j += 2
			if depth == 0 {
				l.i = j
				l.emitQuoted(tokComment, start, start+2, j-2, j, false)
				return
			}
			continue
		}
		if l.d == Postgres && s[j] == '/' && j+1 < len(s) && s[j+1] == '*' {
			depth++
			j += 2
			continue
		}
		if s[j] == 0 && l.d == SQLite {
			// SQLite ends the comment, and the statement, at a NUL.
			l.i = j
			l.emitQuoted(tokComment, start, start+2, j, j, false)
			return
		}
		j++
	}
	l.i = len(s)
	// SQLite accepts a block comment that runs to the end; PostgreSQL and
	// MySQL reject the statement. Either way the rest is not code.
	l.emitQuoted(tokComment, start, start+2, len(s), len(s), l.d != SQLite)
}

// quoted lexes a quoted string or identifier whose content starts at inner.
// A doubled quote is an escaped quote in every dialect; backslash escapes
// apply to MySQL strings and PostgreSQL E'...' strings.
func (l *lexer) quoted(k tokenKind, start, inner int, q byte, es escStyle) {
	s := l.s
	backslash := es == escMySQL || es == escPostgresE
	j := inner
	for j < len(s) {
		c := s[j]
		if backslash && c == '\\' {
			j += 2
			continue
		}
		if c == q {
			if j+1 < len(s) && s[j+1] == q {
				j += 2
				continue
			}
			l.i = j + 1
			l.emitLiteral(k, start, inner, j, j+1, false, es)
			return
		}
		j++
	}
	l.i = len(s)
	l.emitLiteral(k, start, inner, len(s), len(s), true, es)
}

func (l *lexer) bracketIdent(start int) {
	s := l.s
	j := start + 1
	for j < len(s) && s[j] != ']' {
		j++
	}
	if j < len(s) {
		l.i = j + 1
		l.emitQuoted(tokQuotedIdent, start, start+1, j, j+1, false)
		return
	}
	l.i = len(s)
	l.emitQuoted(tokQuotedIdent, start, start+1, len(s), len(s), true)
}

// word lexes an identifier or keyword, or a string with a prefix (E'..',
// X'..', N'..', B'..', U&'..').
func (l *lexer) word(start int) {
	s := l.s
	c := s[start] | 0x20
	if start+1 < len(s) && s[start+1] == '\'' {
		switch {
		case c == 'e' && l.d == Postgres:
			l.quoted(tokString, start, start+2, '\'', escPostgresE)
			return
		case c == 'x' || c == 'n' || c == 'b':
			l.quoted(tokString, start, start+2, '\'', l.d.stringEscapes())
			return
		}
	}
	if c == 'u' && l.d == Postgres && start+2 < len(s) && s[start+1] == '&' && (s[start+2] == '\'' || s[start+2] == '"') {
		if s[start+2] == '\'' {
			l.quoted(tokString, start, start+3, '\'', escUnicode)
		} else {
			l.quoted(tokQuotedIdent, start, start+3, '"', escUnicode)
		}
		return
	}
	j := start + 1
	for j < len(s) && isIdentPart(s[j]) {
		j++
	}
	l.i = j
	k := tokWord
	if l.keywords && isKeyword(s[start:j]) {
		k = tokKeyword
	}
	l.emit(k, start, j)
}

func (l *lexer) number(start int) {
	s := l.s
	j := start
	decimal := false // a point or an exponent: MySQL ends the number there
	if s[j] == '0' && j+1 < len(s) && (s[j+1]|0x20 == 'x' || s[j+1]|0x20 == 'b' || s[j+1]|0x20 == 'o') {
		j += 2
		for j < len(s) && (isHex(s[j]) || s[j] == '_') {
			j++
		}
	} else {
		for j < len(s) && (isDigit(s[j]) || s[j] == '_') {
			j++
		}
		if j < len(s) && s[j] == '.' {
			decimal = true
			j++
			for j < len(s) && (isDigit(s[j]) || s[j] == '_') {
				j++
			}
		}
		if j < len(s) && s[j]|0x20 == 'e' {
			k := j + 1
			if k < len(s) && (s[k] == '+' || s[k] == '-') {
				k++
			}
			if k < len(s) && isDigit(s[k]) {
				for k < len(s) && isDigit(s[k]) {
					k++
				}
				j = k
				decimal = true
			}
		}
	}
	// MySQL identifiers may start with digits (1abc, 0x1g) but 1.5abc and
	// 1e5abc are a number then a word; elsewhere "1abc" is a number followed
	// by a word, which is what the next token will be.
	if l.d == MySQL && !decimal && j < len(s) && isIdentPart(s[j]) {
		for j < len(s) && isIdentPart(s[j]) {
			j++
		}
		l.i = j
		l.emit(tokWord, start, j)
		return
	}
	l.i = j
	l.emit(tokNumber, start, j)
}

func isHex(c byte) bool { return isDigit(c) || 'a' <= c|0x20 && c|0x20 <= 'f' }

// dollar lexes PostgreSQL's $1 parameters and $tag$...$tag$ strings.
func (l *lexer) dollar(start int) {
	s := l.s
	j := start + 1
	if j < len(s) && isDigit(s[j]) {
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		l.i = j
		l.emit(tokParam, start, j)
		return
	}
	for j < len(s) && isIdentStart(s[j]) || j > start+1 && j < len(s) && isDigit(s[j]) {
		j++
	}
	if j >= len(s) || s[j] != '$' {
		l.i = start + 1
		l.emit(tokOperator, start, start+1)
		return
	}
	tag := s[start : j+1]
	inner := j + 1
	for k := inner; k+len(tag) <= len(s); k++ {
		if s[k] == '$' && s[k:k+len(tag)] == tag {
			l.i = k + len(tag)
			l.emitQuoted(tokString, start, inner, k, l.i, false)
			return
		}
	}
	l.i = len(s)
	l.emitQuoted(tokString, start, inner, len(s), len(s), true)
}

// namedParam lexes :name, @name, $name (SQLite) and @var, @@var (MySQL).
func (l *lexer) namedParam(start int) {
	s := l.s
	j := start + 1
	if l.d == MySQL && l.at(j, '@') {
		j++
	}
	for j < len(s) && isIdentPart(s[j]) {
		j++
	}
	if j == start+1 {
		l.i = j
		l.emit(tokOperator, start, j)
		return
	}
	l.i = j
	if l.d == MySQL {
		l.emit(tokWord, start, j) // a user or system variable
		return
	}
	l.emit(tokParam, start, j)
}

func isOperatorChar(c byte) bool {
	switch c {
	case '+', '-', '*', '/', '<', '>', '=', '~', '!', '@', '#', '%', '^', '&', '|', '`', '?', ':':
		return true
	}
	return false
}

// operator takes a run of operator characters, stopping before anything that
// starts a comment.
func (l *lexer) operator(start int) {
	s := l.s
	j := start + 1
	for j < len(s) && isOperatorChar(s[j]) {
		if s[j] == '-' && j+1 < len(s) && s[j+1] == '-' || s[j] == '/' && j+1 < len(s) && s[j+1] == '*' {
			break
		}
		if s[j] == '#' && l.d == MySQL || s[j] == '*' && l.execComment && j+1 < len(s) && s[j+1] == '/' {
			break
		}
		if s[j] == '?' || s[j] == '`' {
			break
		}
		if (s[j] == '+' || s[j] == '-') && l.d != Postgres {
			// MySQL and SQLite have no operator with + or - after its
			// first character: "=-1" is "=" and "-1".
			break
		}
		j++
	}
	if l.d == Postgres {
		// PostgreSQL ends an operator before a trailing + or -, unless it
		// holds one of ~ ! @ # % ^ & | ` ?: "=-1" is "=" and "-1", but
		// "#-" is an operator.
		special := false
		for _, c := range []byte(s[start:j]) {
			switch c {
			case '~', '!', '@', '#', '%', '^', '&', '|', '`', '?':
				special = true
			}
		}
		for !special && j-start > 1 && (s[j-1] == '+' || s[j-1] == '-') {
			j--
		}
	}
	l.i = j
	l.emit(tokOperator, start, j)
}
