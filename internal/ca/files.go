package ca

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// maxFileSize bounds what Load and LoadKeySet read from a file.
const maxFileSize = 1 << 20

// privateDir makes dir (and missing parents) with mode 0700, or checks that
// an existing dir is a directory that only its owner can enter.
func privateDir(dir string) error {
	if dir == "" {
		return errors.New("directory name is empty")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("directory %s has mode %#o, want 0700 (run chmod 700 %s)", dir, perm, dir)
	}
	return nil
}

// newFile is a file to write with writeNewFiles.
type newFile struct {
	name string // within the directory
	data []byte
	perm fs.FileMode
}

// writeNewFiles writes files into dir, none of which may exist yet. Each
// appears under its name only complete and synced (written to a temporary
// file, then hard-linked, which fails rather than replace an existing file).
// If one cannot be written, those already written are removed.
func writeNewFiles(dir string, files []newFile) error {
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(dir, f.name)); err == nil {
			return fmt.Errorf("%s already exists; refusing to overwrite it", filepath.Join(dir, f.name))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	var written []string
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := writeNew(path, f.data, f.perm); err != nil {
			for _, p := range written {
				os.Remove(p)
			}
			return err
		}
		written = append(written, path)
	}
	return syncDir(dir)
}

// writeNew creates path with data and perm; it fails if path exists.
func writeNew(path string, data []byte, perm fs.FileMode) error {
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists; refusing to overwrite it", path)
		}
		return err
	}
	return nil
}

// replaceFile atomically replaces path (or creates it) with data and perm.
func replaceFile(path string, data []byte, perm fs.FileMode) error {
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// writeTemp writes data to a new temporary file beside path, synced, with
// perm, and returns its name.
func writeTemp(path string, data []byte, perm fs.FileMode) (string, error) {
	// CreateTemp makes the file 0600, so a private key is never readable by
	// others, not even while it is being written.
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	_, err = f.Write(data)
	if err == nil && perm != 0o600 {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	// Some file systems cannot sync a directory; the files themselves are
	// synced, so only report real I/O errors.
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) && !errors.Is(err, fs.ErrInvalid) {
		return err
	}
	return nil
}

// readFile reads a file of at most maxFileSize bytes. If private, the file
// must not be accessible to group or others (checked on the open file, so
// it is the file read).
func readFile(path string, private bool) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); private && perm&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %#o, want 0600: a key must be readable by its owner only (run chmod 600 %s)", path, perm, path)
	}
	if fi.Size() > maxFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxFileSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxFileSize)
	}
	return data, nil
}
