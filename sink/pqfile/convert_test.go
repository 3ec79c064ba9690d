package pqfile

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"testing"
	"time"
)

// outcome of a conversion: a value, errUnrepresentable, or another error.
const (
	ok = iota
	unrep
	invalid
)

func outcomeOf(err error) int {
	switch {
	case err == nil:
		return ok
	case errors.Is(err, errUnrepresentable):
		return unrep
	}
	return invalid
}

var outcomeNames = [...]string{"a value", "unrepresentable", "an error"}

func checkOutcome(t *testing.T, in string, err error, want int) bool {
	t.Helper()
	if got := outcomeOf(err); got != want {
		t.Errorf("%q: got %s (%v), want %s", in, outcomeNames[got], err, outcomeNames[want])
		return false
	}
	return want == ok
}

func TestParseBool(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
		out  int
	}{
		{"t", true, ok}, {"f", false, ok}, {"true", true, ok}, {"false", false, ok},
		{"", false, invalid}, {"T", false, invalid}, {"yes", false, invalid}, {"1", false, invalid},
	} {
		got, err := parseBool([]byte(tc.in))
		if checkOutcome(t, tc.in, err, tc.out) && got != tc.want {
			t.Errorf("%q = %v", tc.in, got)
		}
	}
}

func TestDecimalUnscaled(t *testing.T) {
	for _, tc := range []struct {
		in    string
		scale int
		want  string // the unscaled value, compared as a number
		out   int
	}{
		{"0", 0, "0", ok},
		{"0", 2, "0", ok},
		{"-0", 0, "0", ok},
		{"0.00", 2, "0", ok},
		{"12.5", 2, "1250", ok},
		{"-12.5", 2, "-1250", ok},
		{"+7", 1, "70", ok},
		{"123", 3, "123000", ok},             // scale padding
		{"1.50", 1, "15", ok},                // trailing zeros beyond the scale
		{"-1.5000000", 1, "-15", ok},         //
		{"0.001", 3, "1", ok},                //
		{"-0.001", 3, "-1", ok},              //
		{"-0.0010", 3, "-1", ok},             //
		{"000123.4", 1, "1234", ok},          // leading zeros
		{"9999999.99", 2, "999999999", ok},   // numeric(9,2) bounds
		{"-9999999.99", 2, "-999999999", ok}, //
		{"99999999999999999999999999999999999999", 0, "99999999999999999999999999999999999999", ok},
		{"-0.99999999999999999999999999999999999999", 38, "-99999999999999999999999999999999999999", ok},
		{"NaN", 2, "", unrep},
		{"Infinity", 0, "", unrep},
		{"-Infinity", 0, "", unrep},
		{"1.55", 1, "", invalid}, // would round
		{"1.05", 0, "", invalid},
		{"", 0, "", invalid},
		{"-", 0, "", invalid},
		{".", 2, "", invalid},
		{"-.", 2, "", invalid},
		{"1.2.3", 3, "", invalid},
		{"1e5", 0, "", invalid},
		{"12a", 0, "", invalid},
		{" 1", 0, "", invalid},
		{"--1", 0, "", invalid},
		{"nan", 0, "", invalid},
	} {
		got, err := decimalUnscaled([]byte(tc.in), tc.scale)
		if !checkOutcome(t, fmt.Sprintf("%s@%d", tc.in, tc.scale), err, tc.out) {
			continue
		}
		g, okg := new(big.Int).SetString(got, 10)
		w, _ := new(big.Int).SetString(tc.want, 10)
		if !okg || g.Cmp(w) != 0 {
			t.Errorf("decimalUnscaled(%q, %d) = %q, want %s", tc.in, tc.scale, got, tc.want)
		}
	}
}

// minBytes is the table Spark and Hive use (Decimal.minBytesForPrecision).
var minBytes = [39]int{0,
	1, 1, 2, 2, 3, 3, 4, 4, 4, 5, // 1..10
	5, 6, 6, 6, 7, 7, 8, 8, 9, 9, // 11..20
	9, 10, 10, 11, 11, 11, 12, 12, 13, 13, // 21..30
	13, 14, 14, 15, 15, 16, 16, 16, // 31..38
}

