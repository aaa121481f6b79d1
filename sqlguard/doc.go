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
// with the rules of the dialect ([Tokenize]). The input is an injection when
// an occurrence is not wholly inside one token: when it reaches the quote or
// comment delimiters of a literal (it ends or opens a string), or spans two or
// more tokens (it adds keywords, operators, a comment). An input wholly inside
// the content of one string literal, quoted identifier or comment is data,
// whatever it contains: a correctly escaped O'Brien, or "'; DROP TABLE t; --"
// passed as a parameter.
//
// # Short inputs and single tokens
//
// Inputs shorter than two bytes are not considered: one character can open a
// string or a comment but cannot use it, so on its own it can only make the
// statement fail, and single characters occur in every statement. Inputs made
// only of quotes and white space are not considered either, for the same
// reason; correctly escaped, they coincide with the literal's own quotes. An input
// that is exactly one unquoted token (a word, a number, an operator), possibly
// with white space around it, is allowed: it cannot add structure, and common
// words ("name", "order", "select") that the statement also uses as
// identifiers or keywords must not block. The price is that a lone column name
// concatenated into a numeric context (WHERE id = id) passes.
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
