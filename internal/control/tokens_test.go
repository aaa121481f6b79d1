package control_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
)

func TestATokenOfThreeUsesJoinsThreeReplicasThenIsUsedUp(t *testing.T) {
	e := newEnv(t)
	tok := decode[control.TokenResponse](t, e.do(t, "POST", "/v1/tokens", control.TokenRequest{Service: "api", Uses: 3}), http.StatusCreated)
	if tok.Uses != 3 || !store.ValidJoinTokenID(tok.ID) || !strings.Contains(tok.Token, tok.ID) {
		t.Fatalf("token response %+v", tok)
	}
	for range 3 {
		decode[control.SVIDResponse](t, e.join(t, tok.Token, "api", newCSR(t)), http.StatusCreated)
	}
	wantError(t, e.join(t, tok.Token, "api", newCSR(t)), http.StatusConflict, control.CodeTokenUsed)

	all := decode[control.TokenList](t, e.do(t, "GET", "/v1/tokens?all=true", nil), http.StatusOK)
	if len(all.Tokens) != 1 || all.Tokens[0].ID != tok.ID || all.Tokens[0].UsesLeft != 0 || all.Tokens[0].Used.IsZero() {
		t.Fatalf("GET /v1/tokens?all=true = %+v", all)
	}
	if usable := decode[control.TokenList](t, e.do(t, "GET", "/v1/tokens", nil), http.StatusOK); len(usable.Tokens) != 0 {
		t.Fatalf("usable tokens = %+v, want none", usable)
	}
}

func TestTokensAreListedWithoutSecretsAndRevokedByID(t *testing.T) {
	e := newEnv(t)
	tok := decode[control.TokenResponse](t, e.do(t, "POST", "/v1/tokens", control.TokenRequest{Service: "api", Uses: 2, TTL: "2h"}), http.StatusCreated)
	e.joinToken(t, "web", "")

	r := e.do(t, "GET", "/v1/tokens?service=api", nil)
	list := decode[control.TokenList](t, r, http.StatusOK)
	if len(list.Tokens) != 1 || list.Tokens[0].ID != tok.ID || list.Tokens[0].UsesLeft != 2 || list.Tokens[0].Service != "api" {
		t.Fatalf("GET /v1/tokens?service=api = %+v", list)
	}
	secret := tok.Token[strings.Index(tok.Token, ".")+1:]
	if strings.Contains(string(r.body), secret) {
		t.Fatalf("the list shows the token's secret: %s", r.body)
	}

	revoked := decode[store.JoinToken](t, e.do(t, "POST", "/v1/tokens/"+tok.ID+"/revoke", nil), http.StatusOK)
	if revoked.Revoked.IsZero() || revoked.UsesLeft != 2 {
		t.Fatalf("revoked token %+v", revoked)
	}
	wantError(t, e.join(t, tok.Token, "api", newCSR(t)), http.StatusForbidden, control.CodeTokenRevoked)
	wantError(t, e.do(t, "POST", "/v1/tokens/0123456789abcdef/revoke", nil), http.StatusNotFound, "not_found")

	for _, bad := range []struct {
		req   control.TokenRequest
		field string
	}{
		{control.TokenRequest{Service: "api", Uses: -1}, "uses"},
		{control.TokenRequest{Service: "api", Uses: store.MaxJoinTokenUses + 1}, "uses"},
		{control.TokenRequest{Service: "api", TTL: "forever"}, "ttl"},
	} {
		if eb := wantError(t, e.do(t, "POST", "/v1/tokens", bad.req), http.StatusBadRequest, "invalid"); eb.Field != bad.field {
			t.Errorf("POST /v1/tokens %+v: field %q, want %q", bad.req, eb.Field, bad.field)
		}
	}
	for _, q := range []string{"?all=maybe", "?service=no%20such", "?secret=1"} {
		wantError(t, e.do(t, "GET", "/v1/tokens"+q, nil), http.StatusBadRequest, "invalid")
	}
	// Only the admin lists tokens.
	wantError(t, e.doWith(t, "GET", "/v1/tokens", nil, "", ""), http.StatusUnauthorized, "unauthorized")
}