func TestDecimalBytes(t *testing.T) {
	for p := 1; p <= MaxDecimalPrecision; p++ {
		n := decimalBytes(p)
		if n != minBytes[p] {
			t.Errorf("decimalBytes(%d) = %d, want %d", p, n, minBytes[p])
		}
		// Independently: 10^p - 1 fits n signed bytes, not n-1.
		maxv := new(big.Int).Sub(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(p)), nil), big.NewInt(1))
		if maxv.BitLen() > 8*n-1 || maxv.BitLen() <= 8*(n-1)-1 {
			t.Errorf("precision %d: %d bytes is not the minimum for %s (%d bits)", p, n, maxv, maxv.BitLen())
		}
	}
}

func TestDecimalType(t *testing.T) {
	for _, tc := range []struct {
		p, s int
		want string
	}{
		{10, 2, "decimal(10,2)"},
		{1, 0, "decimal(1,0)"},
		{38, 38, "decimal(38,38)"},
		{0, 0, "string"},    // numeric without typmod
		{39, 2, "string"},   // too wide
		{1000, 0, "string"}, //
		{10, -2, "string"},  // PostgreSQL 15 negative scale
		{5, 7, "string"},    // scale above precision
	} {
		if got := DecimalType(tc.p, tc.s).String(); got != tc.want {
			t.Errorf("DecimalType(%d, %d) = %s, want %s", tc.p, tc.s, got, tc.want)
		}
	}
	if got := (Type{Kind: TimestampTZ, List: true}).String(); got != "list<timestamptz>" {
		t.Errorf("list type = %s", got)
	}
	if got := Kind(200).String(); got != "Kind(200)" {
		t.Errorf("unknown kind = %s", got)
	}
}

// twos is an independent two's complement encoder: a negative v is the
// bitwise complement of |v|-1.
func twos(v *big.Int, n int) []byte {
	if v.Sign() >= 0 {
		return v.FillBytes(make([]byte, n))
	}
	b := new(big.Int).Sub(new(big.Int).Neg(v), big.NewInt(1)).FillBytes(make([]byte, n))
	for i := range b {
		b[i] = ^b[i]
	}
	return b
}

// fromTwos decodes a big-endian two's complement.
func fromTwos(b []byte) *big.Int {
	v := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return v
}

func TestDecimalFixed(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string // hex
		out  int
	}{
		{"0", 1, "00", ok},
		{"1", 1, "01", ok},
		{"-1", 1, "ff", ok},
		{"127", 1, "7f", ok},
		{"-128", 1, "80", ok},
		{"128", 1, "", invalid},
		{"-129", 1, "", invalid},
		{"-256", 1, "", invalid},
		{"-400", 1, "", invalid}, // would wrap to 0x90
		{"-511", 1, "", invalid}, //
		{"-1000", 2, "fc18", ok},
		{"-1", 16, "ffffffffffffffffffffffffffffffff", ok},
		{"-65536", 2, "", invalid},
		{"-98304", 2, "", invalid}, // -(2^16 + 2^15): would wrap to 0x8000
		{"-0", 2, "0000", ok},
		{"+5", 1, "05", ok},
		{"", 4, "", invalid},
		{"1.5", 4, "", invalid},
		{"x", 4, "", invalid},
	} {
		got, err := decimalFixed(tc.in, tc.n)
		if checkOutcome(t, fmt.Sprintf("%s/%d", tc.in, tc.n), err, tc.out) && fmt.Sprintf("%x", got) != tc.want {
			t.Errorf("decimalFixed(%q, %d) = %x, want %s", tc.in, tc.n, got, tc.want)
		}
	}

	// Every precision written as FIXED_LEN_BYTE_ARRAY: its extreme values,
	// and the edges of the byte length.
	one := big.NewInt(1)
	for p := 19; p <= MaxDecimalPrecision; p++ {
		n := decimalBytes(p)
		max := new(big.Int).Sub(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(p)), nil), one)
		top := new(big.Int).Lsh(one, uint(8*n-1)) // 2^(8n-1): first value that does not fit
		values := []*big.Int{
			big.NewInt(0), big.NewInt(1), big.NewInt(-1), big.NewInt(-256), big.NewInt(255),
			max, new(big.Int).Neg(max),
			new(big.Int).Sub(top, one), new(big.Int).Neg(top),
		}
		for _, v := range values {
			got, err := decimalFixed(v.String(), n)
			if err != nil {
				t.Errorf("p=%d: decimalFixed(%s, %d): %v", p, v, n, err)
				continue
			}
			if len(got) != n || !bytes.Equal(got, twos(v, n)) || fromTwos(got).Cmp(v) != 0 {
				t.Errorf("p=%d: decimalFixed(%s, %d) = %x, want %x", p, v, n, got, twos(v, n))
			}
		}
		tooBig := []*big.Int{
			top,
			new(big.Int).Sub(new(big.Int).Neg(top), one),
			new(big.Int).Neg(new(big.Int).Lsh(one, uint(8*n))),
			new(big.Int).Neg(new(big.Int).Add(new(big.Int).Lsh(one, uint(8*n)), top)),
			new(big.Int).Lsh(one, uint(8*n+5)),
			new(big.Int).Neg(new(big.Int).Lsh(one, uint(8*n+5))),
		}
		for _, v := range tooBig {
			if got, err := decimalFixed(v.String(), n); err == nil {
				t.Errorf("p=%d: decimalFixed(%s, %d) = %x, want an error", p, v, n, got)
			}
		}
	}
}

