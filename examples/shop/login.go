package shop

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/rampartsec/rampart"
)

// The accounts the shop is seeded with, and the password of one of them:
// the demo's honest user logs in with it.
const (
	DemoUser     = "ana@example.com"
	DemoPassword = "moka-pot-at-dawn"
)

// passwordIterations is the PBKDF2-SHA256 cost of a password check. It is
// low for a sample whose demo sends a credential-stuffing run through it
// on a laptop; a real service follows current advice (hundreds of
// thousands), or uses scrypt or argon2.
const passwordIterations = 4096

// seedPasswords gives the seeded accounts their passwords, once.
func (s *Shop) seedPasswords(ctx context.Context) error {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM passwords`).Scan(&n); err != nil {
		return fmt.Errorf("shop: count passwords: %w", err)
	}
	if n > 0 {
		return nil
	}
	for _, u := range [][2]string{{DemoUser, DemoPassword}, {"bo@example.com", "kettle-and-burr-51"}} {
		salt := make([]byte, 16)
		rand.Read(salt)
		hash, err := hashPassword(u[1], salt)
		if err != nil {
			return err
		}
		if _, err := s.db.ExecContext(ctx, `INSERT INTO passwords (email, salt, hash) VALUES (?, ?, ?)`, u[0], salt, hash); err != nil {
			return fmt.Errorf("shop: seed passwords: %w", err)
		}
	}
	return nil
}

func hashPassword(password string, salt []byte) ([]byte, error) {
	return pbkdf2.Key(sha256.New, password, salt, passwordIterations, 32)
}

// unknownSalt is the salt a login name that names no account is checked
// against, so that it costs what a known one does.
var unknownSalt = make([]byte, 16)

// Credentials is the body of POST /login.
type Credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// login checks a password and reports the attempt with rampart.TrackLogin:
// the name as typed, whether it names an account, whether it succeeded.
// Detection counts failures for names that name no account across
// addresses (credential stuffing). A name that names no account costs the
// same hash as one that does, and both fail with the same answer, so the
// answer does not tell which names exist.
func (s *Shop) login(w http.ResponseWriter, r *http.Request) {
	var c Credentials
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&c); err != nil || c.Email == "" || c.Password == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be JSON with email and password"})
		return
	}
	email := strings.ToLower(strings.TrimSpace(c.Email))
	var salt, want []byte
	err := s.db.QueryRowContext(r.Context(), `SELECT salt, hash FROM passwords WHERE email = ?`, email).Scan(&salt, &want)
	exists := err == nil
	switch {
	case errors.Is(err, sql.ErrNoRows):
		salt, want = unknownSalt, make([]byte, 32)
	case err != nil:
		s.fail(w, r, err)
		return
	}
	got, err := hashPassword(c.Password, salt)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok := subtle.ConstantTimeCompare(got, want) == 1 && exists
	l := rampart.Login{Name: c.Email, UserExists: exists, Success: ok}
	if ok {
		l.User = email
		rampart.SetUser(r.Context(), email)
	}
	rampart.TrackLogin(r.Context(), l)
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "wrong email or password"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"user": email})
}
