package control

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/postgres"
	"github.com/rampartsec/rampart/internal/store/sqlite"
)

// Layout of a data directory made by Init.
const (
	CADir          = "ca"               // the CA (ca.Save) and the key-encryption key of the actor-token keys (KEKFile)
	AdminTokenFile = "admin-token.hash" // hex SHA-256 of the admin token, 0600
)

// An admin token is "rat_" and 32 random bytes in unpadded base64url.
const adminTokenPrefix = "rat_"

// NewAdminToken returns a fresh admin token and its SHA-256 hash, which is
// all the control plane keeps.
func NewAdminToken() (plaintext string, hash []byte) {
	var b [32]byte
	rand.Read(b[:])
	plaintext = adminTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return plaintext, HashAdminToken(plaintext)
}

// HashAdminToken returns the SHA-256 of an admin token.
func HashAdminToken(plaintext string) []byte {
	h := sha256.Sum256([]byte(plaintext))
	return h[:]
}

// Init creates a data directory (mode 0700): the SQLite store, a CA for
// trustDomain, the key-encryption key of the actor-token keys (which the
// store keeps, sealed), and an admin token, whose plaintext it returns
// (once: only its hash is kept). It refuses a directory that exists and is
// not empty.
func Init(ctx context.Context, dir string, trustDomain string) (adminToken string, err error) {
	return InitWith(ctx, dir, trustDomain, InitOptions{})
}

// InitOptions are the choices of InitWith.
type InitOptions struct {
	// CACertPEM and CAKeyPEM, if set, are an existing root (a certificate
	// and its PKCS #8, PKCS #1 or SEC 1 private key) to issue SVIDs with,
	// instead of generating one: an organisation's own CA, or a root kept
	// offline that signed this one. Both or neither.
	CACertPEM, CAKeyPEM []byte
	// CAKEK, if set, is the key-encryption key (ca.KEKSize bytes) the CA
	// key is sealed under (ca.SealedKeyFile); keep it outside the data
	// directory, and give it to every server that opens the directory
	// (OpenConfig.CAKEK). Without it the CA key is kept in the clear
	// (ca.KeyFile), as for tests: a server warns at each start.
	CAKEK []byte
}

