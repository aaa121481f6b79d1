package rampart

// Kind is what an event is about. Its values are stable: they are the "kind"
// of an event's JSON, what the control plane stores and filters on
// (rampart events -kind), and what detection and alerts match.
type Kind string

// Event kinds reported by the guards.
const (
	KindSQLInjection     Kind = "sql_injection"     // sqlguard: an input changed a statement's structure or a literal's value
	KindCommandInjection Kind = "command_injection" // execguard: an input became code, a program name or an option
	KindPathTraversal    Kind = "path_traversal"    // fsguard: an input led a file name outside its directory
	KindSSRF             Kind = "ssrf"              // ssrfguard: a host from input reached an internal address
	// KindInputsTruncated is the kind of the event reported for a guarded
	// call made for a request whose inputs could not all be recorded (see
	// CheckInputsComplete).
	KindInputsTruncated Kind = "inputs_truncated"
)

// Event kinds of zero trust.
const (
	KindAuthzDenied      Kind = "authz_denied"        // a service called a route the policy does not allow it
	KindMTLSRefused      Kind = "mtls_refused"        // a connection or request without a valid SVID of the trust domain, or from a revoked service
	KindActorInvalid     Kind = "actor_token_invalid" // a forged, expired or foreign actor token, or one the caller may not hold
	KindActorMissing     Kind = "actor_missing"       // no actor token on a route that requires one
	KindDecisionEnforced Kind = "decision_enforced"   // a request refused by a control-plane decision
	// KindReadOnlyWrite is the kind of the event reported when a guard
	// refuses a statement that could write, made for an actor under a
	// read-only decision (see ReadOnlyFromContext). The event names the
	// decision.
	KindReadOnlyWrite Kind = "read_only_write"

	// KindNoClientCert is the old name of KindMTLSRefused, whose value it
	// has always had.
	//
	// Deprecated: use KindMTLSRefused. KindNoClientCert will be removed in
	// the next release.
	KindNoClientCert = KindMTLSRefused
)
