// Package sqlguard blocks SQL injection at the query, with no false positives
// on input that stays data.
//
// Wrap the database once, at start-up:
//
//	guard, err := sqlguard.New(agent, sqlguard.Postgres)
//	db, err := guard.Open(stdlib.GetDefaultDriver(), dsn) // or guard.OpenDB(connector)
//
// Every statement then passes through [Guard.Check] before the driver sees
// it: Query, Exec, Prepare and QueryRow, with or without a context, on the
// DB, a Conn or a Tx. Arguments of parameterized statements are never
// inspected: they cannot change the statement.
//
// # The rule
//
// For each untrusted input of the context (see rampart.Inputs) that occurs in
// the statement, each occurrence is placed among the statement's tokens, lexed
// with the rules of the dialect. The input is an injection when an occurrence
// is not wholly inside one token: when it reaches the quote or comment
// delimiters of a literal (it ends or opens a string), or spans two or more
// tokens (it adds keywords, operators, a comment). An input wholly inside
// the content of one string literal, quoted identifier or comment is data,
// whatever it contains, provided the database reads it as it is (next
// section): a correctly escaped O'Brien, or "'; DROP TABLE t; --" passed as a
// parameter.
//
// # Inputs that change their value inside a literal
//
// Inside a string or quoted identifier, the input must also be read by the
// database as what it is. An occurrence in which the database reads an escape
// sequence — a doubled quote standing for one quote; in MySQL strings and
// PostgreSQL E'...' strings a backslash escape (\', \\, \n, \0, \x27...); in
// U&'...' strings \0027 — is stored as something else than the application
// received (and perhaps validated): two quotes become one, a pair of quotes
// inside a word becomes one quote, \' becomes a quote. That is an injection
// into the literal, although the statement keeps its structure; so is an
// input whose last byte escapes the byte after it (a\ before the closing
// quote, in MySQL).
//
// The same input escaped by the application is data: the guard decodes the
// literal as the database does, and an occurrence is allowed when the decoded
// literal holds the input (or the form in which the guard found it, see
// below) at a place whose raw text covers the occurrence. So the input
// O'Brien with its quote doubled, and the input of two quotes written as
// four (six with the delimiters; or each quote backslash-escaped in MySQL),
// pass; two quotes concatenated raw, stored as one, do not. What cannot be
// told apart is not blocked: when a statement reads exactly as if the input
// had been escaped (an escaped quote of the application's own text right
// before the raw input), the guard takes it as escaped. An input made only
// of quotes, backslash escapes and white space (two quotes, \n) is the same
// bytes as the escaped quotes and backslashes of any text — O'Brien escaped
// holds two quotes — so inside a literal it is judged only where it reaches
// the literal's start or end, where an application concatenates a value (the
// whole value, or the edge of a LIKE pattern). Dollar-quoted strings,
// [identifiers] and comments decode nothing: any input in them is read as it
// is.
//
// # Signed numbers
//
// A sign followed at once by a number, where the statement expects an operand
// (after a comparison or another operator, "(" or ",", or a word such as
// WHERE, LIMIT, OFFSET, AND, THEN, BETWEEN), is one value: WHERE id = -1,
// LIMIT -1, OFFSET +3 and x > -2.5 pass. The sign must be a token of its own
// ("#-" is one PostgreSQL operator), and it must not follow an operand: after
// a column, a number or a closing parenthesis it subtracts (the input -1
// after "5"), which is structure and blocks. "--1" is a comment in PostgreSQL
// and SQLite and two signs in MySQL: an injection either way, as are "- 1",
// "- -1" and "-1 OR 1=1".
//
// # Short inputs and single tokens
//
// Inputs shorter than two bytes are not considered: one character can open a
// string or a comment but cannot use it, nor hold an escape sequence, so on
// its own it can only make the statement fail, and single characters occur
// in every statement. Inputs made only of quotes and white space are judged
// only where they lie wholly inside a literal, by the rule above: elsewhere
// they coincide with the delimiters that the application writes around them
// and with its empty strings, and raw they can only open or close literals —
// the statement then fails, or another input that the shift lets out of a
// literal is caught. In MySQL, which joins adjacent
// strings, the input "' '" concatenated raw makes two empty strings of one:
// that change of value is not seen. An input that is exactly one unquoted
// token (a word, a number, an operator), possibly with white space around it,
// is allowed: it cannot add structure, and common words ("name", "order",
// "select") that the statement also uses as identifiers or keywords must not
// block. The price is that a lone column name concatenated into a numeric
// context (WHERE id = id) passes.
//
// # Read-only actors
//
// An actor under a read-only decision of the control plane may read, not
// write, whatever the HTTP method of the route: a GET handler that writes
// is refused at the statement, and with rampart.Config.ReadOnlyAtQuery a
// search sent by POST still answers. The Handler marks such a request
// (rampart.ReadOnlyFromContext; rampart.NewReadOnlyContext marks other
// work), and Check then lets a statement run only when every statement of
// it (a batch is split at its semicolons, as the dialect's lexer reads
// them) is known to be a read:
//
//   - SELECT, WITH, VALUES, TABLE and SHOW, or a parenthesized query, and
//     EXPLAIN or DESCRIBE of such a query (EXPLAIN ANALYZE runs what it
//     explains: CREATE TABLE AS, CREATE MATERIALIZED VIEW, EXECUTE are
//     refused; MySQL's DESCRIBE t and EXPLAIN FOR CONNECTION pass), that
//     hold none of: INSERT, UPDATE, DELETE or
//     MERGE anywhere (a WITH query that writes, a write after WITH); INTO
//     (SELECT INTO creates a table, INTO OUTFILE writes a file, INTO @v
//     sets a variable of the session); a row lock (FOR UPDATE, FOR SHARE,
//     FOR NO KEY UPDATE, FOR KEY SHARE, LOCK IN SHARE MODE), refused
//     because it blocks other actors' writes until the transaction ends and
//     PostgreSQL refuses it in a read-only transaction too; NEXT VALUE FOR;
//     MySQL's := assignment; and a call of a function that is not on the
//     dialect's list of built-in functions known to compute a value and do
//     nothing else. So nextval, setval, pg_advisory_lock, lo_import,
//     dblink_exec, pg_terminate_backend, set_config, query_to_xml,
//     GET_LOCK, LOAD_FILE, load_extension and the application's own
//     functions (whose effects the guard cannot know) are refused, as is a
//     function named with a schema other than pg_catalog, LAST_INSERT_ID
//     with an argument (it sets the next answer on the pooled connection),
//     and in SQLite a pragma_* table function that is not a read pragma,
//     called or named as a table. SLEEP,
//     BENCHMARK and pg_sleep write nothing and pass.
//   - COMMIT, END, ROLLBACK, RELEASE, SAVEPOINT (not in SQLite, where it
//     opens a transaction), SET TRANSACTION (PostgreSQL only) and UNLOCK
//     TABLES. BEGIN and START TRANSACTION sent as SQL text, COMMIT or
//     ROLLBACK AND CHAIN, MySQL's SET TRANSACTION and SQLite's SAVEPOINT
//     outside a transaction are refused: they open or set up a transaction
//     that the pool then hands to the next user of the connection, whose
//     writes the actor could roll back. A transaction the application opens
//     with BeginTx still serves a read-only actor. COMMIT PREPARED is
//     refused.
//   - In SQLite, PRAGMA of the pragmas that only read (table_info,
//     index_list, integrity_check..., and user_version, journal_mode... read
//     without a value).
//
// Everything else is refused: INSERT, UPDATE, DELETE, REPLACE, MERGE,
// COPY, LOAD DATA, CALL, EXEC, EXECUTE, DO, DDL, GRANT, SET, LOCK,
// ANALYZE, VACUUM, ATTACH, and any statement the guard does not recognise,
// as is a statement with an unterminated literal. A refused statement is
// reported as a rampart.KindReadOnlyWrite event naming the decision and
// returns an error wrapping rampart.ErrBlocked, in monitor mode too: the
// decision refuses, not the guard.
//
// A built-in's name is not proof that the built-in is called: PostgreSQL
// resolves an unqualified name over the search_path and the argument types,
// so public.lower(integer) of the application is what SELECT lower(1)
// runs. On PostgreSQL the guard therefore reads, on each new connection,
// which of its pure built-in names a function outside pg_catalog also
// bears, and refuses an unqualified call of those for a read-only actor
// (pg_catalog.lower(x) passes). A function created after a connection was
// opened is known from the next connection on; if the catalogue cannot be
// read, what was known stays. MySQL and MariaDB call the built-in for an
// unqualified built-in name. SQLite has no catalogue of functions: one the
// application registers through its driver under a built-in's name is not
// seen.
//
// What it cannot see: a SELECT from a view that calls a function of the
// application's is a read to the guard; so is a PostgreSQL function called
// with attribute notation (t.f for f(t)), or through an operator or a cast
// the application defined.
//
// # What it does not see
//
// The guard matches the input as the application received it, and in the
// forms applications commonly give it before concatenating: trimmed of white
// space, with quotes doubled, with MySQL-style backslash escapes, and
// percent-decoded once more. Each form is judged by the same rule, so escaping
// that is right for the dialect passes and escaping that is wrong for it (a
// backslash before a quote, on PostgreSQL) blocks. Base64 values and JSON
// inside strings are inputs already decoded (see package rampart); other
// transformations (changing case, decompressing) hide the input from the
// guard. A request whose inputs could not all be recorded fails closed (see
// rampart.CheckInputsComplete).
//
// The MySQL dialect assumes the server's default modes: backslash escapes on,
// "..." a string. A server running with NO_BACKSLASH_ESCAPES or ANSI_QUOTES,
// or a connection in a multi-byte character set such as GBK, reads some
// statements differently; PostgreSQL with standard_conforming_strings off
// likewise. Statements built from several inputs are checked
// input by input, so a payload split across two inputs is caught when either
// part adds structure, which the part that leaves a literal always does.
package sqlguard
