package sqlguard

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rampartsec/rampart"
)

// Guard checks SQL statements against the untrusted inputs of their context.
// It is safe for concurrent use.
type Guard struct {
	agent   *rampart.Agent
	dialect Dialect
	sink    string
	toks    sync.Pool // *[]token, reused across statements
	indexes indexCache
	// shadowed: PostgreSQL's pure built-in names that a function of
	// another schema shadows (shadow.go), learnt at each new connection.
	shadowed atomic.Pointer[map[string]struct{}]
}

// New returns a guard that reports to agent and lexes statements as d.
func New(agent *rampart.Agent, d Dialect) (*Guard, error) {
	if agent == nil {
		return nil, errors.New("sqlguard: New: agent is nil")
	}
	if !d.valid() {
		return nil, fmt.Errorf("sqlguard: New: invalid dialect %v", d)
	}
	return NewFor(agent, d, "database/sql")
}

// NewFor is New for the statements of a database API other than
// database/sql, which the caller checks with [Guard.Check]: events name
// the sink "<api> (<dialect>)", as "pgx (postgres)" for the native pgx
// guard of github.com/rampartsec/rampart/contrib/pgx.
func NewFor(agent *rampart.Agent, d Dialect, api string) (*Guard, error) {
	if agent == nil {
		return nil, errors.New("sqlguard: New: agent is nil")
	}
	if !d.valid() {
		return nil, fmt.Errorf("sqlguard: New: invalid dialect %v", d)
	}
	if api == "" {
		return nil, errors.New("sqlguard: NewFor: api is empty")
	}
	agent.NoteDatabase(d.String())
	return &Guard{agent: agent, dialect: d, sink: api + " (" + d.String() + ")"}, nil
}

// Dialect returns the guard's dialect.
func (g *Guard) Dialect() Dialect { return g.dialect }

// Check returns nil when stmt may run: no untrusted input of ctx occurs in
// it except inside one literal, read by the database as the input, or as one
// token that cannot add syntax (the package documentation gives the rule),
// and the request's inputs were all recorded (see
// rampart.CheckInputsComplete). Otherwise it reports the event and, in block
// mode, returns an error wrapping rampart.ErrBlocked. The database returned
// by [Guard.Open] or [Guard.OpenDB] calls it for every statement; call it
// directly for database APIs that do not go through database/sql (a
// driver's native interface such as pgx.Conn).
//
// For work under a read-only decision (rampart.ReadOnlyFromContext), Check
// also refuses every statement not known to be a read, in every mode (see
// "Read-only actors" in the package documentation).
//
// When no input occurs in stmt, Check costs one substring search per input.
func (g *Guard) Check(ctx context.Context, stmt string) error {
	var toks []token
	var pooled *[]token
	defer func() {
		if pooled != nil {
			*pooled = toks[:0]
			g.toks.Put(pooled)
		}
	}()
	lex := func() []token {
		if toks == nil {
			if p, ok := g.toks.Get().(*[]token); ok {
				pooled = p
			} else {
				pooled = new([]token)
			}
			toks = tokenize(g.dialect, stmt, *pooled, false)
		}
		return toks
	}
	idx := g.index(ctx, stmt)
	for in := range rampart.Inputs(ctx) {
		v := in.Value
		if len(v) < minInput || len(v) > len(stmt) {
			continue
		}
		v, found := g.find(idx, stmt, v)
		if !found {
			continue
		}
		inj, ok := detect(stmt, v, in.Value, lex())
		if !ok {
			continue
		}
		err := g.agent.Report(ctx, rampart.Finding{
			Kind:   rampart.KindSQLInjection,
			Input:  in,
			Sink:   g.sink,
			Detail: markInput(stmt, inj.Start, inj.End),
			Reason: "input " + inj.Reason,
		})
		if err != nil {
			return err
		}
		// Monitor mode: the injection is reported, and a read-only
		// decision still refuses a write.
		return g.checkReadOnly(ctx, stmt, lex)
	}
	if err := g.checkReadOnly(ctx, stmt, lex); err != nil {
		return err
	}
	return rampart.CheckInputsComplete(ctx, g.sink)
}

