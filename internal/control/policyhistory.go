package control

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/store"
)

// The policy's history, the diff between two versions, and the dry run of
// a proposed version against recent traffic.

// PolicyVersionList is the response to GET /v1/policy/versions.
type PolicyVersionList struct {
	Versions []store.PolicyVersion `json:"versions"` // newest first
	// NextBefore continues the list (?before=NextBefore) when it is full.
	NextBefore int64 `json:"next_before,omitempty"`
}

func (h *Handler) getPolicyVersions(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := checkQuery(q, "before", "limit"); err != nil {
		return err
	}
	limit, err := intParam(q, "limit", store.DefaultQueryLimit, 1, store.MaxQueryLimit)
	if err != nil {
		return err
	}
	var before int64
	if s := q.Get("before"); s != "" {
		if before, err = strconv.ParseInt(s, 10, 64); err != nil || before < 1 {
			return badRequest("before", "before must be a policy version")
		}
	}
	vs, err := h.cfg.Store.PolicyVersions(r.Context(), before, limit)
	if err != nil {
		return err
	}
	list := PolicyVersionList{Versions: vs}
	if len(vs) == limit && vs[len(vs)-1].Version > 1 {
		list.NextBefore = vs[len(vs)-1].Version
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// PolicyDiff is the response to GET /v1/policy/diff.
type PolicyDiff struct {
	From    int64  `json:"from"`
	To      int64  `json:"to"`
	Unified string `json:"unified"` // "" when the versions are the same text
	Added   int    `json:"added"`   // lines
	Removed int    `json:"removed"`
}

// PolicyDiff returns the unified diff from policy version from to version
// to (0: the latest; from 0: the one before to).
func (h *Handler) PolicyDiff(ctx context.Context, from, to int64) (PolicyDiff, error) {
	if from < 0 || to < 0 {
		return PolicyDiff{}, badRequest("from", "versions are positive")
	}
	b, err := h.cfg.Store.Policy(ctx, to)
	if err != nil {
		return PolicyDiff{}, err
	}
	if from == 0 {
		from = b.Version - 1
	}
	var a store.Policy
	if from > 0 {
		if a, err = h.cfg.Store.Policy(ctx, from); err != nil {
			return PolicyDiff{}, err
		}
	}
	u, added, removed := unifiedDiff(a.YAML, b.YAML, fmt.Sprintf("v%d", from), fmt.Sprintf("v%d", b.Version))
	return PolicyDiff{From: from, To: b.Version, Unified: u, Added: added, Removed: removed}, nil
}

func (h *Handler) getPolicyDiff(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := checkQuery(q, "from", "to"); err != nil {
		return err
	}
	var v [2]int64
	for i, name := range []string{"from", "to"} {
		if s := q.Get(name); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 1 {
				return badRequest(name, name+" must be a policy version")
			}
			v[i] = n
		}
	}
	d, err := h.PolicyDiff(r.Context(), v[0], v[1])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// DryRun is the response to POST /v1/policy/dryrun: the authorization
// decisions on recent traffic that the proposed policy would change.
//
// Recent traffic is what the control plane has of service-to-service
// calls in the window: the calls refused (authz_denied events: caller,
// method and path, at most MaxDryRunEvents of them, the newest), and the
// calls served, as the instances that heartbeated in the window report
// them (each distinct caller, method and route pattern an instance served
// since it started, without counts; the path evaluated is the pattern with
// each wildcard replaced by a sample segment). Calls from the edge that no
// service reports, and calls made before an instance started, are not
// seen.
type DryRun struct {
	BaseVersion int64           `json:"base_version"` // 0: no policy yet, everything denied
	Since       time.Time       `json:"since"`
	Until       time.Time       `json:"until"`
	Observed    DryRunObserved  `json:"observed"`
	Changes     []DecisionShift `json:"changes"`
	// Truncated: more authz_denied events than MaxDryRunEvents in the
	// window; the oldest were not read.
	Truncated bool `json:"truncated"`
}

// DryRunObserved counts the distinct calls evaluated.
type DryRunObserved struct {
	Denied  int `json:"denied"`  // from authz_denied events
	Allowed int `json:"allowed"` // from the instances' reports
}

// DecisionShift is one call whose authorization the proposed policy
// changes.
type DecisionShift struct {
	Caller  string    `json:"caller"`
	Service string    `json:"service"`
	Method  string    `json:"method"`
	Path    string    `json:"path"`            // the path evaluated
	Route   string    `json:"route,omitempty"` // the route pattern, for calls from reports
	Before  string    `json:"before"`          // "allowed" or "denied" by the current policy
	After   string    `json:"after"`           // by the proposed one
	Count   int       `json:"count"`           // events (denied calls); 0 for reports
	Last    time.Time `json:"last"`            // the latest event, or the instance's last heartbeat
	Source  string    `json:"source"`          // "authz_denied" or "calls"
}

// MaxDryRunEvents bounds the authz_denied events a dry run reads, and
// maxShifts the changes it lists.
const (
	MaxDryRunEvents = 10000
	maxShifts       = 1000
)

// PolicyDryRun evaluates the proposed policy document against the calls
// seen from since to until (see DryRun).
func (h *Handler) PolicyDryRun(ctx context.Context, proposed string, since, until time.Time) (DryRun, error) {
	next, err := policy.Parse(proposed)
	if err != nil {
		return DryRun{}, err
	}
	cur, _, version, err := h.policyAndEdge(ctx)
	if err != nil {
		return DryRun{}, err
	}
	out := DryRun{BaseVersion: version, Since: since.UTC(), Until: until.UTC(), Changes: []DecisionShift{}}
	type call struct{ caller, service, method, path string }
	type seen struct {
		route  string
		count  int
		last   time.Time
		source string
	}
	calls := map[call]*seen{}
	// Refused calls, newest first.
	f := store.EventFilter{Kind: "authz_denied", Since: since, Until: until, Reverse: true, Limit: store.MaxQueryLimit}
	td := h.cfg.CA.TrustDomain()
	read, denied := 0, 0
	for read < MaxDryRunEvents {
		evs, err := h.cfg.Store.QueryEvents(ctx, f)
		if err != nil {
			return DryRun{}, err
		}
		for _, ev := range evs {
			var d struct {
				Caller string `json:"caller"`
				Method string `json:"method"`
				Path   string `json:"path"`
			}
			if json.Unmarshal(ev.Data, &d) != nil || d.Method == "" || d.Path == "" {
				continue
			}
			id, err := spiffeid.FromString(d.Caller)
			if err != nil {
				continue
			}
			caller, err := ca.ServiceFromID(td, id)
			if err != nil {
				continue
			}
			k := call{caller, ev.Service, d.Method, d.Path}
			s, ok := calls[k]
			if !ok {
				s = &seen{last: ev.Time, source: "authz_denied"}
				calls[k] = s
				denied++
			}
			s.count++
		}
		read += len(evs)
		if len(evs) < f.Limit {
			break
		}
		c := evs[len(evs)-1].Cursor()
		f.After = &c
		if read >= MaxDryRunEvents {
			out.Truncated = true
		}
	}
	out.Observed.Denied = denied
	// Served calls, as the instances of the window report them.
	links, err := h.cfg.Store.InstanceLinks(ctx)
	if err != nil {
		return DryRun{}, err
	}
	for _, l := range links {
		if l.LastSeen.Before(since) {
			continue
		}
		for _, c := range l.Callers {
			parts := strings.SplitN(c, " ", 3)
			if len(parts) != 3 {
				continue
			}
			k := call{parts[0], l.Service, parts[1], samplePath(parts[2])}
			s, ok := calls[k]
			if !ok {
				s = &seen{route: parts[2], source: "calls"}
				calls[k] = s
				out.Observed.Allowed++
			}
			if l.LastSeen.After(s.last) && s.source == "calls" {
				s.last = l.LastSeen
			}
		}
	}
	// Evaluate each call under both policies, one authorizer per service.
	type pair struct{ cur, next *policy.Authorizer }
	authz := map[string]pair{}
	verdict := func(allowed bool) string {
		if allowed {
			return "allowed"
		}
		return "denied"
	}
	for k, s := range calls {
		p, ok := authz[k.service]
		if !ok {
			p = pair{cur.Compile(k.service), next.Compile(k.service)}
			authz[k.service] = p
		}
		before, after := p.cur.Allow(k.caller, k.method, k.path), p.next.Allow(k.caller, k.method, k.path)
		if before == after {
			continue
		}
		out.Changes = append(out.Changes, DecisionShift{Caller: k.caller, Service: k.service, Method: k.method, Path: k.path,
			Route: s.route, Before: verdict(before), After: verdict(after), Count: s.count, Last: s.last, Source: s.source})
	}
	slices.SortFunc(out.Changes, func(a, b DecisionShift) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), strings.Compare(a.Caller, b.Caller),
			strings.Compare(a.Path, b.Path), strings.Compare(a.Method, b.Method), strings.Compare(a.Source, b.Source))
	})
	if len(out.Changes) > maxShifts {
		out.Changes, out.Truncated = out.Changes[:maxShifts], true
	}
	return out, nil
}

