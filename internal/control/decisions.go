package control

import (
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// The widest networks a decision may name without Force. A decision on a
// wider one applies to a large part of the Internet, so it is far more
// likely a typo (0.0.0.0/0 for 10.0.0.0/8) or an attack on availability
// through a stolen admin token than an intended response; it is refused
// with code CodeTooBroad unless the request says "force": true ('rampart
// decisions add -force'). A /8 is the largest IPv4 allocation ever made
// to one organisation; a /32 is the usual IPv6 allocation to an ISP.
// IPv4-mapped IPv6 networks count as the IPv4 networks they map.
const (
	MinIPv4Prefix = 8
	MinIPv6Prefix = 32
)

// CodeTooBroad is the error code of a decision on a network wider than
// MinIPv4Prefix or MinIPv6Prefix, sent without "force": true.
const CodeTooBroad = "too_broad"

// checkBreadth refuses a decision on a network wider than the minimum
// prefixes. Other errors in d are left for the store to report.
func checkBreadth(d store.Decision, now time.Time) error {
	if d.Scope != store.ScopeCIDR {
		return nil
	}
	canon, err := store.ValidateDecision(d, now)
	if err != nil {
		return nil // the store says what is wrong, with the field
	}
	p, err := netip.ParsePrefix(canon.Value)
	if err != nil {
		return nil
	}
	limit := MinIPv6Prefix
	if p.Addr().Is4() {
		limit = MinIPv4Prefix
	}
	if p.Bits() >= limit {
		return nil
	}
	what := "a network"
	if p.Bits() == 0 {
		what = "every address"
	}
	return &apiError{status: http.StatusBadRequest, code: CodeTooBroad, field: "value",
		msg: fmt.Sprintf("%s is %s: a decision on a network wider than /%d would refuse a large part of the Internet; "+
			"send \"force\": true (rampart decisions add -force) if that is what you mean", canon.Value, what, limit)}
}
