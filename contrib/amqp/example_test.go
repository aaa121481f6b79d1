package rampartamqp_test

import (
	"context"
	"log"
	"net/http"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rampartsec/rampart"
	rampartamqp "github.com/rampartsec/rampart/contrib/amqp"
)

// The producer puts the actor of its request in the message; the worker
// runs each delivery for that actor, with the payload's fields as inputs.
func Example() {
	agent, err := rampart.New(rampart.Config{Service: "imports"})
	if err != nil {
		log.Fatal(err)
	}
	defer agent.Close(context.Background())
	conn, err := amqp.Dial("amqp://guest:guest@127.0.0.1:5672/")
	if err != nil {
		log.Fatal(err)
	}
	ch, _ := conn.Channel()

	// Producer, in an HTTP handler.
	http.HandleFunc("POST /imports", func(w http.ResponseWriter, r *http.Request) {
		msg := amqp.Publishing{ContentType: "application/json", Body: []byte(`{"url": "https://feeds.example/catalog.xml"}`)}
		rampartamqp.Inject(r.Context(), &msg)
		ch.PublishWithContext(r.Context(), "", "imports", false, false, msg)
	})

	// Worker.
	deliveries, _ := ch.Consume("imports", "", false, false, false, false, nil)
	rampartamqp.Serve(context.Background(), agent, "imports", deliveries, func(ctx context.Context, d amqp.Delivery) error {
		// Guarded calls with ctx see each JSON field as an input and
		// name the actor; return the error of a refused call.
		return nil
	})
}
