package snapshot

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// copyReader splits the output of COPY ... TO STDOUT (text format) into
// rows of fields, nil for \N. The text COPY prints is the type output
// functions' text, the same text pgoutput sends, so LOAD and CDC rows go
// through the same conversion.
type copyReader struct {
	br     *bufio.Reader
	line   []byte
	fields [][]byte
	buf    []byte
}

func newCopyReader(r io.Reader) *copyReader {
	return &copyReader{br: bufio.NewReaderSize(r, 1<<20)}
}

// next returns the next row, or io.EOF. The returned slices are valid until
// the next call.
func (c *copyReader) next() ([][]byte, error) {
	c.line = c.line[:0]
	for {
		part, err := c.br.ReadSlice('\n')
		c.line = append(c.line, part...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF && len(c.line) == 0 {
			return nil, io.EOF
		}
		if err == io.EOF {
			return nil, fmt.Errorf("copy: row without end of line")
		}
		return nil, err
	}
	line := c.line[:len(c.line)-1]
	c.fields = c.fields[:0]
	c.buf = c.buf[:0]
	// Unescape into one buffer, then slice it: fields reference c.buf.
	type span struct{ start, end int }
	var spans [64]span
	sp := spans[:0]
	for {
		i := bytes.IndexByte(line, '\t')
		field := line
		if i >= 0 {
			field = line[:i]
		}
		if len(field) == 2 && field[0] == '\\' && field[1] == 'N' {
			sp = append(sp, span{-1, -1})
		} else {
			start := len(c.buf)
			var err error
			c.buf, err = unescape(c.buf, field)
			if err != nil {
				return nil, err
			}
			sp = append(sp, span{start, len(c.buf)})
		}
		if i < 0 {
			break
		}
		line = line[i+1:]
	}
	for _, s := range sp {
		if s.start < 0 {
			c.fields = append(c.fields, nil)
		} else {
			c.fields = append(c.fields, c.buf[s.start:s.end:s.end])
		}
	}
	return c.fields, nil
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
