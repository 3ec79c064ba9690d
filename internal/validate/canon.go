package validate

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/cdc2s3/cdc2s3/internal/pgtext"
)

// Kind is how a column's values are compared: the PostgreSQL types of the
// contract's type table (docs/output-format.md section 3) by the Parquet
// type they are written as. Every other type is compared as its text.
type Kind uint8

// The kinds.
const (
	KindText        Kind = iota // PostgreSQL's text output, compared as written
	KindBool                    // boolean
	KindInt                     // smallint, integer, bigint
	KindFloat32                 // real
	KindFloat64                 // double precision
	KindDecimal                 // numeric(p,s) written as DECIMAL: NaN and ±Infinity are NULL
	KindBytes                   // bytea
	KindDate                    // date: ±infinity is NULL
	KindTimestamp               // timestamp: ±infinity and instants beyond int64 microseconds are NULL
	KindTimestampTZ             // timestamptz: the same
)

// ColumnKind is the kind of a column, or of its elements when List is set
// (an array written as a LIST).
type ColumnKind struct {
	Kind Kind
	List bool
}

// Canonical values. A value is encoded as a tag byte, then (unless NULL)
// the uvarint length of its payload and the payload:
//
//	tagNull    NULL
//	tagBool    "t" or "f"
//	tagNumber  an integer or decimal as plain decimal text without leading
//	           zeros, trailing fractional zeros or a negative zero ("12.5")
//	tagFloat   the shortest text that reads back as the same float32 or
//	           float64, "NaN", "Infinity" or "-Infinity"
//	tagString  the bytes of the text
//	tagBytes   the raw bytes
//	tagDate    "YYYY-MM-DD", astronomical year (0 is 1 BC)
//	tagTime    "YYYY-MM-DDTHH:MM:SS.ffffff" (timestamp)
//	tagTimeTZ  the same in UTC (timestamptz)
//	tagList    the encodings of the elements, flattened in row-major order
//
// Both sides of a comparison reach it independently: the source from
// PostgreSQL's text output, the destination from the values arrow-go reads
// out of the Parquet files. Integers and decimals share one form, so a value
// compares equal across a column type change from integer to numeric.
const (
	tagNull   byte = 0
	tagBool   byte = 'b'
	tagNumber byte = 'n'
	tagFloat  byte = 'f'
	tagString byte = 's'
	tagBytes  byte = 'x'
	tagDate   byte = 'd'
	tagTime   byte = 't'
	tagTimeTZ byte = 'z'
	tagList   byte = 'l'
)

// appendValue appends one encoded non-NULL value.
func appendValue(buf []byte, tag byte, payload []byte) []byte {
	buf = append(buf, tag)
	buf = binary.AppendUvarint(buf, uint64(len(payload)))
	return append(buf, payload...)
}

// appendNull appends a NULL.
func appendNull(buf []byte) []byte { return append(buf, tagNull) }

// nextValue splits the first encoded value off b.
func nextValue(b []byte) (tag byte, payload, rest []byte, err error) {
	if len(b) == 0 {
		return 0, nil, nil, errors.New("truncated value")
	}
	tag = b[0]
	if tag == tagNull {
		return tag, nil, b[1:], nil
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || uint64(len(b)-1-k) < n {
		return 0, nil, nil, errors.New("truncated value")
	}
	start := 1 + k
	return tag, b[start : start+int(n)], b[start+int(n):], nil
}

// splitValues splits an encoding of n values into its values.
func splitValues(b []byte, n int) ([][]byte, error) {
	out := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		_, _, rest, err := nextValue(b)
		if err != nil {
			return nil, err
		}
		out = append(out, b[:len(b)-len(rest)])
		b = rest
	}
	if len(b) != 0 {
		return nil, errors.New("trailing bytes after the values")
	}
	return out, nil
}

// maxShown bounds a value's text in messages.
const maxShown = 60

