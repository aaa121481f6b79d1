package execguard_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/execguard"
)

// A queue worker marks its job's file name as untrusted. Correctly quoted,
// or passed as $1, the name is one word of the script and the command runs;
// concatenated between quotes it does not escape, the same name adds a
// command, and the guard refuses it before anything starts.
func ExampleGuard_Command() {
	agent, _ := rampart.New(rampart.Config{Service: "thumbnails", Logger: slog.New(slog.DiscardHandler)})
	defer agent.Close(context.Background())
	guard, _ := execguard.New(agent)

	name := "x'; touch pwned; '"
	ctx := rampart.WithUntrusted(context.Background(), "job", name)

	quoted := "'" + strings.ReplaceAll(name, "'", `'\''`) + "'"
	cmd, err := guard.Command(ctx, "sh", "-c", "printf '%s\\n' "+quoted)
	if err == nil {
		out, _ := cmd.Output()
		fmt.Printf("quoted: %s", out)
	}

	cmd, err = guard.Command(ctx, "sh", "-c", `printf '%s\n' "$1"`, "sh", name)
	if err == nil {
		out, _ := cmd.Output()
		fmt.Printf("as $1: %s", out)
	}

	_, err = guard.Command(ctx, "sh", "-c", "printf '%s\\n' '"+name+"'")
	var blocked *rampart.BlockedError
	if errors.As(err, &blocked) {
		fmt.Println("concatenated:", blocked.Event.Reason)
	}
	// Output:
	// quoted: x'; touch pwned; '
	// as $1: x'; touch pwned; '
	// concatenated: input closes a single-quoted string and adds a command separator ';'
}

// An argument that starts with a dash from the input is an option; after
// "--" it is an operand.
func ExampleGuard_Check() {
	agent, _ := rampart.New(rampart.Config{Service: "repos", Logger: slog.New(slog.DiscardHandler)})
	defer agent.Close(context.Background())
	guard, _ := execguard.New(agent)

	path := "--output=/etc/cron.d/job"
	ctx := rampart.WithUntrusted(context.Background(), "query", path)

	err := guard.Check(ctx, "git", "log", "--oneline", path)
	fmt.Println("as an argument:", errors.Is(err, rampart.ErrBlocked))

	err = guard.Check(ctx, "git", "log", "--oneline", "--", path)
	fmt.Println("after --:", err)
	// Output:
	// as an argument: true
	// after --: <nil>
}
