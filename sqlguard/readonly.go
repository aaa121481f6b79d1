package sqlguard

import (
	"fmt"
	"strings"
)

// readOnlyRefusal returns why stmt, lexed as toks with the rules of d, may
// write (or lock, or have effects beyond reading), or "" when every
// statement in it is a read. It judges each statement of a batch; what it
// does not recognise is refused. The package documentation gives the rules
// (section "Read-only actors").
func readOnlyRefusal(d Dialect, stmt string, toks []token) string {
	n, start := 0, 0
	for i := 0; i <= len(toks); i++ {
		if i < len(toks) {
			t := &toks[i]
			if t.Unterminated {
				return "an unterminated literal or comment: the statement cannot be read"
			}
			if !(t.Kind == tokPunct && stmt[t.Start:t.End] == ";") {
				continue
			}
		}
		part := code(stmt, toks[start:i])
		start = i + 1
		if len(part) == 0 {
			continue
		}
		n++
		if why := statementRefusal(d, stmt, part); why != "" {
			if n > 1 || i < len(toks) {
				return fmt.Sprintf("statement %d: %s", n, why)
			}
			return why
		}
	}
	return ""
}

// code returns the tokens of one statement that the database reads as code:
// without comments, nor the delimiters of MySQL's executable comments
// (whose content is code). It copies only when it must drop some.
func code(stmt string, toks []token) []token {
	drop := false
	for i := range toks {
		if isNoise(stmt, &toks[i]) {
			drop = true
			break
		}
	}
	if !drop {
		return toks
	}
	out := toks[:0:0]
	for i := range toks {
		if !isNoise(stmt, &toks[i]) {
			out = append(out, toks[i])
		}
	}
	return out
}

func isNoise(stmt string, t *token) bool {
	if t.Kind == tokComment {
		return true
	}
	if t.Kind == tokPunct {
		s := stmt[t.Start:t.End]
		return strings.HasPrefix(s, "/*") || s == "*/"
	}
	return false
}

// statementRefusal judges one statement, given as its code tokens.
func statementRefusal(d Dialect, stmt string, toks []token) string {
	text := func(i int) string { return stmt[toks[i].Start:toks[i].End] }
	first := &toks[0]
	if first.Kind == tokPunct && text(0) == "(" {
		return queryRefusal(d, stmt, toks)
	}
	if first.Kind != tokWord {
		return fmt.Sprintf("it starts with %q, not a statement keyword", truncateText(text(0)))
	}
	verb, known := lookupFold(verbs, text(0))
	if !known {
		return strings.ToUpper(truncateText(text(0))) + " statement"
	}
	switch verb {
	case "SELECT", "WITH", "VALUES", "TABLE", "SHOW":
		// MariaDB evaluates SHOW ... WHERE expressions.
		return queryRefusal(d, stmt, toks)
	case "EXPLAIN", "DESCRIBE", "DESC":
		return explainRefusal(d, stmt, toks)
	case "BEGIN", "START":
		// A transaction opened by a statement rather than by the
		// application (BeginTx) stays open when the connection goes back
		// to the pool: the next actor's writes on it join the
		// transaction, and this actor's ROLLBACK would undo them.
		return verb + " opens a transaction the pool would hand to other actors"
	case "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE":
		// A savepoint's name is a word; COMMIT PREPARED 'id' commits
		// another transaction's writes. AND CHAIN opens a transaction, as
		// BEGIN does, and so does SQLite's SAVEPOINT outside one.
		if verb == "SAVEPOINT" && d == SQLite {
			return "SAVEPOINT opens a transaction when none is open"
		}
		for i := 1; i < len(toks); i++ {
			w := text(i)
			if toks[i].Kind != tokWord && toks[i].Kind != tokQuotedIdent || eqFold(w, "PREPARED") {
				return verb + " ... " + truncateText(w) + " is not plain transaction control"
			}
			if kw := queryWordOf(w); kw == qwWrite || kw == qwInto {
				return verb + " ... " + strings.ToUpper(w) + " is not plain transaction control"
			}
			if eqFold(w, "CHAIN") && !eqFold(text(i-1), "NO") {
				return verb + " AND CHAIN opens a transaction the pool would hand to other actors"
			}
		}
		return ""
	case "SET":
		// SET TRANSACTION applies to one transaction; any other SET
		// changes the session, which the pool hands to other requests.
		// MySQL's, outside a transaction, applies to the session's next
		// one: perhaps another actor's.
		if len(toks) > 1 && eqFold(text(1), "TRANSACTION") && d != MySQL {
			for i := 2; i < len(toks); i++ {
				if w := text(i); toks[i].Kind != tokWord && w != "," {
					return "SET TRANSACTION with " + truncateText(w)
				}
			}
			return ""
		}
		return "SET changes the session"
	case "UNLOCK":
		if len(toks) == 2 && (eqFold(text(1), "TABLES") || eqFold(text(1), "TABLE")) {
			return ""
		}
	case "PRAGMA":
		if d == SQLite {
			return pragmaRefusal(stmt, toks)
		}
	}
	return verb + " statement"
}

