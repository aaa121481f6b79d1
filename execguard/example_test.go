package execguard_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/execguard"
)

// A queue worker marks its job's file name as untrusted. Correctly quoted,
// or passed as $1, the name is one word of the script and the command runs;
// concatenated between quotes it does not escape, the same name adds a
// command, and the guard refuses it: Output returns the refusal, as it
// returns a program that is not found, and nothing starts.
func ExampleGuard_CommandContext() {
	agent, err := rampart.New(rampart.Config{Service: "thumbnails", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer agent.Close(context.Background())
	guard, err := execguard.New(agent)
	if err != nil {
		fmt.Println(err)
		return
	}

	name := "x'; touch pwned; '"
	ctx := rampart.WithUntrusted(context.Background(), "job", name)
	run := func(how string, cmd *exec.Cmd) {
		out, err := cmd.Output()
		var blocked *rampart.BlockedError
		switch {
		case errors.As(err, &blocked):
			fmt.Printf("%s: refused: %s\n", how, blocked.Event.Reason)
		case err != nil:
			fmt.Printf("%s: %v\n", how, err)
		default:
			fmt.Printf("%s: %s", how, out)
		}
	}

	quoted := "'" + strings.ReplaceAll(name, "'", `'\''`) + "'"
	run("quoted", guard.CommandContext(ctx, "sh", "-c", "printf '%s\\n' "+quoted))
	run("as $1", guard.CommandContext(ctx, "sh", "-c", `printf '%s\n' "$1"`, "sh", name))
	run("concatenated", guard.CommandContext(ctx, "sh", "-c", "printf '%s\\n' '"+name+"'"))
	// Output:
	// quoted: x'; touch pwned; '
	// as $1: x'; touch pwned; '
	// concatenated: refused: input closes a single-quoted string and adds a command separator ';'
}

// An argument that starts with a dash from the input is an option; after
// "--" it is an operand.
func ExampleGuard_Check() {
	agent, err := rampart.New(rampart.Config{Service: "repos", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer agent.Close(context.Background())
	guard, err := execguard.New(agent)
	if err != nil {
		fmt.Println(err)
		return
	}

	path := "--output=/etc/cron.d/job"
	ctx := rampart.WithUntrusted(context.Background(), "query", path)

	err = guard.Check(ctx, "git", "log", "--oneline", path)
	fmt.Println("as an argument:", errors.Is(err, rampart.ErrBlocked))

	err = guard.Check(ctx, "git", "log", "--oneline", "--", path)
	fmt.Println("after --:", err)
	// Output:
	// as an argument: true
	// after --: <nil>
}
