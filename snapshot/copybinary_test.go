package snapshot

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// binaryStream builds a binary COPY stream of rows (nil fields are NULL)
// with a header extension of ext bytes.
func binaryStream(ext int, rows ...[][]byte) []byte {
	b := append([]byte{}, copySignature...)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(ext))
	b = append(b, make([]byte, ext)...)
	for _, r := range rows {
		b = binary.BigEndian.AppendUint16(b, uint16(len(r)))
		for _, f := range r {
			if f == nil {
				b = binary.BigEndian.AppendUint32(b, 0xffffffff)
				continue
			}
			b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
			b = append(b, f...)
		}
	}
	return binary.BigEndian.AppendUint16(b, 0xffff)
}

// render prints rows as the reader hands them on, NULL as \N.
func render(rows [][][]byte) string {
	var sb strings.Builder
	for _, r := range rows {
		for i, f := range r {
			if i > 0 {
				sb.WriteByte('|')
			}
			if f == nil {
				sb.WriteString(`\N`)
			} else {
				fmt.Fprintf(&sb, "%q", f)
			}
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

// TestCopyBinaryRows feeds binary COPY streams cut at every byte, and two
// COPYs one after the other, and checks the rows and sizes handed on.
func TestCopyBinaryRows(t *testing.T) {
	rows := [][][]byte{
		{[]byte("a"), nil, {}},
		{[]byte("tab\there\nnewline"), []byte{0, 1, 2, 0xff}, nil},
		{nil, nil, nil},
	}
	stream := binaryStream(3, rows...)
	want := render(rows)
	for cut := 0; cut <= len(stream); cut++ {
		var got [][][]byte
		var sizes []int
		c := newCopyBinaryRows(func(fields [][]byte, size int) error {
			r := make([][]byte, len(fields))
			for i, f := range fields {
				if f != nil {
					r[i] = slices.Clone(f)
					if r[i] == nil {
						r[i] = []byte{}
					}
				}
			}
			got, sizes = append(got, r), append(sizes, size)
			return nil
		})
		for _, part := range [][]byte{stream[:cut], stream[cut:]} {
			if n, err := c.Write(part); err != nil || n != len(part) {
				t.Fatalf("cut %d: Write = %d, %v", cut, n, err)
			}
		}
		if err := c.Close(); err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if s := render(got); s != want {
			t.Fatalf("cut %d: rows\n%s\nwant\n%s", cut, s, want)
		}
		if !slices.Equal(sizes, []int{2 + 3*4 + 1, 2 + 3*4 + 16 + 4, 2 + 3*4}) {
			t.Fatalf("cut %d: sizes %v", cut, sizes)
		}
		// The same reader takes the next COPY after Close.
		got = nil
		if _, err := c.Write(binaryStream(0, rows[0])); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil || render(got) != render(rows[:1]) {
			t.Fatalf("second COPY: %v, rows %s", err, render(got))
		}
	}
}

func TestCopyBinaryRowsErrors(t *testing.T) {
	good := binaryStream(0, [][]byte{[]byte("x")})
	for name, c := range map[string]struct {
		in         []byte
		writeFails bool
	}{
		"text COPY":          {[]byte("1\tx\n"), true},
		"short garbage":      {[]byte("PGCOPZ"), true},
		"OIDs in the header": {append(append(slices.Clone(copySignature), 0, 1, 0, 0), 0, 0, 0, 0), true},
		"negative field":     {append(slices.Clone(good[:19]), 0, 1, 0xff, 0xff, 0xff, 0xfe), true},
		"after the trailer":  {append(slices.Clone(good), 0, 0), true},
		"no trailer":         {good[:len(good)-2], false},
		"inside a row":       {good[:len(good)-3], false},
		"no rows, no header": {nil, false},
	} {
		t.Run(name, func(t *testing.T) {
			r := newCopyBinaryRows(func([][]byte, int) error { return nil })
			_, err := r.Write(c.in)
			if (err != nil) != c.writeFails {
				t.Fatalf("Write: %v", err)
			}
			if err == nil && r.Close() == nil {
				t.Fatal("Close accepted it")
			}
		})
	}
}

// BenchmarkCopyBinaryRows parses the bench table's rows, one CopyData
// message each as PostgreSQL sends them: no allocation per row.
func BenchmarkCopyBinaryRows(b *testing.B) {
	row := [][]byte{make([]byte, 8), []byte("item 12345 827ccb0eea8a706c4c34a16891f84e7b"), make([]byte, 8),
		{0, 2, 0, 0, 0, 0, 0, 2, 0, 123, 17, 148}, []byte(`{"size": 45, "tags": ["a", 4], "color": "green"}`), make([]byte, 4)}
	stream := binaryStream(0, row)
	header, msg := stream[:19], stream[19:len(stream)-2]
	c := newCopyBinaryRows(func([][]byte, int) error { return nil })
	if _, err := c.Write(header); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
	}
}
