package ca

import "time"

// SetClock makes c read the time from now: tests move it past an SVID's or
// the root's expiry.
func SetClock(c *CA, now func() time.Time) { c.now = now }

// Backdate is how far before issuance certificates become valid.
const Backdate = backdate
