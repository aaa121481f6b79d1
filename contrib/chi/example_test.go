package rampartchi_test

import (
	"context"
	"log"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/rampartsec/rampart"
	rampartchi "github.com/rampartsec/rampart/contrib/chi"
)

// One line, inside the router or around it: the route pattern and its
// path parameters become the request's inputs either way.
func ExampleMiddleware() {
	agent, err := rampart.New(rampart.Config{Service: "users"})
	if err != nil {
		log.Fatal(err)
	}
	defer agent.Close(context.Background())

	r := chi.NewRouter()
	r.Use(rampartchi.Middleware(agent)) // or: http.ListenAndServe(addr, rampartchi.Middleware(agent)(r))
	r.Get("/users/{name}", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(chi.URLParam(r, "name")))
	})
	_ = http.ListenAndServe("127.0.0.1:8080", r)
}
