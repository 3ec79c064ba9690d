package pipeline

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// spool holds the raw pgoutput messages of the transaction being received.
// Rows can only be written at commit, when the transaction's end LSN (the
// contract's _cdc_lsn) is known; the spool keeps memory bounded by moving
// to a temp file once it holds more than memLimit bytes.
type spool struct {
	dir      string
	memLimit int
	mem      []byte
	file     *os.File
	fw       *bufio.Writer
	hdr      [4]byte // a message's length, in the spool rather than on the heap per message
	count    int
	size     int64
}

// maxKeptSpool is the largest in-memory buffer a spool keeps for the next
// transaction.
const maxKeptSpool = 2 << 20

func newSpool(dir string, memLimit int) *spool {
	return &spool{dir: dir, memLimit: memLimit}
}

// add appends one message.
func (s *spool) add(msg []byte) error {
	return s.addParts(msg, nil, nil)
}

// addParts appends one message made of up to three parts, without the
// caller building it in a buffer of its own first.
func (s *spool) addParts(a, b, c []byte) error {
	n := len(a) + len(b) + len(c)
	s.count++
	s.size += int64(n)
	if s.file == nil && len(s.mem)+n+4 <= s.memLimit {
		s.mem = binary.BigEndian.AppendUint32(s.mem, uint32(n))
		s.mem = append(append(append(s.mem, a...), b...), c...)
		return nil
	}
	if s.file == nil {
		f, err := os.CreateTemp(s.dir, "cdc2s3-spool-*")
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		s.file, s.fw = f, bufio.NewWriterSize(f, 1<<20)
		if _, err := s.fw.Write(s.mem); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		s.mem = nil // the rest goes to the file
	}
	binary.BigEndian.PutUint32(s.hdr[:], uint32(n))
	for _, p := range [][]byte{s.hdr[:], a, b, c} {
		if _, err := s.fw.Write(p); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	return nil
}

// each calls fn with every message in order. The slice passed to fn is
// valid only during the call.
func (s *spool) each(fn func(msg []byte) error) error {
	if s.file == nil {
		for b := s.mem; len(b) > 0; {
			n := binary.BigEndian.Uint32(b)
			if err := fn(b[4 : 4+n]); err != nil {
				return err
			}
			b = b[4+n:]
		}
		return nil
	}
	if err := s.fw.Flush(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	r := bufio.NewReaderSize(s.file, 1<<20)
	var hdr [4]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("spool: %w", err)
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		if err := fn(buf); err != nil {
			return err
		}
	}
}

// reset empties the spool for the next transaction.
func (s *spool) reset() {
	if s.file != nil {
		s.file.Close()
		os.Remove(s.file.Name())
		s.file, s.fw = nil, nil
	}
	if cap(s.mem) > maxKeptSpool {
		s.mem = nil // a pool of spools must not keep every burst's memory
	}
	s.mem = s.mem[:0]
	s.count, s.size = 0, 0
}
