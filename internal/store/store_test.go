package store

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCursorRoundTrips(t *testing.T) {
	for _, c := range []Cursor{
		{Time: time.Unix(0, 1772366400123456789).UTC(), ID: "0af3c9"},
		{Time: time.Unix(0, -5).UTC(), ID: "a:b:c"},
	} {
		got, err := ParseCursor(c.String())
		if err != nil || got != c {
			t.Errorf("ParseCursor(%q) = %v, %v; want %v", c.String(), got, err, c)
		}
	}
}

func FuzzParseCursor(f *testing.F) {
	f.Add(Cursor{Time: time.Unix(0, 42), ID: "x"}.String())
	f.Add("")
	f.Add("MTox")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCursor(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseCursor(%q) error %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		if again, err := ParseCursor(c.String()); err != nil || again != c {
			t.Fatalf("cursor %v does not round-trip: %v, %v", c, again, err)
		}
	})
}

func TestJoinTokenHashes(t *testing.T) {
	tok, hash := NewJoinToken()
	if !strings.HasPrefix(tok, "rjt_") || len(hash) != 32 {
		t.Fatalf("NewJoinToken = %q, %d-byte hash", tok, len(hash))
	}
	got, err := HashJoinToken(tok)
	if err != nil || string(got) != string(hash) {
		t.Fatalf("HashJoinToken(fresh token) = %x, %v; want %x", got, err, hash)
	}
	other, _ := NewJoinToken()
	if h, _ := HashJoinToken(other); string(h) == string(hash) {
		t.Fatal("two tokens share a hash")
	}
}

func FuzzHashJoinToken(f *testing.F) {
	tok, _ := NewJoinToken()
	f.Add(tok)
	f.Add("rjt_")
	f.Add("rjt_" + strings.Repeat("A", 43))
	f.Fuzz(func(t *testing.T, s string) {
		h, err := HashJoinToken(s)
		if err != nil {
			if err != ErrTokenUnknown {
				t.Fatalf("HashJoinToken(%q) = %v, want ErrTokenUnknown", s, err)
			}
			return
		}
		if len(h) != 32 {
			t.Fatalf("hash of %d bytes", len(h))
		}
	})
}

func TestValidateDecisionNamesTheField(t *testing.T) {
	now := time.Now()
	_, err := ValidateDecision(Decision{Scope: ScopeIP, Value: "300.1.1.1", Action: ActionBlock}, now)
	var ie *InvalidError
	if !errors.As(err, &ie) || ie.Field != "value" || !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), `"300.1.1.1"`) {
		t.Errorf("message %q does not quote the value", err)
	}
}

func TestValidateEventsKeepsTheFirstCopy(t *testing.T) {
	at := time.Now()
	evs, err := ValidateEvents([]Event{
		{ID: "a", Time: at, Kind: "k", Service: "s", Action: "first"},
		{ID: "b", Time: at, Kind: "k", Service: "s"},
		{ID: "a", Time: at, Kind: "k", Service: "s", Action: "second"},
	})
	if err != nil || len(evs) != 2 || evs[0].Action != "first" {
		t.Fatalf("ValidateEvents = %+v, %v", evs, err)
	}
	_, err = ValidateEvents([]Event{{ID: "a", Time: at, Kind: "k", Service: "s", Data: []byte("\"\xff\"")}})
	var ie *InvalidError
	if !errors.As(err, &ie) || ie.Field != "events[0].data" {
		t.Fatalf("invalid UTF-8 data: %v", err)
	}
}
