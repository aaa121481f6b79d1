package ca

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Key custody.
//
// The CA's private key is the key to every identity of the trust domain:
// whoever holds it mints an SVID for any service. It is kept sealed, in
// SealedKeyFile, under a key-encryption key (KEK) that does not live in the
// CA directory: the operator gives it at start (a file on another volume or
// a secrets manager's mount, or an environment variable), so that a copy of
// the data directory (a backup, a snapshot, a stolen disk) gives no CA key.
//
// Sealed form, PEM block "RAMPART SEALED CA KEY", version 1:
//
//	0x01 | KEK id (8 bytes) | nonce (12 bytes) | AES-256-GCM(KEK, nonce, PKCS #8 DER of the key, AAD)
//
// The KEK id is the start of SHA-256 of a label and the KEK: it names the KEK
// without revealing it, so that a wrong KEK is reported as such, not as
// corruption. The additional data binds the sealed key to its header, to
// its purpose (a label), to the trust domain and to the SHA-256 of the CA
// certificate: a sealed key moved next to another certificate or another
// trust domain does not open.
//
// A CA directory with KeyFile instead (in the clear, from before sealing,
// or saved by Save for tests) still loads with Load; the control plane seals
// it when it is given a KEK (see Seal).

// Files and sizes of a sealed CA key.
const (
	SealedKeyFile = "ca.key.sealed" // the sealed private key, PEM, 0600
	KEKSize       = 32              // bytes of a key-encryption key (AES-256)
)

// Errors of sealed keys, for errors.Is.
var (
	// ErrKEKRequired: the CA key is sealed and no key-encryption key was given.
	ErrKEKRequired = errors.New("ca: the CA key is sealed; its key-encryption key is required")
	// ErrWrongKEK: the key-encryption key given is not the one the CA key
	// was sealed under.
	ErrWrongKEK = errors.New("ca: wrong key-encryption key for the CA key")
)

const (
	sealedPEMType   = "RAMPART SEALED CA KEY"
	sealedVersion   = 1
	sealedKEKIDSize = 8
	sealedHeader    = 1 + sealedKEKIDSize
	sealedLabel     = "rampart CA private key\x00"
	kekIDLabel      = "rampart CA KEK id\x00"
)

// NewKEK returns a fresh random key-encryption key.
func NewKEK() []byte {
	k := make([]byte, KEKSize)
	rand.Read(k)
	return k
}

// ParseKEK reads a key-encryption key written as standard base64 (what
// EncodeKEK and WriteKEKFile write), with surrounding space ignored.
func ParseKEK(text string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil || len(k) != KEKSize {
		return nil, fmt.Errorf("ca: a key-encryption key is %d random bytes in standard base64 (44 characters)", KEKSize)
	}
	return k, nil
}

// EncodeKEK writes a key-encryption key in standard base64.
func EncodeKEK(kek []byte) string { return base64.StdEncoding.EncodeToString(kek) }

// ReadKEKFile reads a key-encryption key file: base64, mode 0600 (or
// stricter).
func ReadKEKFile(path string) ([]byte, error) {
	data, err := readFile(path, true)
	if err != nil {
		return nil, fmt.Errorf("ca: key-encryption key: %w", err)
	}
	k, err := ParseKEK(string(data))
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return k, nil
}

