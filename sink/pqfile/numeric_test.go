package pqfile

import (
	"context"
	"errors"
	"math/big"
	"testing"

	"github.com/cdc2s3/cdc2s3/internal/testenv"
)

// binNumeric builds a binary numeric from its header and digits.
func binNumeric(weight int16, sign uint16, dscale int16, digits ...uint16) []byte {
	b := []byte{byte(len(digits) >> 8), byte(len(digits)), byte(uint16(weight) >> 8), byte(weight), byte(sign >> 8), byte(sign), byte(uint16(dscale) >> 8), byte(dscale)}
	for _, d := range digits {
		b = append(b, byte(d>>8), byte(d))
	}
	return b
}

func TestAppendNumericText(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		want string
	}{
		{binNumeric(0, numericPos, 0), "0"},
		{binNumeric(0, numericPos, 3), "0.000"},
		{binNumeric(0, numericPos, 0, 12), "12"},
		{binNumeric(1, numericNeg, 2, 1, 2345, 6700), "-12345.67"},
		{binNumeric(-1, numericPos, 4, 5), "0.0005"},
		{binNumeric(-2, numericPos, 10, 12), "0.0000001200"},
		{binNumeric(2, numericPos, 0, 1), "100000000"},
		{binNumeric(0, numericPos, 1, 1, 5000), "1.5"},
		{binNumeric(0, numericNaN, 0), "NaN"},
		{binNumeric(0, numericPInf, 0), "Infinity"},
		{binNumeric(0, numericNInf, 0), "-Infinity"},
	} {
		got, err := appendNumericText([]byte("x"), c.in)
		if err != nil || string(got) != "x"+c.want {
			t.Errorf("%x: %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestNumericUnscaled(t *testing.T) {
	for _, c := range []struct {
		in    []byte
		scale int
		want  string // "" for an error
	}{
		{binNumeric(0, numericPos, 0), 2, "0"},
		{binNumeric(1, numericNeg, 2, 1, 2345, 6700), 2, "-1234567"},
		{binNumeric(1, numericNeg, 2, 1, 2345, 6700), 5, "-1234567000"},
		{binNumeric(1, numericNeg, 2, 1, 2345, 6700), 1, ""}, // 7 below the scale
		{binNumeric(-1, numericPos, 4, 5), 4, "5"},
		{binNumeric(-1, numericPos, 4, 5), 3, ""},
		{binNumeric(9, numericPos, 0, 1), 0, "1" + zeros(36)},
		{binNumeric(9, numericPos, 0, 1), 2, "1" + zeros(38)},
		{binNumeric(9, numericPos, 0, 99, 9999, 9999, 9999, 9999, 9999, 9999, 9999, 9999, 9999), 0, nines(38)},
		{binNumeric(9, numericPos, 0, 9999, 9999, 9999, 9999, 9999, 9999, 9999, 9999, 9999, 9999), 0, ""}, // 40 digits
		{binNumeric(10, numericPos, 0, 1), 0, ""},                                                         // beyond 128 bits
		{binNumeric(0, numericNaN, 0), 2, ""},
	} {
		u, neg, err := numericUnscaled(c.in, c.scale)
		got := ""
		if err == nil {
			got = u128String(u, neg)
		}
		if got != c.want {
			t.Errorf("%x at scale %d: %q, %v; want %q", c.in, c.scale, got, err, c.want)
		}
	}
	if _, _, err := numericUnscaled(binNumeric(0, numericPInf, 0), 0); !errors.Is(err, errUnrepresentable) {
		t.Errorf("Infinity: %v", err)
	}
}

func zeros(n int) string { return repeat('0', n) }
func nines(n int) string { return repeat('9', n) }

func repeat(c byte, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return string(b)
}

// u128String prints a 128-bit magnitude with its sign.
func u128String(u u128, neg bool) string {
	v := new(big.Int).Lsh(new(big.Int).SetUint64(u.hi), 64)
	v.Or(v, new(big.Int).SetUint64(u.lo))
	if neg {
		v.Neg(v)
	}
	return v.String()
}

func TestPutTwos(t *testing.T) {
	for _, c := range []struct {
		v   string
		n   int
		ok  bool
		hex string
	}{
		{"127", 1, true, "7f"}, {"128", 1, false, ""}, {"-128", 1, true, "80"}, {"-129", 1, false, ""},
		{"-1", 3, true, "ffffff"}, {"0", 2, true, "0000"},
		{"-" + nines(38), 16, true, ""}, {nines(38), 16, true, ""},
	} {
		want, _ := new(big.Int).SetString(c.v, 10)
		mag := new(big.Int).Abs(want)
		lo := new(big.Int).And(mag, new(big.Int).SetUint64(^uint64(0))).Uint64()
		hi := new(big.Int).Rsh(mag, 64).Uint64()
		b := make([]byte, c.n)
		err := u128{hi, lo}.putTwos(b, want.Sign() < 0)
		if (err == nil) != c.ok {
			t.Errorf("%s in %d bytes: %v", c.v, c.n, err)
			continue
		}
		if c.ok {
			if got := decodeTwos(b); got.Cmp(want) != 0 {
				t.Errorf("%s in %d bytes: %x (%s)", c.v, c.n, b, got)
			}
		}
	}
}

func decodeTwos(b []byte) *big.Int {
	v := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return v
}

// TestBinaryMatchesTextPostgres converts many values PostgreSQL computes,
// numerics of every shape, dates and timestamps over their whole range,
// from their binary format and from their text, and checks that both give
// the same result.
func TestBinaryMatchesTextPostgres(t *testing.T) {
	ctx := context.Background()
	pg := testenv.NewPostgres(t)
	conn, err := pg.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SELECT setseed(0.16)"); err != nil {
		t.Fatal(err)
	}
	pairs := func(sql string) [][2][]byte {
		res := conn.PgConn().ExecParams(ctx, sql, nil, nil, nil, []int16{0, 1}).Read()
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		out := make([][2][]byte, len(res.Rows))
		for i, r := range res.Rows {
			out[i] = [2][]byte{r[0], r[1]}
		}
		return out
	}
	checkNumerics(t, pairs(`SELECT x::text, x FROM (
		SELECT round(((random() - 0.5) * 10 ^ (g % 45))::numeric, g % 23) AS x FROM generate_series(1, 20000) g
		UNION ALL SELECT unnest('{0, 0.000, 1, -1, 10000, 99999999, 0.0001, 1e-30, 1e100, -1e38, 123456789012345678901234567.89, NaN, Infinity, -Infinity}'::numeric[])
	) s`))
	checkDates(t, pairs(`SELECT x::text, x FROM (
		SELECT date '2000-01-01' + (-2451544 + floor(random() * 2147000000))::int AS x FROM generate_series(1, 5000) g
		UNION ALL SELECT unnest('{infinity, -infinity, 4713-01-01 BC, 5874897-12-31, 1970-01-01, 0001-01-01 BC}'::date[])
	) s WHERE x IS NOT NULL`))
	for _, typ := range []string{"timestamp", "timestamptz"} {
		checkTimestamps(t, typ == "timestamptz", pairs(`SELECT x::text, x FROM (
			SELECT `+typ+` '4713-01-01 00:00:00 BC' + random() * interval '298900 years' AS x FROM generate_series(1, 5000) g
			UNION ALL SELECT `+typ+` '1970-01-01 00:00:00+00' + (random() - 0.5) * interval '1 year' FROM generate_series(1, 2000) g
			UNION ALL SELECT unnest('{infinity, -infinity, 4713-11-24 00:00:00 BC, 294276-12-31 23:59:59.999999, 294247-01-10 04:00:54.775807, 294247-01-10 04:00:54.775808, 1969-12-31 23:59:59.999999, 0001-01-01 00:00:00 BC}'::`+typ+`[])
		) s`))
	}
}

func checkNumerics(t *testing.T, rows [][2][]byte) {
	t.Helper()
	for _, r := range rows {
		text, bin := r[0], r[1]
		got, err := appendNumericText(nil, bin)
		if err != nil || string(got) != string(text) {
			t.Errorf("numeric %s: text from binary %q, %v", text, got, err)
		}
		for _, scale := range []int{0, 2, 6, 10, 20} {
			want, werr := decimalUnscaled(text, scale)
			u, neg, err := numericUnscaled(bin, scale)
			switch {
			case errors.Is(werr, errUnrepresentable) || errors.Is(err, errUnrepresentable):
				if !errors.Is(werr, errUnrepresentable) || !errors.Is(err, errUnrepresentable) {
					t.Errorf("numeric %s at scale %d: text %v, binary %v", text, scale, werr, err)
				}
			case werr != nil:
				if err == nil {
					t.Errorf("numeric %s at scale %d: text %v, binary %s", text, scale, werr, u128String(u, neg))
				}
			case err != nil:
				// Only beyond 128 bits may the binary path refuse what
				// the text path takes.
				if w, _ := new(big.Int).SetString(want, 10); w.BitLen() <= 127 {
					t.Errorf("numeric %s at scale %d: binary %v, text %s", text, scale, err, want)
				}
			default:
				if w, _ := new(big.Int).SetString(want, 10); u128String(u, neg) != w.String() {
					t.Errorf("numeric %s at scale %d: binary %s, text %s", text, scale, u128String(u, neg), want)
				}
			}
		}
	}
}

func checkDates(t *testing.T, rows [][2][]byte) {
	t.Helper()
	for _, r := range rows {
		want, werr := parseDate(r[0])
		got, err := binaryDate(r[1])
		if got != want || !sameOutcome(err, werr) {
			t.Errorf("date %s: binary %d, %v; text %d, %v", r[0], got, err, want, werr)
		}
	}
}

func checkTimestamps(t *testing.T, tz bool, rows [][2][]byte) {
	t.Helper()
	for _, r := range rows {
		want, werr := parseTimestamp(r[0], tz)
		got, err := binaryTimestamp(r[1])
		if got != want || !sameOutcome(err, werr) {
			t.Errorf("timestamp %s: binary %d, %v; text %d, %v", r[0], got, err, want, werr)
		}
	}
}

// sameOutcome reports whether two conversions both succeeded, or both
// found the value unrepresentable.
func sameOutcome(a, b error) bool {
	return (a == nil && b == nil) || (errors.Is(a, errUnrepresentable) && errors.Is(b, errUnrepresentable))
}
