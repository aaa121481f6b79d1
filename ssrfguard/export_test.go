package ssrfguard

// ReadsSpellings exposes to the external tests whether g's resolver reads
// the C library's spellings of addresses (see readsSpellings).
func ReadsSpellings(g *Guard) bool { return g.readsSpellings() }

// BenchInputs are the inputs of a typical API request (see benchInputs), for
// the external benchmarks.
var BenchInputs = benchInputs
