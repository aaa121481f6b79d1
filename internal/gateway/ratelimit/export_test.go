package ratelimit

// Len returns the number of buckets l holds.
func Len(l *Limiter) int { return l.len() }

// Shards returns the number of shards of l and the bound on each.
func Shards(l *Limiter) (n int, maxKeys []int) {
	for i := range l.shards {
		maxKeys = append(maxKeys, l.shards[i].maxKeys)
	}
	return len(l.shards), maxKeys
}
