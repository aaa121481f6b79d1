package ssrfguard

// ReadsSpellings exposes to the external tests whether g's resolver reads
// the C library's spellings of addresses (see readsSpellings).
func ReadsSpellings(g *Guard) bool { return g.readsSpellings() }

// BenchInputs are the inputs of a typical API request (see benchInputs), for
// the external benchmarks.
var BenchInputs = benchInputs

// Spelled reports whether host is an address only to the C library: an
// inet_aton spelling other than dotted decimal (2130706433, 0x7f.1).
func Spelled(host string) bool {
	_, aton := parseIP(host, true)
	_, plain := parseIP(host, false)
	return aton && !plain
}
