package pqfile_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cdc2s3/cdc2s3/sink/pqfile"
)

// TestLongValueBounds writes values far longer than a statistics bound in
// a STRING, a BINARY and a LIST column and checks that the file holds each
// about once (no copy in page headers, statistics or column index), that
// the statistics are short and still bound the values (a max that starts
// with 0xff bytes grows to its first other byte), and that the values read
// back whole.
func TestLongValueBounds(t *testing.T) {
	long := strings.Repeat("m", 1<<20)
	cases := []colCase{
		{pqfile.Column{Name: "s", Type: pqfile.Type{Kind: pqfile.String}},
			l("a"+long, "b", "b"+long+"z", nil), l("a"+long, "b", "b"+long+"z", nil)},
		{pqfile.Column{Name: "by", Type: pqfile.Type{Kind: pqfile.Bytes}},
			l(`\xfe`+strings.Repeat("ff", 5000), `\x00`, `\x`+strings.Repeat("ff", 4000)+"fe", nil),
			l("\xfe"+strings.Repeat("\xff", 5000), "\x00", strings.Repeat("\xff", 4000)+"\xfe", nil)},
		{pqfile.Column{Name: "as", Type: pqfile.Type{Kind: pqfile.String, List: true}},
			l("{"+long+",x}", nil, "{}", "{y}"), l(l(long, "x"), nil, l(), l("y"))},
	}
	meta := allMeta[:4]
	data, _ := writeAll(t, cases, meta, pqfile.Options{Compression: pqfile.CompressionNone})
	if n := len(data); n > 4<<20 {
		t.Errorf("file of %d bytes for 3 MB of values", n)
	}
	r := open(t, data)
	checkStatistics(t, r, cases)
	sc := r.MetaData().Schema
	for i := 5; i < sc.NumColumns(); i++ {
		cc, err := r.RowGroup(0).MetaData().ColumnChunk(i)
		if err != nil {
			t.Fatal(err)
		}
		st, err := cc.Statistics()
		if err != nil || st == nil || !st.HasMinMax() {
			t.Fatalf("%s: no statistics (%v)", sc.Column(i).Path(), err)
		}
		if lo, hi := st.EncodeMin(), st.EncodeMax(); len(lo) > 4097 || len(hi) > 4097 {
			t.Errorf("%s: statistics of %d and %d bytes", sc.Column(i).Path(), len(lo), len(hi))
		}
		got := rowsOf(t, readLeaf(t, r, i), sc.Column(i))
		if want := cases[i-5].want; !same(got, want) {
			t.Errorf("%s: values differ", sc.Column(i).Path())
		}
	}
	if !bytes.Contains(data, []byte("b"+long+"z")) {
		t.Error("the long value is not in the file as it is")
	}
}

// TestAllOnesBounds writes a BINARY value of 0xff bytes only, whose max no
// shorter string bounds: the statistics and the column index must still
// hold it (parquet-go's own column index wrote 16 bytes of 0xff, below it).
func TestAllOnesBounds(t *testing.T) {
	ones := strings.Repeat("\xff", 3000)
	cases := []colCase{{pqfile.Column{Name: "by", Type: pqfile.Type{Kind: pqfile.Bytes}},
		l(`\x`+strings.Repeat("ff", 3000), `\x01`), l(ones, "\x01")}}
	data, _ := writeAll(t, cases, allMeta[:2], pqfile.Options{})
	checkStatistics(t, open(t, data), cases)
}
