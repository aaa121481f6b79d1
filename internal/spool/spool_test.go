package spool_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fakeclock"
	"github.com/rampartsec/rampart/internal/spool"
)

func open(t *testing.T, cfg spool.Config) *spool.Spool {
	t.Helper()
	s, err := spool.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func rec(i int) []byte {
	return fmt.Appendf(nil, `{"id":"e%06d","pad":"%s"}`, i, strings.Repeat("x", 100))
}

func appendAll(t *testing.T, s *spool.Spool, from, to, per int) {
	t.Helper()
	for i := from; i < to; i += per {
		var rs [][]byte
		for j := i; j < min(i+per, to); j++ {
			rs = append(rs, rec(j))
		}
		if n, err := s.Append(rs...); err != nil || n != len(rs) {
			t.Fatalf("Append: %d, %v", n, err)
		}
	}
}

// drain peeks and acknowledges until the spool is empty and returns the
// records in the order they came.
func drain(t *testing.T, s *spool.Spool, batch int) [][]byte {
	t.Helper()
	var got [][]byte
	for {
		b, err := s.Peek(batch, 64<<10)
		if err != nil {
			t.Fatal(err)
		}
		if b == nil {
			return got
		}
		for _, r := range b.Records {
			got = append(got, bytes.Clone(r.Data))
		}
		if err := s.Ack(b); err != nil {
			t.Fatal(err)
		}
	}
}

// wantRange checks that got is rec(from) ... rec(to-1), in order.
func wantRange(t *testing.T, got [][]byte, from, to int) {
	t.Helper()
	if len(got) != to-from {
		t.Fatalf("got %d records, want %d (%d..%d)", len(got), to-from, from, to-1)
	}
	for i, r := range got {
		if !bytes.Equal(r, rec(from+i)) {
			t.Fatalf("record %d is %.20s, want %.20s", i, r, rec(from+i))
		}
	}
}

func TestRecordsComeBackInOrderAfterAReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	s, err := spool.Open(spool.Config{Dir: dir, MaxBytes: 1 << 20, SegmentBytes: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, s, 0, 1000, 37)
	if st := s.Stats(); st.Records != 1000 || st.Appended != 1000 || st.Segments < 5 {
		t.Fatalf("stats after 1000 appends: %+v, want 1000 records over several segments", st)
	}
	// Half delivered, then the process goes away.
	for range 5 {
		b, err := s.Peek(100, 1<<20)
		if err != nil || len(b.Records) != 100 {
			t.Fatalf("Peek: %v, %v", b, err)
		}
		if err := s.Ack(b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, spool.Config{Dir: dir, MaxBytes: 1 << 20, SegmentBytes: 16 << 10})
	if st := s.Stats(); st.Records != 500 || st.CorruptBytes != 0 {
		t.Fatalf("stats after reopening: %+v, want the 500 not acknowledged", st)
	}
	appendAll(t, s, 1000, 1100, 10)
	wantRange(t, drain(t, s, 64), 500, 1100)
	if st := s.Stats(); st.Records != 0 || st.Segments != 1 || st.Bytes > 64 {
		t.Errorf("stats once drained: %+v, want one empty segment", st)
	}
}

func TestABatchNotAcknowledgedIsPeekedAgain(t *testing.T) {
	for _, dir := range []string{"", filepath.Join(t.TempDir(), "spool")} {
		t.Run(map[bool]string{true: "on disk", false: "in memory"}[dir != ""], func(t *testing.T) {
			s := open(t, spool.Config{Dir: dir})
			appendAll(t, s, 0, 10, 10)
			b1, _ := s.Peek(4, 1<<20)
			b2, _ := s.Peek(4, 1<<20) // the first delivery failed
			if len(b1.Records) != 4 || len(b2.Records) != 4 || !bytes.Equal(b1.Records[0].Data, b2.Records[0].Data) {
				t.Fatalf("second Peek gave %d records starting %q, want the same 4 again", len(b2.Records), b2.Records[0].Data)
			}
			if err := s.Ack(b1); err != nil { // stale: ignored
				t.Fatal(err)
			}
			if st := s.Stats(); st.Records != 10 || st.Acked != 0 {
				t.Fatalf("a stale Ack changed the spool: %+v", st)
			}
			s.Ack(b2)
			wantRange(t, drain(t, s, 3), 4, 10)
		})
	}
}

func TestAFullSpoolDropsTheOldestAndCountsEachOne(t *testing.T) {
	for _, dir := range []string{"", filepath.Join(t.TempDir(), "spool")} {
		t.Run(map[bool]string{true: "on disk", false: "in memory"}[dir != ""], func(t *testing.T) {
			s := open(t, spool.Config{Dir: dir, MaxBytes: 64 << 10, SegmentBytes: 8 << 10})
			appendAll(t, s, 0, 5000, 7)
			st := s.Stats()
			if st.DroppedFull == 0 || st.Bytes > 64<<10 {
				t.Fatalf("stats %+v: want drops and at most 64 KiB held", st)
			}
			if uint64(st.Records)+st.DroppedFull != 5000 || st.UnreportedFull != st.DroppedFull {
				t.Fatalf("stats %+v: records + dropped != 5000 appended", st)
			}
			// What is left is the newest, in order.
			wantRange(t, drain(t, s, 50), 5000-st.Records, 5000)
		})
	}
}

func TestRecordsDroppedWhileOutForDeliveryCountOnce(t *testing.T) {
	cfg := spool.Config{MaxBytes: 64 << 10, SegmentBytes: 8 << 10}
	t.Run("delivered", func(t *testing.T) {
		s := open(t, cfg)
		appendAll(t, s, 0, 10, 10)
		b, _ := s.Peek(10, 1<<20)
		appendAll(t, s, 10, 2000, 10) // drops the batch's segment
		mid := s.Stats()
		if uint64(mid.Records)+mid.DroppedFull != 2000 {
			t.Fatalf("stats with the batch out %+v: waiting + dropped != 2000 appended", mid)
		}
		if err := s.Ack(b); err != nil {
			t.Fatal(err)
		}
		st := s.Stats()
		if st.Acked != 10 || st.DroppedFull != mid.DroppedFull || uint64(st.Records)+st.DroppedFull+st.Acked != 2000 {
			t.Fatalf("stats %+v (before the Ack %+v): want the 10 out for delivery acknowledged, not dropped", st, mid)
		}
	})
	t.Run("not delivered", func(t *testing.T) {
		s := open(t, cfg)
		appendAll(t, s, 0, 10, 10)
		s.Peek(10, 1<<20)
		appendAll(t, s, 10, 2000, 10)
		b, _ := s.Peek(10, 1<<20) // the delivery failed: the next batch
		st := s.Stats()
		if st.Acked != 0 || uint64(st.Records)+st.DroppedFull != 2000 {
			t.Fatalf("stats %+v: want the 10 that were out counted as dropped", st)
		}
		if bytes.Equal(b.Records[0].Data, rec(0)) {
			t.Fatal("the dropped records were peeked again")
		}
	})
}

func TestRecordsPastMaxAgeExpireAndAreCounted(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	dir := filepath.Join(t.TempDir(), "spool")
	cfg := spool.Config{Dir: dir, MaxAge: time.Hour, SegmentBytes: 4 << 10, Now: clock.Now}
	s := open(t, cfg)
	appendAll(t, s, 0, 100, 10)
	clock.Advance(50 * time.Minute)
	appendAll(t, s, 100, 150, 10)
	clock.Advance(20 * time.Minute) // the first 100 are 70 minutes old
	got := drain(t, s, 30)
	wantRange(t, got, 100, 150)
	st := s.Stats()
	if st.Expired != 100 || st.UnreportedExpired != 100 || st.Acked != 50 || st.DroppedFull != 0 {
		t.Fatalf("stats %+v: want 100 expired, 50 delivered", st)
	}
	s.MarkReported(0, 60)
	s.Close()
	s = open(t, cfg)
	if st := s.Stats(); st.UnreportedExpired != 40 {
		t.Fatalf("after reopening, %d expired records are unreported, want 40 (100 - 60 reported)", st.UnreportedExpired)
	}
}

func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) == 0 {
		t.Fatal("no segment")
	}
	return segs[len(segs)-1]
}