// samplePath turns a route pattern's path into a path it matches: each
// {name} or {name...} becomes "x", {$} nothing.
func samplePath(pattern string) string {
	segs := strings.Split(pattern, "/")
	for i, s := range segs {
		switch {
		case s == "{$}":
			segs[i] = ""
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
			segs[i] = "x"
		}
	}
	return strings.Join(segs, "/")
}

func (h *Handler) postPolicyDryRun(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := checkQuery(q, "range", "since", "until"); err != nil {
		return err
	}
	since, until, err := rangeParam(q, h.cfg.Now(), DefaultOverviewRange, MaxOverviewRange)
	if err != nil {
		return err
	}
	text, err := readText(w, r, h.cfg.MaxBodyBytes, "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
	if err != nil {
		return err
	}
	if err := store.ValidatePolicy(text); err != nil {
		return err
	}
	d, err := h.PolicyDryRun(r.Context(), text, since, until)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// unifiedDiff returns the unified diff (3 lines of context) that turns a
// into b, and the lines it adds and removes.
func unifiedDiff(a, b, nameA, nameB string) (string, int, int) {
	if a == b {
		return "", 0, 0
	}
	x, y := splitLines(a), splitLines(b)
	ops := diffLines(x, y)
	added, removed := 0, 0
	for _, o := range ops {
		switch o.kind {
		case '+':
			added++
		case '-':
			removed++
		}
	}
	var sb strings.Builder
	sb.WriteString("--- " + nameA + "\n+++ " + nameB + "\n")
	const context = 3
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		// A hunk: from context lines before this change to context lines
		// after the last change within 2*context of the next.
		start := max(0, i-context)
		end := i
		for j := i; j < len(ops); j++ {
			if ops[j].kind != ' ' {
				end = j
			} else if j-end > 2*context {
				break
			}
		}
		stop := min(len(ops), end+context+1)
		aStart, bStart, aLen, bLen := ops[start].a, ops[start].b, 0, 0
		var body strings.Builder
		for _, o := range ops[start:stop] {
			body.WriteByte(o.kind)
			body.WriteString(o.text)
			body.WriteByte('\n')
			if o.kind != '+' {
				aLen++
			}
			if o.kind != '-' {
				bLen++
			}
		}
		fmt.Fprintf(&sb, "@@ -%s +%s @@\n", hunkRange(aStart, aLen), hunkRange(bStart, bLen))
		sb.WriteString(body.String())
		i = stop
	}
	return sb.String(), added, removed
}

// hunkRange is a hunk's "start,length", start 1-based (the line before,
// for an empty range, as diff writes it).
func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// diffOp is one line of a diff: kept (' '), removed ('-') or added ('+'),
// with its index in a and in b (the next one's, for a line not in it).
type diffOp struct {
	kind byte
	text string
	a, b int
}

// maxLCSCells bounds the table of diffLines: past it, the lines between
// the common head and tail are shown as all removed, then all added.
const maxLCSCells = 4 << 20

// diffLines is a line diff by longest common subsequence, after the common
// head and tail are set aside.
func diffLines(x, y []string) []diffOp {
	var ops []diffOp
	head := 0
	for head < len(x) && head < len(y) && x[head] == y[head] {
		ops = append(ops, diffOp{' ', x[head], head, head})
		head++
	}
	tail := 0
	for tail < len(x)-head && tail < len(y)-head && x[len(x)-1-tail] == y[len(y)-1-tail] {
		tail++
	}
	mx, my := x[head:len(x)-tail], y[head:len(y)-tail]
	n, m := len(mx), len(my)
	if n*m > maxLCSCells {
		for i, l := range mx {
			ops = append(ops, diffOp{'-', l, head + i, head})
		}
		for j, l := range my {
			ops = append(ops, diffOp{'+', l, head + n, head + j})
		}
	} else {
		// lcs[i][j]: the longest common subsequence of mx[i:] and my[j:].
		lcs := make([]int32, (n+1)*(m+1))
		at := func(i, j int) int32 { return lcs[i*(m+1)+j] }
		for i := n - 1; i >= 0; i-- {
			for j := m - 1; j >= 0; j-- {
				if mx[i] == my[j] {
					lcs[i*(m+1)+j] = at(i+1, j+1) + 1
				} else {
					lcs[i*(m+1)+j] = max(at(i+1, j), at(i, j+1))
				}
			}
		}
		i, j := 0, 0
		for i < n || j < m {
			switch {
			case i < n && j < m && mx[i] == my[j]:
				ops = append(ops, diffOp{' ', mx[i], head + i, head + j})
				i, j = i+1, j+1
			case i < n && (j == m || at(i+1, j) >= at(i, j+1)):
				ops = append(ops, diffOp{'-', mx[i], head + i, head + j})
				i++
			default:
				ops = append(ops, diffOp{'+', my[j], head + i, head + j})
				j++
			}
		}
	}
	for k := tail; k > 0; k-- {
		ops = append(ops, diffOp{' ', x[len(x)-k], len(x) - k, len(y) - k})
	}
	return ops
}
