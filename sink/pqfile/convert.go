package pqfile

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strconv"
)

// errUnrepresentable marks a well-formed PostgreSQL value that the column's
// Parquet type cannot hold (NaN in a DECIMAL, ±infinity or out-of-range dates
// and timestamps). The writer stores NULL for it and counts it; it never
// writes a wrong number.
var errUnrepresentable = errors.New("value not representable")

// parseBool parses PostgreSQL's boolean output ("t" or "f").
func parseBool(s []byte) (bool, error) {
	switch string(s) {
	case "t", "true":
		return true, nil
	case "f", "false":
		return false, nil
	}
	return false, fmt.Errorf("invalid boolean %q", s)
}

// decimalUnscaled turns PostgreSQL's numeric text into its unscaled digits
// (sign included) at the given scale: "-12.5" at scale 2 gives "-1250".
func decimalUnscaled(s []byte, scale int) (string, error) {
	switch string(s) {
	case "NaN", "Infinity", "-Infinity":
		return "", errUnrepresentable
	}
	var b []byte
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		if s[i] == '-' {
			b = append(b, '-')
		}
		i++
	}
	intPart := s[i:]
	var frac []byte
	if dot := bytes.IndexByte(intPart, '.'); dot >= 0 {
		frac = intPart[dot+1:]
		intPart = intPart[:dot]
	}
	if len(frac) > scale {
		// Only zeros may be dropped; anything else would round.
		for _, c := range frac[scale:] {
			if c != '0' {
				return "", fmt.Errorf("numeric %q has more than %d decimals", s, scale)
			}
		}
		frac = frac[:scale]
	}
	for _, part := range [][]byte{intPart, frac} {
		for _, c := range part {
			if c < '0' || c > '9' {
				return "", fmt.Errorf("invalid numeric %q", s)
			}
		}
	}
	if len(intPart) == 0 && len(frac) == 0 {
		return "", fmt.Errorf("invalid numeric %q", s)
	}
	b = append(b, intPart...)
	b = append(b, frac...)
	for n := len(frac); n < scale; n++ {
		b = append(b, '0')
	}
	if len(b) == 0 || (len(b) == 1 && b[0] == '-') {
		b = append(b, '0')
	}
	return string(b), nil
}

// parseInt parses a decimal integer that must fit bitSize bits. Up to 18
// digits it needs no allocation; longer input goes through strconv.
func parseInt(s []byte, bitSize int) (int64, error) {
	i, neg := 0, false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		i = 1
	}
	if n := len(s) - i; n == 0 || n > 18 {
		return strconv.ParseInt(string(s), 10, bitSize)
	}
	var v int64
	for _, c := range s[i:] {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("invalid integer %q", s)
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	if bitSize < 64 && (v < -1<<(bitSize-1) || v >= 1<<(bitSize-1)) {
		return 0, fmt.Errorf("integer %q out of range for %d bits", s, bitSize)
	}
	return v, nil
}

// decimalInt64 returns the unscaled value of PostgreSQL's numeric text at
// the given scale when its digits fit 18 (precision up to 18), as
// decimalUnscaled would, without allocating.
func decimalInt64(s []byte, scale int) (int64, error) {
	i, neg := 0, false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		i = 1
	}
	const limit = (1<<63 - 1) / 10
	var v int64
	digits, frac, dot := 0, -1, false
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' && !dot:
			dot, frac = true, 0
		case c >= '0' && c <= '9':
			if dot {
				if frac >= scale {
					if c != '0' {
						return 0, fmt.Errorf("numeric %q has more than %d decimals", s, scale)
					}
					continue
				}
				frac++
			}
			if d := int64(c - '0'); v > (1<<63-1-d)/10 {
				return 0, fmt.Errorf("numeric %q does not fit 64 bits", s)
			} else {
				v = v*10 + d
			}
			digits++
		default:
			if _, err := decimalUnscaled(s, scale); err != nil {
				return 0, err // NaN, ±Infinity (unrepresentable) or invalid
			}
			return 0, fmt.Errorf("invalid numeric %q", s)
		}
	}
	if digits == 0 {
		return 0, fmt.Errorf("invalid numeric %q", s)
	}
	for frac = max(frac, 0); frac < scale; frac++ {
		if v > limit {
			return 0, fmt.Errorf("numeric %q does not fit 64 bits at scale %d", s, scale)
		}
		v *= 10
	}
	if neg {
		v = -v
	}
	return v, nil
}

