package shop_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/examples/shop"
	"github.com/rampartsec/rampart/ramparttest"
)

// The login reports each attempt as detection needs it: the name as typed,
// whether it names an account, whether it succeeded; and a name that names
// no account gets the same answer as a wrong password.
func TestLoginReportsEachAttempt(t *testing.T) {
	agent, events := ramparttest.NewAgent(t, rampart.Config{})
	s, err := shop.Open(t.Context(), agent, ":memory:", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv := httptest.NewServer(agent.Handler(s.Handler()))
	defer srv.Close()
	login := func(email, password string) (int, string) {
		t.Helper()
		body := `{"email":"` + email + `","password":"` + password + `"}`
		resp, err := http.Post(srv.URL+"/login", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	isLogin := func(ev rampart.Event) bool {
		return ev.Kind == rampart.KindLoginSuccess || ev.Kind == rampart.KindLoginFailure
	}

	unknownCode, unknownBody := login("nobody@mail.example", "Summer2024!")
	if ev := events.Wait(t, isLogin); ev.Kind != rampart.KindLoginFailure || ev.Login != (rampart.Login{Name: "nobody@mail.example"}) {
		t.Errorf("unknown name: %s %+v", ev.Kind, ev.Login)
	}
	events.Reset()
	wrongCode, wrongBody := login(shop.DemoUser, "Summer2024!")
	if ev := events.Wait(t, isLogin); ev.Kind != rampart.KindLoginFailure || ev.Login != (rampart.Login{Name: shop.DemoUser, UserExists: true}) {
		t.Errorf("wrong password: %s %+v", ev.Kind, ev.Login)
	}
	if unknownCode != http.StatusUnauthorized || wrongCode != unknownCode || wrongBody != unknownBody {
		t.Errorf("an unknown name answers %d %s, a wrong password %d %s: want the same 401", unknownCode, unknownBody, wrongCode, wrongBody)
	}
	events.Reset()
	if code, body := login(strings.ToUpper(shop.DemoUser), shop.DemoPassword); code != http.StatusOK || !strings.Contains(body, shop.DemoUser) {
		t.Errorf("the right password: %d %s", code, body)
	}
	if ev := events.Wait(t, isLogin); ev.Kind != rampart.KindLoginSuccess ||
		ev.Login != (rampart.Login{Name: strings.ToUpper(shop.DemoUser), User: shop.DemoUser, UserExists: true, Success: true}) {
		t.Errorf("success: %s %+v", ev.Kind, ev.Login)
	}
	if code, _ := login("", "x"); code != http.StatusBadRequest {
		t.Errorf("no email: %d, want 400", code)
	}
}
