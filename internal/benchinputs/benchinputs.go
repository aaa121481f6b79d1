// Package benchinputs holds the untrusted inputs that the guards' benchmarks
// put in a context, so that every guard's figures in BENCHMARKS.md are
// measured against the same ordinary request.
package benchinputs

// Request returns 19 values of the kind one request carries (headers, query
// parameters, JSON fields), as a new slice the caller may append to. None of
// them occurs in the benchmarks' statements, commands or paths; each
// benchmark checks that for its own.
func Request() []string {
	return []string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
		"https://shop.example.com/catalog?page=2&sort=price",
		"en-US,en;q=0.9",
		"sess_9f8e7d6c5b4a3928",
		"alice@example.com",
		"Alice Martin",
		"price_desc",
		"2024-05-01",
		"2024-05-31",
		"EUR",
		"fr-FR",
		"electronics",
		"grid",
		"v2.3.1",
		"csrf_a1b2c3d4e5f6",
		"utm_newsletter",
		"summer-2024",
		"Europe/Paris",
		"12 rue de la Paix",
	}
}