// InitWith is Init with options.
func InitWith(ctx context.Context, dir string, trustDomain string, opts InitOptions) (adminToken string, err error) {
	if (opts.CACertPEM == nil) != (opts.CAKeyPEM == nil) {
		return "", errors.New("control: init: give both the CA certificate and its key, or neither")
	}
	td, err := spiffeid.TrustDomainFromString(trustDomain)
	if err != nil {
		return "", fmt.Errorf("control: init: trust domain %q: %w", trustDomain, err)
	}
	entries, err := os.ReadDir(dir)
	switch {
	case err == nil && len(entries) > 0:
		return "", fmt.Errorf("control: init: %s is not empty (already initialized?); choose another directory", dir)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("control: init: %w", err)
	}
	existed := err == nil
	// A failed init leaves nothing behind, so that it can be run again.
	defer func() {
		if err == nil {
			return
		}
		if !existed {
			os.RemoveAll(dir)
			return
		}
		made, _ := os.ReadDir(dir)
		for _, e := range made {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("control: init: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", fmt.Errorf("control: init: %w", err)
	}
	var c *ca.CA
	if opts.CACertPEM != nil {
		c, err = ca.Import(td, opts.CACertPEM, opts.CAKeyPEM)
	} else {
		c, err = ca.Generate(td, ca.Config{})
	}
	if err != nil {
		return "", fmt.Errorf("control: init: %w", err)
	}
	if opts.CAKEK != nil {
		err = c.SaveSealed(filepath.Join(dir, CADir), opts.CAKEK)
	} else {
		err = c.Save(filepath.Join(dir, CADir))
	}
	if err != nil {
		return "", fmt.Errorf("control: init: %w", err)
	}
	kek := ca.NewKEK()
	if err := ca.WriteKEKFile(filepath.Join(dir, CADir, KEKFile), kek); err != nil {
		return "", fmt.Errorf("control: init: %w", err)
	}
	s, err := sqlite.Open(ctx, sqlite.Config{Dir: dir})
	if err != nil {
		return "", fmt.Errorf("control: init: %w", err)
	}
	if err := publishBundle(ctx, s, c); err != nil {
		s.Close()
		return "", fmt.Errorf("control: init: %w", err)
	}
	if _, err := OpenActorKeys(ctx, ActorKeysConfig{Store: s, KEK: kek, TrustDomain: td.Name()}); err != nil {
		s.Close()
		return "", fmt.Errorf("control: init: %w", err)
	}
	if err := s.Close(); err != nil {
		return "", fmt.Errorf("control: init: %w", err)
	}
	token, hash := NewAdminToken()
	path := filepath.Join(dir, AdminTokenFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("control: init: %w", err)
	}
	_, err = f.WriteString(hex.EncodeToString(hash) + "\n")
	if err = errors.Join(err, f.Sync(), f.Close()); err != nil {
		return "", fmt.Errorf("control: init: %w", err)
	}
	return token, nil
}

// Data is what a server needs from its data directory.
type Data struct {
	Store          store.Store
	CA             *ca.CA
	ActorKeys      *ActorKeys // kept in Store; call its Run to rotate them
	AdminTokenHash []byte
}

// OpenConfig configures OpenData.
type OpenConfig struct {
	// Dir is a data directory made by Init: the CA, the key-encryption key
	// of the actor-token keys and the admin token's hash are read from it.
	Dir string
	// PostgresDSN, if set, selects a PostgreSQL store instead of the SQLite
	// database in Dir: several servers with copies of Dir then share it.
	PostgresDSN string
	// ActorKeyRotation and ActorKeyPublishAhead are the schedule of the
	// actor-token keys (ActorKeysConfig.Rotation and PublishAhead).
	ActorKeyRotation     time.Duration
	ActorKeyPublishAhead time.Duration
	// CAKEK is the key-encryption key of the CA key (InitOptions.CAKEK):
	// required if the data directory keeps the CA key sealed. Given for a
	// directory that keeps it in the clear, OpenData seals it (see
	// OpenData).
	CAKEK []byte
	// Logger is the store's and the actor keys'; nil discards their
	// messages.
	Logger *slog.Logger
}

// OpenData opens a data directory made by Init and its store, makes sure
// the store publishes the CA's trust bundle, and opens the actor-token keys
// kept in the store. Close the Store when done.
//
// A data directory made before the actor-token keys lived in the store has
// them in CADir/actor-keys.pem and no KEKFile: OpenData then makes the
// KEKFile, and seeds the store from that file, which is not read again.
func OpenData(ctx context.Context, cfg OpenConfig) (*Data, error) {
	dir := cfg.Dir
	raw, err := os.ReadFile(filepath.Join(dir, AdminTokenFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("control: %s is not a data directory (no %s); run 'rampart init -data %s' first", dir, AdminTokenFile, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("control: open data: %w", err)
	}
	hash, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(hash) != sha256.Size {
		return nil, fmt.Errorf("control: open data: %s is not a hex SHA-256 hash", AdminTokenFile)
	}
	c, err := openCA(filepath.Join(dir, CADir), cfg.CAKEK, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("control: open data: %w", err)
	}
	var s store.Store
	if cfg.PostgresDSN != "" {
		s, err = postgres.Open(ctx, postgres.Config{DSN: cfg.PostgresDSN, Logger: cfg.Logger})
	} else {
		s, err = sqlite.Open(ctx, sqlite.Config{Dir: dir, Logger: cfg.Logger})
	}
	if err != nil {
		return nil, fmt.Errorf("control: open data: %w", err)
	}
	if err := publishBundle(ctx, s, c); err != nil {
		s.Close()
		return nil, fmt.Errorf("control: open data: %w", err)
	}
	keys, err := openActorKeys(ctx, s, c, cfg)
	if err != nil {
		s.Close()
		return nil, err
	}
	return &Data{Store: s, CA: c, ActorKeys: keys, AdminTokenHash: hash}, nil
}

// openCA opens the data directory's CA: sealed, with kek; in the clear,
// sealing it first if kek is given, or with a warning at each start if not.
func openCA(dir string, kek []byte, logger *slog.Logger) (*ca.CA, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	sealed, err := ca.IsSealed(dir)
	if err != nil {
		return nil, err
	}
	if !sealed && kek != nil {
		if err := ca.Seal(dir, kek); err != nil {
			return nil, err
		}
		logger.Warn("control: sealed the CA key under the key-encryption key given; the file that held it in the clear is deleted, "+
			"but copies of the data directory made before (backups, snapshots) still hold it: rotate the CA if they may have leaked",
			"dir", dir, "kek_id", ca.KEKID(kek))
		sealed = true
	}
	if !sealed {
		logger.Warn("control: the CA key is stored in the clear: anyone with a copy of the data directory can issue any identity; "+
			"give a key-encryption key (rampart server -ca-kek-file FILE, or RAMPART_CA_KEK) to seal it",
			"path", filepath.Join(dir, ca.KeyFile))
		return ca.Load(dir)
	}
	c, err := ca.LoadSealed(dir, kek)
	switch {
	case errors.Is(err, ca.ErrKEKRequired):
		return nil, fmt.Errorf("the CA key in %s is sealed: give its key-encryption key (rampart server -ca-kek-file FILE, or the environment variable RAMPART_CA_KEK)", dir)
	case errors.Is(err, ca.ErrWrongKEK):
		return nil, fmt.Errorf("the key-encryption key given does not open the CA key in %s: %w", dir, err)
	}
	return c, err
}

// openActorKeys opens the store's actor-token keys with the data
// directory's KEK, first making the KEK and seeding the store from
// ca.KeySetFile for a data directory from before the keys lived in the
// store.
func openActorKeys(ctx context.Context, s store.Store, c *ca.CA, cfg OpenConfig) (*ActorKeys, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	caDir := filepath.Join(cfg.Dir, CADir)
	kekPath := filepath.Join(caDir, KEKFile)
	pemPath := filepath.Join(caDir, ca.KeySetFile)
	_, _, err := s.ActorKeys(ctx)
	stored := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("control: open data: %w", err)
	}
	kek, err := ca.ReadKEKFile(kekPath)
	switch {
	case errors.Is(err, fs.ErrNotExist) && stored:
		return nil, fmt.Errorf("control: open data: %s is missing, and the store holds actor-token keys sealed under a key-encryption key: "+
			"copy %s from the data directory of a replica over the same store", kekPath, KEKFile)
	case errors.Is(err, fs.ErrNotExist):
		kek = ca.NewKEK()
		if err := ca.WriteKEKFile(kekPath, kek); err != nil {
			return nil, fmt.Errorf("control: open data: %w", err)
		}
		logger.Warn("control: created the key-encryption key of the actor-token keys; give every replica's data directory this same file",
			"path", kekPath)
	case err != nil:
		return nil, fmt.Errorf("control: open data: %w", err)
	}
	var seed *ca.KeySet
	if !stored {
		seed, err = ca.LoadKeySet(caDir, ca.KeySetConfig{})
		switch {
		case err == nil:
			logger.Info("control: seeding the store's actor-token keys from the data directory; that file is no longer read",
				"path", pemPath)
		case errors.Is(err, fs.ErrNotExist):
			seed = nil
		default:
			return nil, fmt.Errorf("control: open data: %w", err)
		}
	} else if _, err := os.Stat(pemPath); err == nil {
		logger.Info("control: the actor-token keys are kept in the store; this file is no longer read and may be deleted", "path", pemPath)
	}
	return OpenActorKeys(ctx, ActorKeysConfig{
		Store: s, KEK: kek, TrustDomain: c.TrustDomain().Name(),
		Rotation: cfg.ActorKeyRotation, PublishAhead: cfg.ActorKeyPublishAhead,
		Seed: seed, Logger: logger,
	})
}

// publishBundle stores the CA's bundle unless the store has it already.
func publishBundle(ctx context.Context, s store.Store, c *ca.CA) error {
	b, err := s.TrustBundle(ctx)
	switch {
	case err == nil && bytes.Equal(b.Data, c.BundlePEM()):
		return nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return err
	}
	_, err = s.PutTrustBundle(ctx, c.BundlePEM())
	return err
}

// ServerCertLifetime is how long the API's TLS certificate is valid; a
// server makes a new one at each start, and again at half-life.
const ServerCertLifetime = 30 * 24 * time.Hour

// TLSConfig returns the API server's TLS configuration: a certificate from
// c for hosts (DNS names and IP addresses), with a key that never leaves
// memory, renewed at half-life.
func TLSConfig(c *ca.CA, hosts []string) (*tls.Config, error) {
	issue := func() (*tls.Certificate, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		cert, err := c.SignServerCert(key.Public(), hosts, ServerCertLifetime)
		if err != nil {
			return nil, err
		}
		return &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}, nil
	}
	first, err := issue()
	if err != nil {
		return nil, fmt.Errorf("control: TLS: %w", err)
	}
	cur := newCertHolder(first)
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Renewal authenticates with the current SVID: ask for a client
		// certificate, and let the handler verify it against the CA.
		ClientAuth: tls.RequestClientCert,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return cur.get(issue)
		},
	}, nil
}
