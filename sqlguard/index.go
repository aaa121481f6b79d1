package sqlguard

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// Looking for 20 inputs in a 2 KB statement with strings.Contains costs
// several microseconds, most of it spent on the statement's frequent letters.
// Statements that carry no input — parameterized ones — repeat verbatim, so
// the guard indexes a statement it sees again: a Bloom filter of its 4-byte
// windows. An input none of whose sampled windows is in the filter cannot
// occur in the statement; the others are searched as before. A Bloom filter
// has no false negatives, so the index only skips searches that would fail.

// indexMinLen is the statement length from which indexing pays: below it a
// direct search of every input is as cheap as the lookup.
const indexMinLen = 64

// indexEagerInputs is the number of inputs from which a statement seen for the
// first time is indexed at once: building the index costs about as much as
// searching eight inputs in it.
const indexEagerInputs = 8

// Bounds of the index cache. Concatenated statements are unique and would
// fill it, so it is emptied whenever it grows past either bound.
const (
	indexMaxEntries = 4096
	indexMaxBytes   = 16 << 20
)

type queryIndex struct {
	bits []uint64
	mask uint32
}

func newQueryIndex(stmt string) *queryIndex {
	n := len(stmt) - 3
	size := max(64, 1<<bits.Len(uint(n*12))) // ~12 bits per window: ~2% false positives per probe
	x := &queryIndex{bits: make([]uint64, size/64), mask: uint32(size - 1)}
	bitsArr, mask := x.bits, x.mask
	g := uint32(stmt[0])<<8 | uint32(stmt[1])<<16 | uint32(stmt[2])<<24
	for i := 3; i < len(stmt); i++ {
		g = g>>8 | uint32(stmt[i])<<24 // the little-endian window stmt[i-3:i+1]
		h1, h2 := gramHashes(g)
		bitsArr[(h1&mask)>>6] |= 1 << (h1 & 63)
		bitsArr[(h2&mask)>>6] |= 1 << (h2 & 63)
	}
	return x
}

func gramHashes(g uint32) (uint32, uint32) {
	h := uint64(g) * 0x9E3779B97F4A7C15
	return uint32(h >> 32), uint32(h)
}

func (x *queryIndex) has(gram uint32) bool {
	h1, h2 := gramHashes(gram)
	return x.bits[(h1&x.mask)>>6]&(1<<(h1&63)) != 0 && x.bits[(h2&x.mask)>>6]&(1<<(h2&63)) != 0
}

// mayContain reports whether input may occur in the indexed statement. It
// samples the input's first, middle and last 4-byte windows; len(input) >= 4.
func (x *queryIndex) mayContain(input string) bool {
	last := len(input) - 4
	return x.has(window(input, 0)) && x.has(window(input, last/2)) && x.has(window(input, last))
}

func window(s string, i int) uint32 {
	return uint32(s[i]) | uint32(s[i+1])<<8 | uint32(s[i+2])<<16 | uint32(s[i+3])<<24
}

// indexCache maps statements to their index. A statement seen once maps to
// nil; it is indexed on its second sighting, so one-off statements cost a
// map entry, not an index.
type indexCache struct {
	m       atomic.Pointer[sync.Map] // string -> *queryIndex (nil: seen once)
	entries atomic.Int64
	bytes   atomic.Int64
}

func (c *indexCache) get(stmt string) *queryIndex {
	m := c.m.Load()
	if m == nil {
		m = new(sync.Map)
		if !c.m.CompareAndSwap(nil, m) {
			m = c.m.Load()
		}
	}
	v, ok := m.Load(stmt)
	if ok && v.(*queryIndex) != nil {
		return v.(*queryIndex)
	}
	var x *queryIndex
	size := int64(len(stmt))
	if ok {
		x = newQueryIndex(stmt)
		size = int64(len(x.bits) * 8)
	} else {
		c.entries.Add(1)
	}
	m.Store(stmt, x)
	if c.bytes.Add(size) > indexMaxBytes || c.entries.Load() > indexMaxEntries {
		c.m.CompareAndSwap(m, new(sync.Map))
		c.entries.Store(0)
		c.bytes.Store(0)
	}
	return x
}
