package spool_test

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/rampartsec/rampart/internal/spool"
)

// BenchmarkAppend appends batches of 64 records of 460 bytes (an event as
// the ControlSink spools it), one fsync per batch, as the agent's delivery
// goroutine does; b.N counts records.
func BenchmarkAppend(b *testing.B) {
	for _, dir := range []string{"disk", "memory"} {
		b.Run(dir, func(b *testing.B) {
			cfg := spool.Config{MaxBytes: 256 << 20}
			if dir == "disk" {
				cfg.Dir = filepath.Join(b.TempDir(), "spool")
			}
			s, err := spool.Open(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			batch := make([][]byte, 64)
			for i := range batch {
				batch[i] = bytes.Repeat([]byte("e"), 460)
			}
			b.SetBytes(460)
			b.ResetTimer()
			for i := 0; i < b.N; i += len(batch) {
				if _, err := s.Append(batch[:min(len(batch), b.N-i)]...); err != nil {
					b.Fatal(err)
				}
				if st := s.Stats(); st.Bytes > 128<<20 { // keep within the limit: drain
					b.StopTimer()
					for {
						bt, _ := s.Peek(1000, 1<<20)
						if bt == nil {
							break
						}
						s.Ack(bt)
					}
					b.StartTimer()
				}
			}
		})
	}
}

// BenchmarkPeekAck reads and acknowledges batches of 100 records, as the
// ControlSink's shipper does; b.N counts records.
func BenchmarkPeekAck(b *testing.B) {
	s, err := spool.Open(spool.Config{Dir: filepath.Join(b.TempDir(), "spool"), MaxBytes: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rec := bytes.Repeat([]byte("e"), 460)
	batch := make([][]byte, 1000)
	for i := range batch {
		batch[i] = rec
	}
	for i := 0; i < b.N; i += len(batch) {
		if _, err := s.Append(batch[:min(len(batch), b.N-i)]...); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(460)
	b.ResetTimer()
	for n := 0; n < b.N; {
		bt, err := s.Peek(100, 512<<10)
		if err != nil || bt == nil {
			b.Fatalf("Peek after %d: %v", n, err)
		}
		n += len(bt.Records)
		if err := s.Ack(bt); err != nil {
			b.Fatal(err)
		}
	}
}