// WriteKEKFile writes kek to a new file at path, mode 0600; it never
// overwrites one.
func WriteKEKFile(path string, kek []byte) error {
	if len(kek) != KEKSize {
		return fmt.Errorf("ca: key-encryption key is %d bytes, want %d", len(kek), KEKSize)
	}
	if err := writeNew(path, []byte(EncodeKEK(kek)+"\n"), 0o600); err != nil {
		return fmt.Errorf("ca: key-encryption key: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// KEKID names a key-encryption key without revealing it: 16 hex digits.
func KEKID(kek []byte) string {
	id := kekID(kek)
	return hex.EncodeToString(id[:])
}

func kekID(kek []byte) [sealedKEKIDSize]byte {
	h := sha256.New()
	h.Write([]byte(kekIDLabel))
	h.Write(kek)
	var id [sealedKEKIDSize]byte
	copy(id[:], h.Sum(nil))
	return id
}

func sealedAAD(header []byte, td spiffeid.TrustDomain, certDER []byte) []byte {
	certSum := sha256.Sum256(certDER)
	aad := append([]byte{}, header...)
	aad = append(aad, sealedLabel...)
	aad = append(aad, td.Name()...)
	aad = append(aad, 0)
	return append(aad, certSum[:]...)
}

func gcm(kek []byte) (cipher.AEAD, error) {
	if len(kek) != KEKSize {
		return nil, fmt.Errorf("ca: key-encryption key is %d bytes, want %d", len(kek), KEKSize)
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sealKey returns the CA's private key sealed under kek, as PEM.
func (c *CA) sealKey(kek []byte) ([]byte, error) {
	aead, err := gcm(kek)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		return nil, err
	}
	id := kekID(kek)
	header := append([]byte{sealedVersion}, id[:]...)
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	out := append(append(header, nonce...), aead.Seal(nil, nonce, der, sealedAAD(header, c.td, c.cert.Raw))...)
	clear(der)
	return pem.EncodeToMemory(&pem.Block{Type: sealedPEMType, Bytes: out}), nil
}

// openKey opens a sealed key for td and the certificate certDER, and
// returns it as PKCS #8 PEM.
func openKey(data, kek []byte, td spiffeid.TrustDomain, certDER []byte) ([]byte, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != sealedPEMType || len(strings.TrimSpace(string(rest))) != 0 {
		return nil, fmt.Errorf("%s: not one PEM block of type %q", SealedKeyFile, sealedPEMType)
	}
	b := block.Bytes
	if len(b) < sealedHeader || b[0] != sealedVersion {
		return nil, fmt.Errorf("%s: unknown format (want version %d)", SealedKeyFile, sealedVersion)
	}
	if kek == nil {
		return nil, fmt.Errorf("%w (sealed under KEK id %s)", ErrKEKRequired, hex.EncodeToString(b[1:sealedHeader]))
	}
	aead, err := gcm(kek)
	if err != nil {
		return nil, err
	}
	id := kekID(kek)
	if subtle.ConstantTimeCompare(id[:], b[1:sealedHeader]) != 1 {
		return nil, fmt.Errorf("%w: it was sealed under KEK id %s, this one is %s", ErrWrongKEK,
			hex.EncodeToString(b[1:sealedHeader]), hex.EncodeToString(id[:]))
	}
	if len(b) < sealedHeader+aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%s: truncated", SealedKeyFile)
	}
	nonce := b[sealedHeader : sealedHeader+aead.NonceSize()]
	der, err := aead.Open(nil, nonce, b[sealedHeader+aead.NonceSize():], sealedAAD(b[:sealedHeader], td, certDER))
	if err != nil {
		return nil, fmt.Errorf("%s does not open with this key-encryption key for this certificate and trust domain "+
			"(tampered with, or moved from another CA directory)", SealedKeyFile)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	clear(der)
	return keyPEM, nil
}

// SaveSealed is Save with the private key sealed under kek (SealedKeyFile,
// mode 0600) instead of in the clear: the directory alone gives no key.
func (c *CA) SaveSealed(dir string, kek []byte) error {
	if err := privateDir(dir); err != nil {
		return fmt.Errorf("ca: save: %w", err)
	}
	sealed, err := c.sealKey(kek)
	if err != nil {
		return fmt.Errorf("ca: save: %w", err)
	}
	err = writeNewFiles(dir, []newFile{
		{SealedKeyFile, sealed, 0o600},
		{CertFile, c.certPEM, 0o644},
		{TrustDomainFile, []byte(c.td.Name() + "\n"), 0o644},
	})
	if err != nil {
		return fmt.Errorf("ca: save: %w", err)
	}
	return nil
}

// Seal seals the key of a CA directory kept in the clear (KeyFile) under
// kek: it writes SealedKeyFile, then deletes KeyFile. The deleted file's
// blocks may survive on disk and in earlier backups: rotate the CA if they
// may have leaked.
func Seal(dir string, kek []byte) error {
	c, err := Load(dir)
	if err != nil {
		return err
	}
	sealed, err := c.sealKey(kek)
	if err != nil {
		return fmt.Errorf("ca: seal: %w", err)
	}
	if err := writeNewFiles(dir, []newFile{{SealedKeyFile, sealed, 0o600}}); err != nil {
		return fmt.Errorf("ca: seal: %w", err)
	}
	if err := os.Remove(filepath.Join(dir, KeyFile)); err != nil {
		return fmt.Errorf("ca: seal: the key is sealed, but the file in the clear is left: %w", err)
	}
	return syncDir(dir)
}

// IsSealed reports whether the CA directory keeps its key sealed
// (SealedKeyFile) rather than in the clear.
func IsSealed(dir string) (bool, error) {
	_, err := os.Lstat(filepath.Join(dir, SealedKeyFile))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
}

// LoadSealed reads a CA saved by SaveSealed (or sealed by Seal) from dir,
// opening its key with kek: ErrKEKRequired without one, ErrWrongKEK with
// another. It checks what Load checks.
func LoadSealed(dir string, kek []byte) (*CA, error) {
	c, err := loadSealed(dir, kek, time.Now)
	if err != nil {
		return nil, fmt.Errorf("ca: load %s: %w", dir, err)
	}
	return c, nil
}

func loadSealed(dir string, kek []byte, now func() time.Time) (*CA, error) {
	td, certPEM, err := readPublic(dir)
	if err != nil {
		return nil, err
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, err
	}
	sealed, err := readFile(filepath.Join(dir, SealedKeyFile), true)
	if err != nil {
		return nil, err
	}
	keyPEM, err := openKey(sealed, kek, td, cert.Raw)
	if err != nil {
		return nil, err
	}
	defer clear(keyPEM)
	return importCA(td, certPEM, keyPEM, now)
}
