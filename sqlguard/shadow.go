package sqlguard

import (
	"context"
	"database/sql/driver"
	"fmt"
	"io"
	"strings"
)

// PostgreSQL resolves an unqualified function name over the schemas of the
// session's search_path, and picks the best match of the argument types
// among all of them: a function of the application named like a built-in
// that the read-only rules let through (public.lower(integer), or any
// lower() in a schema put before pg_catalog on the search_path) is what
// "SELECT lower(1)" calls, and it may write. So a guard on PostgreSQL
// learns, from the catalogue, which names of its lists of pure built-ins
// also name a function outside pg_catalog and information_schema, in any
// schema (the search_path is the session's to change), and refuses an
// unqualified call of those for read-only actors; pg_catalog.lower(...)
// still passes. It asks on every new connection the pool opens, so a
// function created later is known from the next connection on: until
// then, on connections opened before it, it is not. If the catalogue
// cannot be read, what was known stays.
const shadowQuery = `SELECT DISTINCT p.proname FROM pg_catalog.pg_proc p
	JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
	WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')`

// learnShadowed reads the catalogue through dc, a new connection, and
// records the pure built-in names that a function of another schema
// shadows.
func (g *Guard) learnShadowed(ctx context.Context, dc driver.Conn) error {
	q, ok := dc.(driver.QueryerContext)
	if !ok {
		return nil
	}
	rows, err := q.QueryContext(ctx, shadowQuery, nil)
	if err != nil {
		return fmt.Errorf("sqlguard: read the functions outside pg_catalog: %w", err)
	}
	defer rows.Close()
	names := map[string]struct{}{}
	vals := make([]driver.Value, len(rows.Columns()))
	for {
		err := rows.Next(vals)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("sqlguard: read the functions outside pg_catalog: %w", err)
		}
		var name string
		switch v := vals[0].(type) {
		case string:
			name = v
		case []byte:
			name = string(v)
		}
		_, inPure := lookupFold(pure[Postgres], name)
		_, inAll := lookupFold(pureAll, name)
		if inPure || inAll {
			names[strings.ToLower(name)] = struct{}{}
		}
	}
	g.shadowed.Store(&names)
	return nil
}

// shadowRefusal returns why stmt calls, unqualified, a built-in name that
// a function of the application's shadows, "" if it does not.
func shadowRefusal(shadowed map[string]struct{}, stmt string, toks []token) string {
	text := func(i int) string {
		if i < 0 || i >= len(toks) {
			return ""
		}
		return stmt[toks[i].Start:toks[i].End]
	}
	for i := range toks {
		if toks[i].Kind != tokWord && toks[i].Kind != tokQuotedIdent || text(i+1) != "(" || text(i-1) == "." {
			continue
		}
		w := text(i)
		if toks[i].Kind == tokQuotedIdent {
			w = unquote(w)
		}
		if _, ok := shadowed[strings.ToLower(w)]; ok && !notACall(stmt, toks, i) {
			return fmt.Sprintf("function %s(): the database also has a function of this name outside pg_catalog, "+
				"which an unqualified call may reach (write pg_catalog.%s)", truncateText(w), truncateText(w))
		}
	}
	return ""
}
