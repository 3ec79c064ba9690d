package validate

import (
	"math/bits"

	"github.com/zeebo/xxh3"
)

// Hash ranges. A row's key (every value of a table without one) is hashed
// to 64 bits; the top rangeBits bits pick its range. Each side of the
// comparison sums, per range, a 128-bit hash of each row's values and
// counts the rows: the sum is the same whatever order the rows come in and
// changes when a row is missing, extra (also a second copy of a row) or
// different. Only the ranges whose sums differ are compared row by row.

// keyHash hashes an encoded key.
func keyHash(key []byte) uint64 { return xxh3.Hash(key) }

// rangeOf is the hash range of a key hash.
func rangeOf(h uint64) uint32 { return uint32(h >> (64 - rangeBits)) }

// sum is what one side knows of one range: the rows and the sum of their
// hashes (modulo 2^128).
type sum struct {
	rows   uint64
	hi, lo uint64
}

// add counts one row with its key and values.
func (s *sum) add(key, values []byte) {
	h := xxh3.Hash128Seed(values, xxh3.Hash(key))
	var carry uint64
	s.lo, carry = bits.Add64(s.lo, h.Lo, 0)
	s.hi, _ = bits.Add64(s.hi, h.Hi, carry)
	s.rows++
}

// sums holds one side's sum of every range.
type sums []sum

// newSums returns zero sums for every range.
func newSums() sums { return make(sums, 1<<rangeBits) }

// add counts a row in its range.
func (s sums) add(r stateRow) { s[rangeOf(r.keyHash)].add(r.key, r.values) }

// rows returns the rows counted.
func (s sums) rows() int64 {
	var n uint64
	for _, x := range s {
		n += x.rows
	}
	return int64(n)
}

// rangeSet is a set of hash ranges.
type rangeSet []uint64

// newRangeSet returns an empty set.
func newRangeSet() rangeSet { return make(rangeSet, (1<<rangeBits)/64) }

func (s rangeSet) add(r uint32)      { s[r/64] |= 1 << (r % 64) }
func (s rangeSet) has(r uint32) bool { return s[r/64]&(1<<(r%64)) != 0 }

// empty reports whether the set holds no range.
func (s rangeSet) empty() bool {
	for _, w := range s {
		if w != 0 {
			return false
		}
	}
	return true
}

// count returns the number of ranges in the set.
func (s rangeSet) count() int {
	n := 0
	for _, w := range s {
		n += bits.OnesCount64(w)
	}
	return n
}