// decimalFixed encodes an unscaled decimal as a big-endian two's complement
// of n bytes.
func decimalFixed(unscaled string, n int) ([]byte, error) {
	v, ok := new(big.Int).SetString(unscaled, 10)
	if !ok {
		return nil, fmt.Errorf("invalid numeric digits %q", unscaled)
	}
	out := make([]byte, n)
	if v.Sign() >= 0 {
		if v.BitLen() > 8*n-1 {
			return nil, fmt.Errorf("numeric %s does not fit %d bytes", unscaled, n)
		}
		v.FillBytes(out)
		return out, nil
	}
	// Two's complement of a negative value: 2^(8n) + v.
	m := new(big.Int).Lsh(big.NewInt(1), uint(8*n))
	m.Add(m, v)
	if m.Sign() <= 0 || m.BitLen() != 8*n {
		return nil, fmt.Errorf("numeric %s does not fit %d bytes", unscaled, n)
	}
	m.FillBytes(out)
	return out, nil
}

// parseBytea decodes PostgreSQL's hex bytea output ("\x0a1b").
func parseBytea(s []byte) ([]byte, error) {
	if len(s) < 2 || s[0] != '\\' || s[1] != 'x' {
		return nil, fmt.Errorf("bytea not in hex format (set bytea_output = hex): %.20q", s)
	}
	out := make([]byte, hex.DecodedLen(len(s)-2))
	if _, err := hex.Decode(out, s[2:]); err != nil {
		return nil, fmt.Errorf("invalid bytea: %w", err)
	}
	return out, nil
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian
// date with astronomical year numbering (1 BC is year 0).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// parseDate parses PostgreSQL's ISO date output: "2024-02-29",
// "10000-01-01", "0044-03-15 BC". "infinity" and "-infinity" are
// unrepresentable. It returns days since the Unix epoch.
func parseDate(s []byte) (int32, error) {
	body := s
	bc := bytes.HasSuffix(body, []byte(" BC"))
	if bc {
		body = body[:len(body)-3]
	}
	y, m, d, rest, err := splitDate(body)
	if err != nil {
		return 0, err
	}
	if len(rest) != 0 {
		return 0, fmt.Errorf("invalid date %q", s)
	}
	if bc {
		y = 1 - y
	}
	days := daysFromCivil(y, m, d)
	if days < -(1<<31) || days > 1<<31-1 {
		return 0, errUnrepresentable
	}
	return int32(days), nil
}

func splitDate(s []byte) (y, m, d int64, rest []byte, err error) {
	switch string(s) {
	case "infinity", "-infinity":
		return 0, 0, 0, nil, errUnrepresentable
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i < 4 || i+6 > len(s) || s[i] != '-' || s[i+3] != '-' {
		return 0, 0, 0, nil, fmt.Errorf("invalid date %q (set DateStyle = ISO)", s)
	}
	y, err = parseInt(s[:i], 64)
	if err != nil {
		return 0, 0, 0, nil, fmt.Errorf("invalid date %q", s)
	}
	m = int64(s[i+1]-'0')*10 + int64(s[i+2]-'0')
	d = int64(s[i+4]-'0')*10 + int64(s[i+5]-'0')
	if m < 1 || m > 12 || d < 1 || d > 31 {
		return 0, 0, 0, nil, fmt.Errorf("invalid date %q", s)
	}
	return y, m, d, s[i+6:], nil
}

const (
	microsPerSecond = 1_000_000
	microsPerDay    = 86_400 * microsPerSecond
	// maxDays keeps days*microsPerDay plus a day's worth of micros inside int64.
	maxDays = (1<<63-1)/microsPerDay - 1
	// maxSeconds is the first whole second whose micros may not fit int64.
	maxSeconds = (1<<63 - 1) / microsPerSecond
)

// parseTimestamp parses PostgreSQL's ISO timestamp output, with a UTC
// offset when withZone: "2024-01-01 12:00:00.5+00", "1900-01-01 00:00:00",
// "0099-01-01 00:00:00+00 BC". It returns microseconds since the Unix epoch.
// ±infinity and instants outside int64 microseconds are unrepresentable.
func parseTimestamp(s []byte, withZone bool) (int64, error) {
	body := s
	bc := bytes.HasSuffix(body, []byte(" BC"))
	if bc {
		body = body[:len(body)-3]
	}
	y, mo, d, rest, err := splitDate(body)
	if err != nil {
		return 0, err
	}
	if bc {
		y = 1 - y
	}
	days := daysFromCivil(y, mo, d)
	if len(rest) < 9 || rest[0] != ' ' || rest[3] != ':' || rest[6] != ':' {
		return 0, fmt.Errorf("invalid timestamp %q", s)
	}
	h, err1 := atoi2(rest[1:3])
	mi, err2 := atoi2(rest[4:6])
	sec, err3 := atoi2(rest[7:9])
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, fmt.Errorf("invalid timestamp %q", s)
	}
	frac, rest := parseMicros(rest[9:])
	var offset int64 // seconds east of UTC
	if withZone {
		if offset, err = parseOffset(rest); err != nil {
			return 0, fmt.Errorf("invalid timestamptz %q: %w", s, err)
		}
		rest = nil
	}
	if len(rest) != 0 {
		return 0, fmt.Errorf("invalid timestamp %q", s)
	}
	if days > maxDays || days < -maxDays {
		return 0, errUnrepresentable
	}
	// The offset can still carry the instant past the end of int64
	// micros (or, with the fraction, into its last second).
	secs := days*86400 + h*3600 + mi*60 + sec - offset
	if secs >= maxSeconds || secs < -maxSeconds {
		return 0, errUnrepresentable
	}
	return secs*microsPerSecond + frac, nil
}

// parseMicros reads an optional fraction of a second (".123456", at most
// six digits kept) and returns it in microseconds with the rest of b.
func parseMicros(b []byte) (int64, []byte) {
	if len(b) == 0 || b[0] != '.' {
		return 0, b
	}
	b = b[1:]
	var frac int64
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		if n < 6 {
			frac = frac*10 + int64(b[n]-'0')
		}
		n++
	}
	for k := n; k < 6; k++ {
		frac *= 10
	}
	return frac, b[n:]
}

