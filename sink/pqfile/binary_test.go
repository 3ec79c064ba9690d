package pqfile_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/jackc/pgx/v5"

	"github.com/cdc2s3/cdc2s3/internal/testenv"
	"github.com/cdc2s3/cdc2s3/sink/pqfile"
)

// pgTypeOf is the PostgreSQL type whose values a case's text holds, as the
// binary path receives them. Decimals are read through numeric without a
// typmod: the binary format carries none, and a typmod would refuse the
// infinities the text cases hold.
func pgTypeOf(c colCase) string {
	name := map[pqfile.Kind]string{
		pqfile.String: "text", pqfile.Bool: "bool", pqfile.Int16: "int2", pqfile.Int32: "int4",
		pqfile.Int64: "int8", pqfile.Float32: "float4", pqfile.Float64: "float8", pqfile.Decimal: "numeric",
		pqfile.Bytes: "bytea", pqfile.Date: "date", pqfile.Timestamp: "timestamp", pqfile.TimestampTZ: "timestamptz",
	}[c.col.Type.Kind]
	if c.col.Name == "num" {
		name = "numeric" // a String column of numeric
	}
	if c.col.Type.List {
		name += "[]"
	}
	return name
}

// formatOf is the format the snapshot's binary COPY gives a case's column.
func formatOf(c colCase) pqfile.Format {
	if c.col.Name == "num" {
		return pqfile.FormatBinaryNumeric
	}
	return pqfile.FormatBinary
}

// binaryCases returns cases with every text input replaced by the binary
// value PostgreSQL sends for it, and the formats of the columns.
func binaryCases(t *testing.T, conn *pgx.Conn, cases []colCase) ([]colCase, []pqfile.Format) {
	t.Helper()
	ctx := context.Background()
	out := make([]colCase, len(cases))
	formats := make([]pqfile.Format, len(cases))
	for i, c := range cases {
		out[i], formats[i] = c, formatOf(c)
		out[i].in = make([]any, len(c.in))
		for j, in := range c.in {
			s, ok := in.(string)
			if !ok {
				continue
			}
			res := conn.PgConn().ExecParams(ctx, "SELECT $1::text::"+pgTypeOf(c), [][]byte{[]byte(s)}, []uint32{25}, []int16{0}, []int16{1}).Read()
			if res.Err != nil {
				t.Fatalf("%s %q as %s: %v", c.col.Name, s, pgTypeOf(c), res.Err)
			}
			out[i].in[j] = string(res.Rows[0][0])
		}
	}
	return out, formats
}

// TestWriteAllKindsBinary writes the type table's values in PostgreSQL's
// binary format, as the snapshot's binary COPY reads them, and checks that
// the file holds what the text path writes: the same values, types,
// statistics and counts of values written as NULL or flattened.
func TestWriteAllKindsBinary(t *testing.T) {
	ctx := context.Background()
	pg := testenv.NewPostgres(t)
	conn, err := pg.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET extra_float_digits = 3"); err != nil {
		t.Fatal(err)
	}
	bin, formats := binaryCases(t, conn, allKinds)

	textData, textStats := writeAll(t, allKinds, allMeta, pqfile.Options{})
	binData, binStats := writeAll(t, bin, allMeta, pqfile.Options{Formats: formats})
	if !reflect.DeepEqual(binStats.Nulled, textStats.Nulled) || !reflect.DeepEqual(binStats.Flattened, textStats.Flattened) {
		t.Errorf("binary: nulled %v, flattened %v; text: nulled %v, flattened %v", binStats.Nulled, binStats.Flattened, textStats.Nulled, textStats.Flattened)
	}
	tr, br := open(t, textData), open(t, binData)
	sc := br.MetaData().Schema
	checkTypes(t, sc, allKinds)
	checkLayout(t, br, compress.Codecs.Zstd)
	checkStatistics(t, br, allKinds)
	wantCols := append([][]any{}, allMetaWant...)
	for _, c := range allKinds {
		wantCols = append(wantCols, c.want)
	}
	for i := range sc.NumColumns() {
		got := rowsOf(t, readLeaf(t, br, i), sc.Column(i))
		text := rowsOf(t, readLeaf(t, tr, i), tr.MetaData().Schema.Column(i))
		if want := wantCols[i]; len(got) != len(want) || !same(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", sc.Column(i).Path(), show(got), show(want))
		}
		if !sameBits(got, text) {
			t.Errorf("%s: binary %s, text %s", sc.Column(i).Path(), show(got), show(text))
		}
	}
}

