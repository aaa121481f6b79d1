package decision

import (
	"net/netip"
	"testing"
	"time"
)

func TestReadOnlyAtTheDatabase(t *testing.T) {
	s := mustSet(t,
		Decision{ID: "ro", Scope: ScopeUser, Value: "eve", Action: ReadOnly},
		Decision{ID: "old", Scope: ScopeUser, Value: "ann", Action: ReadOnly, Expires: now.Add(-time.Second)},
		Decision{ID: "blk", Scope: ScopeIP, Value: "203.0.113.7", Action: Block},
		Decision{ID: "sens", Scope: ScopeUser, Value: "mallory", Action: BlockSensitive},
	)
	sens := func() bool { return true }
	t.Run("a read-only actor's POST is not blocked when the database enforces it", func(t *testing.T) {
		if d, ok := s.Blocking(Subject{User: "eve"}, sens, now); ok {
			t.Fatalf("refused by %s", d.ID)
		}
		if d, ok := s.Refusal(Subject{User: "eve"}, "POST", sens, now); !ok || d.ID != "ro" {
			t.Fatalf("Refusal = %q %v, want the method rule to refuse with ro", d.ID, ok)
		}
	})
	t.Run("blocks still refuse whatever the method", func(t *testing.T) {
		if d, ok := s.Blocking(Subject{IP: netip.MustParseAddr("203.0.113.7"), User: "eve"}, sens, now); !ok || d.ID != "blk" {
			t.Fatalf("Blocking = %q %v, want blk", d.ID, ok)
		}
		if d, ok := s.Blocking(Subject{User: "mallory"}, sens, now); !ok || d.ID != "sens" {
			t.Fatalf("Blocking = %q %v, want sens", d.ID, ok)
		}
	})
	t.Run("ReadOnly names the live read-only decision of the actor", func(t *testing.T) {
		if d, ok := s.ReadOnly(Subject{User: "eve", IP: netip.MustParseAddr("203.0.113.7")}, now); !ok || d.ID != "ro" {
			t.Fatalf("ReadOnly = %q %v, want ro", d.ID, ok)
		}
		for _, sub := range []Subject{{User: "ann"}, {User: "mallory"}, {User: "alice"}, {}} {
			if d, ok := s.ReadOnly(sub, now); ok {
				t.Errorf("%+v read-only by %s", sub, d.ID)
			}
		}
		var nilSet *Set
		if _, ok := nilSet.ReadOnly(Subject{User: "eve"}, now); ok {
			t.Error("a nil set made eve read-only")
		}
	})
}