// parseOffset reads a whole UTC offset, +hh, +hh:mm or +hh:mm:ss (or -),
// and returns it in seconds east of UTC.
func parseOffset(b []byte) (int64, error) {
	if len(b) < 3 || (b[0] != '+' && b[0] != '-') {
		return 0, errors.New("no UTC offset")
	}
	sign := int64(1)
	if b[0] == '-' {
		sign = -1
	}
	var offset int64
	off := b[1:]
	for mult := int64(3600); ; mult /= 60 {
		if len(off) < 2 || mult == 0 {
			return 0, errors.New("bad UTC offset")
		}
		v, err := atoi2(off[:2])
		if err != nil {
			return 0, errors.New("bad UTC offset")
		}
		offset += v * mult
		off = off[2:]
		if len(off) == 0 {
			return offset * sign, nil
		}
		if off[0] != ':' {
			return 0, errors.New("bad UTC offset")
		}
		off = off[1:]
	}
}

func atoi2(b []byte) (int64, error) {
	if len(b) != 2 || b[0] < '0' || b[0] > '9' || b[1] < '0' || b[1] > '9' {
		return 0, fmt.Errorf("invalid number %q", b)
	}
	return int64(b[0]-'0')*10 + int64(b[1]-'0'), nil
}

// parseArray splits PostgreSQL's array output ("{1,NULL,\"a b\"}",
// "{{1,2},{3,4}}", "[0:1]={7,8}") into its elements in row-major order, nil
// for NULL, and reports the number of dimensions. Only ',' delimited arrays
// are handled; source.Resolver describes the others (box[]) as text.
func parseArray(s []byte, elems [][]byte) ([][]byte, int, error) {
	if len(s) > 0 && s[0] == '[' {
		eq := bytes.IndexByte(s, '=')
		if eq < 0 {
			return nil, 0, fmt.Errorf("invalid array %.40q", s)
		}
		s = s[eq+1:]
	}
	if len(s) < 2 || s[0] != '{' {
		return nil, 0, fmt.Errorf("invalid array %.40q", s)
	}
	depth, maxDepth := 0, 0
	i := 0
	for i < len(s) {
		switch c := s[i]; c {
		case '{':
			depth++
			if depth > maxDepth {
				maxDepth = depth
			}
			i++
		case '}':
			depth--
			i++
			if depth == 0 && i != len(s) {
				return nil, 0, fmt.Errorf("invalid array %.40q", s)
			}
		case ',':
			i++
		case '"':
			var b []byte
			i++
			for i < len(s) && s[i] != '"' {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b = append(b, s[i])
				i++
			}
			if i >= len(s) {
				return nil, 0, fmt.Errorf("unterminated quote in array %.40q", s)
			}
			i++
			if b == nil {
				b = []byte{}
			}
			elems = append(elems, b)
		default:
			j := i
			for j < len(s) && s[j] != ',' && s[j] != '}' {
				j++
			}
			v := s[i:j]
			if len(v) == 4 && bytes.EqualFold(v, []byte("NULL")) {
				elems = append(elems, nil)
			} else {
				elems = append(elems, v)
			}
			i = j
		}
	}
	if depth != 0 {
		return nil, 0, fmt.Errorf("unbalanced array %.40q", s)
	}
	return elems, maxDepth, nil
}