// explainRefusal judges EXPLAIN (DESCRIBE and DESC in MySQL). EXPLAIN
// ANALYZE runs what it explains, which in PostgreSQL need not be a query
// (CREATE TABLE AS, CREATE MATERIALIZED VIEW, EXECUTE of a prepared
// statement): only a query passes, judged as if it ran, or in MySQL a
// table's name (DESCRIBE t) or another connection's plan (FOR CONNECTION).
func explainRefusal(d Dialect, stmt string, toks []token) string {
	at := func(k int) string {
		if k < len(toks) {
			return stmt[toks[k].Start:toks[k].End]
		}
		return ""
	}
	i := 1
	isQuery := func(w string) bool {
		return w == "(" || eqFold(w, "SELECT") || eqFold(w, "WITH") || eqFold(w, "VALUES") || eqFold(w, "TABLE")
	}
	if d == Postgres && at(i) == "(" && !isQuery(at(i+1)) { // the options
		for depth := 0; i < len(toks); i++ {
			if toks[i].Kind == tokPunct && at(i) == "(" {
				depth++
			} else if toks[i].Kind == tokPunct && at(i) == ")" {
				if depth--; depth == 0 {
					i++
					break
				}
			}
		}
	}
	for i < len(toks) {
		w := at(i)
		switch {
		case eqFold(w, "ANALYZE"), eqFold(w, "ANALYSE"), eqFold(w, "VERBOSE"), eqFold(w, "EXTENDED"),
			eqFold(w, "PARTITIONS"), eqFold(w, "QUERY"), eqFold(w, "PLAN"):
			i++
			continue
		case d == MySQL && eqFold(w, "FORMAT") && at(i+1) == "=":
			i += 3
			continue
		}
		break
	}
	if i >= len(toks) {
		return "EXPLAIN of nothing"
	}
	w := at(i)
	if isQuery(w) {
		return queryRefusal(d, stmt, toks)
	}
	if d == MySQL {
		// DESCRIBE t [column], EXPLAIN FOR CONNECTION n: names,
		// strings and numbers only.
		for k := i; k < len(toks); k++ {
			switch toks[k].Kind {
			case tokWord, tokQuotedIdent, tokString, tokNumber:
				if kw := queryWordOf(at(k)); kw == qwWrite || kw == qwInto {
					return strings.ToUpper(truncateText(at(k))) + " in EXPLAIN"
				}
			default:
				if at(k) != "." {
					return "EXPLAIN of " + strings.ToUpper(truncateText(w)) + " is not known to read"
				}
			}
		}
		return ""
	}
	return "EXPLAIN of " + strings.ToUpper(truncateText(w)) + " (EXPLAIN ANALYZE runs it) is not a query"
}

