package rampart_test

import (
	"context"
	"fmt"

	"github.com/rampartsec/rampart"
)

// Code with no HTTP request marks the data it received as untrusted before
// it reaches a guarded call.
func ExampleWithUntrusted() {
	ctx := rampart.WithUntrusted(context.Background(), "job", "https://example.com/feed.xml")
	for in := range rampart.Inputs(ctx) {
		fmt.Println(in.Source, in.Value)
	}
	// Output: job https://example.com/feed.xml
}
