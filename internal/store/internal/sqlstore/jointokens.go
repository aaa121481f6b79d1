package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// CreateJoinToken implements store.Store.
func (s *Store) CreateJoinToken(ctx context.Context, service string, ttl time.Duration) (string, store.JoinToken, error) {
	if err := store.ValidateServiceName(service); err != nil {
		return "", store.JoinToken{}, err
	}
	ttl, err := store.ValidateJoinTokenTTL(ttl)
	if err != nil {
		return "", store.JoinToken{}, err
	}
	plaintext, hash := store.NewJoinToken()
	now := time.Now().UTC()
	tok := store.JoinToken{Service: service, Created: now, Expires: now.Add(ttl)}
	err = s.writeAlone(ctx, s.w, func(q Querier) error {
		_, err := q.Exec(ctx, `INSERT INTO join_tokens (hash, service, created_ns, expires_ns) VALUES ($1, $2, $3, $4)`,
			hash, service, tok.Created.UnixNano(), tok.Expires.UnixNano())
		return err
	})
	if err != nil {
		return "", store.JoinToken{}, fmt.Errorf("%s: create join token: %w", s.d.Name, err)
	}
	return plaintext, tok, nil
}

// ConsumeJoinToken implements store.Store. One UPDATE claims the token: of
// concurrent claims, the others wait for the write lock (SQLite's, or
// PostgreSQL's row lock) and then find it used. The token is looked up by
// its hash in the database; no secret is compared in Go.
func (s *Store) ConsumeJoinToken(ctx context.Context, plaintext, service string) (store.JoinToken, error) {
	hash, err := store.HashJoinToken(plaintext)
	if err != nil {
		return store.JoinToken{}, err
	}
	if err := store.ValidateServiceName(service); err != nil {
		return store.JoinToken{}, err
	}
	now := time.Now().UTC()
	tok := store.JoinToken{Service: service, Used: now}
	var created, expires int64
	err = s.writeAlone(ctx, s.w, func(q Querier) error {
		err := q.QueryRow(ctx, `UPDATE join_tokens SET used_ns = $1
			WHERE hash = $2 AND used_ns IS NULL AND expires_ns > $1 AND service = $3
			RETURNING created_ns, expires_ns`, now.UnixNano(), hash, service).Scan(&created, &expires)
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		// Refused: say why. A concurrent winner shows here as used.
		var owner string
		var used *int64
		err = q.QueryRow(ctx, `SELECT service, expires_ns, used_ns FROM join_tokens WHERE hash = $1`, hash).Scan(&owner, &expires, &used)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return store.ErrTokenUnknown
		case err != nil:
			return err
		case used != nil:
			return store.ErrTokenUsed
		case expires <= now.UnixNano():
			return store.ErrTokenExpired
		default:
			return store.ErrTokenWrongService
		}
	})
	if err != nil {
		return store.JoinToken{}, fmt.Errorf("%s: consume join token: %w", s.d.Name, err)
	}
	tok.Created, tok.Expires = fromNS(created), fromNS(expires)
	return tok, nil
}
