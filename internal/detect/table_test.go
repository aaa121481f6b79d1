package detect

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestTableAgreesWithAMap drives the bucket table and a plain map with
// the same random gets and removals, through growth, eviction and the
// index's backward shifts.
func TestTableAgreesWithAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const max = 500
	tb := newTable(max)
	model := map[string]uint32{} // key -> the events value we stored
	var order []string           // least recent first
	touch := func(k string) {
		if i := slices.Index(order, k); i >= 0 {
			order = slices.Delete(order, i, i+1)
		}
		order = append(order, k)
	}
	for step := range 20000 {
		k := fmt.Sprintf("k%d", r.IntN(800))
		if r.IntN(10) == 0 && tb.tail >= 0 {
			// Remove the least recent, as the sweep does.
			oldest := order[0]
			order = order[1:]
			delete(model, oldest)
			tb.remove(tb.tail)
			continue
		}
		b, created := tb.get(k)
		want, had := model[k]
		if created == had {
			t.Fatalf("step %d: %s created=%v, but the model had it=%v", step, k, created, had)
		}
		if had && b.events != want {
			t.Fatalf("step %d: %s holds %d, want %d", step, k, b.events, want)
		}
		if !had && len(model) == max {
			delete(model, order[0])
			order = order[1:]
		}
		b.events = uint32(step)
		model[k] = uint32(step)
		touch(k)
		if tb.len() != len(model) {
			t.Fatalf("step %d: table holds %d, model %d", step, tb.len(), len(model))
		}
	}
	if tb.evicted == 0 {
		t.Error("the test never evicted: it does not test eviction")
	}
}

func TestEvidenceIsTheFirstTenAndTheLastTen(t *testing.T) {
	e := mustEngine(t, Config{Scenarios: mustParse(t, `
name: many
type: leaky
filter: true
groupby: evt.actor.ip
capacity: 34
leakspeed: 1h
`)})
	var alerts []Alert
	for i := range 35 {
		ev := at(time.Duration(i)*time.Millisecond, "x", "a")
		ev.ID = fmt.Sprint(i)
		alerts = append(alerts, e.Process(ev)...)
	}
	want := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "25", "26", "27", "28", "29", "30", "31", "32", "33", "34"}
	if len(alerts) != 1 || !slices.Equal(alerts[0].Evidence, want) {
		t.Fatalf("alerts %+v, want one with evidence %v", alerts, want)
	}
}
