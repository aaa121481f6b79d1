package rampart_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/contribtest"
	"github.com/rampartsec/rampart/ramparttest"
)

func TestAddInputsReachTheGuardsAndCallBlockedSaysSo(t *testing.T) {
	a, rec := ramparttest.NewAgent(t, rampart.Config{})
	db := contribtest.SQLite(t, a)
	ctx, err := a.StartCall(context.Background(), rampart.Call{Method: "POST", Path: "/users.v1.Users/Rename", ID: "call-1"})
	if err != nil {
		t.Fatal(err)
	}
	if rampart.CallBlocked(ctx) != nil {
		t.Fatal("a fresh call is blocked")
	}
	if !rampart.AddInputs(ctx, rampart.Input{Source: "grpc", Name: "user.name", Value: "x' OR '1'='1"}) {
		t.Fatal("AddInputs found no call in the call's context")
	}
	if _, err := db.MarkVIP(ctx, "x' OR '1'='1"); !errors.Is(err, rampart.ErrBlocked) {
		t.Fatalf("MarkVIP = %v, want ErrBlocked", err)
	}
	if err := rampart.CallBlocked(ctx); !errors.Is(err, rampart.ErrBlocked) {
		t.Errorf("CallBlocked = %v after a blocked call", err)
	}
	want := ramparttest.Want{Kind: rampart.KindSQLInjection, Route: "/users.v1.Users/Rename", RequestID: "call-1",
		Input: rampart.Input{Source: "grpc", Name: "user.name", Value: "x' OR '1'='1"}}
	if d := want.Diff(rec.Next(t)); d != "" {
		t.Error(d)
	}
	if rampart.RequestID(ctx) != "call-1" {
		t.Errorf("RequestID = %q", rampart.RequestID(ctx))
	}
}

func TestAddInputsPastTheCapFailsClosed(t *testing.T) {
	a, _ := ramparttest.NewAgent(t, rampart.Config{MaxInputs: 8})
	db := contribtest.SQLite(t, a)
	ctx, err := a.StartCall(context.Background(), rampart.Call{Method: "POST", Path: "/s/M"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		rampart.AddInputs(ctx, rampart.Input{Source: "grpc", Name: "tags", Value: fmt.Sprintf("tag-%d", i)})
	}
	if _, err := db.MarkVIP(ctx, "alice"); !errors.Is(err, rampart.ErrBlocked) {
		t.Errorf("a guarded call of a call with more inputs than the cap = %v, want ErrBlocked", err)
	}
}

// A stream's messages arrive one at a time: many calls of AddInputs, more
// values than the collector's first stage holds (it deduplicates past
// it), all recorded.
func TestAddInputsAcrossManyCallsRecordsEveryValue(t *testing.T) {
	a, _ := ramparttest.NewAgent(t, rampart.Config{})
	ctx, err := a.StartCall(context.Background(), rampart.Call{Method: "POST", Path: "/s/M"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		if !rampart.AddInputs(ctx, rampart.Input{Source: "grpc", Name: "n", Value: fmt.Sprintf("value-%d", i)}, rampart.Input{Source: "grpc", Name: "dup", Value: "same"}) {
			t.Fatalf("AddInputs refused value %d, under the default cap", i)
		}
	}
	values := map[string]bool{}
	for in := range rampart.Inputs(ctx) {
		if in.Source == "grpc" {
			values[in.Value] = true
		}
	}
	if len(values) != 301 {
		t.Errorf("%d distinct values recorded, want the 300 and the repeated one", len(values))
	}
}
