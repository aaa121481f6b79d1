package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// A join token is "rjt_", its id (16 hex digits, public: lists and
// revocations name it), "." and 32 random bytes in unpadded base64url, the
// secret. The prefix lets secret scanners and people recognise one. A store
// finds the token by its id and compares the SHA-256 of the secret with the
// one it keeps in constant time, so that the time an answer takes tells
// nothing about the secret. Tokens made before ids existed, "rjt_" and the
// secret alone, are still read: they are found by the hash of their secret.
const (
	joinTokenPrefix = "rjt_"
	joinTokenIDLen  = 16 // hex digits
)

// NewJoinToken returns a fresh join token, its id and the SHA-256 hash of
// its secret, which is all a store keeps.
func NewJoinToken() (plaintext, id string, hash []byte) {
	var b, i [32]byte
	rand.Read(b[:]) // never fails (crypto/rand documents it)
	rand.Read(i[:joinTokenIDLen/2])
	h := sha256.Sum256(b[:])
	id = hex.EncodeToString(i[:joinTokenIDLen/2])
	return joinTokenPrefix + id + "." + base64.RawURLEncoding.EncodeToString(b[:]), id, h[:]
}

// ParseJoinToken returns the id of a join token ("" for a token made before
// ids existed) and the hash of its secret. A token that is in neither
// format is ErrTokenUnknown.
func ParseJoinToken(plaintext string) (id string, hash []byte, err error) {
	enc, ok := strings.CutPrefix(plaintext, joinTokenPrefix)
	if !ok {
		return "", nil, ErrTokenUnknown
	}
	if len(enc) > joinTokenIDLen && enc[joinTokenIDLen] == '.' {
		id, enc = enc[:joinTokenIDLen], enc[joinTokenIDLen+1:]
		if !ValidJoinTokenID(id) {
			return "", nil, ErrTokenUnknown
		}
	}
	if len(enc) != base64.RawURLEncoding.EncodedLen(32) {
		return "", nil, ErrTokenUnknown
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(enc)
	if err != nil || len(b) != 32 {
		return "", nil, ErrTokenUnknown
	}
	h := sha256.Sum256(b)
	return id, h[:], nil
}

// ValidJoinTokenID reports whether id has the form of a join token's id.
func ValidJoinTokenID(id string) bool {
	if len(id) != joinTokenIDLen {
		return false
	}
	for _, c := range []byte(id) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// NewDecisionID returns a random decision id: 16 hex digits, short enough to
// type in `rampart decisions rm`.
func NewDecisionID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
