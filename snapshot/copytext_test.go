package snapshot

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// collect parses the messages with copyRows and returns the rows, with
// the size of each.
func collect(t *testing.T, msgs ...[]byte) ([][]*string, []int) {
	t.Helper()
	var rows [][]*string
	var sizes []int
	c := newCopyRows(func(fields [][]byte, size int) error {
		row := make([]*string, len(fields))
		for i, f := range fields {
			if f != nil {
				row[i] = s(string(f))
			}
		}
		rows = append(rows, row)
		sizes = append(sizes, size)
		return nil
	})
	for _, m := range msgs {
		in := bytes.Clone(m)
		if n, err := c.Write(m); err != nil || n != len(m) {
			t.Fatalf("Write(%q) = %d, %v", m, n, err)
		}
		if !bytes.Equal(in, m) {
			t.Fatalf("Write modified its input %q", in)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return rows, sizes
}

func TestCopyRows(t *testing.T) {
	in := "1\tplain\t\\N\n" +
		"2\ttab\\there\\nnew line\t\\\\N\n" +
		"3\t\\x41\\101\\b\\f\\r\\v\t\n" +
		"\\N\n"
	want := [][]*string{
		{s("1"), s("plain"), nil},
		{s("2"), s("tab\there\nnew line"), s(`\N`)},
		{s("3"), s("AA\b\f\r\v"), s("")},
		{nil},
	}
	// One message per row, as PostgreSQL sends them; all rows in one
	// message; and one byte per message.
	var perRow, perByte [][]byte
	for _, l := range strings.SplitAfter(in, "\n") {
		if l != "" {
			perRow = append(perRow, []byte(l))
		}
	}
	for i := range len(in) {
		perByte = append(perByte, []byte{in[i]})
	}
	for name, msgs := range map[string][][]byte{"per row": perRow, "one message": {[]byte(in)}, "per byte": perByte} {
		got, sizes := collect(t, msgs...)
		if len(got) != len(want) {
			t.Fatalf("%s: %d rows, want %d", name, len(got), len(want))
		}
		for i, w := range want {
			if len(got[i]) != len(w) {
				t.Fatalf("%s: row %d: %d fields, want %d", name, i, len(got[i]), len(w))
			}
			for j := range w {
				if (got[i][j] == nil) != (w[j] == nil) || (w[j] != nil && *got[i][j] != *w[j]) {
					t.Errorf("%s: row %d field %d = %v, want %v", name, i, j, str(got[i][j]), str(w[j]))
				}
			}
			if sizes[i] != len(perRow[i]) {
				t.Errorf("%s: row %d size %d, want %d", name, i, sizes[i], len(perRow[i]))
			}
		}
	}
}

// TestCopyRowsFieldsDoNotOverlap checks that a field grown by a reader that
// appends to it cannot overwrite the next field.
func TestCopyRowsFieldsDoNotOverlap(t *testing.T) {
	c := newCopyRows(func(f [][]byte, _ int) error {
		_ = append(f[0], 'X', 'X', 'X')
		_ = append(f[1], 'X', 'X', 'X')
		if string(f[1]) != "b\tc" || string(f[2]) != "de" {
			t.Errorf("fields %q after appending to the ones before", f)
		}
		return nil
	})
	if _, err := c.Write([]byte("a\\n\tb\\tc\tde\n")); err != nil {
		t.Fatal(err)
	}
}

func TestCopyRowsErrors(t *testing.T) {
	c := newCopyRows(func([][]byte, int) error { return nil })
	if _, err := c.Write([]byte("no end of line")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err == nil {
		t.Error("Close after a partial row: no error")
	}
	if _, err := newCopyRows(func([][]byte, int) error { return nil }).Write([]byte("trailing\\\n")); err == nil {
		t.Error("trailing backslash: no error")
	}
	stop := fmt.Errorf("stop")
	if _, err := newCopyRows(func([][]byte, int) error { return stop }).Write([]byte("1\n")); err != stop {
		t.Errorf("row error: %v", err)
	}
}

// TestCopyRowsLargeRow parses a row far larger than the buffers kept, split
// across messages, and checks that they are not kept for the next rows.
func TestCopyRowsLargeRow(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789\\\\"), 3<<20) // 36 MiB of text, 33 MiB unescaped
	row := append(append([]byte("1\t"), big...), '\n')
	rowSize := len(row)
	var got int
	c := newCopyRows(func(f [][]byte, size int) error {
		if got++; got == 1 {
			if len(f[1]) != 11*3<<20 || !bytes.HasPrefix(f[1], []byte(`0123456789\0`)) || size != rowSize {
				t.Fatalf("large field: %d bytes, row %d bytes", len(f[1]), size)
			}
		} else if string(f[1]) != "small" {
			t.Fatalf("next row: %q", f)
		}
		return nil
	})
	for len(row) > 0 {
		n := min(len(row), 1<<20)
		if _, err := c.Write(row[:n]); err != nil {
			t.Fatal(err)
		}
		row = row[n:]
	}
	if _, err := c.Write([]byte("2\tsmall\n")); err != nil {
		t.Fatal(err)
	}
	if got != 2 {
		t.Fatalf("%d rows", got)
	}
	if cap(c.pending) > maxKeptBuffer || cap(c.scratch) > maxKeptBuffer {
		t.Errorf("buffers of %d and %d bytes kept after a large row", cap(c.pending), cap(c.scratch))
	}
}

func TestProgressStatus(t *testing.T) {
	p := &Progress{}
	a := &tableProgress{name: "public.a", disk: 1000, chunks: 2}
	b := &tableProgress{name: "public.b", disk: 3000, chunks: 1}
	p.init([]*tableProgress{a, b})
	if s := p.Total(); s.Fraction() != 0 || s.Tables != 2 || s.EstBytes != 4000 {
		t.Errorf("before start: %+v", s)
	}
	a.started.Store(time.Now().Add(-2 * time.Second).UnixNano())
	p.add(a, 10, 1000)
	// One chunk of a done: its text is twice its planned disk bytes, so
	// the estimate of a doubles.
	a.doneDisk.Add(500)
	a.doneBytes.Add(1000)
	a.chunksDone.Add(1)
	st := p.Tables()[0]
	if st.EstBytes != 2000 || st.Fraction() != 0.5 || !st.Running() {
		t.Errorf("a: %+v fraction %v", st, st.Fraction())
	}
	if eta := st.ETA(); eta < time.Second || eta > 3*time.Second {
		t.Errorf("a: ETA %v, want about 2s", eta)
	}
	// b has no finished chunk: it takes the load's ratio.
	if st := p.Tables()[1]; st.EstBytes != 6000 || st.Running() {
		t.Errorf("b: %+v", st)
	}
	p.add(a, 10, 1000)
	a.finished.Store(time.Now().UnixNano())
	if st := p.Tables()[0]; !st.Done || st.Fraction() != 1 || st.EstBytes != 2000 || st.ETA() != 0 {
		t.Errorf("a done: %+v", st)
	}
	if s := p.Total(); s.TablesDone != 1 || s.Rows != 20 || p.Rows() != 20 || p.Bytes() != 2000 {
		t.Errorf("total: %+v", s)
	}
}

func s(v string) *string { return &v }

func str(p *string) string {
	if p == nil {
		return "NULL"
	}
	return *p
}
