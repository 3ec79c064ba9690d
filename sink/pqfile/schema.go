package pqfile

import (
	"bytes"
	"reflect"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"
	"github.com/parquet-go/parquet-go/format"
)

// Names of the metadata columns that lead every file (contract §2).
const (
	ColOp        = "Op"
	ColCommitTS  = "_cdc_commit_ts"
	ColLSN       = "_cdc_lsn"
	ColSeq       = "_cdc_seq"
	ColUnchanged = "_cdc_unchanged"
	// ColReload is the cut LSN of the reload a row belongs to (Op L and
	// R), in files written with Options.Reload only (docs/reload.md).
	ColReload = "_cdc_reload"
)

// metaColumns is the number of metadata columns before the table's own,
// in a file without the reload column.
const metaColumns = 5

// orderedGroup is a Parquet group whose fields keep the order they were
// given in. parquet.Group sorts its fields by name; the contract prefers the
// table's ordinal order, which readers that match by position also need.
type orderedGroup struct {
	fields []parquet.Field
}

func (g *orderedGroup) ID() int                             { return 0 }
func (g *orderedGroup) String() string                      { return "group" }
func (g *orderedGroup) Type() parquet.Type                  { return parquet.Group{}.Type() }
func (g *orderedGroup) Optional() bool                      { return false }
func (g *orderedGroup) Repeated() bool                      { return false }
func (g *orderedGroup) Required() bool                      { return true }
func (g *orderedGroup) Leaf() bool                          { return false }
func (g *orderedGroup) Fields() []parquet.Field             { return g.fields }
func (g *orderedGroup) Encoding() encoding.Encoding         { return nil }
func (g *orderedGroup) Compression() compress.Codec         { return nil }
func (g *orderedGroup) GoType() reflect.Type                { return reflect.TypeOf(map[string]any{}) }
func (f namedField) Name() string                           { return f.name }
func (f namedField) Value(base reflect.Value) reflect.Value { return reflect.Value{} }

// namedField gives a node its name in the ordered group.
type namedField struct {
	parquet.Node
	name string
}

// leafNode returns the Parquet node of one value of type t (without
// optionality or list wrapping).
func leafNode(t Type) parquet.Node {
	switch t.Kind {
	case Bool:
		return parquet.Leaf(parquet.BooleanType)
	case Int16:
		return parquet.Int(16)
	case Int32:
		return parquet.Int(32)
	case Int64:
		return parquet.Int(64)
	case Float32:
		return parquet.Leaf(parquet.FloatType)
	case Float64:
		return parquet.Leaf(parquet.DoubleType)
	case Decimal:
		switch {
		case t.Precision <= 9:
			return parquet.Decimal(t.Scale, t.Precision, parquet.Int32Type)
		case t.Precision <= 18:
			return parquet.Decimal(t.Scale, t.Precision, parquet.Int64Type)
		default:
			return parquet.Decimal(t.Scale, t.Precision, wideDecimalType{parquet.FixedLenByteArrayType(decimalBytes(t.Precision))})
		}
	case Bytes:
		return parquet.Leaf(boundedType{parquet.ByteArrayType})
	case Date:
		return parquet.Date()
	case Timestamp:
		return parquet.TimestampAdjusted(parquet.Microsecond, false)
	case TimestampTZ:
		return parquet.TimestampAdjusted(parquet.Microsecond, true)
	default:
		return parquet.Leaf(boundedType{parquet.String().Type()})
	}
}

// columnNode returns the full node of a table column: optional, and a
// standard three-level LIST for arrays.
func columnNode(t Type) parquet.Node {
	n := leafNode(t)
	if t.List {
		return parquet.Optional(parquet.List(parquet.Optional(n)))
	}
	return parquet.Optional(n)
}

// buildSchema returns the file schema: metadata columns, then cols.
// With reload, the optional INT64 _cdc_reload follows _cdc_unchanged.
func buildSchema(cols []Column, reload bool) (*parquet.Schema, []parquet.WriterOption) {
	fields := []parquet.Field{
		namedField{parquet.Encoded(parquet.String(), &parquet.RLEDictionary), ColOp},
		namedField{parquet.TimestampAdjusted(parquet.Microsecond, true), ColCommitTS},
		namedField{parquet.Int(64), ColLSN},
		namedField{parquet.Int(64), ColSeq},
		namedField{parquet.Optional(parquet.List(parquet.String())), ColUnchanged},
	}
	if reload {
		fields = append(fields, namedField{parquet.Optional(parquet.Int(64)), ColReload})
	}
	var opts []parquet.WriterOption
	for _, c := range cols {
		fields = append(fields, namedField{columnNode(c.Type), c.Name})
		// parquet-go (up to at least v0.32.0) orders FIXED_LEN_BYTE_ARRAY
		// bounds as unsigned bytes, which is wrong for negative two's
		// complement decimals: write no statistics rather than wrong ones.
		if c.Type.Kind == Decimal && c.Type.Precision > 18 {
			path := []string{c.Name}
			if c.Type.List {
				path = append(path, "list", "element")
			}
			opts = append(opts, parquet.SkipPageBounds(path...), parquet.SkipPageStatistics(path...))
		}
	}
	return parquet.NewSchema("schema", &orderedGroup{fields: fields}), opts
}

// wideDecimalType is the FIXED_LEN_BYTE_ARRAY of a DECIMAL with precision
// above 18, whose bounds the writer skips (see buildSchema). parquet-go (up
// to at least v0.32.0) still writes a column index for it, with no min/max
// entry for a page without bounds: the index lists fewer bounds than pages,
// which arrow-go rejects and parquet-mr fails on ("Not all sizes are
// equal") when Spark or Trino filter on the column. Its indexer writes one
// entry per page instead: empty for an all-NULL page, else the whole range
// of the type in its signed order, which holds every value and prunes
// nothing.
type wideDecimalType struct{ parquet.Type }

func (t wideDecimalType) NewColumnIndexer(int) parquet.ColumnIndexer {
	n := t.Length()
	lo, hi := make([]byte, n), bytes.Repeat([]byte{0xff}, n)
	lo[0], hi[0] = 0x80, 0x7f
	return &fullRangeIndexer{lo: lo, hi: hi}
}

type fullRangeIndexer struct {
	lo, hi     []byte
	nullPages  []bool
	nullCounts []int64
}

func (i *fullRangeIndexer) Reset() {
	i.nullPages, i.nullCounts = i.nullPages[:0], i.nullCounts[:0]
}

func (i *fullRangeIndexer) IndexPage(numValues, numNulls int64, _, _ parquet.Value) {
	i.nullPages = append(i.nullPages, numNulls == numValues)
	i.nullCounts = append(i.nullCounts, numNulls)
}

func (i *fullRangeIndexer) ColumnIndex() format.ColumnIndex {
	lo, hi := make([][]byte, len(i.nullPages)), make([][]byte, len(i.nullPages))
	for p, null := range i.nullPages {
		if null {
			lo[p], hi[p] = []byte{}, []byte{}
		} else {
			lo[p], hi[p] = i.lo, i.hi
		}
	}
	return format.ColumnIndex{
		NullPages:     slices.Clone(i.nullPages),
		NullCounts:    slices.Clone(i.nullCounts),
		MinValues:     lo,
		MaxValues:     hi,
		BoundaryOrder: format.Unordered,
	}
}

// pathString joins a column path for messages.
func pathString(p []string) string { return strings.Join(p, ".") }
