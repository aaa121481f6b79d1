package control

import (
	"crypto/tls"
	"sync"
	"time"
)

// certHolder keeps the server certificate and replaces it at half-life.
type certHolder struct {
	mu   sync.Mutex
	cert *tls.Certificate
}

func newCertHolder(c *tls.Certificate) *certHolder { return &certHolder{cert: c} }

func (h *certHolder) get(issue func() (*tls.Certificate, error)) (*tls.Certificate, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	leaf := h.cert.Leaf
	half := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	if time.Now().After(half) {
		c, err := issue()
		if err != nil {
			return h.cert, nil // keep serving the old one until it works again
		}
		h.cert = c
	}
	return h.cert, nil
}