func TestACrashLeftoverAtTheTailIsCutAndTheRestKept(t *testing.T) {
	for name, damage := range map[string]func(b []byte) []byte{
		"half a record":             func(b []byte) []byte { return b[:len(b)-30] },
		"half a header":             func(b []byte) []byte { return b[:len(b)-len(rec(0))-8] },
		"garbage after the last":    func(b []byte) []byte { return append(b, "\x07\x00\x00\x00garbage!"...) },
		"zeros after the last":      func(b []byte) []byte { return append(b, make([]byte, 4096)...) },
		"a flipped bit in the last": func(b []byte) []byte { b[len(b)-3] ^= 0x10; return b },
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "spool")
			s := open(t, spool.Config{Dir: dir})
			appendAll(t, s, 0, 20, 5)
			s.Close()
			path := lastSegment(t, dir)
			b, _ := os.ReadFile(path)
			if err := os.WriteFile(path, damage(b), 0o600); err != nil {
				t.Fatal(err)
			}
			s = open(t, spool.Config{Dir: dir})
			st := s.Stats()
			if st.CorruptBytes == 0 {
				t.Errorf("stats %+v: the damage was not counted", st)
			}
			want := 20
			if !strings.Contains(name, "after the last") {
				want = 19
			}
			if st.Records != want {
				t.Fatalf("%d records after the damage, want %d", st.Records, want)
			}
			// Appends after the cut are readable after another reopen.
			appendAll(t, s, 100, 105, 5)
			s.Close()
			s = open(t, spool.Config{Dir: dir})
			got := drain(t, s, 100)
			wantRange(t, got[:want], 0, want)
			wantRange(t, got[want:], 100, 105)
		})
	}
}

