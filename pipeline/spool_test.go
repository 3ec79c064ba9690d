package pipeline

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

// TestSpoolAddAllocs checks that appending a message to a spool that has
// spilled to its file allocates nothing: it runs once per message of a
// large streamed transaction.
func TestSpoolAddAllocs(t *testing.T) {
	s := newSpool(t.TempDir(), 16)
	defer s.reset()
	a, b, c := []byte{0, 0, 0, 1}, []byte{'I'}, bytes.Repeat([]byte("x"), 100)
	if err := s.addParts(a, b, c); err != nil {
		t.Fatal(err)
	}
	if s.file == nil {
		t.Fatal("did not spill to a file past the memory limit")
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := s.addParts(a, b, c); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("addParts on a spilled spool: %v allocations per message, want 0", allocs)
	}
}
