package sqlite

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
	err = s.write(ctx, func(tx *sql.Tx) (int64, error) {
		_, err := tx.ExecContext(ctx, `INSERT INTO join_tokens (hash, service, created_ns, expires_ns) VALUES (?, ?, ?, ?)`,
			hash, service, tok.Created.UnixNano(), tok.Expires.UnixNano())
		return 0, err
	})
	if err != nil {
		return "", store.JoinToken{}, fmt.Errorf("sqlite: create join token: %w", err)
	}
	return plaintext, tok, nil
}

// ConsumeJoinToken implements store.Store. The token is looked up by its
// hash in the database; no secret is compared in Go.
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
	err = s.write(ctx, func(tx *sql.Tx) (int64, error) {
		var created, expires int64
		err := tx.QueryRowContext(ctx, `UPDATE join_tokens SET used_ns = ?
			WHERE hash = ? AND used_ns IS NULL AND expires_ns > ? AND service = ?
			RETURNING created_ns, expires_ns`, now.UnixNano(), hash, now.UnixNano(), service).Scan(&created, &expires)
		if err == nil {
			tok.Created, tok.Expires = fromNS(created), fromNS(expires)
			return 0, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, err
		}
		var owner string
		var used sql.NullInt64
		err = tx.QueryRowContext(ctx, `SELECT service, expires_ns, used_ns FROM join_tokens WHERE hash = ?`, hash).Scan(&owner, &expires, &used)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return 0, store.ErrTokenUnknown
		case err != nil:
			return 0, err
		case used.Valid:
			return 0, store.ErrTokenUsed
		case expires <= now.UnixNano():
			return 0, store.ErrTokenExpired
		default:
			return 0, store.ErrTokenWrongService
		}
	})
	if err != nil {
		return store.JoinToken{}, fmt.Errorf("sqlite: consume join token: %w", err)
	}
	return tok, nil
}
