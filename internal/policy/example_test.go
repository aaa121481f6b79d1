package policy_test

import (
	"fmt"
	"log"
	"net/url"

	"github.com/rampartsec/rampart/internal/policy"
)

func Example() {
	p, err := policy.Parse(`
services:
  orders:
    allow:
      - callers: [web, checkout]
        methods: [GET]
        paths: ["/orders/{id}"]
      - callers: ["*"]
        paths: ["/healthz"]
    sensitive:
      - methods: [DELETE]
        paths: ["/orders/{id}"]
`)
	if err != nil {
		log.Fatal(err)
	}
	a := p.Compile("orders")
	fmt.Println(a.Allow("web", "GET", "/orders/42"))
	fmt.Println(a.Allow("web", "HEAD", "/orders/42")) // GET covers HEAD
	fmt.Println(a.Allow("web", "DELETE", "/orders/42"))
	fmt.Println(a.Allow("billing", "GET", "/orders/42"))
	fmt.Println(a.Allow("billing", "GET", "/healthz"))
	fmt.Println(a.Sensitive("DELETE", "/orders/42"))
	// Output:
	// true
	// true
	// false
	// false
	// true
	// true
}

// A middleware asks CanonicalPath first and answers 400 to the paths it
// refuses, before it asks Allow about the others.
func ExampleCanonicalPath() {
	for _, target := range []string{"/orders/42", "/orders/%34%32", "/orders%2F42", "/healthz/../orders/42"} {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			log.Fatal(err)
		}
		path, ok := policy.CanonicalPath(u)
		fmt.Printf("%-22s %-22q %v\n", target, path, ok)
	}
	// Output:
	// /orders/42             "/orders/42"           true
	// /orders/%34%32         "/orders/42"           true
	// /orders%2F42           "/orders/42"           false
	// /healthz/../orders/42  "/healthz/../orders/42" false
}
