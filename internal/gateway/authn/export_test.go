package authn

// Verifications is how many tokens a went as far as checking the
// signature of: tests tell a cache hit from a verification with it.
func Verifications(a *Authenticator) int64 { return a.verifications.Load() }

// SetTokenCacheCapacity replaces a's verified-token cache with an empty one
// of capacity n (0 disables it). Call it before a is used.
func SetTokenCacheCapacity(a *Authenticator, n int) { a.tokens = newTokenCache(n) }

// CachedTokens is how many verified tokens a remembers.
func CachedTokens(a *Authenticator) int { return a.tokens.len() }

// MaxTokenBytes is the largest bearer token accepted.
const MaxTokenBytes = maxTokenBytes
