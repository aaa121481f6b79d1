package main

import (
	"strings"
	"testing"
)

// TestHelpNeverPrintsASecret runs every command's -h with every variable
// the binary reads set to a secret, as in a shell where the admin token is
// exported: flag defaults are printed by -h, and none may come from them.
func TestHelpNeverPrintsASecret(t *testing.T) {
	secrets := map[string]string{
		"RAMPART_TOKEN":      "rat_S3CRETadminTOKENnotToBePrinted",
		"RAMPART_POSTGRES":   "postgres://rampart:S3CRETpgPASSWORD@db.internal/rampart",
		"RAMPART_JOIN_TOKEN": "rjt_S3CRETjoinTOKEN",
		"RAMPART_CA_KEK":     "S3CRETkekS3CRETkekS3CRETkekS3CRETkek00000=",
	}
	for name, value := range secrets {
		t.Setenv(name, value)
	}
	for _, cmd := range [][]string{
		{"init"}, {"server"}, {"gateway"}, {"demo"}, {"token", "create"},
		{"decisions", "add"}, {"decisions", "list"}, {"decisions", "rm"},
		{"events"}, {"policy", "apply"}, {"policy", "show"},
		{"services"}, {"services", "revoke"}, {"services", "reinstate"},
	} {
		for _, help := range []string{"-h", "-help", "--help"} {
			var out, errOut strings.Builder
			args := append(append([]string{}, cmd...), help)
			run(t.Context(), args, &out, &errOut)
			printed := out.String() + errOut.String()
			if !strings.Contains(printed, "-") {
				t.Errorf("%q printed no help: %q", args, printed)
			}
			for name, value := range secrets {
				for _, part := range []string{value, "S3CRET"} {
					if strings.Contains(printed, part) {
						t.Errorf("%q printed %s (%q):\n%s", args, name, part, printed)
					}
				}
			}
		}
	}
}
