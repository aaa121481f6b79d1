package sqlguard

import (
	"fmt"
	"strings"
)

// Dialect selects the lexical rules of a database.
type Dialect uint8

const (
	// Postgres: standard strings (no backslash escapes), E'' strings,
	// $tag$ dollar quoting, "identifiers", nested /* */ comments, $1 params.
	Postgres Dialect = iota + 1
	// MySQL covers MySQL and MariaDB: '' and "" strings with backslash
	// escapes, `identifiers`, # and "-- " comments, /*! executable */ code.
	MySQL
	// SQLite: '' strings, "", `` and [] identifiers, ?NNN :name @name $name.
	SQLite
)

// String returns the dialect's name ("postgres", "mysql", "sqlite"), which
// ParseDialect reads back.
func (d Dialect) String() string {
	switch d {
	case Postgres:
		return "postgres"
	case MySQL:
		return "mysql"
	case SQLite:
		return "sqlite"
	}
	return fmt.Sprintf("Dialect(%d)", d)
}

// ParseDialect accepts the names printed by Dialect.String and the usual
// aliases ("postgresql", "pgx", "mariadb", "sqlite3").
func ParseDialect(name string) (Dialect, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "postgres", "postgresql", "pgx", "pg":
		return Postgres, nil
	case "mysql", "mariadb":
		return MySQL, nil
	case "sqlite", "sqlite3":
		return SQLite, nil
	}
	return 0, fmt.Errorf("sqlguard: unknown dialect %q (want postgres, mysql or sqlite)", name)
}

func (d Dialect) valid() bool { return d >= Postgres && d <= SQLite }

// backslashEscapes reports whether plain '...' strings treat backslash as an
// escape character. PostgreSQL does not since standard_conforming_strings
// became the default (9.1); MySQL does unless NO_BACKSLASH_ESCAPES is set.
func (d Dialect) backslashEscapes() bool { return d == MySQL }

// stringEscapes is how the dialect decodes a plain '...' string.
func (d Dialect) stringEscapes() escStyle {
	if d.backslashEscapes() {
		return escMySQL
	}
	return escDouble
}

// keywords are words lexed as tokKeyword. Only reporting depends on them: the
// injection rule looks at token boundaries, not at which words they are.
var keywords = func() map[string]struct{} {
	m := map[string]struct{}{}
	for _, w := range strings.Fields(`ALL ALTER AND ANY AS ASC BENCHMARK BETWEEN BY CASE CAST CREATE
		CROSS DELETE DESC DISTINCT DROP ELSE END EXCEPT EXEC EXECUTE EXISTS FALSE FROM FULL GRANT
		GROUP HAVING IF IN INNER INSERT INTERSECT INTO IS JOIN LEFT LIKE LIMIT NOT NULL OFFSET ON
		OR ORDER OUTER PG_SLEEP REGEXP RIGHT SELECT SET SLEEP TABLE THEN TRUE TRUNCATE UNION UPDATE
		USING VALUES WHEN WHERE WITH XOR`) {
		m[w] = struct{}{}
	}
	return m
}()

func isKeyword(w string) bool {
	if len(w) < 2 || len(w) > 9 {
		return false
	}
	var buf [9]byte
	for i := 0; i < len(w); i++ {
		c := w[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	_, ok := keywords[string(buf[:len(w)])]
	return ok
}