func TestParseBytea(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
		out  int
	}{
		{`\x`, []byte{}, ok},
		{`\x00`, []byte{0}, ok},
		{`\x00ff10`, []byte{0, 0xff, 0x10}, ok},
		{`\xDEADbeef`, []byte{0xde, 0xad, 0xbe, 0xef}, ok},
		{``, nil, invalid},
		{`\`, nil, invalid},
		{`00ff`, nil, invalid},
		{`\x0`, nil, invalid},
		{`\xzz`, nil, invalid},
		{`\000\001`, nil, invalid}, // escape format
	} {
		got, err := parseBytea([]byte(tc.in))
		if checkOutcome(t, tc.in, err, tc.out) && (!bytes.Equal(got, tc.want) || got == nil) {
			t.Errorf("parseBytea(%q) = %#v, want %#v", tc.in, got, tc.want)
		}
	}
}

// epochDays is the oracle for dates: Go's proleptic Gregorian calendar with
// astronomical years (PostgreSQL's 1 BC is year 0).
func epochDays(y, m, d int) int64 {
	return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

func TestParseDate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		out  int
	}{
		{"1970-01-01", 0, ok},
		{"1970-01-02", 1, ok},
		{"1969-12-31", -1, ok},
		{"2000-02-29", epochDays(2000, 2, 29), ok},
		{"2024-02-29", 19782, ok},
		{"1900-03-01", epochDays(1900, 3, 1), ok},
		{"1582-10-04", epochDays(1582, 10, 4), ok}, // proleptic Gregorian, as PostgreSQL
		{"0001-01-01", -719162, ok},
		{"0001-12-31 BC", -719163, ok},
		{"0001-01-01 BC", epochDays(0, 1, 1), ok},
		{"0044-03-15 BC", epochDays(-43, 3, 15), ok},
		{"0401-02-29 BC", epochDays(-400, 2, 29), ok}, // 401 BC is year -400, a leap year
		{"4714-11-24 BC", -2440588, ok},               // PostgreSQL's first date, Julian day 0
		{"9999-12-31", epochDays(9999, 12, 31), ok},
		{"10000-01-01", 2932897, ok},
		{"12345-06-07", epochDays(12345, 6, 7), ok},
		{"5874897-12-31", 2145042905, ok}, // PostgreSQL's last date
		{"infinity", 0, unrep},
		{"-infinity", 0, unrep},
		{"9999999-01-01", 0, unrep}, // beyond int32 days
		{"", 0, invalid},
		{"2024-1-01", 0, invalid},
		{"24-01-01", 0, invalid},
		{"2024-13-01", 0, invalid},
		{"2024-00-10", 0, invalid},
		{"2024-01-32", 0, invalid},
		{"2024-01-00", 0, invalid},
		{"2024-01-01x", 0, invalid},
		{"2024-01-01 00:00:00", 0, invalid},
		{"01/02/2024", 0, invalid}, // DateStyle not ISO
		{"2024/01/02", 0, invalid},
		{"Infinity", 0, invalid},
		{"2024-01-01 AD", 0, invalid},
	} {
		got, err := parseDate([]byte(tc.in))
		if checkOutcome(t, tc.in, err, tc.out) && int64(got) != tc.want {
			t.Errorf("parseDate(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// bigMicros is the oracle for timestamps, exact beyond int64.
func bigMicros(y, mo, d, h, mi, s, us int, offsetSec int) *big.Int {
	days := big.NewInt(epochDays(y, mo, d))
	secs := new(big.Int).Mul(days, big.NewInt(86400))
	secs.Add(secs, big.NewInt(int64(h*3600+mi*60+s-offsetSec)))
	return secs.Mul(secs, big.NewInt(1e6)).Add(secs, big.NewInt(int64(us)))
}

func TestParseTimestamp(t *testing.T) {
	type tcase struct {
		in   string
		tz   bool
		want *big.Int
		out  int
	}
	at := func(y, mo, d, h, mi, s, us int) *big.Int { return bigMicros(y, mo, d, h, mi, s, us, 0) }
	cases := []tcase{
		{"1970-01-01 00:00:00", false, big.NewInt(0), ok},
		{"1970-01-01 00:00:00.000001", false, big.NewInt(1), ok},
		{"1969-12-31 23:59:59.999999", false, big.NewInt(-1), ok},
		{"2024-01-01 12:00:00.5", false, at(2024, 1, 1, 12, 0, 0, 500000), ok},
		{"2024-01-01 12:00:00.05", false, at(2024, 1, 1, 12, 0, 0, 50000), ok},
		{"2024-01-01 12:00:00.123456", false, at(2024, 1, 1, 12, 0, 0, 123456), ok},
		{"2024-02-29 23:59:59.999999", false, at(2024, 2, 29, 23, 59, 59, 999999), ok},
		{"1900-01-01 00:00:00", false, at(1900, 1, 1, 0, 0, 0, 0), ok},
		{"1000-06-15 08:30:00", false, at(1000, 6, 15, 8, 30, 0, 0), ok},
		{"0001-01-01 00:00:00", false, at(1, 1, 1, 0, 0, 0, 0), ok},
		{"0001-12-31 23:59:59 BC", false, at(0, 12, 31, 23, 59, 59, 0), ok},
		{"4714-11-24 00:00:00 BC", false, big.NewInt(-210866803200000000), ok}, // PostgreSQL's first timestamp
		{"2262-04-11 23:47:16.854775", false, at(2262, 4, 11, 23, 47, 16, 854775), ok},
		{"2262-04-11 23:47:16.854776", false, at(2262, 4, 11, 23, 47, 16, 854776), ok},
		{"1677-09-21 00:12:43.145224", false, at(1677, 9, 21, 0, 12, 43, 145224), ok},
		{"1677-09-21 00:12:43.145223", false, at(1677, 9, 21, 0, 12, 43, 145223), ok},
		{"10000-01-01 00:00:00", false, at(10000, 1, 1, 0, 0, 0, 0), ok},
		{"294276-12-31 23:59:59.999999", false, nil, unrep}, // PostgreSQL's last timestamp, beyond int64 micros
		{"294276-12-31 23:59:59.999999+00", true, nil, unrep},
		{"infinity", false, nil, unrep},
		{"-infinity", false, nil, unrep},
		{"infinity", true, nil, unrep},
		{"-infinity", true, nil, unrep},

		{"2024-01-01 12:00:00+00", true, at(2024, 1, 1, 12, 0, 0, 0), ok},
		{"2024-01-01 12:00:00.25-03", true, at(2024, 1, 1, 15, 0, 0, 250000), ok},
		{"2024-01-01 12:00:00+05:30", true, at(2024, 1, 1, 6, 30, 0, 0), ok},
		{"2024-01-01 12:00:00-01:30:15", true, at(2024, 1, 1, 13, 30, 15, 0), ok},
		{"2024-01-01 00:10:00+14", true, at(2023, 12, 31, 10, 10, 0, 0), ok},
		{"1969-07-20 20:17:40-04", true, at(1969, 7, 21, 0, 17, 40, 0), ok},
		{"0099-01-01 00:00:00+00 BC", true, at(-98, 1, 1, 0, 0, 0, 0), ok},
		{"1883-11-18 12:00:00-07:52:58", true, at(1883, 11, 18, 19, 52, 58, 0), ok}, // LMT offset

		{"", false, nil, invalid},
		{"2024-01-01", false, nil, invalid},
		{"2024-01-01 12:00", false, nil, invalid},
		{"2024-01-01T12:00:00", false, nil, invalid},
		{"2024-01-01 12:00:00+00", false, nil, invalid}, // offset on timestamp
		{"2024-01-01 12:00:00", true, nil, invalid},     // no offset on timestamptz
		{"2024-01-01 12:00:00+5", true, nil, invalid},
		{"2024-01-01 12:00:00+05:3", true, nil, invalid},
		{"2024-01-01 12:00:00+05:30:15:00", true, nil, invalid},
		{"2024-01-01 12:00:00 UTC", true, nil, invalid},
		{"2024-01-01 1a:00:00", false, nil, invalid},
		{"2024-01-01 12:00:00.5x", false, nil, invalid},
		{"2024-13-01 12:00:00", false, nil, invalid},
	}
	for _, tc := range cases {
		got, err := parseTimestamp([]byte(tc.in), tc.tz)
		if checkOutcome(t, tc.in, err, tc.out) && (!tc.want.IsInt64() || got != tc.want.Int64()) {
			t.Errorf("parseTimestamp(%q, %v) = %d, want %s", tc.in, tc.tz, got, tc.want)
		}
	}

	// Near the ends of int64 microseconds, with any offset PostgreSQL
	// allows, the result is the exact instant or unrepresentable, never a
	// wrapped number.
	for _, tc := range []struct {
		y, mo, d, h, mi, s, us int
	}{
		{294247, 1, 9, 23, 59, 59, 999999},
		{294247, 1, 10, 4, 0, 54, 775807}, // math.MaxInt64 micros
		{294247, 1, 10, 4, 0, 54, 775808},
		{294247, 1, 11, 0, 0, 0, 0},
		{-290308, 12, 22, 19, 59, 5, 224192}, // math.MinInt64 micros
		{-290308, 12, 21, 0, 0, 0, 0},
		{-290307, 1, 1, 0, 0, 0, 0},
	} {
		for _, off := range []int{0, 15*3600 + 59*60 + 59, -(15*3600 + 59*60 + 59), 3600, -3600} {
			in := fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d.%06d%s", tc.y, tc.mo, tc.d, tc.h, tc.mi, tc.s, tc.us, offsetText(off))
			if tc.y <= 0 {
				in = fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d.%06d%s BC", 1-tc.y, tc.mo, tc.d, tc.h, tc.mi, tc.s, tc.us, offsetText(off))
			}
			want := bigMicros(tc.y, tc.mo, tc.d, tc.h, tc.mi, tc.s, tc.us, off)
			got, err := parseTimestamp([]byte(in), true)
			switch {
			case errors.Is(err, errUnrepresentable):
			case err != nil:
				t.Errorf("%s: %v", in, err)
			case !want.IsInt64() || got != want.Int64():
				t.Errorf("parseTimestamp(%q) = %d, want %s or unrepresentable", in, got, want)
			}
		}
	}
}

func offsetText(sec int) string {
	sign := '+'
	if sec < 0 {
		sign, sec = '-', -sec
	}
	s := fmt.Sprintf("%c%02d", sign, sec/3600)
	if rest := sec % 3600; rest != 0 {
		s += fmt.Sprintf(":%02d", rest/60)
		if rest%60 != 0 {
			s += fmt.Sprintf(":%02d", rest%60)
		}
	}
	return s
}

func TestParseArray(t *testing.T) {
	const N = "<NULL>"
	for _, tc := range []struct {
		in   string
		want []string // N for NULL
		dims int
	}{
		{`{}`, nil, 1},
		{`{1}`, []string{"1"}, 1},
		{`{1,2,3}`, []string{"1", "2", "3"}, 1},
		{`{-1.5,NaN,Infinity}`, []string{"-1.5", "NaN", "Infinity"}, 1},
		{`{NULL,null,"NULL","null"}`, []string{N, N, "NULL", "null"}, 1},
		{`{"",""}`, []string{"", ""}, 1},
		{`{"a,b","c\"d","e\\f","{x}"," sp ","x}y"}`, []string{"a,b", `c"d`, `e\f`, "{x}", " sp ", "x}y"}, 1},
		{`{"2024-01-01 00:00:00+00","1969-12-31 23:59:59.999999+00"}`, []string{"2024-01-01 00:00:00+00", "1969-12-31 23:59:59.999999+00"}, 1},
		{`{"\\x00ff"}`, []string{`\x00ff`}, 1},
		{`{{1,2},{3,4}}`, []string{"1", "2", "3", "4"}, 2},
		{`{{NULL,"x"},{"",NULL}}`, []string{N, "x", "", N}, 2},
		{`{{{1,2},{3,4}},{{5,6},{7,8}}}`, []string{"1", "2", "3", "4", "5", "6", "7", "8"}, 3},
		{`[0:1]={7,8}`, []string{"7", "8"}, 1},
		{`[-2:-1]={"a",NULL}`, []string{"a", N}, 1},
		{`[1:2][1:2]={{1,2},{3,4}}`, []string{"1", "2", "3", "4"}, 2},
		{`{Ünïcode,日本}`, []string{"Ünïcode", "日本"}, 1},
	} {
		prefix := [][]byte{[]byte("keep")}
		got, dims, err := parseArray([]byte(tc.in), prefix)
		if err != nil {
			t.Errorf("parseArray(%q): %v", tc.in, err)
			continue
		}
		if len(got) == 0 || string(got[0]) != "keep" {
			t.Errorf("parseArray(%q) did not append to elems", tc.in)
			continue
		}
		got = got[1:]
		var gs []string
		for _, e := range got {
			if e == nil {
				gs = append(gs, N)
			} else {
				gs = append(gs, string(e))
			}
		}
		if !slices.Equal(gs, tc.want) || dims != tc.dims {
			t.Errorf("parseArray(%q) = %q, %d dims; want %q, %d dims", tc.in, gs, dims, tc.want, tc.dims)
		}
		for i, e := range got {
			if tc.want[i] == "" && e == nil {
				t.Errorf("parseArray(%q): empty string element %d came back as NULL", tc.in, i)
			}
		}
	}
	for _, in := range []string{
		``, `{`, `}`, `1,2`, `{1,2`, `{1,2}}`, `{1}{2}`, `{1}x`, `{"abc}`, `{"a\"}`,
		`[0:1]`, `[0:1]=7`, `[0:1]=`, `{{1,2}`,
	} {
		if got, _, err := parseArray([]byte(in), nil); err == nil {
			t.Errorf("parseArray(%q) = %q, want an error", in, got)
		}
	}
}

