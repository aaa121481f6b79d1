// Package opa compares policy.Authorizer with the same decisions made by
// the Open Policy Agent. It is a module of its own so that OPA and its
// dependencies stay out of Rampart's go.mod, and it holds only tests:
//
//	cd bench/opa
//	go test -run '^$' -bench . -benchmem -count 6 > /tmp/opa.txt
//	benchstat -col /engine /tmp/opa.txt
//
// The policy is policytest.Bench (200 allow rules), written in Rego three
// ways, each a query prepared once (rego.PrepareForEval) over data kept as
// AST values:
//
//   - opa-rules: rules.rego over the rules as data, tried in turn; the way
//     the policy reads.
//   - opa-indexed: indexed.rego over the path globs indexed by method and
//     caller, as the Authorizer indexes them.
//   - opa-generated: one Rego rule per caller, method and glob, with
//     constants where OPA's rule index can use them.
//
// Paths match as globs over "/"-separated segments (common.rego), and
// TestOPAAgreesWithTheAuthorizer checks on 5000 random requests that all
// three decide as the Authorizer does.
package opa
