package pqfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// PostgreSQL's binary numeric (numeric_send): the number of base-10000
// digits, the weight of the first (its power of 10000), the sign, the
// display scale, then the digits, each an int16, most significant first.
// Trailing and leading zero digits are not stored.
const (
	numericPos  = 0x0000
	numericNeg  = 0x4000
	numericNaN  = 0xC000
	numericPInf = 0xD000
	numericNInf = 0xF000
)

// numeric is a binary numeric's header with its digits left in place.
type numeric struct {
	weight, dscale int
	sign           uint16
	digits         []byte // ndigits big-endian int16s
}

// parseNumeric checks v's header against its length.
func parseNumeric(v []byte) (numeric, error) {
	be := binary.BigEndian
	if len(v) < 8 {
		return numeric{}, fmt.Errorf("binary numeric of %d bytes", len(v))
	}
	n := numeric{
		weight: int(int16(be.Uint16(v[2:]))),
		sign:   be.Uint16(v[4:]),
		dscale: int(int16(be.Uint16(v[6:]))),
	}
	ndigits := int(int16(be.Uint16(v)))
	if ndigits < 0 || len(v) != 8+2*ndigits || n.dscale < 0 {
		return numeric{}, fmt.Errorf("binary numeric of %d digits in %d bytes", ndigits, len(v))
	}
	switch n.sign {
	case numericPos, numericNeg, numericNaN, numericPInf, numericNInf:
	default:
		return numeric{}, fmt.Errorf("binary numeric with sign %#x", n.sign)
	}
	n.digits = v[8:]
	return n, nil
}

// digit returns the i-th base-10000 digit, 0 outside the stored ones.
func (n numeric) digit(i int) int {
	if i < 0 || 2*i >= len(n.digits) {
		return 0
	}
	return int(binary.BigEndian.Uint16(n.digits[2*i:]))
}

// pow10 holds the powers of ten that fit a uint64.
var pow10 = func() (p [20]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// errTooManyDecimals reports a numeric with digits below a column's scale,
// which PostgreSQL's typmod never lets through.
var errTooManyDecimals = errors.New("numeric has more decimals than its scale")

// numericUnscaled returns the absolute value of a binary numeric at the
// given scale as an integer (12.5 at scale 2 is 1250) and its sign. NaN
// and ±Infinity are unrepresentable; digits below the scale, or a value
// beyond 128 bits, are errors.
func numericUnscaled(v []byte, scale int) (u u128, neg bool, err error) {
	n, err := parseNumeric(v)
	if err != nil {
		return u128{}, false, err
	}
	switch n.sign {
	case numericNaN, numericPInf, numericNInf:
		return u128{}, false, errUnrepresentable
	}
	// u is built digit by digit; exp is the power of ten of its unit. A
	// digit partly below the scale keeps its part above it (the rest must
	// be zeros), so no digit needs more than the scale's room.
	exp, ok := 0, true
	for i := range len(n.digits) / 2 {
		d := uint64(n.digit(i))
		if d > 9999 {
			return u128{}, false, fmt.Errorf("binary numeric digit %d", d)
		}
		e := 4*(n.weight-i) + scale
		if e < 0 {
			if e <= -4 || d%pow10[-e] != 0 {
				if d != 0 {
					return u128{}, false, errTooManyDecimals
				}
				continue
			}
			d, e = d/pow10[-e], 0
		}
		if i > 0 {
			u, ok = u.mulAdd(pow10[exp-e], d)
		} else {
			u = u128{lo: d}
		}
		exp = e
		if !ok {
			return u128{}, false, errors.New("numeric beyond 128 bits")
		}
	}
	for ; exp > 0 && ok; exp -= min(exp, 19) {
		u, ok = u.mulAdd(pow10[min(exp, 19)], 0)
	}
	if !ok {
		return u128{}, false, errors.New("numeric beyond 128 bits")
	}
	return u, n.sign == numericNeg && !u.zero(), nil
}

// u128 is an unsigned 128-bit integer.
type u128 struct{ hi, lo uint64 }

func (a u128) zero() bool { return a.hi == 0 && a.lo == 0 }

// mulAdd returns a*m + add, and false when it overflows.
func (a u128) mulAdd(m, add uint64) (u128, bool) {
	hiLo, lo := bits.Mul64(a.lo, m)
	hiHi, hi := bits.Mul64(a.hi, m)
	hi, c1 := bits.Add64(hi, hiLo, 0)
	lo, c2 := bits.Add64(lo, add, 0)
	hi, c3 := bits.Add64(hi, 0, c2)
	return u128{hi, lo}, hiHi == 0 && c1 == 0 && c3 == 0
}

// putTwos writes -a (neg) or a into b as a big-endian two's complement of
// len(b) bytes (at most 16), or reports that it does not fit.
func (a u128) putTwos(b []byte, neg bool) error {
	n := len(b)
	bitLen := 128 - bits.LeadingZeros64(a.hi)
	if a.hi == 0 {
		bitLen = 64 - bits.LeadingZeros64(a.lo)
	}
	limit := 8*n - 1 // bits of the largest positive value
	if neg {
		// -2^limit fits: a-1 must fit limit bits.
		m, borrow := bits.Sub64(a.lo, 1, 0)
		h, _ := bits.Sub64(a.hi, 0, borrow)
		bitLen = 128 - bits.LeadingZeros64(h)
		if h == 0 {
			bitLen = 64 - bits.LeadingZeros64(m)
		}
		// Two's complement: ^a + 1.
		lo, c := bits.Add64(^a.lo, 1, 0)
		a = u128{^a.hi + c, lo}
	}
	if n > 16 || bitLen > limit {
		return fmt.Errorf("%d bits in %d bytes", bitLen, n)
	}
	var full [16]byte
	binary.BigEndian.PutUint64(full[:8], a.hi)
	binary.BigEndian.PutUint64(full[8:], a.lo)
	copy(b, full[16-n:])
	return nil
}

// appendNumericText appends the text PostgreSQL prints for the binary
// numeric v (numeric_out): NaN, Infinity, -Infinity, or the digits with
// exactly dscale decimals.
func appendNumericText(dst, v []byte) ([]byte, error) {
	n, err := parseNumeric(v)
	if err != nil {
		return dst, err
	}
	switch n.sign {
	case numericNaN:
		return append(dst, "NaN"...), nil
	case numericPInf:
		return append(dst, "Infinity"...), nil
	case numericNInf:
		return append(dst, "-Infinity"...), nil
	case numericNeg:
		dst = append(dst, '-')
	}
	d := 0
	if n.weight < 0 {
		d = n.weight + 1
		dst = append(dst, '0')
	} else {
		for ; d <= n.weight; d++ {
			dst = appendDigit(dst, n.digit(d), d == 0)
		}
	}
	if n.dscale > 0 {
		dst = append(dst, '.')
		end := len(dst) + n.dscale
		for i := 0; i < n.dscale; i += 4 {
			dst = appendDigit(dst, n.digit(d), false)
			d++
		}
		dst = dst[:end]
	}
	return dst, nil
}

// appendDigit appends a base-10000 digit as four decimal digits, or
// without its leading zeros when first (but at least one digit).
func appendDigit(dst []byte, dig int, first bool) []byte {
	q := [4]byte{byte('0' + dig/1000), byte('0' + dig/100%10), byte('0' + dig/10%10), byte('0' + dig%10)}
	i := 0
	if first {
		for i < 3 && q[i] == '0' {
			i++
		}
	}
	return append(dst, q[i:]...)
}