// TestFastIntegerPaths checks the allocation-free parsers against the
// general ones (strconv, decimalUnscaled) on the same inputs.
func TestFastIntegerPaths(t *testing.T) {
	ints := []string{"0", "-0", "+7", "42", "-42", "2147483647", "-2147483648", "2147483648",
		"-2147483649", "999999999999999999", "-999999999999999999", "9223372036854775807",
		"-9223372036854775808", "9223372036854775808", "", "-", "1a", " 1", "1.5", "00012"}
	for _, s := range ints {
		for _, bits := range []int{32, 64} {
			got, err := parseInt([]byte(s), bits)
			want, werr := strconv.ParseInt(s, 10, bits)
			if (err == nil) != (werr == nil) || (err == nil && got != want) {
				t.Errorf("parseInt(%q, %d) = %d, %v; strconv: %d, %v", s, bits, got, err, want, werr)
			}
		}
	}
	decs := []string{"0", "-0", "0.00", "12.5", "-12.5", "12.50", "12.500", "12.501", "0.05",
		"-0.05", "999999999999999999", "0.123456789012345678", "-9999999999999999.99", "1.",
		".5", "NaN", "Infinity", "-Infinity", "1e5", "--1", "1.2.3", "", "-", "+3.25",
		"9223372036854775807", "92233720368547758070"}
	for _, s := range decs {
		for _, scale := range []int{0, 1, 2, 3, 18} {
			got, err := decimalInt64([]byte(s), scale)
			u, werr := decimalUnscaled([]byte(s), scale)
			var want int64
			if werr == nil {
				want, werr = strconv.ParseInt(u, 10, 64)
			}
			if outcomeOf(err) != outcomeOf(werr) || (err == nil && got != want) {
				t.Errorf("decimalInt64(%q, %d) = %d, %v; general path: %d, %v", s, scale, got, err, want, werr)
			}
		}
	}
}
