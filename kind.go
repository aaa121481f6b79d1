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

// Event kinds the application reports about its own business (see
// TrackLogin, TrackEvent and ObjectAccess), and the Handler's request
// summaries. Their action is ActionObserved: none of them refused
// anything. Detection in the control plane reads them as signals (credential
// stuffing, account takeover, one actor walking through other users'
// objects), which only an application can report exactly.
const (
	KindLoginSuccess Kind = "login_success" // TrackLogin: a login that succeeded
	KindLoginFailure Kind = "login_failure" // TrackLogin: a login that failed
	KindObjectAccess Kind = "object_access" // ObjectAccess: an object served to an actor who is not its owner
	KindBusiness     Kind = "business"      // TrackEvent: a business event, its name in Attrs["name"]
	// KindRequestSummary is the kind of the Handler's request summaries
	// (Config.SummaryWindow): one event per actor, route, method and
	// status per window, its Count the requests it stands for.
	KindRequestSummary Kind = "request_summary"
)

// KindEventsDropped is the kind of the event a ControlSink reports once
// the control plane takes events again after its spool dropped some (full,
// or past ControlPlaneConfig.SpoolMaxAge): Count is how many were lost,
// Attrs["spool_full"] and Attrs["expired"] how many for each reason. Its
// action is ActionObserved.
const KindEventsDropped Kind = "events_dropped"
