package oracle

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/cdc2s3/cdc2s3/internal/pgtext"
)

func TestCanonScalar(t *testing.T) {
	tests := []struct {
		kind Kind
		in   string
		want string
	}{
		{KindBool, "t", "true"},
		{KindBool, "f", "false"},
		{KindInt, "-0042", "-42"},
		{KindInt, "9223372036854775807", "9223372036854775807"},
		{KindFloat4, "0.1", "0.1"},
		{KindFloat4, "16777217", "16777216"},
		{KindFloat4, "3.4028235e+38", "3.4028235e+38"},
		{KindFloat4, "1e-45", "1e-45"},
		{KindFloat8, "1e+21", "1e+21"},
		{KindFloat8, "123456789012345680000", "123456789012345680000"},
		{KindFloat8, "1e-07", "1e-7"},
		{KindFloat8, "0.000001", "0.000001"},
		{KindFloat8, "-0", "-0"},
		{KindFloat8, "NaN", `"NaN"`},
		{KindFloat8, "-Infinity", `"-Infinity"`},
		{KindDecimal, "1.50", "1.5"},
		{KindDecimal, "-0.00", "0"},
		{KindDecimal, "100", "100"},
		{KindDecimal, "-0.010", "-0.01"},
		{KindDecimal, "NaN", "null"},
		{KindDecimal, "Infinity", "null"},
		{KindNumeric, "1.500", `"1.500"`},
		{KindText, "a\"b\\c\n\x01\u2028<&>é", `"a\"b\\c\n\u0001` + "\u2028<&>é\""},
		{KindBytea, `\xDEADbeef`, `"\\xdeadbeef"`},
		{KindDate, "2024-02-29", `"2024-02-29"`},
		{KindDate, "0001-01-01 BC", `"0000-01-01"`},
		{KindDate, "0044-03-15 BC", `"-0043-03-15"`},
		{KindDate, "5874897-12-31", `"5874897-12-31"`},
		{KindDate, "infinity", "null"},
		{KindTimestamp, "1969-12-31 23:59:59.999999", `"1969-12-31T23:59:59.999999"`},
		{KindTimestamp, "2024-01-01 00:00:00.5", `"2024-01-01T00:00:00.500000"`},
		{KindTimestamp, "4714-11-24 00:00:00 BC", `"-4713-11-24T00:00:00.000000"`},
		{KindTimestamp, "294247-01-10 04:00:54.775807", `"294247-01-10T04:00:54.775807"`}, // int64 max µs
		{KindTimestamp, "294247-01-10 04:00:54.775808", "null"},
		{KindTimestamp, "-infinity", "null"},
		{KindTimestampTZ, "2024-01-01 00:00:00+00", `"2024-01-01T00:00:00.000000Z"`},
		{KindTimestampTZ, "2024-01-01 00:30:00+05:30", `"2023-12-31T19:00:00.000000Z"`},
		{KindTimestampTZ, "1900-01-01 00:00:00-00:09:21", `"1900-01-01T00:09:21.000000Z"`},
	}
	for _, tt := range tests {
		got, err := canonScalar(tt.kind, tt.in)
		if err != nil || got != tt.want {
			t.Errorf("canonScalar(%s, %q) = %s, %v; want %s", tt.kind, tt.in, got, err, tt.want)
		}
	}
	for _, tt := range []struct {
		kind Kind
		in   string
	}{
		{KindBool, "yes"}, {KindInt, "1.5"}, {KindDecimal, "1e5"}, {KindBytea, "abc"},
		{KindDate, "01/02/2024"}, {KindTimestamp, "2024-01-01 00:00:00+00"}, {KindTimestampTZ, "2024-01-01 00:00:00"},
	} {
		if got, err := canonScalar(tt.kind, tt.in); err == nil {
			t.Errorf("canonScalar(%s, %q) = %s, want an error", tt.kind, tt.in, got)
		}
	}
}

