package validate

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"
	"github.com/cdc2s3/cdc2s3/internal/pgtext"
)

// Reading Parquet. The folder's files are read with arrow-go's low-level
// column readers (parquet/file), not with the writer's library, and each
// column's values are turned into canonical values by the types the file
// declares: the physical type with its logical type (DATE, DECIMAL,
// TIMESTAMP adjusted to UTC or not, STRING), and the standard three-level
// LIST. A misreading of the contract by the writer (a wrong logical type, a
// wrong scale) then shows as a difference instead of being read back the
// way it was written.

// levelBatch is how many levels a column reader reads at a time.
const levelBatch = 1024

// column reads one column of a row group, a row at a time.
type column struct {
	vals           values
	maxDef, maxRep int16
	list           bool
	listDef        int16 // for a LIST: the level at which the list is not NULL
	defs, reps     []int16
	n, i, vi       int  // levels buffered, next level, next value
	end            bool // the row group's column is read to its end
}

// newColumn opens leaf column leaf of a row group; c describes it.
func newColumn(rg *file.RowGroupReader, leaf int, c *schema.Column) (*column, error) {
	rd, err := rg.Column(leaf)
	if err != nil {
		return nil, err
	}
	col := &column{maxDef: c.MaxDefinitionLevel(), maxRep: c.MaxRepetitionLevel(),
		defs: make([]int16, levelBatch), reps: make([]int16, levelBatch)}
	switch col.maxRep {
	case 0:
	case 1:
		col.list = true
		if col.listDef, err = listLevel(c); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("column %s is nested %d deep: the contract writes flat columns and one-level lists", c.Path(), col.maxRep)
	}
	if col.vals, err = newValues(rd, c); err != nil {
		return nil, err
	}
	return col, nil
}

// listLevel is the definition level at which the LIST that holds column c
// is present (and empty when no element follows).
func listLevel(c *schema.Column) (int16, error) {
	var path []schema.Node
	for n := c.SchemaNode(); n != nil && n.Parent() != nil; n = n.Parent() {
		path = append([]schema.Node{n}, path...)
	}
	var def int16
	for _, n := range path {
		if n.RepetitionType() != parquet.Repetitions.Required {
			def++
		}
		if _, ok := n.LogicalType().(schema.ListLogicalType); ok || n.ConvertedType() == schema.ConvertedTypes.List {
			return def, nil
		}
	}
	return 0, fmt.Errorf("column %s is repeated but not in a LIST", c.Path())
}

// fill buffers the next levels when the buffer is used up; end is set at
// the end of the column.
func (c *column) fill() error {
	if c.i < c.n || c.end {
		return nil
	}
	n, err := c.vals.read(levelBatch, c.defs, c.reps)
	if err != nil {
		return err
	}
	if n == 0 {
		c.end = true
		return nil
	}
	c.n, c.i, c.vi = int(n), 0, 0
	// A required column has no definition levels, a flat one no
	// repetition levels: the reader leaves them as they were.
	if c.maxDef == 0 {
		clear(c.defs[:c.n])
	}
	if c.maxRep == 0 {
		clear(c.reps[:c.n])
	}
	return nil
}

// next appends the canonical value of the column in the next row.
func (c *column) next(buf []byte) ([]byte, error) {
	if err := c.fill(); err != nil {
		return nil, err
	}
	if c.end {
		return nil, errors.New("a column has fewer rows than its row group")
	}
	d := c.defs[c.i]
	c.i++
	if !c.list {
		if d < c.maxDef {
			return appendNull(buf), nil
		}
		buf = c.vals.appendCanon(buf, c.vi)
		c.vi++
		return buf, nil
	}
	if d < c.listDef {
		return appendNull(buf), nil
	}
	var inner []byte
	for {
		if d > c.listDef { // an element: NULL below maxDef
			if d < c.maxDef {
				inner = appendNull(inner)
			} else {
				inner = c.vals.appendCanon(inner, c.vi)
				c.vi++
			}
		}
		if err := c.fill(); err != nil {
			return nil, err
		}
		if c.end || c.reps[c.i] == 0 {
			return appendValue(buf, tagList, inner), nil
		}
		d = c.defs[c.i]
		c.i++
	}
}

// values are the decoded values of one column chunk, of one physical type.
type values interface {
	// read reads up to n levels and the values they define.
	read(n int64, defs, reps []int16) (int64, error)
	// appendCanon appends the canonical form of value i of the last read.
	appendCanon(buf []byte, i int) []byte
}

// typed holds one physical type's reader, buffer and conversion.
type typed[T any] struct {
	readBatch func(int64, []T, []int16, []int16) (int64, int, error)
	buf       []T
	canon     func(buf []byte, v T) []byte
}

func (t *typed[T]) read(n int64, defs, reps []int16) (int64, error) {
	levels, _, err := t.readBatch(n, t.buf, defs, reps)
	return levels, err
}

func (t *typed[T]) appendCanon(buf []byte, i int) []byte { return t.canon(buf, t.buf[i]) }

