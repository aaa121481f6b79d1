package rampartnats_test

import (
	"context"
	"log"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rampartsec/rampart"
	rampartnats "github.com/rampartsec/rampart/contrib/nats"
)

// The producer puts the actor of its request in the message; the worker
// runs each message for that actor, with the payload's fields as inputs.
func Example() {
	agent, err := rampart.New(rampart.Config{Service: "imports"})
	if err != nil {
		log.Fatal(err)
	}
	defer agent.Close(context.Background())
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		log.Fatal(err)
	}
	js, _ := jetstream.New(nc)

	// Producer, in an HTTP handler.
	http.HandleFunc("POST /imports", func(w http.ResponseWriter, r *http.Request) {
		msg := nats.NewMsg("imports.new")
		msg.Data = []byte(`{"url": "https://feeds.example/catalog.xml"}`)
		rampartnats.Inject(r.Context(), msg)
		js.PublishMsg(r.Context(), msg)
	})

	// Worker.
	consumer, _ := js.CreateOrUpdateConsumer(context.Background(), "IMPORTS", jetstream.ConsumerConfig{Durable: "worker"})
	consumer.Consume(rampartnats.Handler(context.Background(), agent, func(ctx context.Context, msg jetstream.Msg) error {
		// Guarded calls with ctx see each JSON field as an input and
		// name the actor; return the error of a refused call.
		return nil
	}))
}