func TestTwins(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var f32 []float32
	var f64 []float64
	for _, e := range []int{-149, -126, -100, -1, 0, 1, 23, 24, 100, 127} {
		f32 = append(f32, float32(math.Ldexp(1, e)), -float32(math.Ldexp(1, e)))
	}
	f32 = append(f32, math.MaxFloat32, math.SmallestNonzeroFloat32, 0.1, 1e-7, 1e21, 123456789)
	for _, e := range []int{-1074, -1022, -500, -20, 0, 52, 53, 70, 500, 1023} {
		f64 = append(f64, math.Ldexp(1, e), -math.Ldexp(1, e))
	}
	f64 = append(f64, math.MaxFloat64, math.SmallestNonzeroFloat64, 0.1, 1e-7, 1e21, 1e20, 123456789012345680000, 5e-324)
	for len(f32) < 2000 {
		if f := math.Float32frombits(r.Uint32()); !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0) {
			f32 = append(f32, f)
		}
	}
	for len(f64) < 2000 {
		if f := math.Float64frombits(r.Uint64()); !math.IsNaN(f) && !math.IsInf(f, 0) {
			f64 = append(f64, f)
		}
	}
	texts := []string{"", " ", "a\"b\\c", "line\nbreak\ttab\r\x01\x1f\x7f", "\u2028\u2029<&>", "é漢字🙂", "'quoted'"}

	cols := []string{"id INTEGER", "f4 FLOAT", "f8 DOUBLE", "ts TIMESTAMP", "tz TIMESTAMPTZ", "d DATE",
		"dec DECIMAL(38,10)", "b BLOB", "s VARCHAR", "l DOUBLE[]"}
	tbl := Table{Key: []string{"id"}, Columns: []Column{
		{Name: "id", Kind: KindInt}, {Name: "f4", Kind: KindFloat4}, {Name: "f8", Kind: KindFloat8},
		{Name: "ts", Kind: KindTimestamp}, {Name: "tz", Kind: KindTimestampTZ}, {Name: "d", Kind: KindDate},
		{Name: "dec", Kind: KindDecimal}, {Name: "b", Kind: KindBytea}, {Name: "s", Kind: KindText},
		{Name: "l", Kind: KindFloat8, Array: true},
	}}
	var rows []prow
	var want []Row
	for i := range 2000 {
		// PostgreSQL's timestamp range is 4713 BC to 294276 AD.
		us := r.Int64N(9223372036854775807/2+210866803200000000) - 210866803200000000
		if i%2 == 0 {
			us *= 2
		}
		if i < 4 {
			us = []int64{math.MaxInt64 - 1, -210866803200000000, 0, -1}[i]
		}
		days := r.Int64N(2145042906+2440588) - 2440588
		unscaled := fmt.Sprintf("%d%09d%09d%09d", r.Int64N(1e9)-5e8, r.Int64N(1e9), r.Int64N(1e9), r.Int64N(1e9))
		dec := unscaled[:len(unscaled)-10] + "." + unscaled[len(unscaled)-10:]
		blob := make([]byte, r.IntN(8))
		for j := range blob {
			blob[j] = byte(r.UintN(256))
		}
		text := texts[i%len(texts)]
		l := []float64{f64[(i+1)%len(f64)], f64[(i+2)%len(f64)]}

		fl := func(f float64, bits int) string {
			return fmt.Sprintf("CAST('%s' AS %s)", strconv.FormatFloat(f, 'g', -1, bits), map[int]string{32: "FLOAT", 64: "DOUBLE"}[bits])
		}
		rows = append(rows, row("I", 100, 0,
			strconv.Itoa(i), fl(float64(f32[i]), 32), fl(f64[i], 64),
			fmt.Sprintf("make_timestamp(%d::BIGINT)", us),
			fmt.Sprintf("make_timestamptz(%d::BIGINT)", us),
			fmt.Sprintf("DATE '1970-01-01' + %d", days),
			fmt.Sprintf("CAST('%s' AS DECIMAL(38,10))", dec),
			fmt.Sprintf("from_hex('%s')", hex.EncodeToString(blob)),
			lit(text),
			fmt.Sprintf("[%s, %s]", fl(l[0], 64), fl(l[1], 64)),
		))
		wantDec, err := pgtext.NormalDecimal(dec)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, Row{
			strconv.Itoa(i), formatFloat(float64(f32[i]), 32), formatFloat(f64[i], 64),
			quote(pgtext.TimestampText(us)), quote(pgtext.TimestampText(us) + "Z"), quote(pgtext.DateText(days)),
			wantDec, quote(`\x` + hex.EncodeToString(blob)), quote(text),
			"[" + formatFloat(l[0], 64) + "," + formatFloat(l[1], 64) + "]",
		})
	}
	dir := t.TempDir()
	duck(t, copySQL(filepath.Join(dir, "LOAD00000001.parquet"), cols, rows...))
	checkState(t, dir, tbl, want...)
}
