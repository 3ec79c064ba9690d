package pqfile

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
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
}

// Meta is the metadata of one row (contract §2).
type Meta struct {
	Op         byte     // 'I', 'U', 'D' or 'T'
	CommitTime int64    // microseconds since the Unix epoch, UTC
	LSN        int64    // end LSN of the transaction's commit record
	Seq        int64    // position of the row among its transaction's rows
	Unchanged  []string // names of unchanged TOASTed columns, NULL in this row
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
type Writer struct {
	cols      []Column
	pw        *parquet.Writer
	row       parquet.Row
	rows      []parquet.Row
	elems     [][]byte
	stats     Stats
	groupSize int64
	groupMax  int64
}

// NewWriter starts a Parquet file on out for a table with the given columns.
func NewWriter(out io.Writer, cols []Column, o Options) (*Writer, error) {
	codec, err := codecOf(o.Compression)
	if err != nil {
		return nil, err
	}
	schema, opts := buildSchema(cols)
	opts = append(opts,
		schema,
		parquet.Compression(codec),
		// Spark 3.3 reads neither version 2 data pages nor
		// DELTA_LENGTH_BYTE_ARRAY strings, parquet-go's defaults.
		parquet.DataPageVersion(1),
		parquet.DefaultEncodingFor(parquet.ByteArray, &parquet.Plain),
		parquet.CreatedBy("cdc2s3", "1", ""),
	)
	if o.RowGroupBytes <= 0 {
		o.RowGroupBytes = DefaultRowGroupBytes
	}
	return &Writer{
		cols:     cols,
		pw:       parquet.NewWriter(out, opts...),
		rows:     make([]parquet.Row, 1),
		groupMax: o.RowGroupBytes,
		stats:    Stats{Nulled: map[string]int64{}, Flattened: map[string]int64{}},
	}, nil
}

func codecOf(name string) (compress.Codec, error) {
	switch name {
	case "", CompressionZstd:
		return &parquet.Zstd, nil
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
	_, err := codecOf(name)
	return err
}

// Columns returns the table columns the writer was built for.
func (w *Writer) Columns() []Column { return w.cols }

// Stats returns the counts so far.
func (w *Writer) Stats() Stats { return w.stats }

// Write appends one row. vals holds PostgreSQL's text output of each table
// column in order; nil is NULL.
func (w *Writer) Write(m Meta, vals [][]byte) error {
	if len(vals) != len(w.cols) {
		return fmt.Errorf("row has %d values for %d columns", len(vals), len(w.cols))
	}
	r := w.row[:0]
	r = append(r,
		parquet.ByteArrayValue([]byte{m.Op}).Level(0, 0, 0),
		parquet.Int64Value(m.CommitTime).Level(0, 0, 1),
		parquet.Int64Value(m.LSN).Level(0, 0, 2),
		parquet.Int64Value(m.Seq).Level(0, 0, 3),
	)
	if len(m.Unchanged) == 0 {
		r = append(r, parquet.NullValue().Level(0, 0, 4))
	} else {
		for i, name := range m.Unchanged {
			r = append(r, parquet.ByteArrayValue([]byte(name)).Level(min(i, 1), 2, 4))
		}
	}
	var n int64
	for i, c := range w.cols {
		col := metaColumns + i
		v := vals[i]
		n += int64(len(v))
		var err error
		if c.Type.List {
			r, err = w.appendList(r, c, v, col)
		} else {
			var pv parquet.Value
			pv, err = w.convert(c, v)
			if pv.IsNull() {
				r = append(r, pv.Level(0, 0, col))
			} else {
				r = append(r, pv.Level(0, 1, col))
			}
		}
		if err != nil {
			return fmt.Errorf("column %q: %w", c.Name, err)
		}
	}
	w.row = r
	w.rows[0] = r
	if _, err := w.pw.WriteRows(w.rows); err != nil {
		return fmt.Errorf("write parquet row: %w", err)
	}
	w.stats.Rows++
	w.stats.Bytes += n
	w.groupSize += n
	if w.groupSize >= w.groupMax {
		w.groupSize = 0
		if err := w.pw.Flush(); err != nil {
			return fmt.Errorf("flush row group: %w", err)
		}
	}
	return nil
}

// appendList appends the levels of an array column: NULL list (d=0), empty
// list (d=1), NULL element (d=2), element (d=3).
func (w *Writer) appendList(r parquet.Row, c Column, v []byte, col int) (parquet.Row, error) {
	if v == nil {
		return append(r, parquet.NullValue().Level(0, 0, col)), nil
	}
	elems, dims, err := parseArray(v, w.elems[:0])
	w.elems = elems[:0]
	if err != nil {
		return r, err
	}
	if dims > 1 {
		w.stats.Flattened[c.Name]++
	}
	if len(elems) == 0 {
		return append(r, parquet.NullValue().Level(0, 1, col)), nil
	}
	for i, e := range elems {
		pv, err := w.convert(c, e)
		if err != nil {
			return r, err
		}
		if pv.IsNull() {
			r = append(r, pv.Level(min(i, 1), 2, col))
		} else {
			r = append(r, pv.Level(min(i, 1), 3, col))
		}
	}
	return r, nil
}

// convert turns one text value into the Parquet value of c's type. NULL and
// unrepresentable values come back as a null Value.
func (w *Writer) convert(c Column, v []byte) (parquet.Value, error) {
	if v == nil {
		return parquet.NullValue(), nil
	}
	pv, err := convertValue(c.Type, v)
	if errors.Is(err, errUnrepresentable) {
		w.stats.Nulled[c.Name]++
		return parquet.NullValue(), nil
	}
	return pv, err
}

func convertValue(t Type, v []byte) (parquet.Value, error) {
	switch t.Kind {
	case String:
		return parquet.ByteArrayValue(v), nil
	case Bool:
		b, err := parseBool(v)
		return parquet.BooleanValue(b), err
	case Int16, Int32:
		i, err := strconv.ParseInt(string(v), 10, 32)
		return parquet.Int32Value(int32(i)), err
	case Int64:
		i, err := strconv.ParseInt(string(v), 10, 64)
		return parquet.Int64Value(i), err
	case Float32:
		f, err := strconv.ParseFloat(string(v), 32)
		return parquet.FloatValue(float32(f)), floatErr(f, err)
	case Float64:
		f, err := strconv.ParseFloat(string(v), 64)
		return parquet.DoubleValue(f), floatErr(f, err)
	case Decimal:
		u, err := decimalUnscaled(v, t.Scale)
		if err != nil {
			return parquet.Value{}, err
		}
		switch {
		case t.Precision <= 9:
			i, err := strconv.ParseInt(u, 10, 32)
			return parquet.Int32Value(int32(i)), err
		case t.Precision <= 18:
			i, err := strconv.ParseInt(u, 10, 64)
			return parquet.Int64Value(i), err
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
	if err := w.pw.Close(); err != nil {
		return fmt.Errorf("close parquet: %w", err)
	}
	return nil
}
