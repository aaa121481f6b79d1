package ca

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteNewNeverReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ca.key")
	if err := os.WriteFile(path, []byte("original"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeNew(path, []byte("replacement"), 0o600); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("writeNew over an existing file: %v, want already exists", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "original" {
		t.Fatalf("file now holds %q", data)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("%d entries, want 1: a temporary file was left behind", len(entries))
	}
}

func TestWriteNewFilesRollsBack(t *testing.T) {
	dir := t.TempDir()
	// The second file cannot be written (its name is a missing directory's
	// child), so the first must be removed again.
	err := writeNewFiles(dir, []newFile{
		{"a", []byte("a"), 0o600},
		{filepath.Join("missing", "b"), []byte("b"), 0o600},
	})
	if err == nil {
		t.Fatal("writeNewFiles succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("%d entries left after a failed write, want 0", len(entries))
	}
}
