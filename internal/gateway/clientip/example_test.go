package clientip_test

import (
	"errors"
	"fmt"
	"log"
	"net/http"

	"github.com/rampartsec/rampart/internal/gateway/clientip"
)

func Example() {
	// The gateway sits behind a load balancer in 10.0.0.0/8 that appends
	// the address of its peer to X-Forwarded-For (the default header).
	r, err := clientip.New(clientip.Config{TrustedProxies: []string{"10.0.0.0/8"}})
	if err != nil {
		log.Fatal(err)
	}

	// The client at 203.0.113.7 sent a forged X-Forwarded-For of its own;
	// the load balancer appended the address it saw.
	req, _ := http.NewRequest(http.MethodGet, "https://shop.example/", nil)
	req.RemoteAddr = "10.0.0.1:51234"
	req.Header.Set("X-Forwarded-For", "198.51.100.1, 203.0.113.7")
	fmt.Println(r.ClientIP(req))

	// The client's Forwarded header, which the load balancer passes
	// through, is not read.
	req.Header.Set("Forwarded", "for=unknown")
	fmt.Println(r.ClientIP(req))

	// The load balancer itself saying it does not know its client is no
	// answer: the request must be refused.
	req.Header.Set("X-Forwarded-For", "unknown")
	_, err = r.ClientIP(req)
	fmt.Println(errors.Is(err, clientip.ErrUnusableHeader))
	req.Header.Set("X-Forwarded-For", "198.51.100.1, 203.0.113.7")

	// The same header straight from the client, not through the load
	// balancer, is ignored.
	req.RemoteAddr = "203.0.113.7:40000"
	fmt.Println(r.ClientIP(req))

	// Output:
	// 203.0.113.7 <nil>
	// 203.0.113.7 <nil>
	// true
	// 203.0.113.7 <nil>
}

func ExampleForwardingHeaders() {
	inbound, _ := http.NewRequest(http.MethodGet, "https://shop.example/", nil)
	inbound.Header.Set("X-Real-IP", "198.51.100.1")

	// Before forwarding, the gateway drops every address the client sent,
	// then sets the one it resolved.
	for _, name := range clientip.ForwardingHeaders() {
		inbound.Header.Del(name)
	}
	inbound.Header.Set("X-Forwarded-For", "203.0.113.7")
	fmt.Println(inbound.Header)
	// Output:
	// map[X-Forwarded-For:[203.0.113.7]]
}
