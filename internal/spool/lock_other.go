//go:build !unix

package spool

import (
	"fmt"
	"os"
)

// lockDir creates the lock file; without flock, two processes sharing a
// directory are not detected.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return f, nil
}

func unlockDir(f *os.File) { f.Close() }
