package detect

import "hash/maphash"

// table holds a scenario's buckets: at most max of them, the least
// recently used evicted first. It is laid out for a million keys and
// more: buckets live in fixed chunks (no allocation, no pointer a bucket),
// found through an open-addressing index of 4-byte slot numbers keyed by
// the key's 64-bit hash. Keys themselves are not kept: an alert's key is
// the one of the event that raised it. The hash is seeded at random per
// table, so that nobody can choose keys that collide; two keys of one
// table share a bucket with a probability of about n²/2⁶⁵ (10⁻⁷ for a
// million keys), which would merge two counts, never name the wrong actor
// (a decision's value comes from the event).
type table struct {
	seed    maphash.Seed
	index   []int32 // slot+1 of the bucket whose hash probes here; 0: empty
	chunks  [][]slot
	n       int   // buckets held
	used    int32 // slots handed out so far
	free    int32 // first free slot, chained through next; -1: none
	head    int32 // most recently used; -1: empty
	tail    int32 // least recently used
	max     int
	evicted uint64
}

const (
	chunkBits = 12
	chunkLen  = 1 << chunkBits
)

type slot struct {
	hash       uint64
	prev, next int32
	b          bucket
}

func newTable(max int) *table {
	return &table{seed: maphash.MakeSeed(), index: make([]int32, 16), free: -1, head: -1, tail: -1, max: max}
}

func (t *table) slot(i int32) *slot { return &t.chunks[i>>chunkBits][i&(chunkLen-1)] }

func (t *table) len() int { return t.n }

// get returns the bucket of key, made most recent; created reports that it
// is new (empty), after evicting the least recent if the table is full.
func (t *table) get(key string) (b *bucket, created bool) {
	h := maphash.String(t.seed, key)
	mask := uint64(len(t.index) - 1)
	for pos := h & mask; t.index[pos] != 0; pos = (pos + 1) & mask {
		i := t.index[pos] - 1
		if s := t.slot(i); s.hash == h {
			t.touch(i)
			return &s.b, false
		}
	}
	if t.n >= t.max {
		t.remove(t.tail)
		t.evicted++
	}
	if (t.n+1)*4 > len(t.index)*3 {
		t.grow()
	}
	i := t.alloc()
	s := t.slot(i)
	*s = slot{hash: h}
	mask = uint64(len(t.index) - 1)
	pos := h & mask
	for t.index[pos] != 0 {
		pos = (pos + 1) & mask
	}
	t.index[pos] = i + 1
	t.n++
	t.pushFront(i)
	return &s.b, true
}

// find returns the bucket of key, or nil if the table holds none; it
// changes nothing, not even the order of use.
func (t *table) find(key string) *bucket {
	h := maphash.String(t.seed, key)
	mask := uint64(len(t.index) - 1)
	for pos := h & mask; t.index[pos] != 0; pos = (pos + 1) & mask {
		if s := t.slot(t.index[pos] - 1); s.hash == h {
			return &s.b
		}
	}
	return nil
}

func (t *table) alloc() int32 {
	if t.free >= 0 {
		i := t.free
		t.free = t.slot(i).next
		return i
	}
	if int(t.used) == len(t.chunks)*chunkLen {
		t.chunks = append(t.chunks, make([]slot, chunkLen))
	}
	t.used++
	return t.used - 1
}

func (t *table) grow() {
	old := t.index
	t.index = make([]int32, len(old)*2)
	mask := uint64(len(t.index) - 1)
	for _, v := range old {
		if v == 0 {
			continue
		}
		pos := t.slot(v-1).hash & mask
		for t.index[pos] != 0 {
			pos = (pos + 1) & mask
		}
		t.index[pos] = v
	}
}

// remove drops bucket i: from the list, from the index (shifting back the
// entries that probed past it, so that no tombstone is left) and onto the
// free list.
func (t *table) remove(i int32) {
	t.unlink(i)
	mask := uint64(len(t.index) - 1)
	pos := t.slot(i).hash & mask
	for t.index[pos] != i+1 {
		pos = (pos + 1) & mask
	}
	for j := (pos + 1) & mask; t.index[j] != 0; j = (j + 1) & mask {
		home := t.slot(t.index[j]-1).hash & mask
		// The entry at j may move to pos if its home is not in (pos, j].
		if (j > pos && (home <= pos || home > j)) || (j < pos && home <= pos && home > j) {
			t.index[pos] = t.index[j]
			pos = j
		}
	}
	t.index[pos] = 0
	s := t.slot(i)
	*s = slot{next: t.free}
	t.free = i
	t.n--
}

func (t *table) touch(i int32) {
	if t.head == i {
		return
	}
	t.unlink(i)
	t.pushFront(i)
}

func (t *table) pushFront(i int32) {
	s := t.slot(i)
	s.prev, s.next = -1, t.head
	if t.head >= 0 {
		t.slot(t.head).prev = i
	}
	t.head = i
	if t.tail < 0 {
		t.tail = i
	}
}

func (t *table) unlink(i int32) {
	s := t.slot(i)
	if s.prev >= 0 {
		t.slot(s.prev).next = s.next
	} else {
		t.head = s.next
	}
	if s.next >= 0 {
		t.slot(s.next).prev = s.prev
	} else {
		t.tail = s.prev
	}
	s.prev, s.next = -1, -1
}
