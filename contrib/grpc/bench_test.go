package rampartgrpc_test

import (
	"context"
	"log/slog"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rampartsec/rampart"
	rampartgrpc "github.com/rampartsec/rampart/contrib/grpc"
	pb "github.com/rampartsec/rampart/contrib/grpc/internal/usersv1"
)

// echoDirectory answers without a database: the benchmark measures the
// interceptors, not SQL.
type echoDirectory struct {
	pb.UnimplementedDirectoryServer
}

func (echoDirectory) Rename(ctx context.Context, r *pb.RenameRequest) (*pb.Users, error) {
	return &pb.Users{Names: []string{r.GetNewName()}}, nil
}

// BenchmarkUnary is one Rename over loopback (plaintext, no mesh: the
// mTLS handshake is per connection, not per call) with a message of 8
// string values, without and with the interceptors:
//
//	go test -run - -bench Unary -count 10 | tee new.txt; benchstat -col /via new.txt
func BenchmarkUnary(b *testing.B) {
	a, err := rampart.New(rampart.Config{Service: "bench", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close(context.Background())
	req := &pb.RenameRequest{
		Profile: &pb.Profile{Name: "alice", Tags: []string{"admin", "eu", "beta"}, Labels: map[string]string{"team": "red"},
			Manager: &pb.Profile{Name: "bob"}},
		NewName: "alicia",
	}
	for _, via := range []struct {
		name string
		opts []grpc.ServerOption
	}{
		{"grpc", nil},
		{"rampartgrpc", rampartgrpc.ServerOptions(a)},
	} {
		b.Run("via="+via.name, func(b *testing.B) {
			addr := serveDirectory(b, echoDirectory{}, via.opts...)
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			client := pb.NewDirectoryClient(conn)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.Rename(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
