package control_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/sqlite"
)

// decideInjection posts one SQL injection from ip and returns the decision
// injection-escalation makes that is not among before.
func decideInjection(t *testing.T, e *detecting, ip string, before []store.Decision) store.Decision {
	t.Helper()
	decode[control.EventBatchResult](t, e.do(t, "POST", "/v1/events", batchOf(attack("sql_injection", ip))), http.StatusOK)
	var found store.Decision
	eventually(t, "a new decision from injection-escalation", func() bool {
		for _, d := range decisionsOf(t, e.env, "injection-escalation") {
			if d.Value == ip && !containsID(before, d.ID) {
				found = d
				return true
			}
		}
		return false
	})
	return found
}

func containsID(ds []store.Decision, id string) bool {
	for _, d := range ds {
		if d.ID == id {
			return true
		}
	}
	return false
}

// An operator lifts an automatic decision: the same attack right after is
// decided again, where the scenario used to stay silent for the lifted
// decision's TTL.
func TestALiftedDecisionLetsTheSameAttackBeDecidedAgain(t *testing.T) {
	e := sqliteDetecting(t, control.DetectConfig{})
	first := decideInjection(t, e, "203.0.113.40", nil)
	if r := e.do(t, "DELETE", "/v1/decisions/"+first.ID, nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE: status %d, body %s", r.status, r.body)
	}
	eventually(t, "the detector ending the silence of the lifted decision", func() bool { return e.det.Stats().Lifted == 1 })
	second := decideInjection(t, e, "203.0.113.40", []store.Decision{first})
	if second.AlertID == first.AlertID {
		t.Errorf("the second decision has the first's alert %s", first.AlertID)
	}
	// A lift by a person says the decision was wrong: the next is not a
	// repeat, its TTL is the scenario's base (1h), not twice it.
	if strings.Contains(second.Reason, "repeat") {
		t.Errorf("the decision after a lift escalates: %q", second.Reason)
	}
}

// A decision lifted while no replica leads is not silenced again by the
// next leader's warm-up: replaying the events that made it, the leader
// finds it deleted.
func TestALiftedDecisionStaysLiftedAfterAFailover(t *testing.T) {
	dir := t.TempDir()
	open := func() store.Store {
		s, err := sqlite.Open(context.Background(), sqlite.Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	c := newCA(t)
	admin, hash := control.NewAdminToken()
	e := startDetecting(t, open(), c, admin, hash, control.DetectConfig{})
	first := decideInjection(t, e, "203.0.113.41", nil)
	// Once the cursor is past the event, the next leader replays it in
	// its warm-up rather than processing it anew.
	eventually(t, "the cursor past the attack", func() bool { return e.det.Stats().Cursor > 0 })
	e.stop()

	s := open()
	if err := s.DeleteDecision(t.Context(), first.ID); err != nil {
		t.Fatal(err)
	}
	e = startDetecting(t, s, c, admin, hash, control.DetectConfig{})
	eventually(t, "the new leader's warm-up ending the silence of the lifted decision", func() bool {
		st := e.det.Stats()
		return st.Leading && st.Warmup > 0 && st.Lifted == 1
	})
	if second := decideInjection(t, e, "203.0.113.41", []store.Decision{first}); strings.Contains(second.Reason, "repeat") {
		t.Errorf("the decision after a lift escalates: %q", second.Reason)
	}
}
