package rampart_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/ramparttest"
)

// An attacker who varies what it controls of a summary's key (here the
// method, a token of its choosing) must not fill the window's keys: the
// requests of every other actor would then land in the overflow summary,
// which names no actor, and detection would not see them. Its own
// requests must stay attributed to it.
func TestOneActorVaryingItsKeysCannotPushOthersIntoTheOverflow(t *testing.T) {
	agent, events := ramparttest.NewAgent(t, rampart.Config{SummaryWindow: time.Hour, SummaryMaxKeys: 200})
	h := agent.Handler(summaryMux())
	const attacker, flood = "198.51.100.66", 1000
	for i := range flood {
		hit(h, fmt.Sprintf("X%04d", i), "/items/1", attacker+":4000")
	}
	const others = 50
	for i := range others {
		hit(h, "GET", "/items/1", fmt.Sprintf("192.0.2.%d:1", i+1))
	}
	got := summaries(t, agent, events)
	fromAttacker, keyedOthers := 0, 0
	for _, ev := range got {
		switch {
		case ev.Attrs["overflow"] == "true":
			t.Errorf("%d requests in the overflow summary, which names no actor", ev.Count)
		case ev.ActorIP == attacker:
			fromAttacker += ev.Count
		default:
			keyedOthers += ev.Count
		}
	}
	if fromAttacker != flood || keyedOthers != others {
		t.Errorf("summaries attribute %d requests to the attacker and %d to the others; want %d and %d", fromAttacker, keyedOthers, flood, others)
	}
	if n := len(got); n > 201 {
		t.Errorf("%d summaries for one window of at most 200 keys and the overflow", n)
	}
}
