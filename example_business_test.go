package rampart_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/rampartsec/rampart"
)

// printSink prints the kind and the business fields of each event.
type printSink struct{}

func (printSink) WriteEvents(_ context.Context, evs []rampart.Event) error {
	for _, ev := range evs {
		switch ev.Kind {
		case rampart.KindLoginSuccess, rampart.KindLoginFailure:
			fmt.Printf("%s %s user=%q exists=%v route=%q\n", ev.Kind, ev.Login.Name, ev.ActorUser, ev.Login.UserExists, ev.Route)
		case rampart.KindObjectAccess:
			fmt.Printf("%s %s %s of %s served to %q\n", ev.Kind, ev.Object.Kind, ev.Object.ID, ev.Object.Owner, ev.ActorUser)
		case rampart.KindBusiness:
			fmt.Printf("%s %s amount=%s card_token=%s\n", ev.Kind, ev.Attrs["name"], ev.Attrs["amount"], ev.Attrs["card_token"])
		case rampart.KindRequestSummary:
			fmt.Printf("%s %s %d: %d requests, objects %v\n", ev.Kind, ev.Route, ev.Status, ev.Count, ev.Objects)
		}
	}
	return nil
}

// accounts is the example service's user store: login name → user id.
var accounts = map[string]string{"alice@example.com": "u-1"}

// A login handler reports every attempt it decides, successes included,
// with the name as typed and whether it names an account.
func ExampleTrackLogin() {
	agent, _ := rampart.New(rampart.Config{Service: "auth", Sinks: []rampart.Sink{printSink{}}})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		name := r.FormValue("email")
		user, exists := accounts[name]
		ok := exists && r.FormValue("password") == "correct horse"
		if ok {
			rampart.SetUser(r.Context(), user) // the request's events name u-1 from now on (a claim of the service)
		}
		rampart.TrackLogin(r.Context(), rampart.Login{Name: name, User: user, UserExists: exists, Success: ok})
		if !ok {
			http.Error(w, "wrong e-mail or password", http.StatusUnauthorized)
		}
	})
	srv := httptest.NewServer(agent.Handler(mux))
	defer srv.Close()
	for _, form := range []url.Values{
		{"email": {"bob@example.com"}, "password": {"123456"}},
		{"email": {"alice@example.com"}, "password": {"correct horse"}},
	} {
		resp, _ := http.PostForm(srv.URL+"/login", form)
		resp.Body.Close()
	}
	agent.Close(context.Background())
	// Output:
	// login_failure bob@example.com user="" exists=false route="POST /login"
	// login_success alice@example.com user="u-1" exists=true route="POST /login"
}

// A service that authenticates its users itself names the request's user
// in its authentication middleware; a handler then says which object it
// served and whose it is. Carol's invoice served to bob is reported; bob's
// own is counted in the request summaries only.
func ExampleObjectAccess() {
	// A service summarises every few seconds; the example's window is
	// longer than the example, so that Close ships the one summary.
	agent, _ := rampart.New(rampart.Config{Service: "billing", Sinks: []rampart.Sink{printSink{}}, SummaryWindow: time.Hour})
	owners := map[string]string{"1": "bob", "2": "carol"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /invoices/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		rampart.ObjectAccess(r.Context(), "invoice", id, owners[id])
		fmt.Fprintf(w, "invoice %s\n", id)
	})
	authenticate := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Session ") // the service's own sessions
			rampart.SetUser(r.Context(), user)
			next.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(agent.Handler(authenticate(mux)))
	defer srv.Close()
	for _, id := range []string{"1", "2"} {
		req, _ := http.NewRequest("GET", srv.URL+"/invoices/"+id, nil)
		req.Header.Set("Authorization", "Session bob")
		resp, _ := http.DefaultClient.Do(req)
		resp.Body.Close()
	}
	agent.Close(context.Background()) // ships the last window's summary
	// Output:
	// object_access invoice 2 of carol served to "bob"
	// request_summary GET /invoices/{id} 200: 2 requests, objects [{invoice 1 } {invoice 2 }]
}

// A business step the detection scenarios may count: attributes whose
// names look like secrets are redacted.
func ExampleTrackEvent() {
	agent, _ := rampart.New(rampart.Config{Service: "shop", Sinks: []rampart.Sink{printSink{}}})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /checkout", func(w http.ResponseWriter, r *http.Request) {
		rampart.TrackEvent(r.Context(), "checkout", map[string]string{"amount": "120.00", "card_token": "tok_4242"})
	})
	srv := httptest.NewServer(agent.Handler(mux))
	defer srv.Close()
	resp, _ := http.Post(srv.URL+"/checkout", "application/json", strings.NewReader(`{}`))
	resp.Body.Close()
	agent.Close(context.Background())
	// Output: business checkout amount=120.00 card_token=[redacted]
}
