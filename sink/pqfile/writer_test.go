package pqfile_test

// The files are read back with Apache Arrow's Parquet reader
// (github.com/apache/arrow-go/v18/parquet), an implementation independent of
// the parquet-go writer under test.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/schema"
	"github.com/jackc/pglogrepl"

	"github.com/cdc2s3/cdc2s3/sink/pqfile"
)

// days and micros compute the expected DATE and TIMESTAMP values with Go's
// calendar (astronomical years: PostgreSQL's 1 BC is year 0).
func days(y, m, d int) int32 {
	return int32(time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

func micros(y, mo, d, h, mi, s, us int) int64 {
	return time.Date(y, time.Month(mo), d, h, mi, s, us*1000, time.UTC).UnixMicro()
}

// colCase is one table column with its six input values (nil NULL, else
// PostgreSQL's text) and what an independent reader must find: nil for
// NULL, int32, int64, float32, float64, bool, string (BYTE_ARRAY, and the
// unscaled value of a FIXED_LEN_BYTE_ARRAY decimal), []any for a list.
type colCase struct {
	col  pqfile.Column
	in   []any
	want []any
}

func l(v ...any) []any {
	if v == nil {
		return []any{}
	}
	return v
}

var nan32, nan64 = float32(math.NaN()), math.NaN()

// allKinds covers every Kind, as a scalar and in lists. Row 2 holds the
// unrepresentable values, row 3 is all NULL, row 4 holds the
// multi-dimensional arrays.
var allKinds = []colCase{
	{pqfile.Column{Name: "s", Type: pqfile.Type{Kind: pqfile.String}},
		l("hello", "", "NaN", nil, "日本語", "NULL"),
		l("hello", "", "NaN", nil, "日本語", "NULL")},
	{pqfile.Column{Name: "b", Type: pqfile.Type{Kind: pqfile.Bool}},
		l("t", "f", nil, nil, "t", "f"),
		l(true, false, nil, nil, true, false)},
	{pqfile.Column{Name: "i16", Type: pqfile.Type{Kind: pqfile.Int16}},
		l("32767", "-32768", "0", nil, "1", "-1"),
		l(int32(32767), int32(-32768), int32(0), nil, int32(1), int32(-1))},
	{pqfile.Column{Name: "i32", Type: pqfile.Type{Kind: pqfile.Int32}},
		l("2147483647", "-2147483648", "0", nil, "42", "-42"),
		l(int32(math.MaxInt32), int32(math.MinInt32), int32(0), nil, int32(42), int32(-42))},
	{pqfile.Column{Name: "i64", Type: pqfile.Type{Kind: pqfile.Int64}},
		l("9223372036854775807", "-9223372036854775808", "0", nil, "1", "-1"),
		l(int64(math.MaxInt64), int64(math.MinInt64), int64(0), nil, int64(1), int64(-1))},
	{pqfile.Column{Name: "f32", Type: pqfile.Type{Kind: pqfile.Float32}},
		l("3.40282347e+38", "NaN", "-Infinity", nil, "1.17549435e-38", "-0"),
		l(float32(math.MaxFloat32), nan32, float32(math.Inf(-1)), nil, float32(1.17549435e-38), float32(math.Copysign(0, -1)))},
	{pqfile.Column{Name: "f64", Type: pqfile.Type{Kind: pqfile.Float64}},
		l("1.7976931348623157e+308", "-Infinity", "NaN", nil, "5e-324", "0.10000000000000001"),
		l(math.MaxFloat64, math.Inf(-1), nan64, nil, 5e-324, 0.1)},
	{pqfile.Column{Name: "d9", Type: pqfile.DecimalType(9, 2)},
		l("9999999.99", "-9999999.99", "NaN", nil, "0.5", "-0.01"),
		l(int32(999999999), int32(-999999999), nil, nil, int32(50), int32(-1))},
	{pqfile.Column{Name: "d18", Type: pqfile.DecimalType(18, 4)},
		l("99999999999999.9999", "-0.0001", "-Infinity", nil, "12.5", "-12.5"),
		l(int64(999999999999999999), int64(-1), nil, nil, int64(125000), int64(-125000))},
	{pqfile.Column{Name: "d19", Type: pqfile.DecimalType(19, 0)},
		l("9999999999999999999", "-9999999999999999999", "Infinity", nil, "0", "-1"),
		l("9999999999999999999", "-9999999999999999999", nil, nil, "0", "-1")},
	{pqfile.Column{Name: "d38", Type: pqfile.DecimalType(38, 6)},
		l("99999999999999999999999999999999.999999", "-99999999999999999999999999999999.999999", "NaN", nil, "0.000001", "-123.4"),
		l("99999999999999999999999999999999999999", "-99999999999999999999999999999999999999", nil, nil, "1", "-123400000")},
	{pqfile.Column{Name: "num", Type: pqfile.DecimalType(0, 0)}, // numeric without typmod
		l("123456789012345678901234567890.123456789", "-0.5", "NaN", nil, "Infinity", nil),
		l("123456789012345678901234567890.123456789", "-0.5", "NaN", nil, "Infinity", nil)},
	{pqfile.Column{Name: "by", Type: pqfile.Type{Kind: pqfile.Bytes}},
		l(`\xdeadbeef`, `\x`, `\x00`, nil, `\x6869`, `\xff`),
		l("\xde\xad\xbe\xef", "", "\x00", nil, "hi", "\xff")},
	{pqfile.Column{Name: "dt", Type: pqfile.Type{Kind: pqfile.Date}},
		l("2024-02-29", "0044-03-15 BC", "infinity", nil, "1970-01-01", "10000-01-01"),
		l(days(2024, 2, 29), days(-43, 3, 15), nil, nil, int32(0), days(10000, 1, 1))},
	{pqfile.Column{Name: "ts", Type: pqfile.Type{Kind: pqfile.Timestamp}},
		l("2024-01-01 12:34:56.123456", "1900-01-01 00:00:00", "-infinity", nil, "1969-12-31 23:59:59.999999", "1677-09-21 00:12:43.145224"),
		l(micros(2024, 1, 1, 12, 34, 56, 123456), micros(1900, 1, 1, 0, 0, 0, 0), nil, nil, int64(-1), micros(1677, 9, 21, 0, 12, 43, 145224))},
	{pqfile.Column{Name: "tstz", Type: pqfile.Type{Kind: pqfile.TimestampTZ}},
		l("2024-01-01 12:34:56.5+00", "1969-07-20 20:17:40-04", "294276-12-31 23:59:59.999999+00", nil, "0099-01-01 00:00:00+00 BC", "2262-04-11 23:47:16.854775+00"),
		l(micros(2024, 1, 1, 12, 34, 56, 500000), micros(1969, 7, 21, 0, 17, 40, 0), nil, nil, micros(-98, 1, 1, 0, 0, 0, 0), micros(2262, 4, 11, 23, 47, 16, 854775))},
	{pqfile.Column{Name: "ai", Type: pqfile.Type{Kind: pqfile.Int32, List: true}},
		l("{1,2,3}", "{}", "{NULL}", nil, "{{1,2},{3,4}}", "[0:1]={7,8}"),
		l(l(int32(1), int32(2), int32(3)), l(), l(nil), nil, l(int32(1), int32(2), int32(3), int32(4)), l(int32(7), int32(8)))},
	{pqfile.Column{Name: "as", Type: pqfile.Type{Kind: pqfile.String, List: true}},
		l(`{a,"b c","",NULL,"NULL"}`, "{}", `{"\\"}`, nil, `{{{a,b},{c,d}},{{e,NULL},{"",f}}}`, "{x}"),
		l(l("a", "b c", "", nil, "NULL"), l(), l(`\`), nil, l("a", "b", "c", "d", "e", nil, "", "f"), l("x"))},
	{pqfile.Column{Name: "ad", Type: pqfile.Type{Kind: pqfile.Decimal, Precision: 20, Scale: 2, List: true}},
		l("{1.50,-2.25,NULL}", "{}", "{NaN,1}", nil, "{{-1,1},{2,-2}}", "[1:2]={7.00,-8.5}"),
		l(l("150", "-225", nil), l(), l(nil, "100"), nil, l("-100", "100", "200", "-200"), l("700", "-850"))},
	{pqfile.Column{Name: "ats", Type: pqfile.Type{Kind: pqfile.TimestampTZ, List: true}},
		l(`{"2024-01-01 00:00:00+00","1969-12-31 23:59:59.999999+00"}`, nil, `{infinity,"1970-01-01 00:00:00+00"}`, nil, "{}", "{NULL}"),
		l(l(micros(2024, 1, 1, 0, 0, 0, 0), int64(-1)), nil, l(nil, int64(0)), nil, l(), l(nil))},
}

var allMeta = []pqfile.Meta{
	{Op: 'I', CommitTime: micros(2024, 5, 1, 10, 0, 0, 1), LSN: 0x16B3748, Seq: 0},
	{Op: 'D', CommitTime: -1, LSN: 0x16B3748, Seq: 1, Unchanged: []string{}},
	{Op: 'I', CommitTime: 0, LSN: math.MaxInt64, Seq: 2},
	{Op: 'U', CommitTime: micros(1999, 12, 31, 23, 59, 59, 999999), LSN: 1, Seq: 3, Unchanged: []string{"s", "as"}},
	{Op: 'I', CommitTime: 1, LSN: 2, Seq: 1 << 40},
	{Op: 'T', CommitTime: 2, LSN: 3, Seq: 0, Unchanged: []string{"num"}},
}

var allMetaWant = [][]any{
	{"I", "D", "I", "U", "I", "T"},
	{allMeta[0].CommitTime, int64(-1), int64(0), allMeta[3].CommitTime, int64(1), int64(2)},
	{int64(0x16B3748), int64(0x16B3748), int64(math.MaxInt64), int64(1), int64(2), int64(3)},
	{int64(0), int64(1), int64(2), int64(3), int64(1 << 40), int64(0)},
	{nil, nil, nil, l("s", "as"), nil, l("num")},
}

func columnsOf(cases []colCase) []pqfile.Column {
	var cols []pqfile.Column
	for _, c := range cases {
		cols = append(cols, c.col)
	}
	return cols
}

// row returns the text values of row i.
func row(cases []colCase, i int) [][]byte {
	vals := make([][]byte, len(cases))
	for j, c := range cases {
		if s, ok := c.in[i].(string); ok {
			vals[j] = []byte(s)
		}
	}
	return vals
}

func writeAll(t *testing.T, cases []colCase, meta []pqfile.Meta, o pqfile.Options) ([]byte, pqfile.Stats) {
	t.Helper()
	var buf bytes.Buffer
	w, err := pqfile.NewWriter(&buf, columnsOf(cases), o)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range meta {
		if err := w.Write(m, row(cases, i)); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w.Stats()
}

func open(t *testing.T, data []byte) *file.Reader {
	t.Helper()
	r, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("arrow-go cannot open the file: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// leaf is one leaf column as stored: its levels and its non-null values.
type leaf struct {
	def, rep []int16
	vals     []any
}

// readLeaf reads leaf column i of every row group.
func readLeaf(t *testing.T, r *file.Reader, i int) leaf {
	t.Helper()
	var out leaf
	for g := range r.NumRowGroups() {
		lf := readLeafGroup(t, r, g, i)
		out.def = append(out.def, lf.def...)
		out.rep = append(out.rep, lf.rep...)
		out.vals = append(out.vals, lf.vals...)
	}
	return out
}

// readLeafGroup reads leaf column i of row group g.
func readLeafGroup(t *testing.T, r *file.Reader, g, i int) leaf {
	t.Helper()
	var out leaf
	rg := r.RowGroup(g)
	cc, err := rg.MetaData().ColumnChunk(i)
	if err != nil {
		t.Fatal(err)
	}
	n := cc.NumValues()
	cr, err := rg.Column(i)
	if err != nil {
		t.Fatal(err)
	}
	out.def, out.rep = make([]int16, n), make([]int16, n)
	for got := int64(0); got < n; {
		var total int64
		def, rep := out.def[got:], out.rep[got:]
		want := n - got
		switch c := cr.(type) {
		case *file.BooleanColumnChunkReader:
			total, err = readBatch(&out, want, def, rep, c.ReadBatch, func(x bool) any { return x })
		case *file.Int32ColumnChunkReader:
			total, err = readBatch(&out, want, def, rep, c.ReadBatch, func(x int32) any { return x })
		case *file.Int64ColumnChunkReader:
			total, err = readBatch(&out, want, def, rep, c.ReadBatch, func(x int64) any { return x })
		case *file.Float32ColumnChunkReader:
			total, err = readBatch(&out, want, def, rep, c.ReadBatch, func(x float32) any { return x })
		case *file.Float64ColumnChunkReader:
			total, err = readBatch(&out, want, def, rep, c.ReadBatch, func(x float64) any { return x })
		case *file.ByteArrayColumnChunkReader:
			total, err = readBatch(&out, want, def, rep, c.ReadBatch, func(x parquet.ByteArray) any { return string(x) })
		case *file.FixedLenByteArrayColumnChunkReader:
			total, err = readBatch(&out, want, def, rep, c.ReadBatch, func(x parquet.FixedLenByteArray) any { return fromTwos(x).String() })
		default:
			t.Fatalf("column %d: unexpected reader %T", i, cr)
		}
		if err != nil {
			t.Fatalf("column %d: %v", i, err)
		}
		if total == 0 {
			t.Fatalf("column %d: %d of %d levels read", i, got, n)
		}
		got += total
	}
	return out
}

// readBatch reads up to n levels with one of arrow-go's typed ReadBatch
// methods and appends the values read to out, converted by conv.
func readBatch[T any](out *leaf, n int64, def, rep []int16, read func(int64, []T, []int16, []int16) (int64, int, error), conv func(T) any) (int64, error) {
	v := make([]T, n)
	total, got, err := read(n, v, def, rep)
	for _, x := range v[:got] {
		out.vals = append(out.vals, conv(x))
	}
	return total, err
}

// fromTwos decodes a big-endian two's complement.
func fromTwos(b []byte) *big.Int {
	v := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return v
}

// rowsOf assembles a leaf's values per row: nil for NULL, []any for a list
// (empty for an empty list, nil elements for NULL elements).
func rowsOf(t *testing.T, lf leaf, c *schema.Column) []any {
	t.Helper()
	maxDef := c.MaxDefinitionLevel()
	var rows []any
	next := 0
	value := func(def int16) any {
		if def < maxDef {
			return nil
		}
		v := lf.vals[next]
		next++
		return v
	}
	for i, def := range lf.def {
		if c.MaxRepetitionLevel() == 0 {
			rows = append(rows, value(def))
			continue
		}
		// A list: optional group (1), repeated group (2), element.
		if lf.rep[i] == 0 {
			switch {
			case def == 0:
				rows = append(rows, nil)
			case def == 1:
				rows = append(rows, []any{})
			default:
				rows = append(rows, []any{value(def)})
			}
			continue
		}
		last := rows[len(rows)-1].([]any)
		rows[len(rows)-1] = append(last, value(def))
	}
	if next != len(lf.vals) {
		t.Fatalf("%s: %d values, %d used by the levels", c.Path(), len(lf.vals), next)
	}
	return rows
}

// same compares read values, NaN equal to NaN and -0 apart from 0.
func same(a, b any) bool {
	switch x := a.(type) {
	case float32:
		y, ok := b.(float32)
		return ok && (math.Float32bits(x) == math.Float32bits(y) || x != x && y != y)
	case float64:
		y, ok := b.(float64)
		return ok && (math.Float64bits(x) == math.Float64bits(y) || x != x && y != y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) || (x == nil) != (y == nil) {
			return false
		}
		for i := range x {
			if !same(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

func show(v []any) string {
	var parts []string
	for _, x := range v {
		switch y := x.(type) {
		case nil:
			parts = append(parts, "NULL")
		case []any:
			parts = append(parts, "["+show(y)+"]")
		default:
			parts = append(parts, fmt.Sprintf("%#v", x))
		}
	}
	return strings.Join(parts, " ")
}

// leafPaths are the leaf columns the contract expects, in order.
func leafPaths(cases []colCase) []string {
	paths := []string{"Op", "_cdc_commit_ts", "_cdc_lsn", "_cdc_seq", "_cdc_unchanged.list.element"}
	for _, c := range cases {
		p := c.col.Name
		if c.col.Type.List {
			p += ".list.element"
		}
		paths = append(paths, p)
	}
	return paths
}

func TestWriteAllKinds(t *testing.T) {
	data, stats := writeAll(t, allKinds, allMeta, pqfile.Options{})
	r := open(t, data)
	sc := r.MetaData().Schema

	if r.NumRows() != int64(len(allMeta)) {
		t.Errorf("%d rows, want %d", r.NumRows(), len(allMeta))
	}
	if stats.Rows != int64(len(allMeta)) {
		t.Errorf("Stats().Rows = %d", stats.Rows)
	}
	wantNulled := map[string]int64{"d9": 1, "d18": 1, "d19": 1, "d38": 1, "dt": 1, "ts": 1, "tstz": 1, "ad": 1, "ats": 1}
	if !reflect.DeepEqual(stats.Nulled, wantNulled) {
		t.Errorf("Stats().Nulled = %v, want %v", stats.Nulled, wantNulled)
	}
	wantFlat := map[string]int64{"ai": 1, "as": 1, "ad": 1}
	if !reflect.DeepEqual(stats.Flattened, wantFlat) {
		t.Errorf("Stats().Flattened = %v, want %v", stats.Flattened, wantFlat)
	}

	// Column order: metadata columns, then the table's in order.
	var paths []string
	for i := range sc.NumColumns() {
		paths = append(paths, sc.Column(i).Path())
	}
	if want := leafPaths(allKinds); !slices.Equal(paths, want) {
		t.Fatalf("leaf columns:\n got %v\nwant %v", paths, want)
	}
	root := sc.Root()
	for i, name := range append([]string{"Op", "_cdc_commit_ts", "_cdc_lsn", "_cdc_seq", "_cdc_unchanged"}, "s") {
		if got := root.Field(i).Name(); got != name {
			t.Errorf("field %d = %s, want %s", i, got, name)
		}
	}

	checkTypes(t, sc, allKinds)
	checkLayout(t, r, compress.Codecs.Zstd)
	checkStatistics(t, r, allKinds)

	// Values.
	wantCols := slices.Clone(allMetaWant)
	for _, c := range allKinds {
		wantCols = append(wantCols, c.want)
	}
	for i := range sc.NumColumns() {
		got := rowsOf(t, readLeaf(t, r, i), sc.Column(i))
		if want := wantCols[i]; len(got) != len(want) || !same(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", sc.Column(i).Path(), show(got), show(want))
		}
	}
}

// checkTypes checks physical and logical types against the contract's
// table, and the standard three-level LIST shape.
func checkTypes(t *testing.T, sc *schema.Schema, cases []colCase) {
	t.Helper()
	type want struct {
		phys    parquet.Type
		logical string
		rep     parquet.Repetition
	}
	types := map[string]want{
		"Op":                          {parquet.Types.ByteArray, "String", parquet.Repetitions.Required},
		"_cdc_commit_ts":              {parquet.Types.Int64, "Timestamp(isAdjustedToUTC=true, timeUnit=microseconds, is_from_converted_type=false, force_set_converted_type=false)", parquet.Repetitions.Required},
		"_cdc_lsn":                    {parquet.Types.Int64, "Int(bitWidth=64, isSigned=true)", parquet.Repetitions.Required},
		"_cdc_seq":                    {parquet.Types.Int64, "Int(bitWidth=64, isSigned=true)", parquet.Repetitions.Required},
		"_cdc_unchanged.list.element": {parquet.Types.ByteArray, "String", parquet.Repetitions.Required},
	}
	opt := parquet.Repetitions.Optional
	for _, c := range cases {
		var w want
		switch k := c.col.Type; k.Kind {
		case pqfile.String:
			w = want{parquet.Types.ByteArray, "String", opt}
		case pqfile.Bool:
			w = want{parquet.Types.Boolean, "None", opt}
		case pqfile.Int16:
			w = want{parquet.Types.Int32, "Int(bitWidth=16, isSigned=true)", opt}
		case pqfile.Int32:
			w = want{parquet.Types.Int32, "Int(bitWidth=32, isSigned=true)", opt}
		case pqfile.Int64:
			w = want{parquet.Types.Int64, "Int(bitWidth=64, isSigned=true)", opt}
		case pqfile.Float32:
			w = want{parquet.Types.Float, "None", opt}
		case pqfile.Float64:
			w = want{parquet.Types.Double, "None", opt}
		case pqfile.Decimal:
			phys := parquet.Types.FixedLenByteArray
			if k.Precision <= 9 {
				phys = parquet.Types.Int32
			} else if k.Precision <= 18 {
				phys = parquet.Types.Int64
			}
			w = want{phys, fmt.Sprintf("Decimal(precision=%d, scale=%d)", k.Precision, k.Scale), opt}
		case pqfile.Bytes:
			w = want{parquet.Types.ByteArray, "None", opt}
		case pqfile.Date:
			w = want{parquet.Types.Int32, "Date", opt}
		case pqfile.Timestamp:
			w = want{parquet.Types.Int64, "Timestamp(isAdjustedToUTC=false, timeUnit=microseconds, is_from_converted_type=false, force_set_converted_type=false)", opt}
		case pqfile.TimestampTZ:
			w = want{parquet.Types.Int64, "Timestamp(isAdjustedToUTC=true, timeUnit=microseconds, is_from_converted_type=false, force_set_converted_type=false)", opt}
		}
		p := c.col.Name
		if c.col.Type.List {
			p += ".list.element"
		}
		types[p] = w
	}
	minBytes := [39]int{0, 1, 1, 2, 2, 3, 3, 4, 4, 4, 5, 5, 6, 6, 6, 7, 7, 8, 8, 9, 9, 9, 10, 10, 11, 11, 11, 12, 12, 13, 13, 13, 14, 14, 15, 15, 16, 16, 16}
	for i := range sc.NumColumns() {
		c := sc.Column(i)
		w, ok := types[c.Path()]
		if !ok {
			t.Errorf("unexpected column %s", c.Path())
			continue
		}
		lt := c.LogicalType()
		if c.PhysicalType() != w.phys || logicalName(lt) != w.logical || c.SchemaNode().RepetitionType() != w.rep {
			t.Errorf("%s: %s %s %s, want %s %s %s", c.Path(), c.PhysicalType(), logicalName(lt), c.SchemaNode().RepetitionType(), w.phys, w.logical, w.rep)
		}
		if d, ok := lt.(schema.DecimalLogicalType); ok && c.PhysicalType() == parquet.Types.FixedLenByteArray {
			if n := c.TypeLength(); n != minBytes[d.Precision()] {
				t.Errorf("%s: FIXED_LEN_BYTE_ARRAY(%d), want %d bytes for precision %d", c.Path(), n, minBytes[d.Precision()], d.Precision())
			}
		}
		// Nothing Athena v3 or Spark 3.3 cannot read.
		switch lt := lt.(type) {
		case schema.TimeLogicalType, schema.UUIDLogicalType, schema.IntervalLogicalType, schema.JSONLogicalType, schema.BSONLogicalType, schema.Float16LogicalType:
			t.Errorf("%s: logical type %s", c.Path(), lt)
		case schema.IntLogicalType:
			if !lt.IsSigned() {
				t.Errorf("%s: unsigned", c.Path())
			}
		case schema.TimestampLogicalType:
			if lt.TimeUnit() != schema.TimeUnitMicros {
				t.Errorf("%s: timestamp unit %v", c.Path(), lt.TimeUnit())
			}
		}
		if c.PhysicalType() == parquet.Types.Int96 {
			t.Errorf("%s: INT96", c.Path())
		}

		// Lists: optional group (LIST) > repeated group "list" > "element".
		if c.MaxRepetitionLevel() > 0 {
			elem := c.SchemaNode()
			list, ok := elem.Parent().(*schema.GroupNode)
			if !ok || elem.Name() != "element" || list.Name() != "list" || list.RepetitionType() != parquet.Repetitions.Repeated || list.NumFields() != 1 {
				t.Errorf("%s: not a standard three-level list (element %q, list %v)", c.Path(), elem.Name(), list)
				continue
			}
			outer, ok := list.Parent().(*schema.GroupNode)
			if !ok || outer.RepetitionType() != parquet.Repetitions.Optional || logicalName(outer.LogicalType()) != "List" || outer.NumFields() != 1 {
				t.Errorf("%s: outer group %v", c.Path(), outer)
			}
			if c.MaxRepetitionLevel() != 1 {
				t.Errorf("%s: max repetition level %d", c.Path(), c.MaxRepetitionLevel())
			}
		}
	}
}

// logicalName names a logical type; Arrow's String() is verbose, so keep
// it but drop the package noise.
func logicalName(lt schema.LogicalType) string {
	if lt == nil {
		return "None"
	}
	switch lt.(type) {
	case schema.NoLogicalType:
		return "None"
	case schema.StringLogicalType:
		return "String"
	case schema.ListLogicalType:
		return "List"
	case schema.DateLogicalType:
		return "Date"
	}
	return lt.String()
}

// checkLayout checks what Spark 3.3 needs of every column chunk: version 1
// data pages with RLE levels, no DELTA_LENGTH_BYTE_ARRAY, and the codec.
func checkLayout(t *testing.T, r *file.Reader, codec compress.Compression) {
	t.Helper()
	sc := r.MetaData().Schema
	allowed := []parquet.Encoding{parquet.Encodings.Plain, parquet.Encodings.PlainDict, parquet.Encodings.RLEDict, parquet.Encodings.RLE}
	for g := range r.NumRowGroups() {
		rg := r.RowGroup(g)
		for i := range sc.NumColumns() {
			name := sc.Column(i).Path()
			cc, err := rg.MetaData().ColumnChunk(i)
			if err != nil {
				t.Fatal(err)
			}
			if cc.Compression() != codec {
				t.Errorf("%s: compression %s, want %s", name, cc.Compression(), codec)
			}
			for _, e := range cc.Encodings() {
				if e == parquet.Encodings.DeltaLengthByteArray || !slices.Contains(allowed, e) {
					t.Errorf("%s: encoding %s", name, e)
				}
			}
			pr, err := rg.GetColumnPageReader(i)
			if err != nil {
				t.Fatal(err)
			}
			pages := 0
			for pr.Next() {
				switch p := pr.Page().(type) {
				case *file.DictionaryPage:
				case *file.DataPageV1:
					pages++
					enc := parquet.Encoding(p.Encoding())
					if !slices.Contains(allowed, enc) || enc == parquet.Encodings.RLE && sc.Column(i).PhysicalType() != parquet.Types.Boolean {
						t.Errorf("%s: data page encoding %s", name, enc)
					}
					if p.DefinitionLevelEncoding() != parquet.Encodings.RLE || p.RepetitionLevelEncoding() != parquet.Encodings.RLE {
						t.Errorf("%s: level encodings %s/%s", name, p.DefinitionLevelEncoding(), p.RepetitionLevelEncoding())
					}
				default:
					t.Errorf("%s: page %T (only version 1 data pages)", name, p)
				}
			}
			if err := pr.Err(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if pages == 0 {
				t.Errorf("%s: no data page", name)
			}
		}
	}
}

// checkStatistics checks every min/max a reader may prune with (column
// chunk statistics, page header statistics, column index) against the
// values of each column chunk, in the order of the column's type: signed
// integers and decimals, unsigned bytes for strings. FIXED_LEN_BYTE_ARRAY
// decimals must carry no statistics, and a column index, when written, must
// be well formed: one entry per page. INT32/INT64 decimals serve as the
// control that statistics are read at all.
func checkStatistics(t *testing.T, r *file.Reader, cases []colCase) {
	t.Helper()
	sc := r.MetaData().Schema
	pix := r.GetPageIndexReader()
	for g := range r.NumRowGroups() {
		rg := r.RowGroup(g)
		var rgIdx *metadata.RowGroupPageIndexReader
		if pix != nil {
			var err error
			if rgIdx, err = pix.RowGroup(g); err != nil {
				t.Fatal(err)
			}
		}
		for i := range sc.NumColumns() {
			c := sc.Column(i)
			name := fmt.Sprintf("%s (row group %d)", c.Path(), g)
			phys := c.PhysicalType()
			_, isDecimal := c.LogicalType().(schema.DecimalLogicalType)
			wide := isDecimal && phys == parquet.Types.FixedLenByteArray
			var vals []any
			for _, v := range readLeafGroup(t, r, g, i).vals {
				if f, ok := v.(float32); ok && f != f || func() bool { f, ok := v.(float64); return ok && f != f }() {
					continue // NaN: outside any order
				}
				vals = append(vals, v)
			}
			holds := func(lo, hi any) bool {
				for _, v := range vals {
					if order(v, lo) < 0 || order(v, hi) > 0 {
						return false
					}
				}
				return true
			}

			cc, err := rg.MetaData().ColumnChunk(i)
			if err != nil {
				t.Fatal(err)
			}
			st, err := cc.Statistics()
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case wide:
				if st != nil && st.HasMinMax() {
					t.Errorf("%s: chunk min/max %x..%x on a FIXED_LEN_BYTE_ARRAY decimal", name, st.EncodeMin(), st.EncodeMax())
				}
			case st != nil && st.HasMinMax():
				lo, hi := bound(phys, st.EncodeMin()), bound(phys, st.EncodeMax())
				if !holds(lo, hi) {
					t.Errorf("%s: chunk statistics %v..%v do not hold the values %v", name, lo, hi, vals)
				}
				if isDecimal && len(vals) > 0 && (order(lo, slices.MinFunc(vals, order)) != 0 || order(hi, slices.MaxFunc(vals, order)) != 0) {
					t.Errorf("%s: chunk statistics %v..%v, want %v..%v", name, lo, hi, slices.MinFunc(vals, order), slices.MaxFunc(vals, order))
				}
			case isDecimal && len(vals) > 0:
				t.Errorf("%s: no chunk statistics on an INT32/INT64 decimal", name)
			}

			pr, err := rg.GetColumnPageReader(i)
			if err != nil {
				t.Fatal(err)
			}
			pages := 0
			for pr.Next() {
				p, ok := pr.Page().(*file.DataPageV1)
				if !ok {
					continue
				}
				pages++
				s := p.Statistics()
				if wide && (s.HasMin || s.HasMax) {
					t.Errorf("%s: page min/max %x..%x on a FIXED_LEN_BYTE_ARRAY decimal", name, s.Min, s.Max)
				}
				if !wide && s.HasMin && s.HasMax && pages == 1 && cc.NumValues() == int64(p.NumValues()) {
					if lo, hi := bound(phys, s.Min), bound(phys, s.Max); !holds(lo, hi) {
						t.Errorf("%s: page statistics %v..%v do not hold the values", name, lo, hi)
					}
				}
			}

			if rgIdx == nil {
				continue
			}
			ci, err := rgIdx.GetColumnIndex(i)
			if err != nil {
				t.Errorf("%s: column index: %v", name, err)
				continue
			}
			if ci == nil {
				continue
			}
			nulls := ci.GetNullPages()
			if len(nulls) != pages || len(ci.GetMinValues()) != pages || len(ci.GetMaxValues()) != pages {
				t.Errorf("%s: column index of %d/%d/%d entries for %d pages", name, len(nulls), len(ci.GetMinValues()), len(ci.GetMaxValues()), pages)
				continue
			}
			var lo, hi any
			for p, null := range nulls {
				if null {
					continue
				}
				plo, phi := bound(phys, ci.GetMinValues()[p]), bound(phys, ci.GetMaxValues()[p])
				if lo == nil || order(plo, lo) < 0 {
					lo = plo
				}
				if hi == nil || order(phi, hi) > 0 {
					hi = phi
				}
			}
			switch {
			case lo == nil && len(vals) > 0:
				t.Errorf("%s: column index says every page is NULL, %d values", name, len(vals))
			case lo != nil && !holds(lo, hi):
				t.Errorf("%s: column index bounds %v..%v do not hold the values %v", name, lo, hi, vals)
			}
		}
	}
}

// bound decodes a plain-encoded statistics value of a physical type into
// the form readLeaf returns (big.Int for a FIXED_LEN_BYTE_ARRAY decimal).
func bound(phys parquet.Type, b []byte) any {
	switch phys {
	case parquet.Types.Boolean:
		return len(b) > 0 && b[0] != 0
	case parquet.Types.Int32:
		return int32(binary.LittleEndian.Uint32(b))
	case parquet.Types.Int64:
		return int64(binary.LittleEndian.Uint64(b))
	case parquet.Types.Float:
		return math.Float32frombits(binary.LittleEndian.Uint32(b))
	case parquet.Types.Double:
		return math.Float64frombits(binary.LittleEndian.Uint64(b))
	case parquet.Types.FixedLenByteArray:
		return fromTwos(b).String()
	}
	return string(b)
}

// order compares two values of one column in its type's order. Strings
// holding decimal digits with a sign come from FIXED_LEN_BYTE_ARRAY
// decimals and compare as numbers; other strings compare as unsigned bytes.
func order(a, b any) int {
	switch x := a.(type) {
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case int32:
		return cmpOrdered(x, b.(int32))
	case int64:
		return cmpOrdered(x, b.(int64))
	case float32:
		return cmpOrdered(x, b.(float32))
	case float64:
		return cmpOrdered(x, b.(float64))
	case string:
		y := b.(string)
		bx, okx := new(big.Int).SetString(x, 10)
		by, oky := new(big.Int).SetString(y, 10)
		if okx && oky && decimalText(x) && decimalText(y) {
			return bx.Cmp(by)
		}
		return strings.Compare(x, y)
	}
	panic(fmt.Sprintf("order of %T", a))
}

func cmpOrdered[T int32 | int64 | float32 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// decimalText reports whether s looks like the unscaled digits readLeaf
// makes of a FIXED_LEN_BYTE_ARRAY decimal.
func decimalText(s string) bool {
	s = strings.TrimPrefix(s, "-")
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func TestCompression(t *testing.T) {
	for _, tc := range []struct {
		name  string
		codec compress.Compression
	}{
		{"", compress.Codecs.Zstd},
		{pqfile.CompressionZstd, compress.Codecs.Zstd},
		{pqfile.CompressionSnappy, compress.Codecs.Snappy},
		{pqfile.CompressionNone, compress.Codecs.Uncompressed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := pqfile.ValidCompression(tc.name); err != nil {
				t.Fatal(err)
			}
			data, _ := writeAll(t, allKinds, allMeta, pqfile.Options{Compression: tc.name})
			r := open(t, data)
			checkLayout(t, r, tc.codec)
			sc := r.MetaData().Schema
			for i := range sc.NumColumns() {
				readLeaf(t, r, i) // decompresses every page
			}
		})
	}
	for _, name := range []string{"gzip", "ZSTD", "lz4", "brotli"} {
		if err := pqfile.ValidCompression(name); err == nil {
			t.Errorf("ValidCompression(%q) accepted it", name)
		}
		if _, err := pqfile.NewWriter(&bytes.Buffer{}, nil, pqfile.Options{Compression: name}); err == nil {
			t.Errorf("NewWriter with compression %q accepted it", name)
		}
	}
}

// TestRowGroups writes enough rows to close several row groups and reads
// every value back across them.
func TestRowGroups(t *testing.T) {
	cases := []colCase{
		{col: pqfile.Column{Name: "id", Type: pqfile.Type{Kind: pqfile.Int64}}},
		{col: pqfile.Column{Name: "txt", Type: pqfile.Type{Kind: pqfile.String}}},
		{col: pqfile.Column{Name: "d", Type: pqfile.DecimalType(30, 3)}},
		{col: pqfile.Column{Name: "tags", Type: pqfile.Type{Kind: pqfile.String, List: true}}},
	}
	const n = 3000
	var meta []pqfile.Meta
	var wantBytes int64
	for i := range n {
		meta = append(meta, pqfile.Meta{Op: 'I', LSN: pglogrepl.LSN(i / 10), Seq: uint64(i % 10)})
		txt := strings.Repeat(string(rune('a'+i%26)), i%50)
		d := fmt.Sprintf("%d.%03d", i-n/2, i%1000)
		tags := fmt.Sprintf(`{"t%d",NULL}`, i)
		in := []any{fmt.Sprint(i), txt, d, tags}
		if i%7 == 0 {
			in[1], in[3] = nil, nil
		}
		if i >= 1000 && i < 1500 {
			in[2] = nil // whole row groups, whole pages of NULL
		}
		for j := range cases {
			cases[j].in = append(cases[j].in, in[j])
			if s, ok := in[j].(string); ok {
				wantBytes += int64(len(s))
			}
		}
		cases[0].want = append(cases[0].want, int64(i))
		if in[2] == nil {
			cases[2].want = append(cases[2].want, nil)
		} else {
			cases[2].want = append(cases[2].want, fmt.Sprint(int64(i-n/2)*1000+int64(i%1000)*sign(i-n/2)))
		}
		if i%7 == 0 {
			cases[1].want = append(cases[1].want, nil)
			cases[3].want = append(cases[3].want, nil)
		} else {
			cases[1].want = append(cases[1].want, txt)
			cases[3].want = append(cases[3].want, l(fmt.Sprintf("t%d", i), nil))
		}
	}
	data, stats := writeAll(t, cases, meta, pqfile.Options{RowGroupBytes: 4096, Compression: pqfile.CompressionSnappy})
	if stats.Rows != n || stats.Bytes != wantBytes {
		t.Errorf("Stats() = %d rows, %d bytes; want %d, %d", stats.Rows, stats.Bytes, n, wantBytes)
	}
	r := open(t, data)
	if r.NumRowGroups() < 2 {
		t.Fatalf("%d row groups, want several", r.NumRowGroups())
	}
	checkLayout(t, r, compress.Codecs.Snappy)
	checkStatistics(t, r, cases)
	sc := r.MetaData().Schema
	for i, c := range cases {
		col := sc.Column(5 + i)
		got := rowsOf(t, readLeaf(t, r, 5+i), col)
		if !same(got, c.want) {
			t.Errorf("%s differs after %d row groups", col.Path(), r.NumRowGroups())
		}
	}
	// Some row groups of d hold only NULLs: their column index says so.
	pix := r.GetPageIndexReader()
	nullPages := 0
	for g := range r.NumRowGroups() {
		rgIdx, err := pix.RowGroup(g)
		if err != nil {
			t.Fatal(err)
		}
		ci, err := rgIdx.GetColumnIndex(7)
		if err != nil || ci == nil {
			t.Fatalf("column index of d in row group %d: %v, %v", g, ci, err)
		}
		for _, null := range ci.GetNullPages() {
			if null {
				nullPages++
			}
		}
	}
	if nullPages == 0 {
		t.Error("no all-NULL page of d in the column index")
	}
	seq := rowsOf(t, readLeaf(t, r, 3), sc.Column(3))
	if len(seq) != n || seq[n-1] != int64((n-1)%10) {
		t.Errorf("_cdc_seq read back wrong")
	}
}

func sign(x int) int64 {
	if x < 0 {
		return -1
	}
	return 1
}

// TestReusedBuffers writes rows whose values share one buffer that the
// caller overwrites after each Write, as a decoder reusing its message
// buffer would: across several batches, and with big values, which the
// writer does not copy.
func TestReusedBuffers(t *testing.T) {
	cases := []colCase{
		{col: pqfile.Column{Name: "s", Type: pqfile.Type{Kind: pqfile.String}}},
		{col: pqfile.Column{Name: "b", Type: pqfile.Type{Kind: pqfile.Bytes}}},
		{col: pqfile.Column{Name: "l", Type: pqfile.Type{Kind: pqfile.String, List: true}}},
	}
	var out bytes.Buffer
	w, err := pqfile.NewWriter(&out, columnsOf(cases), pqfile.Options{RowGroupBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 300<<10)
	var want [3][]any
	const n = 20000 // more than two batches
	for i := range n {
		s := fmt.Sprintf("row-%05d", i)
		if i%997 == 0 {
			s += strings.Repeat(string(rune('a'+i%26)), 100<<10) // big: not copied
		}
		b := fmt.Sprintf(`\x%02x%02x`, i%256, 255-i%256)
		a := fmt.Sprintf("{x%05d,y%05d}", i, i)
		if i%1999 == 0 {
			a = "{" + strings.Repeat("z", 70<<10) + "}" // a big list element
		}
		n := copy(buf, s)
		m := copy(buf[n:], b)
		k := copy(buf[n+m:], a)
		if err := w.Write(pqfile.Meta{Op: 'I', Seq: uint64(i)}, [][]byte{buf[:n], buf[n : n+m], buf[n+m : n+m+k]}); err != nil {
			t.Fatal(err)
		}
		for j := range buf[:n+m+k] {
			buf[j] = '#'
		}
		want[0] = append(want[0], s)
		want[1] = append(want[1], string([]byte{byte(i % 256), byte(255 - i%256)}))
		if i%1999 == 0 {
			want[2] = append(want[2], l(strings.Repeat("z", 70<<10)))
		} else {
			want[2] = append(want[2], l(fmt.Sprintf("x%05d", i), fmt.Sprintf("y%05d", i)))
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := open(t, out.Bytes())
	if r.NumRowGroups() < 2 {
		t.Errorf("%d row groups, want several", r.NumRowGroups())
	}
	sc := r.MetaData().Schema
	for i := range cases {
		got := rowsOf(t, readLeaf(t, r, 5+i), sc.Column(5+i))
		if !same(got, want[i]) {
			t.Errorf("%s differs (%d rows read, %d written)", sc.Column(5+i).Path(), len(got), len(want[i]))
		}
	}
	seq := rowsOf(t, readLeaf(t, r, 3), sc.Column(3))
	for i, v := range seq {
		if v != int64(i) {
			t.Fatalf("_cdc_seq of row %d is %v", i, v)
		}
	}
}

// TestRowAfterError checks that a row rejected half-way (a bad value after
// other columns, lists included, were converted) leaves nothing behind: the
// rows written after it line up in every column.
func TestRowAfterError(t *testing.T) {
	cols := []pqfile.Column{
		{Name: "s", Type: pqfile.Type{Kind: pqfile.String}},
		{Name: "l", Type: pqfile.Type{Kind: pqfile.Int32, List: true}},
		{Name: "i", Type: pqfile.Type{Kind: pqfile.Int32}},
	}
	var out bytes.Buffer
	w, err := pqfile.NewWriter(&out, cols, pqfile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var want [3][]any
	for i := range 100 {
		in := [][]byte{[]byte(fmt.Sprint("s", i)), []byte(fmt.Sprintf("{%d,%d,%d}", i, i+1, i+2)), []byte(fmt.Sprint(i))}
		if i%5 == 3 {
			in[2] = []byte("bad")
		}
		err := w.Write(pqfile.Meta{Op: 'I', Unchanged: []string{"x", "y"}}, in)
		if (err != nil) != (i%5 == 3) {
			t.Fatalf("row %d: err = %v", i, err)
		}
		if err == nil {
			want[0] = append(want[0], fmt.Sprint("s", i))
			want[1] = append(want[1], l(int32(i), int32(i+1), int32(i+2)))
			want[2] = append(want[2], int32(i))
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := open(t, out.Bytes())
	if r.NumRows() != int64(len(want[0])) {
		t.Fatalf("%d rows, want %d", r.NumRows(), len(want[0]))
	}
	sc := r.MetaData().Schema
	for i := range cols {
		got := rowsOf(t, readLeaf(t, r, 5+i), sc.Column(5+i))
		if !same(got, want[i]) {
			t.Errorf("%s:\n got %s\nwant %s", sc.Column(5+i).Path(), show(got), show(want[i]))
		}
	}
	unchanged := rowsOf(t, readLeaf(t, r, 4), sc.Column(4))
	for i, v := range unchanged {
		if !same([]any{v}, []any{l("x", "y")}) {
			t.Fatalf("_cdc_unchanged of row %d is %v", i, v)
		}
	}
}

// TestNoColumns writes a table without columns (CREATE TABLE t ()) and a
// file without rows.
func TestNoColumns(t *testing.T) {
	data, _ := writeAll(t, nil, allMeta[:2], pqfile.Options{})
	r := open(t, data)
	if r.NumRows() != 2 || r.MetaData().Schema.NumColumns() != 5 {
		t.Errorf("%d rows, %d columns", r.NumRows(), r.MetaData().Schema.NumColumns())
	}
	data, _ = writeAll(t, allKinds, nil, pqfile.Options{})
	r = open(t, data)
	if r.NumRows() != 0 || r.MetaData().Schema.NumColumns() != len(leafPaths(allKinds)) {
		t.Errorf("empty file: %d rows, %d columns", r.NumRows(), r.MetaData().Schema.NumColumns())
	}
}

func TestWriteErrors(t *testing.T) {
	for _, tc := range []struct {
		typ pqfile.Type
		in  string
	}{
		{pqfile.Type{Kind: pqfile.Int32}, "abc"},
		{pqfile.Type{Kind: pqfile.Int32}, "2147483648"},
		{pqfile.Type{Kind: pqfile.Int64}, "1.5"},
		{pqfile.Type{Kind: pqfile.Bool}, "yes"},
		{pqfile.Type{Kind: pqfile.Float64}, "abc"},
		{pqfile.Type{Kind: pqfile.Bytes}, "plain"},
		{pqfile.Type{Kind: pqfile.Date}, "01/02/2024"},
		{pqfile.Type{Kind: pqfile.Timestamp}, "2024-01-01T00:00:00"},
		{pqfile.Type{Kind: pqfile.TimestampTZ}, "2024-01-01 00:00:00"},
		{pqfile.DecimalType(9, 0), "9999999999"},
		{pqfile.DecimalType(5, 2), "1.234"},
		{pqfile.DecimalType(20, 0), "123456789012345678901234567890123456789012"},
		{pqfile.Type{Kind: pqfile.Int32, List: true}, "{1,x}"},
		{pqfile.Type{Kind: pqfile.Int32, List: true}, "{1,2"},
		{pqfile.Type{Kind: pqfile.Int32, List: true}, "1"},
	} {
		w, err := pqfile.NewWriter(&bytes.Buffer{}, []pqfile.Column{{Name: "c", Type: tc.typ}}, pqfile.Options{})
		if err != nil {
			t.Fatal(err)
		}
		err = w.Write(pqfile.Meta{Op: 'I'}, [][]byte{[]byte(tc.in)})
		if err == nil || !strings.Contains(err.Error(), `"c"`) {
			t.Errorf("%s %q: err = %v, want an error naming the column", tc.typ, tc.in, err)
		}
	}
	w, err := pqfile.NewWriter(&bytes.Buffer{}, columnsOf(allKinds), pqfile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(w.Columns(), columnsOf(allKinds)) {
		t.Error("Columns() differs from the columns given")
	}
	if err := w.Write(pqfile.Meta{Op: 'I'}, make([][]byte, len(allKinds)-1)); err == nil {
		t.Error("a row with too few values was accepted")
	}
}
