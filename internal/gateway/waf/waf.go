// Package waf inspects the requests that reach Rampart's edge gateway with
// OWASP Coraza running the OWASP Core Rule Set (CRS) v4, embedded in the
// binary, in anomaly-scoring mode.
//
// One [Firewall] serves every request concurrently: each [Firewall.Inspect]
// runs its own Coraza transaction over the request line, the headers and, if
// asked, the body, and returns a [Verdict]. The body is read only up to
// [Config.BodyLimit] (one byte more, to tell whether it is longer) and then
// handed back to the request intact, so the gateway can proxy it
// afterwards; a body longer than the limit is reported
// ([Verdict.BodyPartial]), never silently passed as inspected.
//
// Only requests are inspected: the CRS response rules are not loaded.
//
// A Verdict never carries a secret: what a rule matched in a cookie, or in
// an argument or header whose name looks like a secret (a password, token,
// key, session), is reported by the variable's name only, and such values
// are blanked wherever else a match would repeat them.
package waf

import (
	"errors"
	"fmt"
	"strings"

	"github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental"
	"github.com/corazawaf/coraza/v3/types"
)

// DefaultBodyLimit is the number of request body bytes inspected when
// [Config.BodyLimit] is zero: 128 KiB, Coraza's recommended in-memory limit,
// which covers ordinary API payloads.
const DefaultBodyLimit = 128 << 10

// MaxBodyLimit bounds [Config.BodyLimit]. Each request being inspected holds
// up to twice its limit in memory (our copy for the proxy, Coraza's for the
// rules), so a gateway with many large uploads in flight would otherwise
// trade its memory for inspection the service behind it can do better.
const MaxBodyLimit = 64 << 20

// Config configures a [Firewall]. The zero value is the CRS default: blocking
// at paranoia level 1 with an inbound anomaly threshold of 5, inspecting the
// first 128 KiB of each body.
type Config struct {
	// ParanoiaLevel is the CRS blocking paranoia level, 1 to 4; 0 means 1.
	// Higher levels run more rules and catch more evasions, at the price of
	// more false positives on ordinary traffic.
	ParanoiaLevel int

	// InboundThreshold is the CRS inbound anomaly score at which a request
	// is blocked; 0 means 5, which one critical rule (SQL injection, XSS,
	// command injection, path traversal) reaches on its own.
	InboundThreshold int

	// DetectionOnly reports what matched but never blocks; use it to tune
	// Exclusions on real traffic before enforcing.
	DetectionOnly bool

	// BodyLimit is how many bytes of each request body are inspected; 0
	// means DefaultBodyLimit, and it may not exceed MaxBodyLimit. Of a
	// longer body, the first BodyLimit bytes are inspected and
	// Verdict.BodyPartial says that the rest was not: the caller must
	// refuse the request or knowingly let the rest pass uninspected (the
	// gateway refuses it with 413 unless the route opts into partial
	// inspection). A JSON body that the limit
	// cuts is inspected as far as it goes, but it must be well formed up to
	// the cut; multipart parts are inspected up to the cut; a form body is
	// inspected as cut, so its last value may be a fragment.
	BodyLimit int64

	// Exclusions turn CRS rules off for the paths where they are known to
	// misfire, as CRS rule exclusions do, and leave them on everywhere else.
	Exclusions []Exclusion
}

// Exclusion turns off rules for the requests whose path starts with
// PathPrefix, like a CRS "ctl:ruleRemoveById" exclusion rule.
type Exclusion struct {
	// PathPrefix is compared with the request path after percent-decoding,
	// on path-segment boundaries: "/api/notes" covers "/api/notes" and
	// "/api/notes/..." but not "/api/notes-old" or "/api/notesXYZ"; a
	// prefix ending in "/" ("/api/notes/") covers only what is below it.
	// It applies only when the path is under it both as sent and with "."
	// and ".." segments resolved, so "/api/notes/../admin" is not under
	// "/api/notes". It must start with "/" and use
	// only letters, digits and -._~!$&()*+,;=:@/ (no "%", quotes, backslash,
	// white space or control characters), since it is written into a rule.
	PathPrefix string

	// RuleIDs are the rules to turn off, each one loaded in the rule set.
	RuleIDs []int
}

// Firewall inspects requests with Coraza and the CRS. It is safe for
// concurrent use, and is meant to be created once and shared.
type Firewall struct {
	newTx         func(opts experimental.Options) types.Transaction
	bodyLimit     int64
	detectionOnly bool
}

