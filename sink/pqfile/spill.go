package pqfile

import (
	"fmt"
	"io"
	"os"

	"github.com/parquet-go/parquet-go"
)

// spillBytes is how much of one column's pages of the row group being
// built a Writer with a TempDir keeps in memory; the rest goes to a temp
// file until the row group is written out. Columns of ordinary values stay
// below it; a page of one large value (a 100 MB document) does not, and
// would otherwise be held in memory a second time beside the value itself.
const spillBytes = 16 << 20

// pageMemory is parquet-go's in-memory page buffer pool, shared by every
// spillPool as the default pool is shared by every Writer.
var pageMemory = parquet.NewBufferPool()

// spillPool is a parquet.BufferPool whose buffers move to a temp file in
// dir once they pass limit bytes.
type spillPool struct {
	dir   string
	limit int64
}

// GetBuffer returns an empty buffer in memory.
func (p *spillPool) GetBuffer() io.ReadWriteSeeker {
	return &spillBuffer{pool: p, mem: pageMemory.GetBuffer()}
}

// PutBuffer releases a buffer: its memory to the shared pool, its file
// removed.
func (p *spillPool) PutBuffer(b io.ReadWriteSeeker) {
	if sb, ok := b.(*spillBuffer); ok {
		sb.release()
	}
}

// spillBuffer is a page buffer: in memory (mem) until a write would take
// it past the pool's limit, then in a file (file). parquet-go writes a
// buffer from its start, then seeks to its start and reads it whole.
type spillBuffer struct {
	pool *spillPool
	mem  io.ReadWriteSeeker
	file *os.File
	pos  int64 // position in mem
}

// Write writes p at the buffer's position, moving the buffer to a file
// first when p would take it past the limit.
func (b *spillBuffer) Write(p []byte) (int, error) {
	if b.file == nil && b.pos+int64(len(p)) > b.pool.limit {
		if err := b.spill(); err != nil {
			return 0, err
		}
	}
	if b.file != nil {
		return b.file.Write(p)
	}
	n, err := b.mem.Write(p)
	b.pos += int64(n)
	return n, err
}

// Read reads from the buffer's position.
func (b *spillBuffer) Read(p []byte) (int, error) {
	if b.file != nil {
		return b.file.Read(p)
	}
	n, err := b.mem.Read(p)
	b.pos += int64(n)
	return n, err
}

// WriteTo writes the rest of the buffer to w, without a copy in between
// where mem or the file allow it (parquet-go copies a row group's pages to
// the file so).
func (b *spillBuffer) WriteTo(w io.Writer) (int64, error) {
	if b.file != nil {
		return io.Copy(w, b.file)
	}
	n, err := io.Copy(w, b.mem)
	b.pos += n
	return n, err
}

// Seek sets the position for the next Read or Write.
func (b *spillBuffer) Seek(offset int64, whence int) (int64, error) {
	if b.file != nil {
		return b.file.Seek(offset, whence)
	}
	pos, err := b.mem.Seek(offset, whence)
	if err == nil {
		b.pos = pos
	}
	return pos, err
}

// spill moves the buffer's bytes to a new temp file, at the same position.
func (b *spillBuffer) spill() error {
	f, err := os.CreateTemp(b.pool.dir, "cdc2s3-pages-*")
	if err != nil {
		return fmt.Errorf("spill parquet pages: %w", err)
	}
	_, err = b.mem.Seek(0, io.SeekStart)
	if err == nil {
		_, err = io.Copy(f, b.mem)
	}
	if err == nil {
		_, err = f.Seek(b.pos, io.SeekStart)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("spill parquet pages: %w", err)
	}
	pageMemory.PutBuffer(b.mem)
	b.mem, b.file = nil, f
	return nil
}

// release gives the memory back to the pool and removes the file.
func (b *spillBuffer) release() {
	if b.mem != nil {
		pageMemory.PutBuffer(b.mem)
		b.mem = nil
	}
	if b.file != nil {
		b.file.Close()
		os.Remove(b.file.Name())
		b.file = nil
	}
}
