// Package spool is a bounded first-in first-out queue of records kept in a
// directory, for what must outlive an outage of its receiver and a restart
// of its process: the event shippers of the SDK and of the gateway keep the
// events the control plane has not acknowledged in one.
//
// Records are appended to segment files (at most Config.SegmentBytes each)
// and read from the oldest. A reader peeks a batch from the head, delivers
// it, and acknowledges it; a batch not acknowledged is peeked again, so that
// delivery is at least once and in order (the receiver must ignore a record
// it has seen, as the control plane ignores an event id it holds).
//
// # Durability
//
// Append writes its records with one write and one fsync before it returns
// (a group commit per call: callers append a batch at a time), so that an
// appended record survives a crash of the process and of the machine. The
// head's position is saved at each acknowledgement, written in place with a
// checksum and without fsync: after a crash of the machine the last few
// batches may be delivered a second time (or, if the save was torn, the
// oldest segment again), which the receiver ignores, and none is lost.
// When the last segment is emptied for reuse, the head is synced first, so
// that a stale head never points into new records. A crash can leave the
// last record of a segment short or garbled; Open cuts a segment at its
// first record whose checksum fails (Stats.CorruptBytes counts what was
// cut) and keeps every record before.
//
// # Limits
//
// Config.MaxBytes bounds the bytes held (headers included). When an Append
// would pass it, the oldest segments are dropped whole, their records
// counted in Stats.DroppedFull: a segment is a sixteenth of MaxBytes by
// default, so a full spool drops the oldest sixteenth of its events at a
// time and keeps the newest. Records older than Config.MaxAge (by the time
// they were appended) are dropped as the head reaches them, counted in
// Stats.Expired. A record dropped while a batch holding it is out for
// delivery counts as delivered if that batch is acknowledged, and as
// dropped otherwise, so that the counters hold only what happened.
//
// The directory is made 0700 if it does not exist, and refused if it
// exists and others may use it; files are 0600 (records may carry
// credentials, such as the actor tokens of events). A lock file keeps a
// second process from opening the same directory. Without a directory
// (Config.Dir ""), the segments are kept in memory, with the same limits.
package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of a Config, for its zero fields.
const (
	DefaultMaxBytes = 64 << 20
	DefaultMaxAge   = 7 * 24 * time.Hour
	// MinMaxBytes is the smallest MaxBytes a Config may set.
	MinMaxBytes = 64 << 10
	// MaxRecordBytes bounds a record's data (a quarter of MaxBytes if
	// that is smaller).
	MaxRecordBytes = 1 << 20
)

const (
	segSuffix  = ".seg"
	cursorFile = "cursor"
	lockFile   = "LOCK"
)

// ErrClosed is returned by the methods of a closed Spool.
var ErrClosed = errors.New("spool: closed")

// ErrTooLarge is returned by Append for a record longer than the spool
// takes (MaxRecordBytes, or a quarter of Config.MaxBytes).
var ErrTooLarge = errors.New("spool: record too large")

