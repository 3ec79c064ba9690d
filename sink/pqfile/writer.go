package pqfile

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/jackc/pglogrepl"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// Compression names accepted by Options.Compression.
const (
	CompressionZstd   = "zstd"
	CompressionSnappy = "snappy"
	CompressionNone   = "none"
)

// DefaultRowGroupBytes is the uncompressed size at which a row group is
// closed, so a large batch streams to its file instead of growing in memory.
const DefaultRowGroupBytes = 64 << 20

// Options tunes a Writer. The zero value is the contract's default.
type Options struct {
	Compression   string // zstd (default), snappy or none
	RowGroupBytes int64  // default DefaultRowGroupBytes
	// Reload adds the _cdc_reload column, for the rows of a reload (Op L
	// and R, docs/reload.md).
	Reload bool
	// ZstdLevel is the zstd encoder's level (zstd.SpeedFastest …
	// zstd.SpeedBestCompression); 0 is ZstdDefaultLevel, which the
	// measurement in docs/benchmarks.md ("zstd level") chose.
	ZstdLevel zstd.Level
	// Formats says how each table column's values reach Write, in column
	// order; nil: every column in FormatText.
	Formats []Format
	// TempDir is where a column's pages of the row group being built go
	// once they pass spillBytes (a page of one large value); empty: they
	// stay in memory.
	TempDir string
}

// ZstdDefaultLevel is the zstd level files are written with: the fastest,
// chosen by measurement (docs/benchmarks.md, "zstd level").
const ZstdDefaultLevel = zstd.SpeedFastest

// Meta is the metadata of one row (contract §2).
type Meta struct {
	Op         byte          // 'I', 'U', 'D', 'T', or a reload's 'L' and 'R'
	CommitTime int64         // microseconds since the Unix epoch, UTC
	LSN        pglogrepl.LSN // end LSN of the transaction's commit record
	Seq        uint64        // position of the row among its transaction's rows
	Unchanged  []string      // names of unchanged TOASTed columns, NULL in this row
	// Reload is the reload's cut (_cdc_reload), written only by a Writer
	// with Options.Reload; 0 is NULL.
	Reload pglogrepl.LSN
}

// Stats counts what a Writer wrote and what it had to adapt.
type Stats struct {
	Rows  int64
	Bytes int64 // uncompressed value bytes appended
	// Nulled counts, per column, values written as NULL because the
	// column's Parquet type cannot hold them (NaN decimals, ±infinity or
	// out-of-range dates and timestamps).
	Nulled map[string]int64
	// Flattened counts, per column, array values with more than one
	// dimension written flattened in row-major order.
	Flattened map[string]int64
}

// Writer writes rows of one table schema into one Parquet file.
//
// Rows are converted as they arrive and buffered column by column, then
// handed to parquet-go a batch at a time (one call per column instead of
// one per row and column: the per-value overhead of parquet-go's row API
// was most of the cost of a file). Each batch is encoded, compressed and
// written on its own goroutine while the caller converts the next one, so
// one table uses up to two cores. A Writer is not safe for concurrent use.
type Writer struct {
	cols      []Column
	formats   []Format // of each of cols
	meta      int      // metadata columns before the table's own
	pw        *parquet.Writer
	cur       *batch // rows being added
	spare     *batch // the other batch, when not in flight
	inflight  *batch // the batch being written, if any
	done      chan error
	err       error // first error of a batch write; the file is unusable
	mark      []int // len(cur.vals[i]) before the row being added
	elems     [][]byte
	stats     Stats
	groupSize int64
	groupMax  int64
}

// batch holds rows converted but not yet handed to parquet-go.
type batch struct {
	vals       [][]parquet.Value // values of each leaf column
	arena      []byte            // copies of the rows' byte values
	rows       int
	values     int
	flushGroup bool // close the row group after these rows
	big        bool // a value refers to the caller's memory (see bigValue)
}

func newBatch(leaves int) *batch { return &batch{vals: make([][]parquet.Value, leaves)} }

// Batch limits: buffered rows are handed over when there are batchRows of
// them, batchValues values (lists add one per element) or batchBytes of
// copied bytes, so a batch holds a few MB whatever the table. Batches of a
// few thousand rows let the writing goroutine compress whole pages while
// the caller fills the next batch. A value of at least bigValue bytes is not
// copied: its batch is written before Write returns.
const (
	batchRows   = 8192
	batchValues = 1 << 17
	batchBytes  = 4 << 20
	bigValue    = 64 << 10
)

