package stream

import (
	"bytes"
	"fmt"
	"testing"
)

// TestSpool stages messages in memory and then, past the limit, in a temp
// file, and reads them back in order, whole.
func TestSpool(t *testing.T) {
	s := newSpool(t.TempDir(), 1000)
	var want [][]byte
	for i := range 200 {
		a, b, c := []byte{byte(i), 0, 0, 1}, []byte{'I'}, []byte(fmt.Sprintf("row %d", i))
		if i%2 == 0 {
			if err := s.addParts(a, b, c); err != nil {
				t.Fatal(err)
			}
		} else if err := s.add(bytes.Join([][]byte{a, b, c}, nil)); err != nil {
			t.Fatal(err)
		}
		want = append(want, bytes.Join([][]byte{a, b, c}, nil))
		if i == 10 && s.file != nil {
			t.Fatal("spilled to a file below the memory limit")
		}
	}
	if s.file == nil {
		t.Fatal("did not spill to a file past the memory limit")
	}
	var got [][]byte
	if err := s.each(func(m []byte) error { got = append(got, bytes.Clone(m)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("message %d: %q, want %q", i, got[i], want[i])
		}
	}
	s.reset()
	if s.file != nil || s.count != 0 {
		t.Error("reset kept the file or the count")
	}
}
