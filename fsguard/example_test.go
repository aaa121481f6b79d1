package fsguard_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/fsguard"
)

// A queue worker reads the file its job names. The name is untrusted, so
// the worker marks it: the report is read, the traversal refused, and a
// name that only looks like one is an ordinary missing file.
func ExampleGuard() {
	agent, err := rampart.New(rampart.Config{Service: "worker", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer agent.Close(context.Background())
	base, err := os.MkdirTemp("", "uploads")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(base)
	if err := os.WriteFile(filepath.Join(base, "report.v2.pdf"), []byte("%PDF-1.7"), 0o644); err != nil {
		fmt.Println(err)
		return
	}

	files, err := fsguard.New(agent, base)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer files.Close()

	for _, name := range []string{"report.v2.pdf", "../../etc/passwd", "..%2f..%2fetc%2fpasswd"} {
		ctx := rampart.WithUntrusted(context.Background(), "job", name)
		data, err := files.ReadFile(ctx, name)
		var blocked *rampart.BlockedError
		switch {
		case errors.As(err, &blocked):
			fmt.Printf("%s: blocked: %s\n", name, blocked.Event.Reason)
		case errors.Is(err, fs.ErrNotExist):
			fmt.Printf("%s: no such file\n", name)
		default:
			fmt.Printf("%s: %q\n", name, data)
		}
	}
	// Output:
	// report.v2.pdf: "%PDF-1.7"
	// ../../etc/passwd: blocked: input climbs 2 directories above the base
	// ..%2f..%2fetc%2fpasswd: no such file
}

// Code that keeps its os.Open calls checks the name apart from the
// directory, then joins them. Here the application decodes a name that
// arrived double-encoded: the guard recognises the input in what the
// application made of it.
func ExampleGuard_Check() {
	agent, err := rampart.New(rampart.Config{Service: "files", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer agent.Close(context.Background())
	base, err := os.MkdirTemp("", "files")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(base)
	files, err := fsguard.New(agent, base) // once, at start-up
	if err != nil {
		fmt.Println(err)
		return
	}
	defer files.Close()

	param := "..%2f..%2fetc%2fpasswd" // r.URL.Query().Get("file") of ?file=..%252f..%252fetc%252fpasswd
	ctx := rampart.WithUntrusted(context.Background(), "query", param)
	name, err := url.PathUnescape(param)
	if err != nil {
		fmt.Println(err)
		return
	}

	err = files.Check(ctx, name)
	var blocked *rampart.BlockedError
	if errors.As(err, &blocked) {
		fmt.Println(blocked.Event.Reason)
		path, _, _ := strings.Cut(blocked.Event.Detail, " → ") // then where it leads
		fmt.Println(strings.TrimPrefix(path, files.Name()))
		return
	}
	f, err := os.Open(filepath.Join(files.Name(), name))
	fmt.Println(f, err)
	// Output:
	// input (percent-decoded) climbs 2 directories above the base
	// /⟦../../etc/passwd⟧
}
