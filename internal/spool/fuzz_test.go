package spool

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzScanSegment feeds arbitrary bytes as a segment file (what a crash or
// a damaged disk may leave) to the reader: it must never panic, its good
// prefix must be whole records that encode back to the same bytes, and Open
// must deliver exactly those records and keep appending after them.
func FuzzScanSegment(f *testing.F) {
	var seg []byte
	seg = append(seg, segMagic...)
	seg = appendRecord(seg, 1, []byte(`{"id":"a"}`))
	seg = appendRecord(seg, 2, []byte(`{"id":"b"}`))
	f.Add(seg)
	f.Add(seg[:len(seg)-3])
	f.Add(append(bytes.Clone(seg), 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0))
	f.Add([]byte(segMagic))
	f.Add([]byte("RSPOOL0\nnot a spool"))
	f.Fuzz(func(t *testing.T, b []byte) {
		const maxData = 4 << 10
		sc := scanSegment(b, maxData)
		if sc.badHead {
			if len(b) >= len(segMagic) && string(b[:len(segMagic)]) == segMagic {
				t.Fatal("a good magic was called bad")
			}
			return
		}
		if sc.valid > int64(len(b)) {
			t.Fatalf("valid prefix %d past the %d bytes", sc.valid, len(b))
		}
		var again []byte
		again = append(again, segMagic...)
		var datas [][]byte
		for off := len(segMagic); off < int(sc.valid); {
			ts, data, n, err := parseRecord(b[off:sc.valid], maxData)
			if err != nil {
				t.Fatalf("record at %d of the good prefix: %v", off, err)
			}
			again = appendRecord(again, ts, data)
			datas = append(datas, data)
			off += n
		}
		if !bytes.Equal(again, b[:sc.valid]) || len(datas) != len(sc.ends) {
			t.Fatalf("the good prefix does not encode back to itself")
		}

		dir := filepath.Join(t.TempDir(), "spool")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "00000000000000000001.seg"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(Config{Dir: dir, MaxBytes: 1 << 20, MaxAge: -1}) // the seeds were appended in 1970
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Append([]byte("after")); err != nil {
			t.Fatal(err)
		}
		want := append(datas, []byte("after"))
		var got [][]byte
		for {
			batch, err := s.Peek(7, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if batch == nil {
				break
			}
			for _, r := range batch.Records {
				got = append(got, r.Data)
			}
			s.Ack(batch)
		}
		if len(got) != len(want) {
			t.Fatalf("delivered %d records, want %d", len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("record %d is %q, want %q", i, got[i], want[i])
			}
		}
	})
}
