package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// A join token is "rjt_" and 32 random bytes in unpadded base64url. The
// prefix lets secret scanners and people recognise one.
const joinTokenPrefix = "rjt_"

// NewJoinToken returns a fresh join token and the SHA-256 hash of its random
// bytes, which is all a store keeps.
func NewJoinToken() (plaintext string, hash []byte) {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand documents it)
	h := sha256.Sum256(b[:])
	return joinTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), h[:]
}

// HashJoinToken returns the hash a store looks a token up by. A token that
// is not in the format of NewJoinToken is ErrTokenUnknown.
func HashJoinToken(plaintext string) ([]byte, error) {
	enc, ok := strings.CutPrefix(plaintext, joinTokenPrefix)
	if !ok || len(enc) != base64.RawURLEncoding.EncodedLen(32) {
		return nil, ErrTokenUnknown
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(enc)
	if err != nil || len(b) != 32 {
		return nil, ErrTokenUnknown
	}
	h := sha256.Sum256(b)
	return h[:], nil
}

// NewDecisionID returns a random decision id: 16 hex digits, short enough to
// type in `rampart decisions rm`.
func NewDecisionID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
