package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/store"
)

func TestADecisionOnEveryAddressNeedsDashForce(t *testing.T) {
	cp := startControlPlane(t)
	_, err := cp.cli(t, "decisions", "add", "cidr", "0.0.0.0/0")
	if err == nil || !strings.Contains(err.Error(), "-force") {
		t.Fatalf("decisions add cidr 0.0.0.0/0: %v, want a refusal that names -force", err)
	}
	if out, _ := cp.cli(t, "decisions", "list", "-o", "json"); strings.Contains(out, "0.0.0.0/0") {
		t.Fatalf("the refused decision was stored: %s", out)
	}
	out, err := cp.cli(t, "decisions", "add", "-force", "-o", "json", "cidr", "::/0")
	var d store.Decision
	if err != nil || json.Unmarshal([]byte(out), &d) != nil || d.Value != "::/0" {
		t.Fatalf("decisions add -force cidr ::/0: %q, %v", out, err)
	}
}

func TestQuotaFlagsMustBePositiveOrMinusOne(t *testing.T) {
	for _, args := range [][]string{{"-quota-instances", "0"}, {"-quota-rate", "-2"}, {"-quota-watches", "0"}} {
		var out, errOut strings.Builder
		err := run(t.Context(), append([]string{"server", "-data", t.TempDir()}, args...), &out, &errOut)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("server %q: %v, want a usage error naming the flag", args, err)
		}
	}
}
