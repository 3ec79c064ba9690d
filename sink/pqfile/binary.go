package pqfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/parquet-go/parquet-go"
)

// PostgreSQL's binary formats, as its types' send functions write them and
// COPY's binary format carries them (FormatBinary). Every conversion here
// gives the Parquet value that the text path gives for the same value's
// text output: TestBinaryMatchesText and the snapshot package's comparison
// of whole files hold them to it.

const (
	// pgEpochDays is PostgreSQL's epoch, 2000-01-01, in days since
	// 1970-01-01; dates and timestamps count from it.
	pgEpochDays    = 10957
	pgEpochSeconds = pgEpochDays * 86400
)

// nan32 and nan64 are the NaNs the text path writes: strconv's, whatever
// the sign and payload of the NaN PostgreSQL stored, so that both paths
// write the same bits.
var (
	nan32 = func() float32 { f, _ := strconv.ParseFloat("NaN", 32); return float32(f) }()
	nan64 = func() float64 { f, _ := strconv.ParseFloat("NaN", 64); return f }()
)

// putBinary sets *dst to the Parquet value of the binary value v of a
// column of type t. String and Bytes values are copied into the batch's
// arena (see byteArray), the others never refer to v.
func (w *Writer) putBinary(dst *parquet.Value, t Type, v []byte) error {
	be := binary.BigEndian
	if n := fixedLength[t.Kind]; n != 0 && len(v) != n {
		return fmt.Errorf("binary %s value of %d bytes", t.Kind, len(v))
	}
	switch t.Kind {
	case String, Bytes:
		*dst = w.byteArray(v)
	case Bool:
		*dst = parquet.BooleanValue(v[0] != 0)
	case Int16:
		*dst = parquet.Int32Value(int32(int16(be.Uint16(v))))
	case Int32:
		*dst = parquet.Int32Value(int32(be.Uint32(v)))
	case Int64:
		*dst = parquet.Int64Value(int64(be.Uint64(v)))
	case Float32:
		f := math.Float32frombits(be.Uint32(v))
		if f != f {
			f = nan32
		}
		*dst = parquet.FloatValue(f)
	case Float64:
		f := math.Float64frombits(be.Uint64(v))
		if f != f {
			f = nan64
		}
		*dst = parquet.DoubleValue(f)
	case Decimal:
		return w.putDecimal(dst, t, v)
	case Date:
		d, err := binaryDate(v)
		*dst = parquet.Int32Value(d)
		return err
	case Timestamp, TimestampTZ:
		ts, err := binaryTimestamp(v)
		*dst = parquet.Int64Value(ts)
		return err
	default:
		return fmt.Errorf("unsupported kind %s", t.Kind)
	}
	return nil
}

// fixedLength is the length of the binary format of each fixed-size kind.
var fixedLength = [...]int{Bool: 1, Int16: 2, Int32: 4, Int64: 8, Float32: 4, Float64: 8, Date: 4, Timestamp: 8, TimestampTZ: 8}

// putDecimal sets *dst to the DECIMAL(p,s) value of t of a binary numeric:
// INT32 or INT64 up to 18 digits, else a FIXED_LEN_BYTE_ARRAY in the
// batch's arena.
func (w *Writer) putDecimal(dst *parquet.Value, t Type, v []byte) error {
	u, neg, err := numericUnscaled(v, t.Scale)
	if err != nil {
		return err
	}
	if t.Precision <= 18 {
		if u.hi != 0 || u.lo > math.MaxInt64 {
			return fmt.Errorf("numeric does not fit decimal(%d,%d)", t.Precision, t.Scale)
		}
		i := int64(u.lo)
		if neg {
			i = -i
		}
		if t.Precision > 9 {
			*dst = parquet.Int64Value(i)
			return nil
		}
		if i < math.MinInt32 || i > math.MaxInt32 {
			return fmt.Errorf("numeric does not fit decimal(%d,%d)", t.Precision, t.Scale)
		}
		*dst = parquet.Int32Value(int32(i))
		return nil
	}
	b := w.arenaBytes(decimalBytes(t.Precision))
	if err := u.putTwos(b, neg); err != nil {
		return fmt.Errorf("numeric does not fit decimal(%d,%d): %w", t.Precision, t.Scale, err)
	}
	*dst = parquet.FixedLenByteArrayValue(b)
	return nil
}

