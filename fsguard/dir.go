package fsguard

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rampartsec/rampart"
)

// Dir is a directory in which an application opens files by names that may
// carry untrusted input. Its operations go through an os.Root, so none of
// them reaches outside the directory whatever the name says, in block and
// monitor mode alike; when an input of the context tries to, Dir reports the
// attack and, in block mode, returns an error wrapping rampart.ErrBlocked
// instead of os.Root's error. It is safe for concurrent use. Close it when
// done.
//
// Names are relative to the directory, with the operating system's
// separators, as for os.Root.
type Dir struct {
	agent *rampart.Agent
	root  *os.Root
	t     target // computed once by New, read-only afterwards
}

// New opens base, which must exist and be a directory, for operations
// checked against the untrusted inputs of their context and reported to
// agent. The directory is the boundary: names may move around inside it
// ("docs/../readme.txt") but not above it.
func New(agent *rampart.Agent, base string) (*Dir, error) {
	if agent == nil {
		return nil, errors.New("fsguard: New: agent is nil")
	}
	if base == "" {
		return nil, errors.New("fsguard: New: base is empty")
	}
	abs, err := filepath.Abs(base)
	if err != nil {
		return nil, fmt.Errorf("fsguard: New: base %q: %w", base, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("fsguard: New: base %q: %w", base, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("fsguard: New: base %q is not a directory", base)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("fsguard: New: base %q: %w", base, err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("fsguard: New: base %q: %w", base, err)
	}
	return &Dir{agent: agent, root: root, t: target{given: base, base: abs, real: real}}, nil
}

// Name returns the directory's absolute path.
func (d *Dir) Name() string { return d.t.base }

// Root returns the os.Root the directory's operations go through, for the
// operations Dir does not wrap (Mkdir, Rename, Symlink...). They are confined
// to the directory but not checked against inputs, so nothing is reported.
func (d *Dir) Root() *os.Root { return d.root }

// Close closes the directory. Files opened through it stay open.
func (d *Dir) Close() error { return d.root.Close() }

// Check returns nil when name may be used in the directory: no untrusted
// input of ctx makes it leave the directory, by its text or through a
// symbolic link. Otherwise it reports the event and, in block mode, returns
// an error wrapping rampart.ErrBlocked. Dir's operations check their names
// themselves; Check is for names handed to other APIs, such as
// http.ServeFileFS(w, r, d.Root().FS(), name).
func (d *Dir) Check(ctx context.Context, name string) error {
	t := d.t
	f, ok := inspect(ctx, name, &t, true, true)
	if !ok {
		return nil
	}
	return report(ctx, d.agent, "", name, &t, f)
}

// before checks the text of name, before the operation: a NUL byte, an
// absolute name or a ".." above the directory, from an input. Names with
// none of the three (most names) cost a scan of the name and nothing else.
// It reports whether it reported a finding, so that after does not report it
// again in monitor mode.
func (d *Dir) before(ctx context.Context, op, name string) (reported bool, err error) {
	if !suspicious(name) {
		return false, nil
	}
	t := d.t
	f, ok := inspect(ctx, name, &t, true, false)
	if !ok {
		return false, nil
	}
	return true, report(ctx, d.agent, op, name, &t, f)
}

// after runs when os.Root refused or failed an operation: if an input of
// ctx led the name outside the directory through a symbolic link, it
// reports that and, in block mode, returns the blocked error in place of
// os.Root's. os.Root has refused the escape already; looking at links only
// now keeps successful operations free of the extra lookups. os.Root does
// not export its escape error, so every failure is looked at; most are a
// missing file, and cost one lookup per component of the input.
func (d *Dir) after(ctx context.Context, op, name string, reported bool, err error) error {
	if reported {
		return err
	}
	t := d.t
	f, ok := inspect(ctx, name, &t, false, true)
	if !ok {
		return err
	}
	if berr := report(ctx, d.agent, op, name, &t, f); berr != nil {
		return berr
	}
	return err
}

// Open opens name for reading, like os.Root.Open.
func (d *Dir) Open(ctx context.Context, name string) (*os.File, error) {
	return d.openFile(ctx, "open", name, os.O_RDONLY, 0)
}

// Create creates or truncates name, like os.Root.Create.
func (d *Dir) Create(ctx context.Context, name string) (*os.File, error) {
	return d.openFile(ctx, "create", name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// OpenFile opens name with flag and perm, like os.Root.OpenFile.
func (d *Dir) OpenFile(ctx context.Context, name string, flag int, perm fs.FileMode) (*os.File, error) {
	return d.openFile(ctx, "open", name, flag, perm)
}

func (d *Dir) openFile(ctx context.Context, op, name string, flag int, perm fs.FileMode) (*os.File, error) {
	reported, err := d.before(ctx, op, name)
	if err != nil {
		return nil, err
	}
	f, err := d.root.OpenFile(name, flag, perm)
	if err != nil {
		return nil, d.after(ctx, op, name, reported, err)
	}
	return f, nil
}

// ReadFile reads the whole of name, like os.Root.ReadFile.
func (d *Dir) ReadFile(ctx context.Context, name string) ([]byte, error) {
	reported, err := d.before(ctx, "read", name)
	if err != nil {
		return nil, err
	}
	b, err := d.root.ReadFile(name)
	if err != nil {
		return nil, d.after(ctx, "read", name, reported, err)
	}
	return b, nil
}

// WriteFile writes data to name, creating it with perm if needed, like
// os.Root.WriteFile.
func (d *Dir) WriteFile(ctx context.Context, name string, data []byte, perm fs.FileMode) error {
	reported, err := d.before(ctx, "write", name)
	if err != nil {
		return err
	}
	if err := d.root.WriteFile(name, data, perm); err != nil {
		return d.after(ctx, "write", name, reported, err)
	}
	return nil
}

// Stat returns name's FileInfo, following symbolic links, like
// os.Root.Stat.
func (d *Dir) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	reported, err := d.before(ctx, "stat", name)
	if err != nil {
		return nil, err
	}
	fi, err := d.root.Stat(name)
	if err != nil {
		return nil, d.after(ctx, "stat", name, reported, err)
	}
	return fi, nil
}

// Remove removes the file or empty directory name, like os.Root.Remove. A
// symbolic link is removed, not what it points to.
func (d *Dir) Remove(ctx context.Context, name string) error {
	reported, err := d.before(ctx, "remove", name)
	if err != nil {
		return err
	}
	if err := d.root.Remove(name); err != nil {
		return d.after(ctx, "remove", name, reported, err)
	}
	return nil
}

// ReadDir reads the directory name and returns its entries sorted by file
// name, like os.ReadDir.
func (d *Dir) ReadDir(ctx context.Context, name string) ([]fs.DirEntry, error) {
	reported, err := d.before(ctx, "read dir", name)
	if err != nil {
		return nil, err
	}
	f, err := d.root.Open(name)
	if err != nil {
		return nil, d.after(ctx, "read dir", name, reported, err)
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, err
}