func TestTheSpoolIsPrivateAndHasOneOwner(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	s := open(t, spool.Config{Dir: dir})
	appendAll(t, s, 0, 3, 3)
	b, _ := s.Peek(1, 1<<20)
	s.Ack(b) // writes the cursor
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("directory mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) < 3 {
		t.Fatalf("directory holds %v, want the lock, the cursor and a segment", entries)
	}
	for _, e := range entries {
		fi, _ := e.Info()
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", e.Name(), fi.Mode().Perm())
		}
	}
	if _, err := spool.Open(spool.Config{Dir: dir}); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("a second Open of the directory: %v, want it refused", err)
	}
	shared := t.TempDir()
	os.Chmod(shared, 0o755)
	if _, err := spool.Open(spool.Config{Dir: shared}); err == nil || !strings.Contains(err.Error(), "open to other users") {
		t.Errorf("Open of a 0755 directory: %v, want it refused", err)
	}
	if _, err := spool.Open(spool.Config{MaxBytes: 1000}); err == nil || !strings.Contains(err.Error(), "MaxBytes") {
		t.Errorf("Open with MaxBytes 1000: %v, want an error naming MaxBytes", err)
	}
}

func TestAMemorySpoolSaysWhatItLosesAtClose(t *testing.T) {
	s, err := spool.Open(spool.Config{})
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, s, 0, 7, 7)
	b, _ := s.Peek(2, 1<<20)
	s.Ack(b)
	if lost, err := s.Close(); lost != 5 || err != nil {
		t.Fatalf("Close = %d, %v; want 5 lost", lost, err)
	}
	if _, err := s.Append(rec(1)); err != spool.ErrClosed {
		t.Fatalf("Append after Close = %v", err)
	}
}

func TestARecordLargerThanTheSpoolTakesIsRefused(t *testing.T) {
	s := open(t, spool.Config{MaxBytes: 64 << 10})
	if n, err := s.Append(rec(1), make([]byte, 17<<10)); n != 0 || err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("Append of 17 KiB into a 64 KiB spool = %d, %v; want refused", n, err)
	}
	// A record longer than Peek's byte budget still comes out, alone.
	big := bytes.Repeat([]byte("y"), 15<<10)
	s.Append(rec(1), big, rec(2))
	for i, want := range [][]byte{rec(1), big, rec(2)} {
		b, _ := s.Peek(10, 1<<10)
		if b == nil || !bytes.Equal(b.Records[0].Data, want) || (i == 1 && len(b.Records) != 1) {
			t.Fatalf("batch %d: %v", i, b)
		}
		s.Ack(b)
	}
}
