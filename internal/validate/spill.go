package validate

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Spilling. Rows on their way to the merge or to a detailed comparison go
// to local files, one per partition: the rows whose key hash starts with
// the partition's bits. A partition then fits in memory (its file is at
// most a limit); one that does not is split again by the next bits, down
// to rangeBits, so memory does not grow with the table. Every record
// starts with its key hash (big-endian), the only thing spilling reads.

// rangeBits is how many top bits of the key hash make a hash range, the
// unit whose rows' hashes are compared; partitions are never finer, so a
// range lies in one partition.
const rangeBits = 16

// splitBits is how many more bits a split uses: 64 files at a time.
const splitBits = 6

// part is one partition file: the records whose key hash's top nbits are id.
type part struct {
	path  string
	nbits int
	id    uint64
	size  int64
}

// contains reports whether the hash range r (of rangeBits) lies in p.
func (p part) contains(r uint32) bool {
	return p.nbits == 0 || uint64(r)>>(rangeBits-p.nbits) == p.id
}

// spill writes records into the 1<<bits sub-partitions of the partition
// (base bits, prefix).
type spill struct {
	dir, name string
	base      int
	prefix    uint64
	bits      int
	files     []*os.File
	w         []*bufio.Writer
	sizes     []int64
	frame     []byte
}

// newSpill creates the files of a spill under dir, named after name.
func newSpill(dir, name string, base int, prefix uint64, bits int) (*spill, error) {
	s := &spill{dir: dir, name: name, base: base, prefix: prefix, bits: bits}
	n := 1 << bits
	s.files, s.w, s.sizes = make([]*os.File, n), make([]*bufio.Writer, n), make([]int64, n)
	for i := range n {
		f, err := os.Create(s.path(i))
		if err != nil {
			s.abort()
			return nil, fmt.Errorf("spill: %w", err)
		}
		s.files[i], s.w[i] = f, bufio.NewWriterSize(f, 32<<10)
	}
	return s, nil
}

// path is the file of sub-partition i.
func (s *spill) path(i int) string {
	return filepath.Join(s.dir, fmt.Sprintf("%s-%d-%x", s.name, s.base+s.bits, s.prefix<<s.bits|uint64(i)))
}

// add writes one record to its sub-partition.
func (s *spill) add(rec []byte) error {
	if len(rec) < 8 {
		return errCorrupt
	}
	i := 0
	if s.bits > 0 {
		i = int(binary.BigEndian.Uint64(rec) << s.base >> (64 - s.bits))
	}
	s.frame = binary.AppendUvarint(s.frame[:0], uint64(len(rec)))
	if _, err := s.w[i].Write(s.frame); err != nil {
		return fmt.Errorf("spill: %w", err)
	}
	if _, err := s.w[i].Write(rec); err != nil {
		return fmt.Errorf("spill: %w", err)
	}
	s.sizes[i] += int64(len(s.frame) + len(rec))
	return nil
}

// close flushes the files and returns the partitions that hold records;
// the empty ones are removed.
func (s *spill) close() ([]part, error) {
	var parts []part
	var errs []error
	for i, f := range s.files {
		errs = append(errs, s.w[i].Flush(), f.Close())
		if s.sizes[i] == 0 {
			os.Remove(f.Name())
			continue
		}
		parts = append(parts, part{path: f.Name(), nbits: s.base + s.bits, id: s.prefix<<s.bits | uint64(i), size: s.sizes[i]})
	}
	if err := errors.Join(errs...); err != nil {
		removeParts(parts)
		return nil, fmt.Errorf("spill: %w", err)
	}
	return parts, nil
}

// abort closes and removes every file.
func (s *spill) abort() {
	for _, f := range s.files {
		if f != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}
}

// removeParts removes partition files.
func removeParts(parts []part) {
	for _, p := range parts {
		os.Remove(p.path)
	}
}

// split spreads p over sub-partitions by the next bits and removes it.
func split(p part, dir, name string) ([]part, error) {
	bits := min(splitBits, rangeBits-p.nbits)
	s, err := newSpill(dir, name, p.nbits, p.id, bits)
	if err != nil {
		return nil, err
	}
	if err := eachFrame(p.path, s.add); err != nil {
		s.abort()
		return nil, err
	}
	parts, err := s.close()
	if err == nil {
		os.Remove(p.path)
	}
	return parts, err
}

// eachFrame calls fn with each record of a spill file, in the order they
// were written; rec is valid only during the call.
func eachFrame(path string, fn func(rec []byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("spill: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	var rec []byte
	for {
		n, err := binary.ReadUvarint(r)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("spill %s: %w", path, err)
		}
		if uint64(cap(rec)) < n {
			rec = make([]byte, n)
		}
		rec = rec[:n]
		if _, err := io.ReadFull(r, rec); err != nil {
			return fmt.Errorf("spill %s: %w", path, err)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}

// loadFrames reads a whole spill file and returns its records, which
// point into one buffer.
func loadFrames(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("spill: %w", err)
	}
	var out [][]byte
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return nil, fmt.Errorf("spill %s: %w", path, errCorrupt)
		}
		out = append(out, b[k:k+int(n):k+int(n)])
		b = b[k+int(n):]
	}
	return out, nil
}
