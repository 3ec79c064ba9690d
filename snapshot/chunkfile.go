package snapshot

import (
	"fmt"
	"os"
	"slices"

	"github.com/cdc2s3/cdc2s3/sink/pqfile"
)

// chunkOutput is what one chunk wrote: local Parquet files, split at
// MaxFileSize, that are uploaded only once the chunk has all its rows.
type chunkOutput struct {
	job Job
	o   Options

	f       *os.File // file being written, nil between files
	w       *pqfile.Writer
	formats []pqfile.Format // of the rows to write (nil: text)
	files   []localFile

	rows, bytes       int64 // rows and uncompressed value bytes in files
	textBytes         int64 // COPY text bytes read
	nulled, flattened map[string]int64
	first, uploaded   int // first LOAD number (0: none taken yet), files uploaded
}

// localFile is a finished Parquet file waiting for its upload.
type localFile struct {
	path string
}

// write appends one row, sealing the current file at MaxFileSize.
func (c *chunkOutput) write(m pqfile.Meta, vals [][]byte) error {
	if c.w == nil {
		if err := c.open(); err != nil {
			return err
		}
	}
	if err := c.w.Write(m, vals); err != nil {
		// A value the writer refuses is refused again on a retry.
		return errPermanent{err}
	}
	if c.w.Stats().Bytes >= c.o.MaxFileSize {
		return c.seal()
	}
	return nil
}

// open starts a new local file.
func (c *chunkOutput) open() error {
	f, err := os.CreateTemp(c.o.TempDir, "cdc2s3-load-*.parquet")
	if err != nil {
		return errPermanent{fmt.Errorf("temp file: %w", err)}
	}
	w, err := pqfile.NewWriter(f, c.job.Columns, pqfile.Options{Compression: c.o.Compression, Formats: c.formats, TempDir: c.o.TempDir})
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return errPermanent{err}
	}
	c.f, c.w = f, w
	return nil
}

// setFormats sets the formats of the rows written next; a file begun with
// other formats is sealed first.
func (c *chunkOutput) setFormats(formats []pqfile.Format) error {
	if c.w != nil && !slices.Equal(c.formats, formats) {
		if err := c.seal(); err != nil {
			return err
		}
	}
	c.formats = formats
	return nil
}

// seal finishes the current file, if any.
func (c *chunkOutput) seal() error {
	if c.w == nil {
		return nil
	}
	f, w := c.f, c.w
	c.f, c.w = nil, nil
	err := w.Close()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	c.files = append(c.files, localFile{path: f.Name()})
	st := w.Stats()
	c.rows += st.Rows
	c.bytes += st.Bytes
	if c.nulled == nil {
		c.nulled, c.flattened = map[string]int64{}, map[string]int64{}
	}
	for k, v := range st.Nulled {
		c.nulled[k] += v
	}
	for k, v := range st.Flattened {
		c.flattened[k] += v
	}
	return nil
}

// remove deletes the local files. It is safe on nil and more than once.
func (c *chunkOutput) remove() {
	if c == nil {
		return
	}
	if c.f != nil {
		c.f.Close()
		os.Remove(c.f.Name())
		c.f, c.w = nil, nil
	}
	for _, f := range c.files {
		os.Remove(f.path)
	}
	c.files = c.files[:0:0]
}
