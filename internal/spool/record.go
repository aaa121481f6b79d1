package spool

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// A segment file is segMagic followed by records. A record is a 16-byte
// header and its data:
//
//	0  uint32 little endian: length of data
//	4  uint32 little endian: CRC-32C of bytes 0..3, 8..15 and data
//	8  int64 little endian: when it was appended, Unix nanoseconds
//	16 data
//
// A crash can leave a segment's last record short or garbled (a write that
// reached the disk in part); the checksum finds it, and Open cuts the
// segment there.
const (
	segMagic  = "RSPOOL1\n"
	headerLen = 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	errShort   = errors.New("spool: record continues past the end")
	errCorrupt = errors.New("spool: corrupt record")
)

// appendRecord appends the record of data, appended at t, to dst.
func appendRecord(dst []byte, t int64, data []byte) []byte {
	var h [headerLen]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(data)))
	binary.LittleEndian.PutUint64(h[8:16], uint64(t))
	binary.LittleEndian.PutUint32(h[4:8], checksum(h, data))
	dst = append(dst, h[:]...)
	return append(dst, data...)
}

func checksum(h [headerLen]byte, data []byte) uint32 {
	c := crc32.Update(0, castagnoli, h[0:4])
	c = crc32.Update(c, castagnoli, h[8:16])
	return crc32.Update(c, castagnoli, data)
}

// parseRecord reads the record at the start of b. It returns errShort when
// b ends inside it (n is then the record's whole length if the header was
// complete and plausible, else 0), and errCorrupt when its header or
// checksum is wrong. maxData bounds the length a header may claim, so that
// a garbled length is found at once rather than read.
func parseRecord(b []byte, maxData int) (t int64, data []byte, n int, err error) {
	if len(b) < headerLen {
		return 0, nil, 0, errShort
	}
	size := binary.LittleEndian.Uint32(b[0:4])
	if uint64(size) > uint64(maxData) {
		return 0, nil, 0, errCorrupt
	}
	n = headerLen + int(size)
	if len(b) < n {
		return 0, nil, n, errShort
	}
	var h [headerLen]byte
	copy(h[:], b[:headerLen])
	if binary.LittleEndian.Uint32(h[4:8]) != checksum(h, b[headerLen:n]) {
		return 0, nil, 0, errCorrupt
	}
	return int64(binary.LittleEndian.Uint64(h[8:16])), b[headerLen:n], n, nil
}

// scanned is what scanSegment found in a segment file's bytes.
type scanned struct {
	valid   int64   // length of the good prefix (the magic and whole records)
	ends    []int64 // offset just past each good record
	newest  int64   // the latest append time of a good record
	badHead bool    // the magic is wrong: nothing in it can be trusted
}

// scanSegment reads a segment's bytes and finds its good prefix: the
// records up to the first one that is short or corrupt. It never fails:
// whatever follows the good prefix is what a crash (or a damaged disk) left.
func scanSegment(b []byte, maxData int) scanned {
	if len(b) < len(segMagic) || string(b[:len(segMagic)]) != segMagic {
		return scanned{badHead: true}
	}
	s := scanned{valid: int64(len(segMagic))}
	for off := len(segMagic); off < len(b); {
		t, _, n, err := parseRecord(b[off:], maxData)
		if err != nil {
			break
		}
		off += n
		s.valid = int64(off)
		s.ends = append(s.ends, int64(off))
		s.newest = max(s.newest, t)
	}
	return s
}