// Config configures Open.
type Config struct {
	// Dir holds the segment files; it is made (0700) if it does not
	// exist. "" keeps the records in memory: they outlive an outage of
	// the receiver, not the process.
	Dir string
	// MaxBytes bounds what the spool holds; when full, the oldest
	// records are dropped. Zero means DefaultMaxBytes; at least
	// MinMaxBytes.
	MaxBytes int64
	// MaxAge drops records older than it (by the time they were
	// appended) before they are delivered. Zero means DefaultMaxAge;
	// negative, no limit.
	MaxAge time.Duration
	// SegmentBytes is the size past which a new segment file starts,
	// and what a full spool drops at a time. Zero means MaxBytes/16,
	// within 16 KiB and 4 MiB; at most MaxBytes/4.
	SegmentBytes int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Stats are a spool's counters: since Open, except Records, Bytes,
// Segments and the Unreported ones, which are its state.
type Stats struct {
	Records      int   // records waiting to be acknowledged, those out for delivery included
	Bytes        int64 // bytes held: the segments, headers included
	Segments     int
	Appended     uint64 // records appended
	Acked        uint64 // records acknowledged (delivered)
	DroppedFull  uint64 // records dropped to make room, never delivered
	Expired      uint64 // records dropped for being older than MaxAge, never delivered
	CorruptBytes int64  // bytes cut from segments at Open or found corrupt when read
	// CorruptRecords counts records lost to damage found after Open
	// (damage found by Open is counted in bytes only: what it held is
	// unknown).
	CorruptRecords uint64
	// UnreportedFull and UnreportedExpired count the records dropped
	// (full) and expired that the owner has not yet reported (see
	// MarkReported); they are saved with the head, and survive a
	// restart.
	UnreportedFull, UnreportedExpired uint64
}

// Record is one record of a Batch.
type Record struct {
	Data []byte
	Time time.Time // when it was appended
}

// Batch is records peeked from the head, to acknowledge once delivered.
type Batch struct {
	Records []Record
	Bytes   int // of the records' data

	spans  []span // records per segment, in order
	endOff int64  // offset past the last record, in the last span's segment
}

type span struct {
	seq uint64
	n   int
}

// Spool is a bounded on-disk (or in-memory) queue of records. It is safe for
// concurrent use; one reader at a time peeks and acknowledges.
type Spool struct {
	mu       sync.Mutex
	dir      string
	maxBytes int64
	maxAge   time.Duration
	segBytes int64
	maxData  int
	now      func() time.Time
	lock     *os.File
	cursor   *os.File // the saved head, written in place

	segs     []*segment
	nextSeq  uint64
	head     int64 // offset of the first unacknowledged record in segs[0]
	headRecs int   // records of segs[0] before head
	bytes    int64
	records  int

	inflight *Batch
	orphans  int // records of inflight whose segment was dropped

	stats    Stats
	notify   chan struct{}
	closed   bool
	writeBuf []byte
}

type segment struct {
	seq     uint64
	f       *os.File // nil in memory
	mem     []byte   // in memory: the whole segment
	size    int64
	records int
	newest  int64
}

// Open opens (or creates) the spool of cfg.Dir, cuts what a crash left
// half-written, and finds the head saved at the last acknowledgement.
func Open(cfg Config) (*Spool, error) {
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxBytes < MinMaxBytes {
		return nil, fmt.Errorf("spool: MaxBytes %d is below the minimum %d", cfg.MaxBytes, MinMaxBytes)
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.SegmentBytes == 0 {
		cfg.SegmentBytes = min(max(cfg.MaxBytes/16, 16<<10), 4<<20)
	}
	if cfg.SegmentBytes < 1<<10 || cfg.SegmentBytes > cfg.MaxBytes/4 {
		return nil, fmt.Errorf("spool: SegmentBytes %d is not within 1 KiB and MaxBytes/4 (%d)", cfg.SegmentBytes, cfg.MaxBytes/4)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Spool{dir: cfg.Dir, maxBytes: cfg.MaxBytes, maxAge: cfg.MaxAge, segBytes: cfg.SegmentBytes,
		maxData: int(min(MaxRecordBytes, cfg.MaxBytes/4)), now: cfg.Now, notify: make(chan struct{}, 1), nextSeq: 1}
	if s.dir == "" {
		s.segs = []*segment{{seq: s.nextSeq, mem: []byte(segMagic), size: int64(len(segMagic))}}
		s.nextSeq++
		s.head = int64(len(segMagic))
		s.bytes = s.segs[0].size
		return s, nil
	}
	if err := privateDir(s.dir); err != nil {
		return nil, err
	}
	lock, err := lockDir(filepath.Join(s.dir, lockFile))
	if err != nil {
		return nil, err
	}
	s.lock = lock
	if err := s.load(); err != nil {
		s.closeFiles()
		return nil, err
	}
	return s, nil
}

// privateDir makes dir (0700) or checks that others have no access to it.
func privateDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("spool: %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("spool: %s is open to other users (mode %v): use a directory only its owner may use (0700)", dir, fi.Mode().Perm())
	}
	return nil
}

// load reads the segments and the saved head.
func (s *Spool) load() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	var seqs []uint64
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(name, segSuffix) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, segSuffix), 10, 64)
		if err != nil || seq == 0 {
			continue
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	cur := s.readCursor()
	s.stats.UnreportedFull, s.stats.UnreportedExpired = cur.full, cur.expired
	if s.cursor, err = os.OpenFile(filepath.Join(s.dir, cursorFile), os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	syncDir(s.dir)
	var headEnds []int64
	for _, seq := range seqs {
		path := s.segPath(seq)
		if seq < cur.seq { // acknowledged; its removal did not happen
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("spool: %w", err)
			}
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		sc := scanSegment(data, s.maxData)
		if sc.badHead {
			s.stats.CorruptBytes += int64(len(data))
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("spool: %w", err)
			}
			continue
		}
		if sc.valid < int64(len(data)) {
			s.stats.CorruptBytes += int64(len(data)) - sc.valid
			if err := os.Truncate(path, sc.valid); err != nil {
				return fmt.Errorf("spool: cut the damaged end of %s: %w", path, err)
			}
		}
		f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		seg := &segment{seq: seq, f: f, size: sc.valid, records: len(sc.ends), newest: sc.newest}
		if len(s.segs) == 0 {
			headEnds = sc.ends
		}
		s.segs = append(s.segs, seg)
		s.bytes += seg.size
		s.records += seg.records
	}
	if n := len(seqs); n > 0 {
		s.nextSeq = seqs[n-1] + 1
	}
	s.nextSeq = max(s.nextSeq, cur.seq+1)
	if len(s.segs) > 0 {
		s.head = int64(len(segMagic))
		if s.segs[0].seq == cur.seq {
			// The saved head counts only if it is a record boundary of
			// what is left; otherwise the segment is read again whole.
			if i := slices.Index(headEnds, cur.off); i >= 0 {
				s.head, s.headRecs = cur.off, i+1
				s.records -= i + 1
			}
		}
	}
	if len(s.segs) == 0 || s.segs[len(s.segs)-1].size >= s.segBytes {
		if err := s.rotate(); err != nil {
			return err
		}
		if len(s.segs) == 1 {
			s.head = int64(len(segMagic))
		}
	}
	// Drop what a smaller MaxBytes no longer has room for.
	for s.bytes > s.maxBytes && len(s.segs) > 1 {
		if err := s.dropHead(); err != nil {
			return err
		}
	}
	return nil
}

