package main

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestCommandLineMistakesAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"frobnicate"}, {"demo", "-mode", "log"}, {"demo", "extra"}, {"demo", "-nope"}, {"server", "-data", "unused", "-detect=false", "-detect-allow", "user:ops"}} {
		var out, errOut strings.Builder
		err := run(context.Background(), args, &out, &errOut)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("run(%q) = %v, want a usage error", args, err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("run(%q) error spans lines: %q", args, err)
		}
	}
}

func TestVersionAndHelpSucceed(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"help"}} {
		var out, errOut strings.Builder
		if err := run(context.Background(), args, &out, &errOut); err != nil || out.Len() == 0 {
			t.Errorf("run(%q) = %v, output %q", args, err, out.String())
		}
	}
}

func TestDemoOnceTellsTheStoryAndExits(t *testing.T) {
	var out, errOut strings.Builder
	if err := run(t.Context(), []string{"demo", "-once", "-addr", "127.0.0.1:0"}, &out, &errOut); err != nil {
		t.Fatalf("demo -once: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	for _, want := range []string{"export RAMPART_TOKEN=rat_", "1. A classic SQL injection", "4. Server-side request forgery", "stored it: ssrf, blocked by shop", "5. Credential stuffing", "origin    credential-stuffing-distributed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo -once printed no %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "keeps serving") {
		t.Errorf("demo -once went on serving:\n%s", out.String())
	}
}
