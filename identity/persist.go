package identity

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Files of JoinConfig.Dir.
const (
	// SVIDFile holds the private key and the SVID's certificate chain,
	// leaf first, in PEM: one file, so that replacing it is one atomic
	// rename and a crash never leaves a key beside another key's
	// certificate. Mode 0600.
	SVIDFile = "svid.pem"
	// BundleFile holds the trust bundle the SVID came with, in PEM.
	BundleFile = "bundle.pem"
)

// persisted is what a Dir holds.
type persisted struct {
	svid   *x509svid.SVID
	bundle *x509bundle.Bundle
}

// prepareDir creates dir with mode 0700, or narrows an existing one to it:
// it holds a private key.
func prepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("identity: JoinConfig.Dir: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("identity: JoinConfig.Dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("identity: JoinConfig.Dir %s is not a directory", dir)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("identity: JoinConfig.Dir %s is open to other users (mode %v) and cannot be narrowed to 0700: %w", dir, fi.Mode().Perm(), err)
		}
	}
	return nil
}

// corrupt is the error of a Dir whose files cannot be used. It never
// leads to a join with something else: the operator decides.
func corrupt(dir, file, why string) error {
	return fmt.Errorf("identity: %s is unusable (%s); it was not replaced: restore it, or remove %s and %s to join again with a new join token",
		filepath.Join(dir, file), why, filepath.Join(dir, SVIDFile), filepath.Join(dir, BundleFile))
}

// load reads the SVID persisted in dir for service; nil, nil if there is
// none. A file that is there but unreadable, malformed, open to other
// users, or for another service is an error.
func load(dir, service string) (*persisted, error) {
	svidPEM, err := readPrivate(dir, SVIDFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var keyPEM, certPEM []byte
	rest := svidPEM
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "PRIVATE KEY":
			if keyPEM != nil {
				return nil, corrupt(dir, SVIDFile, "two private keys")
			}
			keyPEM = pem.EncodeToMemory(b)
		case "CERTIFICATE":
			certPEM = append(certPEM, pem.EncodeToMemory(b)...)
		default:
			return nil, corrupt(dir, SVIDFile, fmt.Sprintf("a PEM block of type %q", b.Type))
		}
	}
	switch {
	case len(bytes.TrimSpace(rest)) > 0:
		return nil, corrupt(dir, SVIDFile, "bytes that are not PEM")
	case keyPEM == nil:
		return nil, corrupt(dir, SVIDFile, "no private key")
	case certPEM == nil:
		return nil, corrupt(dir, SVIDFile, "no certificate")
	}
	// Parse checks that the key is the leaf certificate's.
	svid, err := x509svid.Parse(certPEM, keyPEM)
	if err != nil {
		return nil, corrupt(dir, SVIDFile, err.Error())
	}
	if want, err := ServiceID(svid.ID.TrustDomain(), service); err != nil || svid.ID != want {
		return nil, fmt.Errorf("identity: %s holds the SVID of %s, not of service %s: give each service its own JoinConfig.Dir",
			filepath.Join(dir, SVIDFile), svid.ID, service)
	}
	bundlePEM, err := readPrivate(dir, BundleFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, corrupt(dir, BundleFile, "missing beside "+SVIDFile)
	}
	if err != nil {
		return nil, err
	}
	bundle, err := x509bundle.Parse(svid.ID.TrustDomain(), bundlePEM)
	if err != nil {
		return nil, corrupt(dir, BundleFile, err.Error())
	}
	return &persisted{svid: svid, bundle: bundle}, nil
}

// readPrivate reads a file of dir that must not be open to other users.
func readPrivate(dir, name string) ([]byte, error) {
	path := filepath.Join(dir, name)
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("identity: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, corrupt(dir, name, "not a regular file")
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("identity: %s is open to other users (mode %v): it holds a private key; chmod 600 it", path, fi.Mode().Perm())
	}
	const limit = 1 << 20 // a chain and a bundle are a few KiB
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if len(data) > limit {
		return nil, corrupt(dir, name, "larger than 1 MiB")
	}
	return data, nil
}

// save writes svid and bundle to dir, each file replaced atomically: the
// bundle first, so that the SVID file, the one that matters, is never
// beside a bundle older than the one it came with.
func save(dir string, svid *x509svid.SVID, bundle *x509bundle.Bundle) error {
	bundlePEM, err := bundle.Marshal()
	if err != nil {
		return fmt.Errorf("identity: save bundle: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(svid.PrivateKey)
	if err != nil {
		return fmt.Errorf("identity: save SVID: %w", err)
	}
	var svidPEM bytes.Buffer
	pem.Encode(&svidPEM, &pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	for _, c := range svid.Certificates {
		pem.Encode(&svidPEM, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	if err := writeAtomic(dir, BundleFile, bundlePEM); err != nil {
		return err
	}
	return writeAtomic(dir, SVIDFile, svidPEM.Bytes())
}

// writeAtomic replaces dir/name with data, mode 0600: a temporary file in
// dir, synced, renamed over it, and the directory synced, so that after a
// crash the file is the old one or the new one, whole.
func writeAtomic(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, "."+name+".*") // mode 0600
	if err != nil {
		return fmt.Errorf("identity: save %s: %w", name, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		return fmt.Errorf("identity: save %s: %w", name, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("identity: save %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("identity: save %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("identity: save %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("identity: save %s: %w", name, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil { // make the rename durable; not possible everywhere
		d.Sync()
		d.Close()
	}
	return nil
}
