package control_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/postgres"
)

// Two replicas over one PostgreSQL database, fed one stream of events
// alternately, decide what one would: each attacker once, no duplicate,
// and when the leader is killed mid-stream the other carries on from the
// stored events, its buckets rebuilt from them.
func TestTwoReplicasDecideOnceAndTheSurvivorCarriesOn(t *testing.T) {
	dsn := postgresDSN(t)
	c := newCA(t)
	admin, hash := control.NewAdminToken()
	open := func() store.Store {
		s, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	replicas := []*detecting{
		startDetecting(t, open(), c, admin, hash, control.DetectConfig{}),
		startDetecting(t, open(), c, admin, hash, control.DetectConfig{}),
	}
	post := func(r *detecting, evs ...store.Event) {
		t.Helper()
		decode[control.EventBatchResult](t, r.do(t, "POST", "/v1/events", batchOf(evs...)), http.StatusOK)
	}
	var leader, other *detecting
	eventually(t, "a leader", func() bool {
		for i, r := range replicas {
			if r.det.Stats().Leading {
				leader, other = r, replicas[1-i]
				return true
			}
		}
		return false
	})
	if other.det.Stats().Leading {
		t.Fatal("both replicas lead")
	}

	// Twenty attackers, one injection each (one takes the bucket over),
	// posted alternately to both replicas.
	var want []string
	for i := range 20 {
		ip := fmt.Sprintf("203.0.113.%d", i+1)
		want = append(want, ip)
		post(replicas[i%2], attack("sql_injection", ip))
	}
	// One more attacker sends three WAF matches (weight 1 each; the
	// fifth within the leak takes the bucket over).
	slow := "198.51.100.77"
	for range 3 {
		post(other, attack("waf", slow))
	}
	eventually(t, "the leader has processed the 23 events", func() bool { return leader.det.Stats().Events >= 23 })
	eventually(t, "20 decisions", func() bool { return len(decisionsOf(t, other.env, "injection-escalation")) >= 20 })

	// Ten more attackers, posted to the follower; the leader is killed
	// right after the first few, whatever it has processed of them.
	for i := range 10 {
		ip := fmt.Sprintf("203.0.113.%d", 100+i)
		want = append(want, ip)
		post(other, attack("sql_injection", ip))
		if i == 3 {
			leader.stop()
		}
	}
	// The last two WAF matches of the slow attacker: decided only if the
	// survivor rebuilt the bucket of the first three from the store.
	post(other, attack("waf", slow), attack("waf", slow))
	want = append(want, slow)

	var ds []store.Decision
	eventually(t, "the survivor decides every attacker", func() bool {
		ds = decisionsOf(t, other.env, "injection-escalation")
		return len(ds) >= len(want)
	})
	time.Sleep(500 * time.Millisecond) // room for a duplicate to show
	ds = decisionsOf(t, other.env, "injection-escalation")
	var got []string
	for _, d := range ds {
		got = append(got, d.Value)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("decided %v\nwant      %v (each once)", got, want)
	}
	alerts := decode[control.AlertList](t, other.do(t, "GET", "/v1/alerts?scenario=injection-escalation&limit=1000", nil), http.StatusOK)
	if len(alerts.Alerts) != len(want) {
		t.Errorf("%d alerts, want %d", len(alerts.Alerts), len(want))
	}
	if st := other.det.Stats(); !st.Leading || st.Warmup == 0 {
		t.Errorf("survivor's stats %+v: want it leading after a warm-up", st)
	}
}