// queryRefusal judges a query (SELECT, WITH, VALUES, TABLE, EXPLAIN, SHOW
// and their parenthesized forms): it reads unless it holds a writing
// statement (a data-modifying WITH), INTO (SELECT INTO creates a table or
// writes a file or a variable), a row lock, or a call of a function that is
// not known to be free of effects.
func queryRefusal(d Dialect, stmt string, toks []token) string {
	text := func(i int) string {
		if i < 0 || i >= len(toks) {
			return ""
		}
		return stmt[toks[i].Start:toks[i].End]
	}
	for i := range toks {
		t := &toks[i]
		switch t.Kind {
		case tokWord:
		case tokQuotedIdent:
			if d == SQLite {
				if why := pragmaTableRefusal(unquote(text(i))); why != "" {
					return why
				}
			}
			if text(i+1) == "(" && !notACall(stmt, toks, i) {
				return fmt.Sprintf("function %s(): unknown effects", truncateText(text(i)))
			}
			continue
		case tokOperator:
			if d == MySQL && strings.Contains(text(i), ":=") {
				return ":= assigns a variable of the session"
			}
			continue
		default:
			continue
		}
		w := text(i)
		if kw := queryWordOf(w); kw != 0 {
			switch kw {
			case qwWrite: // FOR UPDATE was refused at FOR
				return strings.ToUpper(w) + " writes"
			case qwInto:
				return "SELECT ... INTO writes (a table, a file or a variable)"
			case qwFor:
				if n := text(i + 1); eqFold(n, "UPDATE") || eqFold(n, "SHARE") || eqFold(n, "KEY") || eqFold(n, "NO") {
					return "FOR " + strings.ToUpper(n) + " locks rows"
				}
			case qwLock:
				return "LOCK IN SHARE MODE locks rows"
			case qwNext:
				if eqFold(text(i+1), "VALUE") && eqFold(text(i+2), "FOR") {
					return "NEXT VALUE FOR advances a sequence"
				}
			}
		}
		if d == SQLite {
			// A pragma's table-valued function runs the pragma, named
			// as a table (FROM pragma_optimize) as much as called.
			if why := pragmaTableRefusal(w); why != "" {
				return why
			}
		}
		if text(i+1) != "(" || notACall(stmt, toks, i) {
			continue
		}
		if text(i-1) == "." {
			// A qualified name: only PostgreSQL's own schema is known.
			if !(d == Postgres && eqFold(text(i-2), "PG_CATALOG")) {
				return fmt.Sprintf("function %s.%s(): unknown effects", truncateText(text(i-2)), truncateText(w))
			}
		}
		if why, ok := lookupFold(effects, w); ok {
			return truncateText(w) + "() " + why
		}
		if d == MySQL && eqFold(w, "LAST_INSERT_ID") && text(i+2) != ")" {
			return "LAST_INSERT_ID(x) sets a value of the session"
		}
		if _, ok := lookupFold(pure[d], w); ok {
			continue
		}
		if d == SQLite && len(w) > 7 && eqFold(w[:7], "PRAGMA_") {
			continue // a read pragma: pragmaTableRefusal passed it
		}
		if _, ok := lookupFold(pureAll, w); ok {
			continue
		}
		if _, ok := lookupFold(typeNames, w); ok {
			continue
		}
		if _, ok := lookupFold(notFunctions, w); ok {
			continue
		}
		return fmt.Sprintf("function %s(): unknown effects", truncateText(w))
	}
	return ""
}

// pragmaTableRefusal judges a name, in SQLite, that may be a pragma's
// table-valued function (pragma_NAME): SQLite runs the pragma whether the
// query calls it or names it as a table, so only the pragmas known to read
// pass. It returns "" for any other name.
func pragmaTableRefusal(w string) string {
	if len(w) <= 7 || !eqFold(w[:7], "PRAGMA_") {
		return ""
	}
	if _, ok := lookupFold(pragmasWithArgument, w[7:]); ok {
		return ""
	}
	if _, ok := lookupFold(pragmasRead, w[7:]); ok {
		return ""
	}
	return truncateText(w) + " runs PRAGMA " + truncateText(w[7:]) + ", not known to be a read"
}

// unquote strips the quotes of a quoted identifier ("x", `x`, [x]).
func unquote(s string) string {
	if len(s) >= 2 {
		return s[1 : len(s)-1]
	}
	return s
}

