package pqfile

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// TestSpillBuffer writes a buffer past its limit the way parquet-go does
// (from its start, in pieces), reads it back whole, and checks that it
// moved to a file in the pool's directory, which release removes.
func TestSpillBuffer(t *testing.T) {
	dir := t.TempDir()
	p := &spillPool{dir: dir, limit: 100}
	want := bytes.Repeat([]byte("0123456789abcdefghij"), 20) // 400 bytes
	for _, piece := range []int{7, 100, 400} {
		b := p.GetBuffer()
		if _, err := b.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		for rest := want; len(rest) > 0; {
			n := min(piece, len(rest))
			if w, err := b.Write(rest[:n]); err != nil || w != n {
				t.Fatalf("write: %d, %v", w, err)
			}
			rest = rest[n:]
		}
		files, _ := os.ReadDir(dir)
		if len(files) != 1 {
			t.Fatalf("pieces of %d: %d files in the temp dir, want 1", piece, len(files))
		}
		if _, err := b.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if _, err := io.Copy(&got, b); err != nil || !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("pieces of %d: read back %d bytes, %v", piece, got.Len(), err)
		}
		p.PutBuffer(b)
		if files, _ := os.ReadDir(dir); len(files) != 0 {
			t.Fatalf("pieces of %d: %d files left after release", piece, len(files))
		}
	}
	// Below the limit nothing goes to disk.
	b := p.GetBuffer()
	b.Write(want[:50])
	b.Seek(0, io.SeekStart)
	got, _ := io.ReadAll(b)
	if files, _ := os.ReadDir(dir); len(files) != 0 || !bytes.Equal(got, want[:50]) {
		t.Fatalf("%d files, read %q", len(files), got)
	}
	p.PutBuffer(b)
}