// arenaBytes returns n bytes at the end of the batch's arena.
func (w *Writer) arenaBytes(n int) []byte {
	b := w.cur
	start := len(b.arena)
	b.arena = append(b.arena, make([]byte, n)...)
	return b.arena[start:len(b.arena):len(b.arena)]
}

// binaryDate converts a binary date (days since 2000-01-01) into days
// since 1970-01-01. ±infinity is unrepresentable.
func binaryDate(v []byte) (int32, error) {
	if len(v) != 4 {
		return 0, fmt.Errorf("binary date of %d bytes", len(v))
	}
	d := int32(binary.BigEndian.Uint32(v))
	if d == math.MaxInt32 || d == math.MinInt32 {
		return 0, errUnrepresentable
	}
	days := int64(d) + pgEpochDays
	if days < math.MinInt32 || days > math.MaxInt32 {
		return 0, errUnrepresentable
	}
	return int32(days), nil
}

// binaryTimestamp converts a binary timestamp or timestamptz (microseconds
// since 2000-01-01, UTC for timestamptz) into microseconds since the Unix
// epoch. ±infinity and instants outside int64 microseconds are
// unrepresentable, with the same bounds as parseTimestamp.
func binaryTimestamp(v []byte) (int64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("binary timestamp of %d bytes", len(v))
	}
	t := int64(binary.BigEndian.Uint64(v))
	if t == math.MaxInt64 || t == math.MinInt64 {
		return 0, errUnrepresentable
	}
	secs := floorDiv(t, microsPerSecond)
	frac := t - secs*microsPerSecond
	secs += pgEpochSeconds
	if days := floorDiv(secs, 86400); days > maxDays || days < -maxDays {
		return 0, errUnrepresentable
	}
	if secs >= maxSeconds || secs < -maxSeconds {
		return 0, errUnrepresentable
	}
	return secs*microsPerSecond + frac, nil
}

// floorDiv is a / b rounded towards minus infinity, for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// parseBinaryArray splits PostgreSQL's binary array v (array_send: number
// of dimensions, flags, element type, each dimension's size and lower
// bound, then every element as a length and its bytes, -1 for NULL) into
// its elements in row-major order, nil for NULL, appended to elems. It
// reports the number of dimensions (0 for an empty array).
func parseBinaryArray(v []byte, elems [][]byte) ([][]byte, int, error) {
	be := binary.BigEndian
	if len(v) < 12 {
		return elems, 0, errors.New("binary array shorter than its header")
	}
	ndim := int(int32(be.Uint32(v)))
	const maxDims = 6 // PostgreSQL's MAXDIM
	if ndim < 0 || ndim > maxDims || len(v) < 12+8*ndim {
		return elems, 0, fmt.Errorf("binary array of %d dimensions in %d bytes", ndim, len(v))
	}
	p, n := 12, 0
	if ndim > 0 {
		n = 1
	}
	for range ndim {
		size := int(int32(be.Uint32(v[p:])))
		if size < 0 || (size > 0 && n > len(v)/size) {
			return elems, 0, fmt.Errorf("binary array dimension of %d elements", size)
		}
		n *= size
		p += 8 // size, lower bound
	}
	for range n {
		if len(v)-p < 4 {
			return elems, 0, errors.New("binary array ends inside an element")
		}
		l := int(int32(be.Uint32(v[p:])))
		p += 4
		if l == -1 {
			elems = append(elems, nil)
			continue
		}
		if l < 0 || l > len(v)-p {
			return elems, 0, fmt.Errorf("binary array element of %d bytes", l)
		}
		elems = append(elems, v[p:p+l:p+l])
		p += l
	}
	if p != len(v) {
		return elems, 0, fmt.Errorf("binary array with %d bytes after its elements", len(v)-p)
	}
	return elems, ndim, nil
}
