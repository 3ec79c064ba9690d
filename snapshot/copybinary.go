package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// copyBinaryRows receives the output of COPY ... TO STDOUT (FORMAT binary)
// as pgconn hands it over, one CopyData message per Write, splits it into
// rows of fields (nil for NULL) and calls row with each: the same contract
// as copyRows, with each field in its type's binary format.
//
// The stream is a header (signature, flags, extension), then each row as a
// 16-bit field count and each field as a 32-bit length (-1 for NULL) and
// its bytes, then a count of -1. PostgreSQL sends one row per CopyData
// message, so a row is parsed where it lies, without a copy; a message that
// does not end a row is buffered until its row is complete. One
// copyBinaryRows reads several COPY statements in turn: Close ends each.
type copyBinaryRows struct {
	row     func(fields [][]byte, size int) error
	pending []byte // the part of a row (or header) not yet complete
	header  bool   // the current COPY's header has been read
	trailer bool   // the current COPY's end has been read
	fields  [][]byte
}

// copySignature starts every binary COPY stream.
var copySignature = []byte("PGCOPY\n\377\r\n\000")

// errIncomplete says that the bytes end inside a header or row.
var errIncomplete = errors.New("incomplete")

func newCopyBinaryRows(row func(fields [][]byte, size int) error) *copyBinaryRows {
	return &copyBinaryRows{row: row}
}

// Write parses the rows in p. It does not modify p or keep it.
func (c *copyBinaryRows) Write(p []byte) (int, error) {
	n := len(p)
	buf := p
	if len(c.pending) > 0 {
		c.pending = append(c.pending, p...)
		buf = c.pending
	}
	rest, err := c.parse(buf)
	if err != nil {
		return 0, err
	}
	if len(c.pending) > 0 || len(rest) > 0 {
		// copy handles rest overlapping pending.
		c.pending = append(c.pending[:0], rest...)
		if len(c.pending) == 0 && cap(c.pending) > maxKeptBuffer {
			c.pending = nil
		}
	}
	return n, nil
}

// Close checks that the COPY ended with its trailer and readies the reader
// for the next COPY.
func (c *copyBinaryRows) Close() error {
	done := c.trailer && len(c.pending) == 0
	c.header, c.trailer, c.pending = false, false, c.pending[:0]
	if !done {
		return fmt.Errorf("copy: binary stream ended inside a row or without its trailer")
	}
	return nil
}

// parse reads the header if due, then whole rows, and returns the bytes of
// a row (or header) that b ends inside.
func (c *copyBinaryRows) parse(b []byte) ([]byte, error) {
	if !c.header {
		n, err := copyHeader(b)
		if errors.Is(err, errIncomplete) {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		b, c.header = b[n:], true
	}
	for len(b) > 0 {
		if c.trailer {
			return nil, fmt.Errorf("copy: %d bytes after the binary trailer", len(b))
		}
		n, err := c.fieldsOf(b)
		if errors.Is(err, errIncomplete) {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		if !c.trailer {
			if err := c.row(c.fields, n); err != nil {
				return nil, err
			}
		}
		b = b[n:]
	}
	return b, nil
}

// copyHeader returns the length of the binary COPY header that b starts
// with.
func copyHeader(b []byte) (int, error) {
	const fixed = 11 + 4 + 4 // signature, flags, extension length
	if len(b) < fixed {
		if !bytes.HasPrefix(copySignature, b[:min(len(b), len(copySignature))]) {
			return 0, errors.New("copy: not a binary COPY stream")
		}
		return 0, errIncomplete
	}
	if !bytes.Equal(b[:11], copySignature) {
		return 0, errors.New("copy: not a binary COPY stream")
	}
	if flags := binary.BigEndian.Uint32(b[11:]); flags&0xffff0000 != 0 {
		// Bit 16 says OIDs follow; the others are critical and unknown.
		return 0, fmt.Errorf("copy: binary COPY header flags %#x", flags)
	}
	ext := int(int32(binary.BigEndian.Uint32(b[15:])))
	if ext < 0 {
		return 0, fmt.Errorf("copy: binary COPY header extension of %d bytes", ext)
	}
	if len(b) < fixed+ext {
		return 0, errIncomplete
	}
	return fixed + ext, nil
}

// fieldsOf splits the row that b starts with into c.fields and returns its
// length; the trailer sets c.trailer instead.
func (c *copyBinaryRows) fieldsOf(b []byte) (int, error) {
	be := binary.BigEndian
	if len(b) < 2 {
		return 0, errIncomplete
	}
	count := int(int16(be.Uint16(b)))
	if count == -1 {
		c.trailer = true
		return 2, nil
	}
	if count < 0 {
		return 0, fmt.Errorf("copy: binary row of %d fields", count)
	}
	c.fields = c.fields[:0]
	p := 2
	for range count {
		if len(b)-p < 4 {
			return 0, errIncomplete
		}
		l := int(int32(be.Uint32(b[p:])))
		p += 4
		switch {
		case l == -1:
			c.fields = append(c.fields, nil)
			continue
		case l < 0:
			return 0, fmt.Errorf("copy: binary field of %d bytes", l)
		case l > len(b)-p:
			return 0, errIncomplete
		}
		// The capacity ends with the field, so a reader that appends to
		// one cannot touch the next.
		c.fields = append(c.fields, b[p:p+l:p+l])
		p += l
	}
	return p, nil
}