// formatValue renders one encoded value for people: NULL, numbers and
// dates as they are, text quoted, bytes as \x hex, lists in brackets; long
// values are cut with "…".
func formatValue(v []byte) string {
	tag, p, _, err := nextValue(v)
	if err != nil {
		return "?"
	}
	var s string
	switch tag {
	case tagNull:
		return "NULL"
	case tagBool:
		s = map[string]string{"t": "true", "f": "false"}[string(p)]
	case tagString:
		s = strconv.Quote(cut(string(p)))
	case tagBytes:
		s = `\x` + hex.EncodeToString(p)
	case tagTimeTZ:
		s = string(p) + "Z"
	case tagList:
		var parts []string
		for len(p) > 0 && len(parts) < 10 {
			_, _, rest, err := nextValue(p)
			if err != nil {
				break
			}
			parts = append(parts, formatValue(p[:len(p)-len(rest)]))
			p = rest
		}
		if len(p) > 0 {
			parts = append(parts, "…")
		}
		s = "[" + strings.Join(parts, ", ") + "]"
	default:
		s = string(p)
	}
	return cut(s)
}

// cut shortens s to maxShown runes.
func cut(s string) string {
	if r := []rune(s); len(r) > maxShown {
		return string(r[:maxShown-1]) + "…"
	}
	return s
}

// appendPG appends the canonical value of PostgreSQL's text output text
// (nil for NULL) of a column of kind k. The text is what a session with
// cdc2s3's settings prints (TimeZone UTC, DateStyle ISO, bytea_output hex,
// extra_float_digits 3), as the simple query protocol returns it.
func appendPG(buf []byte, k ColumnKind, text []byte) ([]byte, error) {
	if text == nil {
		return appendNull(buf), nil
	}
	if !k.List {
		return appendPGScalar(buf, k.Kind, text)
	}
	elems, err := pgtext.ParseArray(string(text))
	if err != nil {
		return nil, err
	}
	var inner []byte
	for _, e := range elems {
		if e == nil {
			inner = appendNull(inner)
			continue
		}
		if inner, err = appendPGScalar(inner, k.Kind, e); err != nil {
			return nil, err
		}
	}
	return appendValue(buf, tagList, inner), nil
}

// appendPGScalar appends the canonical value of one non-NULL scalar.
func appendPGScalar(buf []byte, k Kind, s []byte) ([]byte, error) {
	switch k {
	case KindBool:
		switch string(s) {
		case "t", "true":
			return appendValue(buf, tagBool, []byte("t")), nil
		case "f", "false":
			return appendValue(buf, tagBool, []byte("f")), nil
		}
		return nil, fmt.Errorf("invalid boolean %q", s)
	case KindInt:
		n, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid integer %q", s)
		}
		return appendValue(buf, tagNumber, strconv.AppendInt(nil, n, 10)), nil
	case KindFloat32, KindFloat64:
		bits := 64
		if k == KindFloat32 {
			bits = 32
		}
		f, err := strconv.ParseFloat(string(s), bits)
		if err != nil {
			return nil, fmt.Errorf("invalid float %q", s)
		}
		return appendValue(buf, tagFloat, []byte(floatText(f, bits))), nil
	case KindDecimal:
		switch string(s) {
		case "NaN", "Infinity", "-Infinity":
			return appendNull(buf), nil // a DECIMAL cannot hold them: written as NULL
		}
		d, err := pgtext.NormalDecimal(string(s))
		if err != nil {
			return nil, err
		}
		return appendValue(buf, tagNumber, []byte(d)), nil
	case KindBytes:
		h, ok := bytes.CutPrefix(s, []byte(`\x`))
		if !ok {
			return nil, fmt.Errorf("bytea not in hex output: %.20q", s)
		}
		raw := make([]byte, hex.DecodedLen(len(h)))
		if _, err := hex.Decode(raw, h); err != nil {
			return nil, fmt.Errorf("invalid bytea: %w", err)
		}
		return appendValue(buf, tagBytes, raw), nil
	case KindDate:
		return appendPGDate(buf, string(s))
	case KindTimestamp, KindTimestampTZ:
		return appendPGTimestamp(buf, string(s), k == KindTimestampTZ)
	}
	return appendValue(buf, tagString, s), nil
}

// floatText is the canonical text of a float of the given bit size.
func floatText(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(f, 'g', -1, bits)
}

// decimalText writes the decimal unscaled × 10^-scale as pgtext.NormalDecimal
// does.
func decimalText(unscaled *big.Int, scale int) string {
	digits := new(big.Int).Abs(unscaled).String()
	if scale > 0 {
		if len(digits) <= scale {
			digits = strings.Repeat("0", scale-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	} else if scale < 0 && digits != "0" {
		digits += strings.Repeat("0", -scale)
	}
	s := digits
	if unscaled.Sign() < 0 {
		s = "-" + s
	}
	d, _ := pgtext.NormalDecimal(s) // well formed by construction
	return d
}
