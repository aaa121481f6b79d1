package authn

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
)

// setAPIKeys validates the configured keys and indexes them by hash.
//
// Keys are looked up in a map keyed by their SHA-256 rather than compared
// with subtle.ConstantTimeCompare against every configured hash. A timing
// attack on a plain comparison works because the attacker steers the
// compared bytes and learns, from the time taken, how long a prefix of the
// secret they matched. Here the map compares the SHA-256 of the presented
// key: whatever the lookup's timing reveals is about the hash of the
// attacker's own guess, which they cannot steer towards a configured hash
// without a preimage attack on SHA-256, so it tells them nothing about any
// configured key. The map also costs the same with one key or thousands.
func (a *Authenticator) setAPIKeys(keys []APIKey, header string) error {
	if header == "" {
		header = defaultAPIKeyHeader
	}
	if !validHeaderName(header) {
		return fmt.Errorf("authn: APIKeyHeader %q is not a valid header name", header)
	}
	a.apiKeyHeader = http.CanonicalHeaderKey(header)
	if a.apiKeyHeader == "Authorization" {
		return fmt.Errorf("authn: APIKeyHeader cannot be Authorization, which carries bearer tokens")
	}

	a.apiKeys = make(map[[sha256.Size]byte]Principal, len(keys))
	first := make(map[[sha256.Size]byte]int, len(keys))
	for i, k := range keys {
		if k.Name == "" {
			return fmt.Errorf("authn: APIKeys[%d].Name is required", i)
		}
		raw, err := hex.DecodeString(k.SHA256)
		if err != nil || len(raw) != sha256.Size {
			return fmt.Errorf("authn: APIKeys[%d].SHA256 (%s): want the 64 hex digits of the key's SHA-256", i, k.Name)
		}
		sum := [sha256.Size]byte(raw)
		if j, dup := first[sum]; dup {
			return fmt.Errorf("authn: APIKeys[%d].SHA256 (%s) is the same key as APIKeys[%d] (%s)", i, k.Name, j, keys[j].Name)
		}
		first[sum] = i
		a.apiKeys[sum] = Principal{
			Subject:        k.Name,
			Method:         MethodAPIKey,
			CredentialHash: hexSum(sum),
		}
	}
	return nil
}

// checkAPIKey authenticates the value of the API key header.
func (a *Authenticator) checkAPIKey(key string) (Principal, error) {
	if key == "" {
		return Principal{}, fmt.Errorf("%w: empty %s header", ErrMalformed, a.apiKeyHeader)
	}
	if len(key) > maxAPIKeyBytes {
		return Principal{}, fmt.Errorf("%w: API key of %d bytes exceeds %d", ErrMalformed, len(key), maxAPIKeyBytes)
	}
	sum := sha256.Sum256([]byte(key))
	p, ok := a.apiKeys[sum]
	if !ok {
		return Principal{}, fmt.Errorf("%w: sha256 %s", ErrAPIKey, hexSum(sum))
	}
	return p, nil
}
