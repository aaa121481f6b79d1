package control_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
)

// FuzzParseEventQuery reads arbitrary query strings as GET /v1/events
// would: a filter it accepts is one the store accepts unchanged, and a
// refusal names the parameter at fault.
func FuzzParseEventQuery(f *testing.F) {
	for _, s := range []string{
		"", "kind=sql_injection&kind=waf&attacks=true", "actor=cidr:10.0.0.0/8&order=desc&limit=50",
		"actor=ip:::ffff:1.2.3.4", "actor=range:2001:db8::/32", "actor=user:alice&actor_user=bob",
		"since=1h&until=2026-01-02T15:04:05Z", "cursor=MTIzOmFiYw", "service=a&service=b&service=c",
		"actor_cidr=0.0.0.0/0", "limit=1000", "since=-5m", "actor=session:" + string(rune(0x85)),
	} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return // the server drops what it cannot parse, as r.URL.Query does
		}
		filter, err := control.ParseEventQuery(q, now)
		if err != nil {
			status, eb := control.ErrorResponse(err)
			_, unnamed := q[""] // a parameter without a name is named ""
			if status != 400 || eb.Field == "" && !unnamed {
				t.Fatalf("ParseEventQuery(%q) = %v, answered %d naming %q; want 400 naming a parameter", raw, err, status, eb.Field)
			}
			return
		}
		again, err := store.ValidateEventFilter(filter)
		if err != nil {
			t.Fatalf("ParseEventQuery(%q) accepted a filter the store refuses: %v", raw, err)
		}
		if filter.Limit < 1 || filter.Limit > store.MaxQueryLimit || again.ActorCIDR != filter.ActorCIDR || again.ActorIP != filter.ActorIP {
			t.Fatalf("ParseEventQuery(%q) = %+v, not canonical", raw, filter)
		}
	})
}