// newTyped wraps a typed column chunk reader.
func newTyped[T any](readBatch func(int64, []T, []int16, []int16) (int64, int, error), canon func([]byte, T) []byte) values {
	return &typed[T]{readBatch: readBatch, buf: make([]T, levelBatch), canon: canon}
}

// newValues picks the conversion of column c's values by its physical and
// logical type.
func newValues(rd file.ColumnChunkReader, c *schema.Column) (values, error) {
	lt := c.LogicalType()
	switch r := rd.(type) {
	case *file.BooleanColumnChunkReader:
		return newTyped(r.ReadBatchInPage, func(b []byte, v bool) []byte {
			return appendValue(b, tagBool, []byte(map[bool]string{true: "t", false: "f"}[v]))
		}), nil
	case *file.Int32ColumnChunkReader:
		return newTyped(r.ReadBatchInPage, intCanon[int32](lt)), nil
	case *file.Int64ColumnChunkReader:
		return newTyped(r.ReadBatchInPage, intCanon[int64](lt)), nil
	case *file.Float32ColumnChunkReader:
		return newTyped(r.ReadBatchInPage, func(b []byte, v float32) []byte {
			return appendValue(b, tagFloat, []byte(floatText(float64(v), 32)))
		}), nil
	case *file.Float64ColumnChunkReader:
		return newTyped(r.ReadBatchInPage, func(b []byte, v float64) []byte {
			return appendValue(b, tagFloat, []byte(floatText(v, 64)))
		}), nil
	case *file.ByteArrayColumnChunkReader:
		return newTyped(r.ReadBatchInPage, bytesCanon[parquet.ByteArray](lt)), nil
	case *file.FixedLenByteArrayColumnChunkReader:
		return newTyped(r.ReadBatchInPage, bytesCanon[parquet.FixedLenByteArray](lt)), nil
	}
	return nil, fmt.Errorf("column %s: physical type %s is not one the contract writes", c.Path(), c.PhysicalType())
}

// intCanon converts INT32 and INT64 values: DATE, DECIMAL, TIMESTAMP or an
// integer.
func intCanon[T int32 | int64](lt schema.LogicalType) func([]byte, T) []byte {
	switch t := lt.(type) {
	case schema.DateLogicalType:
		return func(b []byte, v T) []byte { return appendValue(b, tagDate, []byte(pgtext.DateText(int64(v)))) }
	case schema.DecimalLogicalType:
		scale := int(t.Scale())
		return func(b []byte, v T) []byte {
			return appendValue(b, tagNumber, []byte(decimalText(big.NewInt(int64(v)), scale)))
		}
	case schema.TimestampLogicalType:
		tag, mul, div := tagTime, int64(1), int64(1)
		if t.IsAdjustedToUTC() {
			tag = tagTimeTZ
		}
		switch t.TimeUnit() {
		case schema.TimeUnitMillis:
			mul = 1000
		case schema.TimeUnitNanos:
			div = 1000
		}
		return func(b []byte, v T) []byte {
			return appendValue(b, tag, []byte(pgtext.TimestampText(pgtext.FloorDiv(int64(v)*mul, div))))
		}
	case schema.IntLogicalType:
		if !t.IsSigned() {
			return func(b []byte, v T) []byte {
				u := uint64(v)
				if t.BitWidth() <= 32 {
					u = uint64(uint32(v))
				}
				return appendValue(b, tagNumber, strconv.AppendUint(nil, u, 10))
			}
		}
	}
	return func(b []byte, v T) []byte { return appendInt(b, int64(v)) }
}

// bytesCanon converts BYTE_ARRAY and FIXED_LEN_BYTE_ARRAY values: a
// DECIMAL (big-endian two's complement), text (STRING, ENUM, JSON) or raw
// bytes.
func bytesCanon[T ~[]byte](lt schema.LogicalType) func([]byte, T) []byte {
	switch t := lt.(type) {
	case schema.DecimalLogicalType:
		scale := int(t.Scale())
		return func(b []byte, v T) []byte {
			return appendValue(b, tagNumber, []byte(decimalText(twosComplement(v), scale)))
		}
	case schema.StringLogicalType, schema.EnumLogicalType, schema.JSONLogicalType:
		return func(b []byte, v T) []byte { return appendValue(b, tagString, v) }
	}
	return func(b []byte, v T) []byte { return appendValue(b, tagBytes, v) }
}

// twosComplement reads a big-endian two's complement integer.
func twosComplement(b []byte) *big.Int {
	v := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return v
}

// appendInt appends an integer.
func appendInt(buf []byte, n int64) []byte {
	return appendValue(buf, tagNumber, strconv.AppendInt(nil, n, 10))
}

// numberOf reads a canonical number as an unsigned integer (an LSN, a
// sequence number).
func numberOf(v []byte) (uint64, bool) {
	tag, p, _, err := nextValue(v)
	if err != nil || tag != tagNumber {
		return 0, false
	}
	n, err := strconv.ParseUint(string(p), 10, 64)
	return n, err == nil
}

// textOf reads a canonical string.
func textOf(v []byte) (string, bool) {
	tag, p, _, err := nextValue(v)
	return string(p), err == nil && tag == tagString
}