// sameBits compares values as their bits: NaN equals NaN of the same bits,
// and -0 differs from 0.
func sameBits(a, b []any) bool {
	return fmt.Sprintf("%#v", a) == fmt.Sprintf("%#v", b) && reflect.DeepEqual(bitsOf(a), bitsOf(b))
}

// bitsOf replaces floats by their bits, in lists too.
func bitsOf(v []any) []any {
	out := make([]any, len(v))
	for i, x := range v {
		switch x := x.(type) {
		case float32:
			out[i] = math.Float32bits(x)
		case float64:
			out[i] = math.Float64bits(x)
		case []any:
			out[i] = bitsOf(x)
		default:
			out[i] = x
		}
	}
	return out
}

// TestWriteBinaryErrors checks that malformed binary values are refused
// and leave no part of their row behind.
func TestWriteBinaryErrors(t *testing.T) {
	cols := []pqfile.Column{
		{Name: "i", Type: pqfile.Type{Kind: pqfile.Int32}},
		{Name: "d", Type: pqfile.DecimalType(5, 2)},
		{Name: "a", Type: pqfile.Type{Kind: pqfile.Int32, List: true}},
		{Name: "n", Type: pqfile.Type{Kind: pqfile.String}},
	}
	formats := []pqfile.Format{pqfile.FormatBinary, pqfile.FormatBinary, pqfile.FormatBinary, pqfile.FormatBinaryNumeric}
	good := [][]byte{{0, 0, 0, 7}, {0, 1, 0, 0, 0, 0, 0, 2, 0, 12}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 23}, {0, 0, 0, 0, 0, 0, 0, 0}}
	bad := map[string][][]byte{
		"short int":          {{0, 7}, good[1], good[2], good[3]},
		"numeric length":     {good[0], {0, 2, 0, 0, 0, 0, 0, 2, 0, 12}, good[2], good[3]},
		"numeric sign":       {good[0], {0, 1, 0, 0, 0x12, 0x34, 0, 2, 0, 12}, good[2], good[3]},
		"numeric digit":      {good[0], {0, 1, 0, 0, 0, 0, 0, 2, 0x27, 0x10}, good[2], good[3]},
		"too many decimals":  {good[0], {0, 1, 0xff, 0xff, 0, 0, 0, 4, 0, 1}, good[2], good[3]},
		"too large":          {good[0], {0, 1, 0, 3, 0, 0, 0, 0, 0, 1}, good[2], good[3]},
		"array header":       {good[0], good[1], {0, 0, 0, 1}, good[3]},
		"array element":      {good[0], good[1], {0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 23, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0}, good[3]},
		"array extra bytes":  {good[0], good[1], {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 23, 9}, good[3]},
		"array element type": {good[0], good[1], {0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 23, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 1}, good[3]},
		"numeric text":       {good[0], good[1], good[2], {0, 0, 0, 0}},
	}
	for name, row := range bad {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := pqfile.NewWriter(&buf, cols, pqfile.Options{Formats: formats})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write(pqfile.Meta{Op: 'I'}, row); err == nil {
				t.Fatalf("row %x accepted", row)
			}
			if err := w.Write(pqfile.Meta{Op: 'I'}, good); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if n := open(t, buf.Bytes()).NumRows(); n != 1 {
				t.Errorf("%d rows, want the good one", n)
			}
		})
	}
	if _, err := pqfile.NewWriter(&bytes.Buffer{}, cols, pqfile.Options{Formats: formats[:2]}); err == nil {
		t.Error("two formats for four columns accepted")
	}
	if _, err := pqfile.NewWriter(&bytes.Buffer{}, cols, pqfile.Options{Formats: []pqfile.Format{pqfile.FormatBinaryNumeric, 0, 0, 0}}); err == nil {
		t.Error("binary numeric text for an int column accepted")
	}
}
