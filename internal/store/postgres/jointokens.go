package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

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
	if _, err := s.pool.Exec(ctx, `INSERT INTO join_tokens (hash, service, created_ns, expires_ns) VALUES ($1, $2, $3, $4)`,
		hash, service, tok.Created.UnixNano(), tok.Expires.UnixNano()); err != nil {
		return "", store.JoinToken{}, fmt.Errorf("postgres: create join token: %w", err)
	}
	return plaintext, tok, nil
}

// ConsumeJoinToken implements store.Store. One UPDATE claims the token: of
// concurrent claims, the others wait for its row lock and then find it
// used. The token is looked up by its hash in the database; no secret is
// compared in Go.
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
	err = s.pool.QueryRow(ctx, `UPDATE join_tokens SET used_ns = $1
		WHERE hash = $2 AND used_ns IS NULL AND expires_ns > $1 AND service = $3
		RETURNING created_ns, expires_ns`, now.UnixNano(), hash, service).Scan(&created, &expires)
	if err == nil {
		tok.Created, tok.Expires = fromNS(created), fromNS(expires)
		return tok, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return store.JoinToken{}, fmt.Errorf("postgres: consume join token: %w", err)
	}
	// Refused: say why. A concurrent winner shows here as used.
	var owner string
	var used *int64
	err = s.pool.QueryRow(ctx, `SELECT service, expires_ns, used_ns FROM join_tokens WHERE hash = $1`, hash).Scan(&owner, &expires, &used)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		err = store.ErrTokenUnknown
	case err != nil:
	case used != nil:
		err = store.ErrTokenUsed
	case expires <= now.UnixNano():
		err = store.ErrTokenExpired
	default:
		err = store.ErrTokenWrongService
	}
	return store.JoinToken{}, fmt.Errorf("postgres: consume join token: %w", err)
}