// notACall reports whether the word or quoted identifier at i, followed by
// "(", is not a function call: a type's modifiers after AS or ::, the
// column list of an alias after AS or after a parenthesized expression, or
// a WITH query's column list (x(a, b) AS (...)).
func notACall(stmt string, toks []token, i int) bool {
	if i > 0 {
		p := stmt[toks[i-1].Start:toks[i-1].End]
		if eqFold(p, "AS") || p == "::" || p == ")" {
			return true
		}
	}
	// Skip the parenthesized list; a WITH query's AS follows it, then
	// "(" and a query, MATERIALIZED or NOT MATERIALIZED before the "(".
	// A call can be followed by AS and "(" too, but then by a column
	// definition list (FROM f() AS (a int)), and by AS MATERIALIZED or AS
	// NOT (aliases PostgreSQL accepts), but then by no "(".
	depth := 0
	for j := i + 1; j < len(toks); j++ {
		if toks[j].Kind != tokPunct {
			continue
		}
		switch stmt[toks[j].Start:toks[j].End] {
		case "(":
			depth++
		case ")":
			depth--
			if depth == 0 {
				at := func(k int) string {
					if k < len(toks) {
						return stmt[toks[k].Start:toks[k].End]
					}
					return ""
				}
				if !eqFold(at(j+1), "AS") {
					return false
				}
				k := j + 2
				if eqFold(at(k), "NOT") {
					k++
					if !eqFold(at(k), "MATERIALIZED") {
						return false
					}
				}
				if eqFold(at(k), "MATERIALIZED") {
					k++
				}
				return at(k) == "(" && startsQuery(at(k+1))
			}
		}
	}
	return false
}

// startsQuery reports whether w can start a WITH query's body.
func startsQuery(w string) bool {
	switch {
	case w == "(", eqFold(w, "SELECT"), eqFold(w, "WITH"), eqFold(w, "VALUES"), eqFold(w, "TABLE"),
		eqFold(w, "INSERT"), eqFold(w, "UPDATE"), eqFold(w, "DELETE"), eqFold(w, "MERGE"):
		return true
	}
	return false
}

// pragmaRefusal judges a SQLite PRAGMA: reading one of the pragmas known
// to be reads passes; setting any, or running one that acts (optimize,
// wal_checkpoint, incremental_vacuum, shrink_memory...), does not.
func pragmaRefusal(stmt string, toks []token) string {
	i := 1
	if i+1 < len(toks) && stmt[toks[i+1].Start:toks[i+1].End] == "." {
		i += 2 // schema.name
	}
	if i >= len(toks) || toks[i].Kind != tokWord {
		return "PRAGMA statement"
	}
	name := stmt[toks[i].Start:toks[i].End]
	arg := i+1 < len(toks)
	if _, ok := lookupFold(pragmasWithArgument, name); ok {
		return ""
	}
	if _, ok := lookupFold(pragmasRead, name); ok && !arg {
		return ""
	}
	if arg {
		return "PRAGMA " + truncateText(name) + " with a value changes a setting or acts"
	}
	return "PRAGMA " + truncateText(name) + " is not known to be a read"
}