// New validates cfg and loads the rule set, several hundred rules parsed
// from the copy of the CRS embedded in the binary; do it once at startup.
func New(cfg Config) (*Firewall, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	loaded := map[int]bool{}
	wafCfg := coraza.NewWAFConfig().
		WithRootFS(coreruleset.FS).
		WithDirectives(directives(cfg))
	// The observer lists every rule loaded, so that an exclusion naming a
	// rule that does not exist (a typo, a rule renumbered by a CRS upgrade)
	// fails here instead of silently excluding nothing.
	wafCfg = experimental.WAFConfigWithRuleObserver(wafCfg, func(rule types.RuleMetadata) {
		loaded[rule.ID()] = true
	})
	engine, err := coraza.NewWAF(wafCfg)
	if err != nil {
		return nil, fmt.Errorf("waf: load the Core Rule Set: %w", err)
	}
	for i, ex := range cfg.Exclusions {
		for j, id := range ex.RuleIDs {
			if !loaded[id] {
				return nil, fmt.Errorf("waf: Config.Exclusions[%d].RuleIDs[%d]: no rule %d in the loaded rule set", i, j, id)
			}
		}
	}
	f := &Firewall{bodyLimit: cfg.BodyLimit, detectionOnly: cfg.DetectionOnly}
	f.newTx = func(experimental.Options) types.Transaction { return engine.NewTransaction() }
	if withOpts, ok := engine.(experimental.WAFWithOptions); ok {
		f.newTx = withOpts.NewTransactionWithOptions
	}
	return f, nil
}

func (c *Config) setDefaults() error {
	switch {
	case c.ParanoiaLevel == 0:
		c.ParanoiaLevel = 1
	case c.ParanoiaLevel < 1 || c.ParanoiaLevel > 4:
		return fmt.Errorf("waf: Config.ParanoiaLevel is %d; it must be 1 to 4 (or 0 for 1)", c.ParanoiaLevel)
	}
	switch {
	case c.InboundThreshold == 0:
		c.InboundThreshold = 5
	case c.InboundThreshold < 0 || c.InboundThreshold > 1_000_000:
		return fmt.Errorf("waf: Config.InboundThreshold is %d; it must be positive (or 0 for 5)", c.InboundThreshold)
	}
	switch {
	case c.BodyLimit == 0:
		c.BodyLimit = DefaultBodyLimit
	case c.BodyLimit < 0 || c.BodyLimit > MaxBodyLimit:
		return fmt.Errorf("waf: Config.BodyLimit is %d; it must be 1 to %d bytes (or 0 for %d)", c.BodyLimit, MaxBodyLimit, DefaultBodyLimit)
	}
	for i, ex := range c.Exclusions {
		if err := validPathPrefix(ex.PathPrefix); err != nil {
			return fmt.Errorf("waf: Config.Exclusions[%d].PathPrefix %q: %w", i, ex.PathPrefix, err)
		}
		if len(ex.RuleIDs) == 0 {
			return fmt.Errorf("waf: Config.Exclusions[%d].RuleIDs is empty", i)
		}
		for j, id := range ex.RuleIDs {
			if id <= 0 {
				return fmt.Errorf("waf: Config.Exclusions[%d].RuleIDs[%d] is %d; rule IDs are positive", i, j, id)
			}
		}
	}
	if len(c.Exclusions) > maxExclusions {
		return fmt.Errorf("waf: Config.Exclusions has %d entries; at most %d are allowed", len(c.Exclusions), maxExclusions)
	}
	return nil
}

// maxExclusions keeps the generated rule IDs inside their block (see
// exclusionRuleID).
const maxExclusions = 1000

// maxPathPrefix bounds a prefix to what fits in a request line.
const maxPathPrefix = 1024

// validPathPrefix accepts a subset of RFC 3986 path characters. The prefix is
// written between double quotes as a SecLang operator argument, so anything
// that could end the argument (a quote), escape (backslash), expand as a
// macro ("%{"), continue the line or start a new directive (white space,
// control characters) must not get through; "%" is refused outright because
// the path it is compared with is already percent-decoded.
func validPathPrefix(p string) error {
	switch {
	case p == "":
		return errors.New("is empty")
	case p[0] != '/':
		return errors.New(`must start with "/"`)
	case len(p) > maxPathPrefix:
		return fmt.Errorf("is longer than %d bytes", maxPathPrefix)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("-._~!$&()*+,;=:@/", c) >= 0 {
			continue
		}
		return fmt.Errorf("byte %d is %q; only letters, digits and -._~!$&()*+,;=:@/ are allowed", i, c)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return errors.New(`has a "." or ".." segment, which no resolved path starts with`)
		}
	}
	return nil
}

// exclusionRuleID numbers the generated exclusion rules in a block of
// ModSecurity's range for local rules (1-99999), away from the CRS's
// 900000-999999 and Coraza's 200000s: 11000 to 12999, two per exclusion at
// most (i and maxExclusions+i).
func exclusionRuleID(i int) int { return 11000 + i }

// truncatedJSONFlag is the transaction variable that Inspect sets when a
// JSON body was cut at the limit but is well formed up to the cut.
const truncatedJSONFlag = "rampart_truncated_json_ok"

