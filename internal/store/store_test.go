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

func TestJoinTokensParse(t *testing.T) {
	tok, id, hash := NewJoinToken()
	if !strings.HasPrefix(tok, "rjt_"+id+".") || !ValidJoinTokenID(id) || len(hash) != 32 {
		t.Fatalf("NewJoinToken = %q, id %q, %d-byte hash", tok, id, len(hash))
	}
	gotID, got, err := ParseJoinToken(tok)
	if err != nil || gotID != id || string(got) != string(hash) {
		t.Fatalf("ParseJoinToken(fresh token) = %q, %x, %v; want %q, %x", gotID, got, err, id, hash)
	}
	other, otherID, _ := NewJoinToken()
	if gotID, h, _ := ParseJoinToken(other); string(h) == string(hash) || gotID == id || otherID == id {
		t.Fatal("two tokens share a hash or an id")
	}
	t.Run("a token made before ids is read without one", func(t *testing.T) {
		secret := tok[len("rjt_")+len(id)+1:]
		gotID, got, err := ParseJoinToken("rjt_" + secret)
		if err != nil || gotID != "" || string(got) != string(hash) {
			t.Fatalf("ParseJoinToken(old format) = %q, %x, %v; want no id and %x", gotID, got, err, hash)
		}
	})
	t.Run("malformed tokens are unknown", func(t *testing.T) {
		for _, bad := range []string{"", "rjt_", tok[:len(tok)-1], tok + "A", "rjt_" + strings.ToUpper(id) + tok[len("rjt_")+len(id):],
			"rjt_" + id + "." + strings.Repeat("A", 42) + "!", "Bearer " + tok} {
			if _, _, err := ParseJoinToken(bad); err != ErrTokenUnknown {
				t.Errorf("ParseJoinToken(%q) = %v, want ErrTokenUnknown", bad, err)
			}
		}
	})
}

func FuzzParseJoinToken(f *testing.F) {
	tok, _, _ := NewJoinToken()
	f.Add(tok)
	f.Add("rjt_")
	f.Add("rjt_" + strings.Repeat("A", 43))
	f.Add("rjt_0123456789abcdef." + strings.Repeat("A", 43))
	f.Fuzz(func(t *testing.T, s string) {
		id, h, err := ParseJoinToken(s)
		if err != nil {
			if err != ErrTokenUnknown {
				t.Fatalf("ParseJoinToken(%q) = %v, want ErrTokenUnknown", s, err)
			}
			return
		}
		if len(h) != 32 || id != "" && !ValidJoinTokenID(id) {
			t.Fatalf("ParseJoinToken(%q) = id %q, hash of %d bytes", s, id, len(h))
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
