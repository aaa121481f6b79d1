package control

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// MaxQueryBytes bounds the query string of the dashboard's GET endpoints
// (GET /v1/events included): a filter longer than that is refused with 400,
// code "too_large", before it is parsed.
const MaxQueryBytes = 4096

// eventParams are the parameters of GET /v1/events.
var eventParams = []string{"since", "until", "kind", "service", "action", "attacks", "actor", "actor_ip", "actor_cidr",
	"actor_user", "session_hash", "trace_id", "limit", "cursor", "order", "actor_verified", "actor_user_verified"}

// ParseEventQuery reads the query of GET /v1/events into a validated
// filter, times given as durations counted back from now. A malformed or
// oversized query is an error that the API answers with 400 and that
// names the parameter at fault (an *apiError or a *store.InvalidError).
//
// Parameters: since, until (RFC 3339 or a duration ago: "1h"); kind and
// service, each repeatable (any of, at most store.MaxFilterValues);
// action; attacks=true (action not "observed"); actor (see
// store.ParseActor), actor_ip, actor_cidr, actor_user, session_hash;
// trace_id; limit (1 to store.MaxQueryLimit); cursor; order=asc|desc;
// actor_verified, actor_user_verified.
func ParseEventQuery(q url.Values, now time.Time) (store.EventFilter, error) {
	var f store.EventFilter
	if err := checkQuery(q, eventParams...); err != nil {
		return f, err
	}
	for _, name := range []string{"action", "actor", "actor_ip", "actor_cidr", "actor_user", "session_hash", "trace_id",
		"limit", "cursor", "order", "since", "until", "attacks", "actor_verified", "actor_user_verified"} {
		if len(q[name]) > 1 {
			return f, badRequest(name, name+" given more than once")
		}
	}
	f.Action, f.ActorIP, f.ActorCIDR = q.Get("action"), q.Get("actor_ip"), q.Get("actor_cidr")
	f.ActorUser, f.SessionHash, f.TraceID = q.Get("actor_user"), q.Get("session_hash"), q.Get("trace_id")
	// One kind (or service) is the indexed equality the API always had;
	// several are "any of".
	if ks := q["kind"]; len(ks) == 1 {
		f.Kind = ks[0]
	} else {
		f.Kinds = ks
	}
	if ss := q["service"]; len(ss) == 1 {
		f.Service = ss[0]
	} else {
		f.Services = ss
	}
	if s := q.Get("actor"); s != "" {
		a, err := store.ParseActor(s)
		if err != nil {
			return f, err
		}
		af := a.Filter()
		for _, c := range []struct {
			name      string
			mine, its *string
		}{{"actor_ip", &f.ActorIP, &af.ActorIP}, {"actor_cidr", &f.ActorCIDR, &af.ActorCIDR},
			{"actor_user", &f.ActorUser, &af.ActorUser}, {"session_hash", &f.SessionHash, &af.SessionHash}} {
			if *c.its == "" {
				continue
			}
			if *c.mine != "" {
				return f, badRequest("actor", "give actor or "+c.name+", not both")
			}
			*c.mine = *c.its
		}
	}
	var err error
	for _, b := range []struct {
		name string
		into *bool
	}{{"attacks", &f.Attacks}, {"actor_verified", &f.ActorVerified}, {"actor_user_verified", &f.ActorUserVerified}} {
		if s := q.Get(b.name); s != "" {
			if *b.into, err = strconv.ParseBool(s); err != nil {
				return f, badRequest(b.name, b.name+" must be true or false")
			}
		}
	}
	if f.Since, err = timeParam(q, "since", now); err != nil {
		return f, err
	}
	if f.Until, err = timeParam(q, "until", now); err != nil {
		return f, err
	}
	if s := q.Get("limit"); s != "" {
		if f.Limit, err = strconv.Atoi(s); err != nil || f.Limit <= 0 {
			return f, badRequest("limit", fmt.Sprintf("limit must be an integer from 1 to %d", store.MaxQueryLimit))
		}
	}
	if s := q.Get("cursor"); s != "" {
		c, err := store.ParseCursor(s)
		if err != nil {
			return f, err
		}
		f.After = &c
	}
	switch q.Get("order") {
	case "", "asc":
	case "desc":
		f.Reverse = true
	default:
		return f, badRequest("order", "order must be asc or desc")
	}
	return store.ValidateEventFilter(f)
}

// checkQuery refuses a query string that is too long, or names a
// parameter not among names.
func checkQuery(q url.Values, names ...string) error {
	n := 0
	for k, vs := range q {
		n += len(k) + 1
		for _, v := range vs {
			n += len(v) + 1
		}
	}
	if n > MaxQueryBytes {
		return &apiError{status: 400, code: "too_large", field: "query",
			msg: fmt.Sprintf("query of %d bytes, at most %d: narrow the filter", n, MaxQueryBytes)}
	}
	return onlyParams(q, names...)
}

// rangeParam reads a time range: ?range= (a duration such as 1h, or Nd
// for N days) ending at ?until= or now, or ?since= and ?until=. def is
// the range when none is given; the range is at most max.
func rangeParam(q url.Values, now time.Time, def, max time.Duration) (since, until time.Time, err error) {
	if until, err = timeParam(q, "until", now); err != nil {
		return
	}
	if until.IsZero() {
		until = now
	}
	if since, err = timeParam(q, "since", now); err != nil {
		return
	}
	if s := q.Get("range"); s != "" {
		if !since.IsZero() {
			return since, until, badRequest("range", "give range or since, not both")
		}
		d, ok := parseDays(s)
		if !ok || d <= 0 {
			return since, until, badRequest("range", "range must be a positive duration such as 1h, 24h or 7d")
		}
		since = until.Add(-d)
	}
	if since.IsZero() {
		since = until.Add(-def)
	}
	if !since.Before(until) {
		return since, until, badRequest("since", "since must be before until")
	}
	if until.Sub(since) > max {
		return since, until, badRequest("range", fmt.Sprintf("a range of at most %v", max))
	}
	return since.UTC(), until.UTC(), nil
}

// parseDays reads a Go duration, or a whole number of days ("7d").
func parseDays(s string) (time.Duration, bool) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 3660 {
			return 0, false
		}
		return time.Duration(days) * 24 * time.Hour, true
	}
	d, err := time.ParseDuration(s)
	return d, err == nil
}

// intParam reads an integer parameter from lo to hi, def when absent.
func intParam(q url.Values, name string, def, lo, hi int) (int, error) {
	s := q.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, badRequest(name, fmt.Sprintf("%s must be an integer from %d to %d", name, lo, hi))
	}
	return n, nil
}
