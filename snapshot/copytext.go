package snapshot

import (
	"bytes"
	"fmt"
)

// copyRows receives the output of COPY ... TO STDOUT (text format) as
// pgconn hands it over, one CopyData message per Write, splits it into rows
// of fields (nil for \N) and calls row with each. The text COPY prints is
// the type output functions' text, the same text pgoutput sends, so LOAD and
// CDC rows go through the same conversion.
//
// PostgreSQL sends one row per CopyData message, so a row is parsed where it
// lies, without a copy: a field without escapes is handed on as it is, the
// others are unescaped into a scratch buffer. A message that does not end a
// row (the protocol allows it) is buffered until its row is complete.
// Memory is bounded by the largest row, not the table, and a buffer grown
// by an unusually large row is dropped once that row has been used.
type copyRows struct {
	row     func(fields [][]byte, size int) error
	pending []byte // a row split across messages, until its end of line
	scratch []byte // unescaped fields of the current row
	fields  [][]byte
	spans   []span
}

// span locates a field: in the row's text, in scratch, or NULL.
type span struct {
	src        int8 // spanNull, spanLine or spanScratch
	start, end int
}

const (
	spanNull int8 = iota
	spanLine
	spanScratch
)

// maxKeptBuffer is the largest buffer kept from one row to the next.
const maxKeptBuffer = 8 << 20

func newCopyRows(row func(fields [][]byte, size int) error) *copyRows {
	return &copyRows{row: row}
}

// Write parses the rows in p. It does not modify p or keep it.
func (c *copyRows) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.pending = append(c.pending, p...)
			break
		}
		line := p[:i+1]
		if len(c.pending) > 0 {
			c.pending = append(c.pending, line...)
			line = c.pending
		}
		if err := c.parse(line); err != nil {
			return 0, err
		}
		c.pending = c.pending[:0]
		if cap(c.pending) > maxKeptBuffer {
			c.pending = nil
		}
		p = p[i+1:]
	}
	return n, nil
}

// Close reports a row left without its end of line.
func (c *copyRows) Close() error {
	if len(c.pending) > 0 {
		return fmt.Errorf("copy: row without end of line")
	}
	return nil
}

// parse splits one row, ending with its end of line, and hands it on.
func (c *copyRows) parse(line []byte) error {
	size := len(line)
	text := line[:len(line)-1]
	c.scratch = c.scratch[:0]
	c.spans = c.spans[:0]
	for r := 0; ; {
		end := len(text)
		if i := bytes.IndexByte(text[r:], '\t'); i >= 0 {
			end = r + i
		}
		field := text[r:end]
		switch {
		case len(field) == 2 && field[0] == '\\' && field[1] == 'N':
			c.spans = append(c.spans, span{spanNull, 0, 0})
		case bytes.IndexByte(field, '\\') < 0:
			c.spans = append(c.spans, span{spanLine, r, end})
		default:
			start := len(c.scratch)
			var err error
			if c.scratch, err = unescape(c.scratch, field); err != nil {
				return err
			}
			c.spans = append(c.spans, span{spanScratch, start, len(c.scratch)})
		}
		if end == len(text) {
			break
		}
		r = end + 1
	}
	// Slices are made once scratch no longer moves; their capacity ends
	// with them, so a reader that appends to one cannot touch the next.
	c.fields = c.fields[:0]
	for _, s := range c.spans {
		switch s.src {
		case spanNull:
			c.fields = append(c.fields, nil)
		case spanLine:
			c.fields = append(c.fields, text[s.start:s.end:s.end])
		default:
			c.fields = append(c.fields, c.scratch[s.start:s.end:s.end])
		}
	}
	err := c.row(c.fields, size)
	if cap(c.scratch) > maxKeptBuffer {
		c.scratch = nil
	}
	return err
}

// unescape appends the COPY text field f to dst with its backslash escapes
// decoded.
func unescape(dst, f []byte) ([]byte, error) {
	if bytes.IndexByte(f, '\\') < 0 {
		return append(dst, f...), nil
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		if i >= len(f) {
			return dst, fmt.Errorf("copy: trailing backslash")
		}
		switch c = f[i]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'v':
			dst = append(dst, '\v')
		case 'x':
			v, n := 0, 0
			for n < 2 && i+1 < len(f) && isHex(f[i+1]) {
				i++
				v = v*16 + hexVal(f[i])
				n++
			}
			dst = append(dst, byte(v))
		default:
			if c >= '0' && c <= '7' {
				v := int(c - '0')
				for n := 1; n < 3 && i+1 < len(f) && f[i+1] >= '0' && f[i+1] <= '7'; n++ {
					i++
					v = v*8 + int(f[i]-'0')
				}
				dst = append(dst, byte(v))
			} else {
				dst = append(dst, c)
			}
		}
	}
	return dst, nil
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	default:
		return int(c-'A') + 10
	}
}
