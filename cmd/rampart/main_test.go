package main

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestCommandLineMistakesAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"frobnicate"}, {"demo", "-mode", "log"}, {"demo", "extra"}, {"demo", "-nope"}} {
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
