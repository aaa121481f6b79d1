package rampart_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/rampartsec/rampart"
)

// A service ships its events to the control plane through a spool on disk,
// so that an outage of the control plane or a restart of the service loses
// none (within the spool's bounds), and reports what it could not deliver.
func ExampleNewControlSink() {
	var mtls *http.Client // the service's SVID client, e.g. identity.Join's ControlPlaneClient()
	sink, err := rampart.NewControlSink(rampart.ControlPlaneConfig{
		URL:           "https://rampart-cp:8443",
		Client:        mtls,
		SpoolDir:      "/var/lib/orders/rampart-spool", // made 0700; one process per directory
		SpoolMaxBytes: 64 << 20,                        // when full, the oldest are dropped and counted
		SpoolMaxAge:   7 * 24 * time.Hour,
	})
	if err != nil {
		log.Fatal(err)
	}
	agent, err := rampart.New(rampart.Config{Service: "orders", Sinks: []rampart.Sink{sink}})
	if err != nil {
		log.Fatal(err)
	}
	// ... serve ...

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	agent.Close(ctx) // waits for the spool to empty, within ctx
	sink.Close(ctx)  // what is left stays in SpoolDir for the next start
	if st := sink.Stats(); st.Undelivered() > 0 {
		log.Printf("rampart: %d events will never reach the control plane (%+v)", st.Undelivered(), st)
	}
}
