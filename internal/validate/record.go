package validate

import (
	"encoding/binary"
	"errors"
)

// position is a row's place in a table's history, (_cdc_lsn, _cdc_seq).
type position struct{ lsn, seq uint64 }

// less reports whether p comes before q.
func (p position) less(q position) bool { return p.lsn < q.lsn || (p.lsn == q.lsn && p.seq < q.seq) }

// change is one row of a table folder on its way to the merge: what the
// merge rule needs of it, with its values in canonical form. It is spilled
// to local files (encode) between reading the folder and merging.
type change struct {
	keyHash uint64
	pos     position
	op      byte
	load    bool   // read from a LOAD file: LOAD rows share one position
	reload  uint64 // _cdc_reload of an L row
	// unchanged lists the compared columns (by index) the row marks as an
	// unchanged TOASTed value.
	unchanged []int
	key       []byte // the encoded key values (every value without a key)
	values    []byte // the encoded values of the compared columns
}

// encode appends c's encoding, which starts with keyHash as a big-endian
// uint64 like every spilled record.
func (c *change) encode(buf []byte) []byte {
	buf = binary.BigEndian.AppendUint64(buf, c.keyHash)
	buf = binary.AppendUvarint(buf, c.pos.lsn)
	buf = binary.AppendUvarint(buf, c.pos.seq)
	flags := byte(0)
	if c.load {
		flags = 1
	}
	buf = append(buf, c.op, flags)
	buf = binary.AppendUvarint(buf, c.reload)
	buf = binary.AppendUvarint(buf, uint64(len(c.unchanged)))
	for _, j := range c.unchanged {
		buf = binary.AppendUvarint(buf, uint64(j))
	}
	buf = appendBytes(buf, c.key)
	return appendBytes(buf, c.values)
}

// decodeChange is the inverse of encode; the slices point into b.
func decodeChange(b []byte) (change, error) {
	var c change
	r := reader{b: b}
	c.keyHash = r.uint64()
	c.pos.lsn, c.pos.seq = r.uvarint(), r.uvarint()
	c.op = r.byte1()
	c.load = r.byte1() == 1
	c.reload = r.uvarint()
	if n := r.uvarint(); n > 0 && n <= uint64(len(b)) {
		c.unchanged = make([]int, n)
		for i := range c.unchanged {
			c.unchanged[i] = int(r.uvarint())
		}
	}
	c.key, c.values = r.bytes(), r.bytes()
	return c, r.done()
}

// stateRow is one row of a table's current state, from either side: its
// key (every value for a table without one) and its values.
type stateRow struct {
	keyHash uint64
	key     []byte
	values  []byte
}

// encode appends r's encoding, keyHash first.
func (r *stateRow) encode(buf []byte) []byte {
	buf = binary.BigEndian.AppendUint64(buf, r.keyHash)
	buf = appendBytes(buf, r.key)
	return appendBytes(buf, r.values)
}

// decodeStateRow is the inverse of encode; the slices point into b.
func decodeStateRow(b []byte) (stateRow, error) {
	rd := reader{b: b}
	r := stateRow{keyHash: rd.uint64()}
	r.key, r.values = rd.bytes(), rd.bytes()
	return r, rd.done()
}

// appendBytes appends b with its uvarint length.
func appendBytes(buf, b []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(b)))
	return append(buf, b...)
}

// reader decodes a record; the first error sticks.
type reader struct {
	b   []byte
	err error
}

var errCorrupt = errors.New("corrupt spill record")

func (r *reader) uint64() uint64 {
	if len(r.b) < 8 {
		r.err = errCorrupt
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte1() byte {
	if len(r.b) < 1 {
		r.err = errCorrupt
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || uint64(len(r.b)) < n {
		r.err = errCorrupt
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// done returns the first error, or one for bytes left over.
func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		return errCorrupt
	}
	return r.err
}