// directives returns the SecLang configuration: Coraza's recommended base,
// our overrides, the CRS setup, our CRS settings and exclusions, then the
// CRS request rules.
func directives(cfg Config) string {
	var b strings.Builder
	b.WriteString("Include @coraza.conf-recommended\n")
	engine := "On"
	if cfg.DetectionOnly {
		engine = "DetectionOnly"
	}
	fmt.Fprintf(&b, "SecRuleEngine %s\n", engine)
	// Coraza's limit equals ours and its in-memory limit too, so that it
	// never spools a body to disk; ProcessPartial inspects the prefix of a
	// longer body instead of refusing it, and sets INBOUND_DATA_ERROR, which
	// tells Coraza's multipart parser that a cut part is not malformed.
	fmt.Fprintf(&b, "SecRequestBodyLimit %d\n", cfg.BodyLimit)
	fmt.Fprintf(&b, "SecRequestBodyInMemoryLimit %d\n", cfg.BodyLimit)
	b.WriteString("SecRequestBodyLimitAction ProcessPartial\n")
	// Responses are not inspected, and verdicts are reported to the caller
	// rather than written to an audit log.
	b.WriteString("SecResponseBodyAccess Off\n")
	b.WriteString("SecAuditEngine Off\n")
	// The recommended rule 200002 refuses any body that fails to parse,
	// which is right (a parser that gives up leaves the rest uninspected)
	// except for a JSON body we cut ourselves: that one ends mid-document.
	// Inspect vouches for such a body with truncatedJSONFlag after checking
	// it is well formed up to the cut, and the second rule still refuses it
	// if the parser failed for another reason (depth, size of its keys).
	b.WriteString("SecRuleRemoveById 200002\n")
	fmt.Fprintf(&b, `SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.',logdata:'%%{reqbody_error_msg}',severity:2,chain"
SecRule &TX:%[1]s "@eq 0" "t:none"
SecRule REQBODY_ERROR "!@eq 0" "id:10001,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.',logdata:'%%{reqbody_error_msg}',severity:2,chain"
SecRule TX:%[1]s "@eq 1" "t:none,chain"
SecRule REQBODY_PROCESSOR_ERROR_MSG "!@streq invalid JSON" "t:none"
`, truncatedJSONFlag)

	b.WriteString("Include @crs-setup.conf.example\n")
	// The IDs are those crs-setup.conf.example uses for the same settings.
	// Early blocking lets a request whose headers already exceed the
	// threshold be refused before its body is read. The CRS allows only
	// GET, HEAD, POST and OPTIONS by default (rule 911100), which would
	// refuse every PUT, PATCH and DELETE of the APIs behind the gateway.
	fmt.Fprintf(&b, `SecAction "id:900000,phase:1,pass,t:none,nolog,setvar:tx.blocking_paranoia_level=%d"
SecAction "id:900110,phase:1,pass,t:none,nolog,setvar:tx.inbound_anomaly_score_threshold=%d,setvar:tx.outbound_anomaly_score_threshold=4"
SecAction "id:900120,phase:1,pass,t:none,nolog,setvar:tx.early_blocking=1"
SecAction "id:900200,phase:1,pass,t:none,nolog,setvar:'tx.allowed_methods=GET HEAD POST OPTIONS PUT PATCH DELETE'"
`, cfg.ParanoiaLevel, cfg.InboundThreshold)

	// Exclusions come before the CRS rules, so that ctl:ruleRemoveById runs
	// before the rules it removes, in whichever phase they run. Each chain
	// requires its match on the path as sent and on the resolved path; the
	// ctl actions go on its last rule because non-disruptive actions run as
	// soon as the rule carrying them matches, whatever the rest of the chain.
	// A prefix matches on segment boundaries: "/p/" by "@beginsWith /p/";
	// "/p" by "@streq /p" in one chain or "@beginsWith /p/" in another
	// (SecLang has no "or" within a chain, and a regular expression would
	// need the prefix escaped inside the quoted argument).
	chain := func(id int, op, arg string, ruleIDs []int) {
		fmt.Fprintf(&b, "SecRule REQUEST_FILENAME \"@%s %s\" \"id:%d,phase:1,pass,nolog,t:none,chain\"\n", op, arg, id)
		fmt.Fprintf(&b, `SecRule REQUEST_FILENAME "@%s %s" "t:none,t:normalizePathWin`, op, arg)
		for _, id := range ruleIDs {
			fmt.Fprintf(&b, ",ctl:ruleRemoveById=%d", id)
		}
		b.WriteString("\"\n")
	}
	for i, ex := range cfg.Exclusions {
		if strings.HasSuffix(ex.PathPrefix, "/") {
			chain(exclusionRuleID(i), "beginsWith", ex.PathPrefix, ex.RuleIDs)
			continue
		}
		chain(exclusionRuleID(i), "streq", ex.PathPrefix, ex.RuleIDs)
		chain(exclusionRuleID(maxExclusions+i), "beginsWith", ex.PathPrefix+"/", ex.RuleIDs)
	}
	b.WriteString("Include @owasp_crs/REQUEST-*.conf\n")
	return b.String()
}