// opBytes holds the one-byte Op values, so a row needs no allocation for it.
var opBytes = func() (b [256]byte) {
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

// NewWriter starts a Parquet file on out for a table with the given columns.
func NewWriter(out io.Writer, cols []Column, o Options) (*Writer, error) {
	codec, err := codecOf(o.Compression, o.ZstdLevel)
	if err != nil {
		return nil, err
	}
	if err := checkFormats(cols, o.Formats); err != nil {
		return nil, err
	}
	formats := o.Formats
	if len(formats) == 0 {
		formats = make([]Format, len(cols))
	}
	schema, opts := buildSchema(cols, o.Reload)
	meta := metaColumns
	if o.Reload {
		meta++
	}
	opts = append(opts,
		schema,
		parquet.Compression(codec),
		// Spark 3.3 reads neither version 2 data pages nor
		// DELTA_LENGTH_BYTE_ARRAY strings, parquet-go's defaults.
		parquet.DataPageVersion(1),
		// The column chunks' statistics and the column index hold the
		// bounds readers prune with; in every page header as well they
		// cost a pass over each page, and a large value four copies of
		// itself in the header (min, max and their deprecated twins).
		parquet.DataPageStatistics(false),
		parquet.DefaultEncodingFor(parquet.ByteArray, &parquet.Plain),
		parquet.CreatedBy("cdc2s3", "1", ""),
	)
	if o.TempDir != "" {
		opts = append(opts, parquet.ColumnPageBuffers(&spillPool{dir: o.TempDir, limit: spillBytes}))
	}
	if o.RowGroupBytes <= 0 {
		o.RowGroupBytes = DefaultRowGroupBytes
	}
	return &Writer{
		cols:     cols,
		formats:  formats,
		meta:     meta,
		pw:       parquet.NewWriter(out, opts...),
		cur:      newBatch(meta + len(cols)),
		spare:    newBatch(meta + len(cols)),
		done:     make(chan error, 1),
		mark:     make([]int, meta+len(cols)),
		groupMax: o.RowGroupBytes,
		stats:    Stats{Nulled: map[string]int64{}, Flattened: map[string]int64{}},
	}, nil
}

func codecOf(name string, level zstd.Level) (compress.Codec, error) {
	switch name {
	case "", CompressionZstd:
		if level == 0 {
			level = ZstdDefaultLevel
		}
		return &zstd.Codec{Level: level}, nil
	case CompressionSnappy:
		return &parquet.Snappy, nil
	case CompressionNone:
		return &parquet.Uncompressed, nil
	}
	return nil, fmt.Errorf("unknown compression %q: use zstd, snappy or none", name)
}

// ValidCompression reports an error naming the choices when name is not a
// supported compression.
func ValidCompression(name string) error {
	_, err := codecOf(name, 0)
	return err
}

// Columns returns the table columns the writer was built for.
func (w *Writer) Columns() []Column { return w.cols }

// Stats returns the counts so far.
func (w *Writer) Stats() Stats { return w.stats }

// Write appends one row. vals holds each table column's value in order,
// in the column's format (Options.Formats; by default PostgreSQL's text
// output); nil is NULL. The Writer keeps no reference to vals after it
// returns.
func (w *Writer) Write(m Meta, vals [][]byte) error {
	if len(vals) != len(w.cols) {
		return fmt.Errorf("row has %d values for %d columns", len(vals), len(w.cols))
	}
	if w.err != nil {
		return w.err
	}
	b := w.cur
	for i, v := range b.vals {
		w.mark[i] = len(v)
	}
	w.appendMeta(m)
	var n int64
	big := false
	for i := range w.cols {
		c := &w.cols[i]
		col := w.meta + i
		v := vals[i]
		n += int64(len(v))
		big = big || len(v) >= bigValue
		var err error
		if c.Type.List {
			err = w.appendList(c, w.formats[i], v, col)
		} else {
			err = w.appendValue(c, w.formats[i], v, col)
		}
		if err != nil {
			for j := range b.vals {
				clear(b.vals[j][w.mark[j]:])
				b.vals[j] = b.vals[j][:w.mark[j]]
			}
			return fmt.Errorf("column %q: %w", c.Name, err)
		}
	}
	b.rows++
	for j, v := range b.vals {
		b.values += len(v) - w.mark[j]
	}
	w.stats.Rows++
	w.stats.Bytes += n
	w.groupSize += n
	if w.groupSize >= w.groupMax {
		w.groupSize = 0
		b.flushGroup = true
	}
	b.big = b.big || big
	if big || b.flushGroup || b.rows >= batchRows || b.values >= batchValues || len(b.arena) >= batchBytes {
		// A big value was not copied: its batch must be written before
		// Write returns and the caller reuses vals.
		return w.handOff(big)
	}
	return nil
}

// appendMeta appends the metadata columns of a row.
func (w *Writer) appendMeta(m Meta) {
	b := w.cur
	p := b.slot(0)
	*p = parquet.ByteArrayValue(opBytes[m.Op : m.Op+1 : m.Op+1])
	setLevels(p, 0, 0, 0)
	p = b.slot(1)
	*p = parquet.Int64Value(m.CommitTime)
	setLevels(p, 0, 0, 1)
	p = b.slot(2)
	*p = parquet.Int64Value(int64(m.LSN))
	setLevels(p, 0, 0, 2)
	p = b.slot(3)
	*p = parquet.Int64Value(int64(m.Seq))
	setLevels(p, 0, 0, 3)
	if len(m.Unchanged) == 0 {
		setLevels(b.slot(4), 0, 0, 4)
	} else {
		for i, name := range m.Unchanged {
			p = b.slot(4)
			*p = parquet.ByteArrayValue([]byte(name))
			setLevels(p, min(i, 1), 2, 4)
		}
	}
	if w.meta > metaColumns {
		p = b.slot(5)
		if m.Reload == 0 {
			setLevels(p, 0, 0, 5)
		} else {
			*p = parquet.Int64Value(int64(m.Reload))
			setLevels(p, 0, 1, 5)
		}
	}
}

// slot appends a null Value to leaf column col and returns it, for the
// caller to set in place (see setLevels).
func (b *batch) slot(col int) *parquet.Value {
	s := append(b.vals[col], parquet.Value{})
	b.vals[col] = s
	return &s[len(s)-1]
}

// appendValue appends the value of a column that is not a LIST. On error
// the value appended (NULL) is the caller's to remove.
func (w *Writer) appendValue(c *Column, f Format, v []byte, col int) error {
	dst := w.cur.slot(col)
	set, err := w.put(dst, c, f, v)
	def := 0
	if set {
		def = 1
	}
	setLevels(dst, 0, def, col)
	return err
}

// putNumericText sets *dst to the text of the binary numeric v, written
// into the batch's arena.
func (w *Writer) putNumericText(dst *parquet.Value, v []byte) error {
	b := w.cur
	start := len(b.arena)
	var err error
	if b.arena, err = appendNumericText(b.arena, v); err != nil {
		b.arena = b.arena[:start]
		return err
	}
	*dst = parquet.ByteArrayValue(b.arena[start:len(b.arena):len(b.arena)])
	return nil
}

// byteArray returns the value of v, copied into the batch's arena unless it
// is big (a big value's batch is written before Write returns).
func (w *Writer) byteArray(v []byte) parquet.Value {
	if len(v) >= bigValue {
		return parquet.ByteArrayValue(v)
	}
	b := w.cur
	start := len(b.arena)
	b.arena = append(b.arena, v...)
	return parquet.ByteArrayValue(b.arena[start:len(b.arena):len(b.arena)])
}

// handOff starts writing the current batch on its own goroutine, after the
// previous one is done, and with wait, waits for it too.
func (w *Writer) handOff(wait bool) error {
	if err := w.wait(); err != nil {
		return err
	}
	if w.cur.rows == 0 {
		return nil
	}
	w.inflight, w.cur, w.spare = w.cur, w.spare, nil
	go func(b *batch) { w.done <- w.writeBatch(b) }(w.inflight)
	if wait {
		return w.wait()
	}
	return nil
}

// wait waits for the batch in flight, if any, and returns the first error
// of any batch write.
func (w *Writer) wait() error {
	if w.inflight == nil {
		return w.err
	}
	if err := <-w.done; err != nil && w.err == nil {
		w.err = err
	}
	w.spare, w.inflight = w.inflight, nil
	return w.err
}

// writeBatch hands b's rows to parquet-go column by column, closes the row
// group when b says so, and empties b for reuse.
func (w *Writer) writeBatch(b *batch) error {
	defer func() {
		for i := range b.vals {
			if b.big {
				clear(b.vals[i])
			}
			b.vals[i] = b.vals[i][:0]
		}
		b.rows, b.values, b.arena, b.flushGroup, b.big = 0, 0, b.arena[:0], false, false
	}()
	for i, cw := range w.pw.ColumnWriters() {
		if _, err := cw.WriteRowValues(b.vals[i]); err != nil {
			return fmt.Errorf("write parquet column %d: %w", i, err)
		}
	}
	if b.flushGroup {
		if err := w.pw.Flush(); err != nil {
			return fmt.Errorf("flush row group: %w", err)
		}
	}
	return nil
}

// appendList appends the levels of an array column: NULL list (d=0), empty
// list (d=1), NULL element (d=2), element (d=3).
func (w *Writer) appendList(c *Column, f Format, v []byte, col int) error {
	b := w.cur
	if v == nil {
		setLevels(b.slot(col), 0, 0, col)
		return nil
	}
	var elems [][]byte
	var dims int
	var err error
	if f == FormatText {
		elems, dims, err = parseArray(v, w.elems[:0])
	} else {
		elems, dims, err = parseBinaryArray(v, w.elems[:0])
	}
	w.elems = elems[:0]
	if err != nil {
		return err
	}
	if dims > 1 {
		w.stats.Flattened[c.Name]++
	}
	if len(elems) == 0 {
		setLevels(b.slot(col), 0, 1, col)
		return nil
	}
	for i, e := range elems {
		dst := b.slot(col)
		set, err := w.put(dst, c, f, e)
		if err != nil {
			return err
		}
		def := 2
		if set {
			def = 3
		}
		setLevels(dst, min(i, 1), def, col)
	}
	return nil
}

// put sets *dst, a null Value, to one value (or array element) v in
// format f as the Parquet value of c's type, and reports whether it did:
// it leaves NULL and unrepresentable values null. The value is set in
// place, never copied on (see setLevels).
func (w *Writer) put(dst *parquet.Value, c *Column, f Format, v []byte) (bool, error) {
	if v == nil {
		return false, nil
	}
	var err error
	switch {
	case f == FormatBinary:
		err = w.putBinary(dst, c.Type, v)
	case f == FormatBinaryNumeric:
		err = w.putNumericText(dst, v)
	case c.Type.Kind == String:
		*dst = w.byteArray(v)
	default:
		*dst, err = convertValue(c.Type, v)
	}
	if errors.Is(err, errUnrepresentable) {
		*dst = parquet.Value{}
		w.stats.Nulled[c.Name]++
		return false, nil
	}
	return true, err
}

// convertValue converts a value of any kind but String (which put copies
// into the batch's arena). Its result never refers to v.
func convertValue(t Type, v []byte) (parquet.Value, error) {
	switch t.Kind {
	case Bool:
		b, err := parseBool(v)
		return parquet.BooleanValue(b), err
	case Int16, Int32:
		i, err := parseInt(v, 32)
		return parquet.Int32Value(int32(i)), err
	case Int64:
		i, err := parseInt(v, 64)
		return parquet.Int64Value(i), err
	case Float32:
		f, err := strconv.ParseFloat(string(v), 32)
		return parquet.FloatValue(float32(f)), floatErr(f, err)
	case Float64:
		f, err := strconv.ParseFloat(string(v), 64)
		return parquet.DoubleValue(f), floatErr(f, err)
	case Decimal:
		if t.Precision <= 18 {
			i, err := decimalInt64(v, t.Scale)
			if err != nil {
				return parquet.Value{}, err
			}
			if t.Precision <= 9 {
				if i < math.MinInt32 || i > math.MaxInt32 {
					return parquet.Value{}, fmt.Errorf("numeric %q does not fit decimal(%d,%d)", v, t.Precision, t.Scale)
				}
				return parquet.Int32Value(int32(i)), nil
			}
			return parquet.Int64Value(i), nil
		}
		u, err := decimalUnscaled(v, t.Scale)
		if err != nil {
			return parquet.Value{}, err
		}
		switch {
		default:
			b, err := decimalFixed(u, decimalBytes(t.Precision))
			return parquet.FixedLenByteArrayValue(b), err
		}
	case Bytes:
		b, err := parseBytea(v)
		return parquet.ByteArrayValue(b), err
	case Date:
		d, err := parseDate(v)
		return parquet.Int32Value(d), err
	case Timestamp, TimestampTZ:
		ts, err := parseTimestamp(v, t.Kind == TimestampTZ)
		return parquet.Int64Value(ts), err
	}
	return parquet.Value{}, fmt.Errorf("unsupported kind %s", t.Kind)
}

// floatErr accepts the out-of-range results ParseFloat reports for values
// PostgreSQL printed (it never prints one a float cannot hold).
func floatErr(f float64, err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) && ne.Err == strconv.ErrRange && !math.IsNaN(f) {
		return nil
	}
	return err
}

// Close finishes the file (row groups and footer). It does not close the
// underlying writer.
func (w *Writer) Close() error {
	if err := w.handOff(true); err != nil {
		return err
	}
	if err := w.pw.Close(); err != nil {
		return fmt.Errorf("close parquet: %w", err)
	}
	return nil
}
