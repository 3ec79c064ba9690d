package pqfile

import (
	"bytes"
	"slices"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// maxBoundBytes is the longest min or max that the statistics of a STRING
// or BINARY column hold as it is. A longer one is replaced by a bound of
// that many bytes: a prefix for the min, a prefix with its last byte
// raised for the max (parquet-mr's statistics truncation), still a right
// bound for a reader that prunes with it.
//
// Without it, parquet-go (up to at least v0.32.0) copies a page's min and
// max whole into the column chunk's statistics and into the column
// indexer, and writes the chunk's into the footer: a 100 MB value made a
// file of 700 MB and held as many in memory.
const maxBoundBytes = 1024

// boundedType is a BYTE_ARRAY type whose pages report bounds of at most
// maxBoundBytes (see there).
type boundedType struct{ parquet.Type }

// NewColumnBuffer returns the type's column buffer, whose pages report
// bounded bounds.
func (t boundedType) NewColumnBuffer(columnIndex, numValues int) parquet.ColumnBuffer {
	return &boundedBuffer{t.Type.NewColumnBuffer(columnIndex, numValues)}
}

// NewColumnIndexer returns a column indexer that truncates bounds to
// sizeLimit bytes as parquet-go's does, but right: parquet-go (up to at
// least v0.32.0) writes sizeLimit bytes of 0xff as the max of a page whose
// max starts with them, below the value itself; here such a max is kept
// as long as it must be.
func (t boundedType) NewColumnIndexer(sizeLimit int) parquet.ColumnIndexer {
	return &byteArrayIndexer{limit: sizeLimit}
}

// boundedBuffer is a boundedType's column buffer: parquet-go's, whose
// pages it wraps.
type boundedBuffer struct{ parquet.ColumnBuffer }

// Page returns the buffer's page, with bounded bounds.
func (b *boundedBuffer) Page() parquet.Page { return &boundedPage{b.ColumnBuffer.Page()} }

// Clone returns a copy of the buffer, still bounded.
func (b *boundedBuffer) Clone() parquet.ColumnBuffer {
	return &boundedBuffer{b.ColumnBuffer.Clone()}
}

// boundedPage is a page whose Bounds are at most maxBoundBytes long.
type boundedPage struct{ parquet.Page }

// Slice returns part of the page, still bounded.
func (p *boundedPage) Slice(i, j int64) parquet.Page { return &boundedPage{p.Page.Slice(i, j)} }

// Bounds returns the page's bounds, shortened to maxBoundBytes.
func (p *boundedPage) Bounds() (min, max parquet.Value, ok bool) {
	min, max, ok = p.Page.Bounds()
	if !ok {
		return min, max, ok
	}
	if b := min.ByteArray(); len(b) > maxBoundBytes {
		min = parquet.ByteArrayValue(b[:maxBoundBytes:maxBoundBytes])
	}
	if b := max.ByteArray(); len(b) > maxBoundBytes {
		max = parquet.ByteArrayValue(upperBound(b, maxBoundBytes))
	}
	return min, max, ok
}

// byteArrayIndexer is the column indexer of a boundedType.
type byteArrayIndexer struct {
	limit      int
	nullPages  []bool
	nullCounts []int64
	min, max   [][]byte
}

// Reset forgets the pages of the last column chunk.
func (i *byteArrayIndexer) Reset() {
	i.nullPages, i.nullCounts, i.min, i.max = i.nullPages[:0], i.nullCounts[:0], i.min[:0], i.max[:0]
}

// IndexPage records a page's counts and its bounds, truncated to the
// limit. A page of NULLs has empty bounds, as the format says.
func (i *byteArrayIndexer) IndexPage(numValues, numNulls int64, min, max parquet.Value) {
	null := numValues == numNulls
	i.nullPages = append(i.nullPages, null)
	i.nullCounts = append(i.nullCounts, numNulls)
	if null {
		i.min, i.max = append(i.min, []byte{}), append(i.max, []byte{})
		return
	}
	lo, hi := min.ByteArray(), max.ByteArray()
	if i.limit > 0 && len(lo) > i.limit {
		lo = lo[:i.limit]
	}
	if i.limit > 0 && len(hi) > i.limit {
		hi = upperBound(hi, i.limit)
	}
	i.min, i.max = append(i.min, bytes.Clone(lo)), append(i.max, bytes.Clone(hi))
}

// ColumnIndex returns the index of the pages recorded since Reset.
func (i *byteArrayIndexer) ColumnIndex() format.ColumnIndex {
	return format.ColumnIndex{
		NullPages:     slices.Clone(i.nullPages),
		NullCounts:    slices.Clone(i.nullCounts),
		MinValues:     slices.Clone(i.min),
		MaxValues:     slices.Clone(i.max),
		BoundaryOrder: i.order(),
	}
}

// order tells whether the bounds of the pages that are not all NULL
// ascend or descend, both min and max.
func (i *byteArrayIndexer) order() format.BoundaryOrder {
	asc, desc := true, true
	prev := -1
	for p, null := range i.nullPages {
		if null {
			continue
		}
		if prev >= 0 {
			lo, hi := bytes.Compare(i.min[prev], i.min[p]), bytes.Compare(i.max[prev], i.max[p])
			asc = asc && lo <= 0 && hi <= 0
			desc = desc && lo >= 0 && hi >= 0
		}
		prev = p
	}
	switch {
	case asc && desc, !asc && !desc:
		return format.Unordered
	case asc:
		return format.Ascending
	}
	return format.Descending
}

// upperBound returns the shortest string of at least n bytes (when b has
// more) that is not below b in byte order: b's first n bytes with the last
// that is not 0xff raised by one and cut after it. A prefix of n bytes of
// 0xff has no such string within n bytes: the bound grows to the first byte
// after it that can be raised, or is b itself.
func upperBound(b []byte, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		if b[i] != 0xff {
			out := append([]byte(nil), b[:i+1]...)
			out[i]++
			return out
		}
	}
	for i := n; i < len(b); i++ {
		if b[i] != 0xff {
			out := append([]byte(nil), b[:i+1]...)
			out[i]++
			return out
		}
	}
	return b
}
