package rampartgrpc_test

import (
	"context"
	"log"
	"net"

	"google.golang.org/grpc"

	"github.com/rampartsec/rampart"
	rampartgrpc "github.com/rampartsec/rampart/contrib/grpc"
	"github.com/rampartsec/rampart/identity"
)

// A mesh member serving gRPC, and calling another member over gRPC.
func Example() {
	src, err := identity.Join(context.Background(), identity.JoinConfig{ /* control plane, join token */ })
	if err != nil {
		log.Fatal(err)
	}
	agent, err := rampart.New(rampart.Config{Service: "users", Identity: src, ControlPlane: "https://control:8443"})
	if err != nil {
		log.Fatal(err)
	}
	defer agent.Close(context.Background())

	srv := grpc.NewServer(rampartgrpc.ServerOptions(agent)...) // mTLS, policy, actor, inputs
	ln, _ := net.Listen("tcp", ":9090")
	go srv.Serve(ln)

	opts, err := rampartgrpc.DialOptions(agent, "orders") // SVID, orders' SPIFFE ID, actor forwarded
	if err != nil {
		log.Fatal(err)
	}
	conn, _ := grpc.NewClient("orders:9090", opts...)
	defer conn.Close()
}