func (s *Spool) segPath(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", seq, segSuffix))
}

// rotate starts a new segment at the tail.
func (s *Spool) rotate() error {
	seg := &segment{seq: s.nextSeq, size: int64(len(segMagic))}
	if s.dir == "" {
		seg.mem = []byte(segMagic)
	} else {
		path := s.segPath(seg.seq)
		f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		if _, err := f.Write([]byte(segMagic)); err != nil {
			f.Close()
			os.Remove(path)
			return fmt.Errorf("spool: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			os.Remove(path)
			return fmt.Errorf("spool: %w", err)
		}
		syncDir(s.dir)
		seg.f = f
	}
	s.nextSeq++
	s.segs = append(s.segs, seg)
	s.bytes += seg.size
	return nil
}

// syncDir makes a file's creation or removal in dir durable; a failure
// only risks a segment reappearing (read again) or vanishing before its
// records were synced, which the fsync of the records covers.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// Append adds records at the tail, dropping the oldest ones if there is no
// room, and returns once they are written and synced. It returns how many
// it appended: all of them unless err is not nil (a failed write may have
// appended the first ones).
func (s *Spool) Append(records ...[]byte) (int, error) {
	for _, r := range records {
		if len(r) > s.maxData {
			return 0, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(r), s.maxData)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	n, err := s.append(records)
	if n > 0 {
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
	return n, err
}

func (s *Spool) append(records [][]byte) (int, error) {
	before := s.stats.Appended
	done := func(err error) (int, error) { return int(s.stats.Appended - before), err }
	now := s.now().UnixNano()
	buf := s.writeBuf[:0]
	pending := 0
	for _, r := range records {
		n := int64(headerLen + len(r))
		tail := s.segs[len(s.segs)-1]
		if tail.records+pending > 0 && tail.size+int64(len(buf))+n > s.segBytes {
			if err := s.write(tail, buf, pending, now); err != nil {
				return done(err)
			}
			buf, pending = buf[:0], 0
			if err := s.rotate(); err != nil {
				return done(err)
			}
		}
		for s.bytes+int64(len(buf))+n > s.maxBytes {
			if len(s.segs) == 1 {
				// Only the tail is left: it must be closed to be
				// dropped. (SegmentBytes <= MaxBytes/4 makes this rare.)
				if err := s.write(s.segs[0], buf, pending, now); err != nil {
					return done(err)
				}
				buf, pending = buf[:0], 0
				if err := s.rotate(); err != nil {
					return done(err)
				}
			}
			if err := s.dropHead(); err != nil {
				return done(err)
			}
		}
		buf = appendRecord(buf, now, r)
		pending++
	}
	err := s.write(s.segs[len(s.segs)-1], buf, pending, now)
	if cap(buf) <= 1<<20 {
		s.writeBuf = buf[:0]
	}
	return done(err)
}

// write appends buf, holding n records, to seg and syncs it.
func (s *Spool) write(seg *segment, buf []byte, n int, now int64) error {
	if n == 0 {
		return nil
	}
	if seg.f == nil {
		seg.mem = append(seg.mem, buf...)
	} else {
		if _, err := seg.f.Write(buf); err != nil {
			seg.f.Truncate(seg.size) // best effort; Open cuts a partial record anyway
			return fmt.Errorf("spool: write: %w", err)
		}
		if err := seg.f.Sync(); err != nil {
			return fmt.Errorf("spool: sync: %w", err)
		}
	}
	seg.size += int64(len(buf))
	seg.records += n
	seg.newest = max(seg.newest, now)
	s.bytes += int64(len(buf))
	s.records += n
	s.stats.Appended += uint64(n)
	return nil
}

// dropHead drops the oldest segment to make room, counting its records
// that were neither acknowledged nor out for delivery.
func (s *Spool) dropHead() error {
	seg := s.segs[0]
	waiting := seg.records - s.headRecs
	out := 0
	if s.inflight != nil {
		for _, sp := range s.inflight.spans {
			if sp.seq == seg.seq {
				out = sp.n
			}
		}
	}
	s.orphans += out
	dropped := uint64(waiting - out)
	s.stats.DroppedFull += dropped
	s.stats.UnreportedFull += dropped
	if err := s.removeHead(); err != nil {
		return err
	}
	s.saveCursor()
	return nil
}

// removeHead removes segs[0], whose waiting records the caller has
// accounted for.
func (s *Spool) removeHead() error {
	seg := s.segs[0]
	s.records -= seg.records - s.headRecs
	s.bytes -= seg.size
	s.segs = s.segs[1:]
	s.head, s.headRecs = int64(len(segMagic)), 0
	if seg.f != nil {
		seg.f.Close()
		if err := os.Remove(s.segPath(seg.seq)); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	if len(s.segs) == 0 {
		return s.rotate()
	}
	return nil
}

// Appended is signalled (it has a buffer of one) after each Append, so that
// a reader waiting for records wakes up.
func (s *Spool) Appended() <-chan struct{} { return s.notify }

// Peek returns up to maxRecords records (and, past the first, up to
// maxBytes of data) from the head, oldest first, or nil if the spool is
// empty. They stay in the spool until Ack; the next Peek without Ack
// returns them again (save those dropped meanwhile). Records past MaxAge
// at the head are dropped first.
func (s *Spool) Peek(maxRecords, maxBytes int) (*Batch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	s.settleInflight()
	if err := s.expire(); err != nil {
		return nil, err
	}
	b := &Batch{}
	full := false
	for i := 0; i < len(s.segs) && !full && s.records > 0; i++ {
		seg := s.segs[i]
		off := int64(len(segMagic))
		if i == 0 {
			off = s.head
		}
		sp := span{seq: seg.seq}
		rd := chunkReader{s: s, seg: seg}
		if seg.records > 0 {
			// Read about what the batch needs, not a whole chunk.
			avg := (seg.size - int64(len(segMagic))) / int64(seg.records)
			rd.want = min(max(avg*int64(maxRecords+1), 4<<10), chunkBytes)
		}
		for off < seg.size {
			if len(b.Records) >= maxRecords {
				full = true
				break
			}
			t, data, n, err := rd.at(off)
			if errors.Is(err, errShort) || errors.Is(err, errCorrupt) {
				break
			}
			if err != nil {
				return nil, err
			}
			if len(b.Records) > 0 && b.Bytes+len(data) > maxBytes {
				full = true
				break
			}
			b.Records = append(b.Records, Record{Data: data, Time: time.Unix(0, t)})
			b.Bytes += len(data)
			sp.n++
			off += int64(n)
		}
		if sp.n > 0 {
			b.spans = append(b.spans, sp)
			b.endOff = off
		}
		if !full && off < seg.size {
			// Damaged since Open (the disk, or another writer): what
			// follows in the segment cannot be read. Deliver what came
			// before; once the damage is at the head, drop the rest.
			if len(b.Records) > 0 {
				break
			}
			if err := s.discardHead(off); err != nil {
				return nil, err
			}
			i = -1
		}
	}
	if len(b.Records) == 0 {
		return nil, nil
	}
	s.inflight = b
	return b, nil
}

// discardHead drops the rest of segs[0] from off, which cannot be read.
func (s *Spool) discardHead(off int64) error {
	seg := s.segs[0]
	s.stats.CorruptBytes += seg.size - off
	lost := uint64(seg.records - s.headRecs)
	s.stats.CorruptRecords += lost
	if len(s.segs) == 1 {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	return s.removeHead()
}

// chunkReader reads a segment's records through a buffer of a few hundred
// KiB, so that a batch costs a few reads rather than two per record.
type chunkReader struct {
	s     *Spool
	seg   *segment
	chunk []byte
	from  int64
	want  int64 // bytes to read at a time; 0 means chunkBytes
}

const chunkBytes = 256 << 10

// at returns the record at off.
func (r *chunkReader) at(off int64) (t int64, data []byte, n int, err error) {
	for range 2 {
		rel := off - r.from
		if r.chunk != nil && rel >= 0 && rel < int64(len(r.chunk)) {
			t, data, n, err = parseRecord(r.chunk[rel:], r.s.maxData)
			if !errors.Is(err, errShort) || off+int64(max(n, headerLen)) > r.seg.size {
				return t, data, n, err
			}
		}
		want := r.want
		if want == 0 {
			want = chunkBytes
		}
		want = max(want, int64(n))
		r.chunk, err = r.s.readAt(r.seg, off, min(want, r.seg.size-off))
		if err != nil {
			return 0, nil, 0, err
		}
		r.from = off
	}
	return parseRecord(r.chunk, r.s.maxData)
}

// settleInflight counts the records of an unacknowledged batch whose
// segment was dropped: they were not delivered.
func (s *Spool) settleInflight() {
	if s.inflight != nil && s.orphans > 0 {
		s.stats.DroppedFull += uint64(s.orphans)
		s.stats.UnreportedFull += uint64(s.orphans)
		s.saveCursor()
	}
	s.inflight, s.orphans = nil, 0
}

// expire drops the records at the head appended before now - MaxAge.
func (s *Spool) expire() error {
	if s.maxAge < 0 || s.records == 0 {
		return nil
	}
	cutoff := s.now().Add(-s.maxAge).UnixNano()
	expired := 0
	defer func() {
		if expired > 0 {
			s.stats.Expired += uint64(expired)
			s.stats.UnreportedExpired += uint64(expired)
			s.saveCursor()
		}
	}()
	for s.records > 0 {
		seg := s.segs[0]
		if len(s.segs) > 1 && seg.newest < cutoff {
			expired += seg.records - s.headRecs
			if err := s.removeHead(); err != nil {
				return err
			}
			continue
		}
		if s.head >= seg.size {
			if len(s.segs) == 1 {
				return nil
			}
			if err := s.removeHead(); err != nil {
				return err
			}
			continue
		}
		h, err := s.readAt(seg, s.head, min(headerLen, seg.size-s.head))
		if err != nil {
			return err
		}
		if len(h) < headerLen {
			return nil
		}
		if int64(binary.LittleEndian.Uint64(h[8:16])) >= cutoff {
			return nil
		}
		n := int64(headerLen) + int64(binary.LittleEndian.Uint32(h[0:4]))
		if s.head+n > seg.size {
			return nil // damaged: Peek finds it
		}
		s.head += n
		s.headRecs++
		s.records--
		expired++
	}
	return nil
}

func (s *Spool) readAt(seg *segment, off, n int64) ([]byte, error) {
	if seg.f == nil {
		return seg.mem[off : off+n : off+n], nil
	}
	b := make([]byte, n)
	if _, err := seg.f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("spool: read: %w", err)
	}
	return b, nil
}

// Ack removes the records of b, the batch of the last Peek, once delivered.
// A batch other than the last peeked one is ignored.
func (s *Spool) Ack(b *Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if b == nil || b != s.inflight {
		return nil
	}
	s.inflight, s.orphans = nil, 0
	s.stats.Acked += uint64(len(b.Records))
	for i, sp := range b.spans {
		if err := s.trimHead(); err != nil {
			return err
		}
		if sp.seq != s.segs[0].seq {
			continue // dropped while out for delivery
		}
		s.headRecs += sp.n
		s.records -= sp.n
		if i == len(b.spans)-1 {
			s.head = b.endOff
		}
	}
	if err := s.trimHead(); err != nil {
		return err
	}
	if s.records == 0 {
		if err := s.reset(); err != nil {
			return err
		}
	}
	s.saveCursor()
	return nil
}

// trimHead removes the leading segments whose records are all
// acknowledged, the tail apart.
func (s *Spool) trimHead() error {
	for len(s.segs) > 1 && s.headRecs >= s.segs[0].records {
		if err := s.removeHead(); err != nil {
			return err
		}
	}
	return nil
}

// reset empties the only segment left once all its records are
// acknowledged, so that an idle spool holds no data.
func (s *Spool) reset() error {
	if len(s.segs) != 1 {
		return nil
	}
	seg := s.segs[0]
	if seg.records == 0 {
		return nil
	}
	if seg.f != nil {
		// The segment's offsets are reused from here on: the cursor that
		// says so must be on disk before any record is written again,
		// or a cursor of before, past a crash of the machine, would skip
		// the new records up to its offset.
		if err := seg.f.Truncate(int64(len(segMagic))); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		if err := seg.f.Sync(); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	} else {
		seg.mem = []byte(segMagic)
	}
	s.bytes -= seg.size - int64(len(segMagic))
	seg.size, seg.records, seg.newest = int64(len(segMagic)), 0, 0
	s.head, s.headRecs = int64(len(segMagic)), 0
	return s.syncCursor()
}

// Stats returns the spool's counters.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	// The records of a batch out for delivery whose segment was dropped
	// wait for their outcome too.
	st.Records, st.Bytes, st.Segments = s.records+s.orphans, s.bytes, len(s.segs)
	return st
}

// MarkReported subtracts what the owner has reported from the
// Unreported counters.
func (s *Spool) MarkReported(full, expired uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.UnreportedFull -= min(full, s.stats.UnreportedFull)
	s.stats.UnreportedExpired -= min(expired, s.stats.UnreportedExpired)
	if !s.closed {
		s.saveCursor()
	}
}

// Close closes the files; the records stay in the directory for the next
// Open. A spool in memory loses them: Close returns how many.
func (s *Spool) Close() (lost int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, nil
	}
	s.closed = true
	if s.dir == "" {
		lost = s.records
	} else {
		s.saveCursor()
	}
	s.closeFiles()
	return lost, nil
}

func (s *Spool) closeFiles() {
	for _, seg := range s.segs {
		if seg.f != nil {
			seg.f.Close()
		}
	}
	if s.cursor != nil {
		s.cursor.Close()
	}
	if s.lock != nil {
		unlockDir(s.lock)
		s.lock = nil
	}
}

// The cursor file saves the head and the unreported counters:
// "RSPCUR1\n", then segment, offset, unreported full, unreported expired
// (uint64 little endian each), then a CRC-32C of all before.
const cursorMagic = "RSPCUR1\n"

type cursor struct {
	seq           uint64
	off           int64
	full, expired uint64
}

func (s *Spool) saveCursor() {
	if s.dir == "" {
		return
	}
	s.writeCursor(false)
}

// syncCursor saves the cursor durably.
func (s *Spool) syncCursor() error {
	if s.dir == "" {
		return nil
	}
	if err := s.writeCursor(true); err != nil {
		return fmt.Errorf("spool: save the head: %w", err)
	}
	return nil
}

func (s *Spool) writeCursor(durable bool) error {
	b := make([]byte, 0, len(cursorMagic)+36)
	b = append(b, cursorMagic...)
	b = binary.LittleEndian.AppendUint64(b, s.segs[0].seq)
	b = binary.LittleEndian.AppendUint64(b, uint64(s.head))
	b = binary.LittleEndian.AppendUint64(b, s.stats.UnreportedFull)
	b = binary.LittleEndian.AppendUint64(b, s.stats.UnreportedExpired)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	// Written in place: a write torn by a crash fails the checksum, and
	// a cursor lost only means batches delivered twice, as does one
	// written without fsync (see the package documentation).
	if _, err := s.cursor.WriteAt(b, 0); err != nil {
		return err
	}
	if durable {
		return s.cursor.Sync()
	}
	return nil
}

// readCursor returns the saved cursor, or the zero cursor (read every
// segment, nothing unreported) if there is none or it is damaged.
func (s *Spool) readCursor() cursor {
	b, err := os.ReadFile(filepath.Join(s.dir, cursorFile))
	if err != nil || len(b) != len(cursorMagic)+36 || string(b[:len(cursorMagic)]) != cursorMagic {
		return cursor{}
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return cursor{}
	}
	p := body[len(cursorMagic):]
	return cursor{seq: binary.LittleEndian.Uint64(p[0:]), off: int64(binary.LittleEndian.Uint64(p[8:])),
		full: binary.LittleEndian.Uint64(p[16:]), expired: binary.LittleEndian.Uint64(p[24:])}
}