// checkReadOnly refuses stmt when ctx's work runs under a read-only
// decision (rampart.ReadOnlyFromContext) and stmt is not known to be a
// read, whatever the mode: the decision refuses, not the guard.
func (g *Guard) checkReadOnly(ctx context.Context, stmt string, lex func() []token) error {
	id, ok := rampart.ReadOnlyFromContext(ctx)
	if !ok {
		return nil
	}
	toks := lex()
	why := readOnlyRefusal(g.dialect, stmt, toks)
	if why == "" && g.dialect == Postgres {
		if s := g.shadowed.Load(); s != nil && len(*s) > 0 {
			why = shadowRefusal(*s, stmt, toks)
		}
	}
	if why == "" {
		return nil
	}
	return g.agent.Report(ctx, rampart.Finding{
		Kind:     rampart.KindReadOnlyWrite,
		Sink:     g.sink,
		Detail:   stmt,
		Reason:   "read-only decision " + id + ": " + why,
		Decision: id,
	})
}

// index returns the statement's index when searching for ctx's inputs one by
// one would cost more than asking it: long statements only, from the cache
// for a statement seen before, built at once when there are many inputs.
func (g *Guard) index(ctx context.Context, stmt string) *queryIndex {
	if len(stmt) < indexMinLen {
		return nil
	}
	n := 0
	for in := range rampart.Inputs(ctx) {
		if len(in.Value) >= 4 && len(in.Value) <= len(stmt) {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	idx := g.indexes.get(stmt)
	if idx == nil && n >= indexEagerInputs {
		idx = newQueryIndex(stmt)
	}
	return idx
}

// find returns the form in which input v occurs in stmt: as sent, or as an
// application commonly transforms it before concatenating — trimmed, with
// quotes doubled or backslash-escaped (escaping that is wrong for some
// dialects), or percent-decoded once more. Transformed forms are tried only
// when v holds what they change, so ordinary inputs cost one search.
func (g *Guard) find(idx *queryIndex, stmt, v string) (string, bool) {
	if g.occurs(idx, stmt, v) {
		return v, true
	}
	// Only inputs holding what a transformation changes are tried again;
	// IndexByte keeps that test to a few nanoseconds for ordinary inputs.
	// Padding must not hide a payload from an application that trims.
	if isPadding(v[0]) || isPadding(v[len(v)-1]) {
		if t := strings.TrimSpace(v); len(t) >= minInput && g.occurs(idx, stmt, t) {
			return t, true
		}
	}
	if strings.IndexByte(v, '\'') >= 0 || strings.IndexByte(v, '\\') >= 0 {
		if d := strings.ReplaceAll(v, "'", "''"); d != v && g.occurs(idx, stmt, d) {
			return d, true
		}
		if b := backslashEscaper.Replace(v); b != v && g.occurs(idx, stmt, b) {
			return b, true
		}
	}
	if strings.IndexByte(v, '%') >= 0 {
		if u, err := url.QueryUnescape(v); err == nil && u != v && len(u) >= minInput && g.occurs(idx, stmt, u) {
			return u, true
		}
	}
	return "", false
}

// isPadding reports whether c is white space that strings.TrimSpace removes
// (or the first byte of a multi-byte character that may be).
func isPadding(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || c >= 0x80
}

var backslashEscaper = strings.NewReplacer(`\`, `\\`, `'`, `\'`)

// occurs reports whether v occurs in stmt, asking the statement's index
// first when there is one.
func (g *Guard) occurs(idx *queryIndex, stmt, v string) bool {
	if idx != nil && len(v) >= 4 && !idx.mayContain(v) {
		return false
	}
	return strings.Contains(stmt, v)
}

// markInput returns stmt with the input between ⟦ and ⟧, cut around it when
// the statement is longer than an event holds.
func markInput(stmt string, start, end int) string {
	const room = rampart.MaxEventDetail - 16
	if len(stmt) > room {
		from := max(0, start-room/4)
		to := min(len(stmt), from+room)
		prefix, suffix := "", ""
		if from > 0 {
			prefix = "…"
		}
		if to < len(stmt) {
			suffix = "…"
		}
		if end > to {
			end = to
		}
		return prefix + stmt[from:start] + "⟦" + stmt[start:end] + "⟧" + stmt[end:to] + suffix
	}
	return stmt[:start] + "⟦" + stmt[start:end] + "⟧" + stmt[end:]
}
