package authn

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"slices"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// The second line of defence against algorithm confusion: whatever the
// configuration let through, no key of a JWKS fits a symmetric algorithm or
// "none", and each key fits only the algorithms of its type.
func TestKeysFitOnlyTheirAlgorithms(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)

	fits := map[string][]jose.SignatureAlgorithm{
		"RSA":     {jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512},
		"P-256":   {jose.ES256},
		"P-384":   {jose.ES384},
		"Ed25519": {jose.EdDSA},
	}
	keys := map[string]*verifyKey{
		"RSA":     {key: &rsaKey.PublicKey},
		"P-256":   {key: &p256.PublicKey},
		"P-384":   {key: &p384.PublicKey},
		"Ed25519": {key: edPub},
	}
	all := slices.Concat(supportedAlgorithms, []jose.SignatureAlgorithm{jose.HS256, jose.HS384, jose.HS512, "none", "", "rs256"})
	for name, k := range keys {
		for _, alg := range all {
			want := false
			for _, ok := range fits[name] {
				want = want || ok == alg
			}
			if got := k.fits(alg); got != want {
				t.Errorf("%s key fits %q: %v, want %v", name, alg, got, want)
			}
		}
	}

	// A JWK's "alg" narrows what its key fits.
	k := &verifyKey{key: &rsaKey.PublicKey, alg: jose.PS256}
	if k.fits(jose.RS256) || !k.fits(jose.PS256) {
		t.Error(`a key with "alg":"PS256" fits RS256, or not PS256`)
	}
}

func TestCanonicalBase64URL(t *testing.T) {
	for s, want := range map[string]bool{
		"":     true,
		"QQ":   true,  // "A"
		"QR":   false, // "A" with a stray bit
		"QUI":  true,  // "AB"
		"QUJ":  false,
		"QUJD": true,  // "ABC"
		"Q":    false, // no byte is one digit long
	} {
		if got := canonicalBase64URL(s); got != want {
			t.Errorf("%q: %v, want %v", s, got, want)
		}
	}
}
