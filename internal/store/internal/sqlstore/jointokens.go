package sqlstore

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

const joinTokenColumns = `id, service, created_ns, expires_ns, uses, joins, last_used_ns, used_ns, revoked_ns`

// scanJoinToken reads the joinTokenColumns of a row.
func scanJoinToken(row interface{ Scan(...any) error }) (store.JoinToken, error) {
	var t store.JoinToken
	var created, expires int64
	var joins int
	var lastUsed, used, revoked *int64
	if err := row.Scan(&t.ID, &t.Service, &created, &expires, &t.Uses, &joins, &lastUsed, &used, &revoked); err != nil {
		return t, err
	}
	t.Created, t.Expires = fromNS(created), fromNS(expires)
	t.LastUsed, t.Used, t.Revoked = fromNullNS(lastUsed), fromNullNS(used), fromNullNS(revoked)
	t.UsesLeft = max(t.Uses-joins, 0)
	return t, nil
}

// CreateJoinToken implements store.Store.
func (s *Store) CreateJoinToken(ctx context.Context, spec store.JoinTokenSpec) (string, store.JoinToken, error) {
	spec, err := store.ValidateJoinTokenSpec(spec)
	if err != nil {
		return "", store.JoinToken{}, err
	}
	plaintext, id, hash := store.NewJoinToken()
	now := time.Now().UTC()
	tok := store.JoinToken{ID: id, Service: spec.Service, Created: now, Expires: now.Add(spec.TTL), Uses: spec.Uses, UsesLeft: spec.Uses}
	err = s.writeAlone(ctx, s.w, func(q Querier) error {
		_, err := q.Exec(ctx, `INSERT INTO join_tokens (hash, id, service, created_ns, expires_ns, uses) VALUES ($1, $2, $3, $4, $5, $6)`,
			hash, id, spec.Service, tok.Created.UnixNano(), tok.Expires.UnixNano(), spec.Uses)
		return err
	})
	if err != nil {
		return "", store.JoinToken{}, fmt.Errorf("%s: create join token: %w", s.d.Name, err)
	}
	return plaintext, tok, nil
}

// ConsumeJoinToken implements store.Store. The token is found by its id
// (or, made before ids, by the hash of its secret), the hash compared in
// constant time, and one UPDATE spends a use only while one is left: of
// concurrent claims, the others wait for the write lock (SQLite's, or
// PostgreSQL's row lock), and those past the last use find it used up.
func (s *Store) ConsumeJoinToken(ctx context.Context, plaintext, service string) (store.JoinToken, error) {
	id, hash, err := store.ParseJoinToken(plaintext)
	if err != nil {
		return store.JoinToken{}, err
	}
	if err := store.ValidateServiceName(service); err != nil {
		return store.JoinToken{}, err
	}
	now := time.Now().UTC()
	var tok store.JoinToken
	err = s.writeAlone(ctx, s.w, func(q Querier) error {
		// refused says why the token, as stored now, cannot be used
		// (nil if it can).
		refused := func() error {
			where, key := `id = $1`, any(id)
			if id == "" {
				where, key = `hash = $1`, hash
			}
			var stored []byte
			var err error
			var joins int
			var revoked *int64
			var expires int64
			err = q.QueryRow(ctx, `SELECT hash, id, service, expires_ns, uses, joins, revoked_ns FROM join_tokens WHERE `+where, key).
				Scan(&stored, &tok.ID, &tok.Service, &expires, &tok.Uses, &joins, &revoked)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return store.ErrTokenUnknown
			case err != nil:
				return err
			case subtle.ConstantTimeCompare(stored, hash) != 1:
				return store.ErrTokenUnknown // the right id with a forged secret
			case revoked != nil:
				return store.ErrTokenRevoked
			case joins >= tok.Uses:
				return store.ErrTokenUsed
			case expires <= now.UnixNano():
				return store.ErrTokenExpired
			case tok.Service != service:
				return store.ErrTokenWrongService
			}
			return nil
		}
		if err := refused(); err != nil {
			return err
		}
		// The conditions again, under the write lock: a concurrent
		// claim may have spent the last use, or an admin revoked it.
		row := q.QueryRow(ctx, `UPDATE join_tokens
			SET joins = joins + 1, last_used_ns = $1, used_ns = CASE WHEN joins + 1 >= uses THEN $1 ELSE NULL END
			WHERE id = $2 AND joins < uses AND revoked_ns IS NULL AND expires_ns > $1 AND service = $3
			RETURNING `+joinTokenColumns, now.UnixNano(), tok.ID, service)
		got, err := scanJoinToken(row)
		if errors.Is(err, sql.ErrNoRows) {
			if err := refused(); err != nil {
				return err
			}
			return store.ErrTokenUsed
		}
		tok = got
		return err
	})
	if err != nil {
		return store.JoinToken{}, fmt.Errorf("%s: consume join token: %w", s.d.Name, err)
	}
	return tok, nil
}

// JoinTokens implements store.Store.
func (s *Store) JoinTokens(ctx context.Context, f store.JoinTokenFilter) ([]store.JoinToken, error) {
	var where []string
	var a args
	if f.Service != "" {
		if err := store.ValidateServiceName(f.Service); err != nil {
			return nil, err
		}
		where = append(where, `service = `+a.add(f.Service))
	}
	if !f.All {
		where = append(where, `joins < uses AND revoked_ns IS NULL AND expires_ns > `+a.add(time.Now().UnixNano()))
	}
	q := `SELECT ` + joinTokenColumns + ` FROM join_tokens`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY created_ns DESC, id`
	rows, err := s.r.Query(ctx, q, a...)
	if err != nil {
		return nil, fmt.Errorf("%s: join tokens: %w", s.d.Name, err)
	}
	defer rows.Close()
	out := []store.JoinToken{}
	for rows.Next() {
		t, err := scanJoinToken(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: join tokens: %w", s.d.Name, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: join tokens: %w", s.d.Name, err)
	}
	return out, nil
}

// RevokeJoinToken implements store.Store.
func (s *Store) RevokeJoinToken(ctx context.Context, id string) (store.JoinToken, error) {
	if !store.ValidJoinTokenID(id) {
		return store.JoinToken{}, fmt.Errorf("%s: join token %q: %w", s.d.Name, id, store.ErrNotFound)
	}
	var tok store.JoinToken
	err := s.writeAlone(ctx, s.w, func(q Querier) error {
		var err error
		tok, err = scanJoinToken(q.QueryRow(ctx, `UPDATE join_tokens SET revoked_ns = COALESCE(revoked_ns, $1)
			WHERE id = $2 RETURNING `+joinTokenColumns, time.Now().UnixNano(), id))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return store.JoinToken{}, fmt.Errorf("%s: join token %s: %w", s.d.Name, id, store.ErrNotFound)
	}
	if err != nil {
		return store.JoinToken{}, fmt.Errorf("%s: revoke join token: %w", s.d.Name, err)
	}
	return tok, nil
}
