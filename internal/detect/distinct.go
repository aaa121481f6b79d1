package detect

import (
	"hash/maphash"
	"math"
	"math/bits"
	"slices"
)

// exactDistinct is how many distinct values a bucket counts exactly before
// it switches to a HyperLogLog sketch of fixed size.
const exactDistinct = 64

// hllPrecision gives 2^12 registers, 4 KiB a sketch and a standard error
// of 1.04/√4096 ≈ 1.6%.
const hllPrecision = 12

// hash64 is FNV-1a with a final mix: fixed and public. It hashes the
// distinct values of an engine made with Config.FixedHash (fixtures, so
// that a count past 64 is the same on every machine), and the HyperLogLog
// needs the mix because it reads the top bits and FNV's are poor for short
// inputs.
func hash64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// valueHasher hashes the distinct values of one engine. By default it is
// keyed with a random seed made when the engine is (hash/maphash): with a
// public hash, an attacker could choose values whose hashes collide, or
// that all fall in one HyperLogLog register with few leading zeros, and
// make a thousand distinct login names count as a few dozen. With a secret
// seed they cannot aim. What the seed changes: exact counts (up to 64
// distinct values) are the same whatever it is, barring a 64-bit
// collision, so every built-in scenario (none counts past 50) decides
// alike in every process and replay; past 64 the estimate may differ by
// its error (about 1.6%) from one process to the next.
type valueHasher struct {
	seed  maphash.Seed
	fixed bool
}

func newValueHasher(fixed bool) valueHasher {
	return valueHasher{seed: maphash.MakeSeed(), fixed: fixed}
}

func (h valueHasher) sum(s string) uint64 {
	if h.fixed {
		return hash64(s)
	}
	return maphash.String(h.seed, s)
}

// distinctSet counts distinct values: exactly (by their 64-bit hash) up
// to exactDistinct, then by a sketch.
type distinctSet struct {
	exact []uint64
	hll   *hll
}

// add adds the value of hash h and returns how much the count grew: 1 or
// 0 while exact, the growth of the estimate after.
func (d *distinctSet) add(h uint64) float64 {
	if d.hll == nil {
		if slices.Contains(d.exact, h) {
			return 0
		}
		if len(d.exact) < exactDistinct {
			d.exact = append(d.exact, h)
			return 1
		}
		d.hll = newHLL()
		for _, e := range d.exact {
			d.hll.add(e)
		}
		d.exact = nil
		before := float64(exactDistinct)
		d.hll.add(h)
		return max(d.hll.estimate()-before, 0)
	}
	before := d.hll.estimate()
	if !d.hll.add(h) {
		return 0
	}
	return max(d.hll.estimate()-before, 0)
}

func (d *distinctSet) count() float64 {
	if d.hll != nil {
		return d.hll.estimate()
	}
	return float64(len(d.exact))
}

// hll is a HyperLogLog sketch (Flajolet et al. 2007) with the linear
// counting correction for small cardinalities; the sum of 2^-register is
// kept up to date so that an estimate costs no scan.
type hll struct {
	reg   [1 << hllPrecision]uint8
	sum   float64
	zeros int
}

func newHLL() *hll {
	h := &hll{sum: 1 << hllPrecision, zeros: 1 << hllPrecision}
	return h
}

// add records hash x and says whether a register changed.
func (h *hll) add(x uint64) bool {
	idx := x >> (64 - hllPrecision)
	w := x<<hllPrecision | 1<<(hllPrecision-1)
	rho := uint8(bits.LeadingZeros64(w) + 1)
	old := h.reg[idx]
	if rho <= old {
		return false
	}
	if old == 0 {
		h.zeros--
	}
	h.sum += math.Ldexp(1, -int(rho)) - math.Ldexp(1, -int(old))
	h.reg[idx] = rho
	return true
}

func (h *hll) estimate() float64 {
	const m = float64(1 << hllPrecision)
	alpha := 0.7213 / (1 + 1.079/m)
	e := alpha * m * m / h.sum
	if e <= 2.5*m && h.zeros > 0 {
		return m * math.Log(m/float64(h.zeros))
	}
	return e
}
