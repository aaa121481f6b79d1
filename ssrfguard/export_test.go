package ssrfguard

// ReadsSpellings exposes to the external tests whether g's resolver reads
// the C library's spellings of addresses (see readsSpellings).
func ReadsSpellings(g *Guard) bool { return g.readsSpellings() }