// eqFold reports whether s equals upper (ASCII upper case) ignoring case.
func eqFold(s, upper string) bool {
	if len(s) != len(upper) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

// lookupFold looks w up, in lower case, in m (whose keys are lower case),
// without allocating.
func lookupFold[V any](m map[string]V, w string) (V, bool) {
	var buf [40]byte
	if len(w) > len(buf) {
		var zero V
		return zero, false
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	v, ok := m[string(buf[:len(w)])]
	return v, ok
}

// truncateText cuts a word quoted in a reason.
func truncateText(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func set(words string) map[string]struct{} {
	m := map[string]struct{}{}
	for _, w := range strings.Fields(words) {
		m[strings.ToLower(w)] = struct{}{}
	}
	return m
}

// verbs are the first words of the statements statementRefusal judges,
// mapped to their upper case (so that judging allocates nothing).
var verbs = func() map[string]string {
	m := map[string]string{}
	for _, w := range strings.Fields(`SELECT WITH VALUES TABLE EXPLAIN DESCRIBE DESC SHOW BEGIN START
		COMMIT END ROLLBACK ABORT SAVEPOINT RELEASE SET UNLOCK PRAGMA`) {
		m[strings.ToLower(w)] = w
	}
	return m
}()

type queryWord uint8

const (
	qwWrite queryWord = iota + 1
	qwInto
	qwFor
	qwLock
	qwNext
)

// queryWordOf returns what w is among the words that make a query more
// than a read, wherever they are (an identifier spelled like one must be
// quoted to pass), or 0. Every word of every query asks, hence a switch
// rather than a map.
func queryWordOf(w string) queryWord {
	if len(w) < 3 || len(w) > 6 {
		return 0
	}
	switch w[0] | 0x20 {
	case 'i':
		if eqFold(w, "INSERT") {
			return qwWrite
		}
		if eqFold(w, "INTO") {
			return qwInto
		}
	case 'u':
		if eqFold(w, "UPDATE") {
			return qwWrite
		}
	case 'd':
		if eqFold(w, "DELETE") {
			return qwWrite
		}
	case 'm':
		if eqFold(w, "MERGE") {
			return qwWrite
		}
	case 'f':
		if eqFold(w, "FOR") {
			return qwFor
		}
	case 'l':
		if eqFold(w, "LOCK") {
			return qwLock
		}
	case 'n':
		if eqFold(w, "NEXT") {
			return qwNext
		}
	}
	return 0
}

// notFunctions are words that a "(" follows without making a call.
var notFunctions = set(`select from where and or not xor in exists any all some as on using join
	lateral values over filter group by having when then else case union intersect except minus
	with recursive distinct array row like ilike between is limit offset fetch order partition
	window rows range groups explain analyze verbose materialized nulls escape at zone similar to
	regexp rlike div cube rollup grouping sets of natural inner left right outer cross full index
	key only tablesample bernoulli system repeatable ordinality columns collate cast table member
	format show describe desc dual straight_join`)

// effects names functions that write or act beyond the query, and what
// they do. Every function outside the pure lists is refused all the same;
// these get a reason that says why.
var effects = map[string]string{
	// PostgreSQL
	"nextval": "advances a sequence", "setval": "sets a sequence",
	"pg_advisory_lock": "takes an advisory lock", "pg_advisory_lock_shared": "takes an advisory lock",
	"pg_advisory_xact_lock": "takes an advisory lock", "pg_advisory_xact_lock_shared": "takes an advisory lock",
	"pg_try_advisory_lock": "takes an advisory lock", "pg_try_advisory_lock_shared": "takes an advisory lock",
	"pg_try_advisory_xact_lock": "takes an advisory lock", "pg_try_advisory_xact_lock_shared": "takes an advisory lock",
	"pg_advisory_unlock": "releases an advisory lock", "pg_advisory_unlock_all": "releases advisory locks",
	"pg_advisory_unlock_shared": "releases an advisory lock",
	"lo_import":                 "writes a large object from a server file", "lo_export": "writes a server file",
	"lo_unlink": "deletes a large object", "lo_create": "creates a large object", "lo_creat": "creates a large object",
	"lo_from_bytea": "creates a large object", "lo_put": "writes a large object", "lowrite": "writes a large object",
	"lo_truncate": "writes a large object",
	"dblink":      "runs SQL on another connection", "dblink_exec": "runs SQL on another connection",
	"dblink_connect": "opens a connection", "dblink_send_query": "runs SQL on another connection",
	"pg_terminate_backend": "ends another session", "pg_cancel_backend": "cancels another session's query",
	"set_config": "changes a setting", "pg_reload_conf": "reloads the server's configuration",
	"pg_rotate_logfile": "rotates the server's log", "pg_switch_wal": "switches the WAL file",
	"pg_create_restore_point": "writes a restore point", "pg_notify": "sends a notification",
	"pg_read_file": "reads a server file", "pg_read_binary_file": "reads a server file",
	"pg_ls_dir": "lists a server directory", "pg_stat_file": "reads a server file's status",
	"query_to_xml": "runs the SQL it is given", "query_to_xmlschema": "runs the SQL it is given",
	"query_to_xml_and_xmlschema": "runs the SQL it is given", "cursor_to_xml": "reads a cursor",
	"txid_current": "assigns a transaction id", "pg_current_xact_id": "assigns a transaction id",
	"pg_logical_emit_message": "writes to the WAL",
	// MySQL and MariaDB
	"get_lock": "takes a named lock", "release_lock": "releases a named lock",
	"release_all_locks": "releases named locks", "load_file": "reads a server file",
	"master_pos_wait": "waits on replication", "source_pos_wait": "waits on replication",
	// SQLite
	"load_extension": "loads native code", "writefile": "writes a file", "readfile": "reads a file",
	"edit": "runs an editor", "fts3_tokenizer": "can register a tokenizer",
}

// pureAll are functions built into the three dialects and known, in each,
// to compute a value and do nothing else.
var pureAll = set(`abs acos asin atan atan2 avg ceil ceiling char coalesce concat concat_ws cos
	count cume_dist current_date current_time current_timestamp date degrees dense_rank exp
	first_value floor format json_object lag last_value lead length ln log log10 lower ltrim max
	min mod nth_value ntile nullif octet_length percent_rank pi power radians rank replace round
	row_number rtrim sign sin sqrt substr substring sum tan trim upper`)

// typeNames are types whose modifiers follow them in parentheses, as in
// CONVERT(x, CHAR(10)) or DECIMAL(10, 2): not calls.
var typeNames = set(`varchar character nchar nvarchar numeric decimal dec float double bit
	varbit timestamp timestamptz time timetz interval binary varbinary datetime int integer
	bigint smallint tinyint mediumint signed unsigned char`)

// pure are, per dialect, the other built-in functions known to compute a
// value and do nothing else. A name not built into the dialect is not
// here: the database would call a function of the application's, whose
// effects are unknown. readonly_catalog_internal_test.go checks the
// PostgreSQL and SQLite lists against the databases' catalogues. SQLite's
// pragma_* table-valued functions of the read pragmas pass too.
var pure = map[Dialect]map[string]struct{}{
	Postgres: set(`age array_agg array_append array_cat array_dims array_fill array_length
		array_lower array_ndims array_position array_positions array_prepend array_remove
		array_replace array_to_json array_to_string array_upper ascii bit_count bit_length bool
		bool_and bool_or btrim cardinality cbrt char_length character_length chr cidr
		clock_timestamp col_description corr cot covar_pop covar_samp current_database
		current_schema current_schemas current_setting date_bin date_part date_trunc daterange
		decode div encode every extract factorial format_type gcd gen_random_uuid generate_series
		greatest has_column_privilege has_schema_privilege has_table_privilege inet_client_addr
		inet_server_addr initcap int4range int8range isempty isfinite json_agg json_array_elements
		json_array_elements_text json_array_length json_build_array json_build_object json_each
		json_each_text json_extract_path json_extract_path_text json_object_agg json_object_keys
		json_strip_nulls json_typeof jsonb_agg jsonb_array_elements jsonb_array_elements_text
		jsonb_array_length jsonb_build_array jsonb_build_object jsonb_each jsonb_each_text
		jsonb_extract_path jsonb_extract_path_text jsonb_insert jsonb_object_agg
		jsonb_object_keys jsonb_path_exists jsonb_path_match jsonb_path_query
		jsonb_path_query_array jsonb_path_query_first jsonb_pretty jsonb_set jsonb_strip_nulls
		jsonb_typeof justify_days justify_hours justify_interval lastval lcm least left localtime
		localtimestamp lower_inf lpad macaddr make_date make_interval make_time make_timestamp
		make_timestamptz md5 mode money now num_nonnulls num_nulls numrange obj_description
		overlay percentile_cont percentile_disc pg_backend_pid pg_column_size
		pg_get_constraintdef pg_get_indexdef pg_get_userbyid pg_get_viewdef pg_has_role
		pg_postmaster_start_time pg_size_pretty pg_sleep pg_typeof phraseto_tsquery
		plainto_tsquery point position quote_ident quote_literal quote_nullable random
		range_merge regexp_count regexp_instr regexp_like regexp_match regexp_matches
		regexp_replace regexp_split_to_array regexp_split_to_table regexp_substr regr_intercept
		regr_slope repeat reverse right row_to_json rpad scale setweight sha224 sha256 sha384
		sha512 split_part starts_with statement_timestamp stddev stddev_pop stddev_samp
		string_agg string_to_array strpos text timeofday timezone to_char to_date to_hex to_json
		to_jsonb to_number to_timestamp to_tsquery to_tsvector transaction_timestamp translate
		trim_scale trunc ts_headline ts_rank ts_rank_cd tsrange tstzrange unnest upper_inf
		var_pop var_samp variance version websearch_to_tsquery width_bucket xmlagg xmlelement
		xmlforest xmlparse xmlserialize xpath xpath_exists`),
	MySQL: set(`adddate addtime against any_value ascii benchmark bin bin_to_uuid bit_and
		bit_length bit_or bit_xor cast char_length character_length charset coercibility
		collation connection_id conv convert convert_tz cot crc32 curdate current_user curtime
		database date_add date_format date_sub datediff day dayname dayofmonth dayofweek
		dayofyear elt export_set extract field find_in_set found_rows from_base64 from_days
		from_unixtime get_format greatest group_concat hex hour if ifnull inet6_aton inet6_ntoa
		inet_aton inet_ntoa instr interval is_ipv4 is_ipv6 is_uuid json_array json_arrayagg
		json_contains json_contains_path json_depth json_extract json_insert json_keys
		json_length json_merge_patch json_merge_preserve json_objectagg json_overlaps
		json_pretty json_query json_quote json_remove json_replace json_search json_set
		json_storage_size json_table json_type json_unquote json_valid json_value last_day
		last_insert_id lcase least left localtime localtimestamp locate log2 lpad make_set
		makedate maketime match md5 microsecond mid minute month monthname now oct ord
		period_add period_diff position pow quarter quote rand regexp regexp_instr regexp_like
		regexp_replace regexp_substr repeat reverse right row_count rpad schema sec_to_time
		second session_user sha sha1 sha2 sleep soundex space stddev stddev_pop stddev_samp
		str_to_date strcmp subdate substring_index subtime sysdate system_user time_to_sec
		timediff timestampadd timestampdiff to_base64 to_days to_seconds truncate ucase unhex
		unix_timestamp user utc_date utc_time utc_timestamp uuid uuid_short uuid_to_bin var_pop
		var_samp variance version week weekday weekofyear weight_string year yearweek`),
	SQLite: set(`changes datetime glob group_concat hex ifnull iif instr json json_array
		json_array_length json_each json_error_position json_extract json_group_array
		json_group_object json_insert json_patch json_pretty json_quote json_remove
		json_replace json_set json_tree json_type json_valid jsonb jsonb_insert jsonb_set
		julianday last_insert_rowid like likelihood likely log2 printf quote random randomblob
		soundex sqlite_compileoption_get sqlite_compileoption_used sqlite_offset
		sqlite_source_id sqlite_version strftime string_agg timediff total total_changes trunc
		typeof unhex unicode unixepoch unlikely zeroblob`),
}

// SQLite pragmas that only read. pragmasWithArgument read with or without
// their argument (a table or index name, or a count); pragmasRead read
// without one, and set something with one.
var (
	pragmasWithArgument = set(`table_info table_xinfo table_list index_list index_info
		index_xinfo foreign_key_list foreign_key_check integrity_check quick_check`)
	pragmasRead = set(`application_id auto_vacuum automatic_index busy_timeout cache_size
		cache_spill cell_size_check checkpoint_fullfsync collation_list compile_options
		data_version database_list defer_foreign_keys encoding foreign_keys freelist_count
		fullfsync function_list hard_heap_limit ignore_check_constraints journal_mode
		journal_size_limit legacy_alter_table locking_mode max_page_count mmap_size
		module_list page_count page_size pragma_list query_only read_uncommitted
		recursive_triggers reverse_unordered_selects schema_version secure_delete
		soft_heap_limit synchronous temp_store threads trusted_schema user_version
		wal_autocheckpoint`)
)
