package oracle

// Canonical text from PostgreSQL's text output, read with TimeZone = UTC,
// DateStyle = ISO, IntervalStyle = iso_8601, extra_float_digits = 3 and
// bytea_output = hex. js/merge.mjs produces the same forms from DuckDB's
// values; the shared pieces (shortest, civil dates: internal/pgtext, which
// internal/validate reads with too) exist once in each language and are
// kept in step by the tests.

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/cdc2s3/cdc2s3/internal/pgtext"
)

// canonValue renders a column value given as PostgreSQL's text output; nil
// is NULL.
func canonValue(c Column, text *string) (string, error) {
	if text == nil {
		return "null", nil
	}
	if !c.Array {
		return canonScalar(c.Kind, *text)
	}
	elems, err := pgtext.ParseArray(*text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, e := range elems {
		if i > 0 {
			b.WriteByte(',')
		}
		if e == nil {
			b.WriteString("null")
			continue
		}
		s, err := canonScalar(c.Kind, string(e))
		if err != nil {
			return "", err
		}
		b.WriteString(s)
	}
	b.WriteByte(']')
	return b.String(), nil
}

// canonScalar renders one non-NULL, non-array value from its text output.
func canonScalar(k Kind, s string) (string, error) {
	switch k {
	case KindBool:
		switch s {
		case "t", "true":
			return "true", nil
		case "f", "false":
			return "false", nil
		}
		return "", fmt.Errorf("bad boolean %q", s)
	case KindInt:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return "", err
		}
		return strconv.FormatInt(n, 10), nil
	case KindFloat4:
		return canonFloat(s, 32)
	case KindFloat8:
		return canonFloat(s, 64)
	case KindDecimal:
		// A DECIMAL column cannot hold NaN or ±Infinity: the writer stores NULL.
		switch s {
		case "NaN", "Infinity", "-Infinity":
			return "null", nil
		}
		return pgtext.NormalDecimal(s)
	case KindNumeric, KindText:
		return quote(s), nil
	case KindBytea:
		hex, ok := strings.CutPrefix(s, `\x`)
		if !ok {
			return "", fmt.Errorf("bytea %.20q is not in hex output (bytea_output = hex)", s)
		}
		return quote(`\x` + strings.ToLower(hex)), nil
	case KindDate:
		return canonDate(s)
	case KindTimestamp:
		return canonTimestamp(s, false)
	case KindTimestampTZ:
		return canonTimestamp(s, true)
	}
	return "", fmt.Errorf("unknown kind %q", k)
}

// canonFloat renders a float4 or float8 by its exact value.
func canonFloat(s string, bits int) (string, error) {
	switch s {
	case "NaN":
		return `"NaN"`, nil
	case "Infinity":
		return `"Infinity"`, nil
	case "-Infinity":
		return `"-Infinity"`, nil
	}
	f, err := strconv.ParseFloat(s, bits)
	if err != nil {
		return "", err
	}
	return formatFloat(f, bits), nil
}

// formatFloat writes the shortest decimal that reads back as f at the given
// bit size, in the layout of ECMAScript's Number::toString.
func formatFloat(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return `"NaN"`
	case math.IsInf(f, 1):
		return `"Infinity"`
	case math.IsInf(f, -1):
		return `"-Infinity"`
	case f == 0:
		if math.Signbit(f) {
			return "-0"
		}
		return "0"
	}
	// 'e' with precision -1 gives d.ddde±xx with the shortest digits.
	e := strconv.FormatFloat(f, 'e', -1, bits)
	neg := strings.HasPrefix(e, "-")
	e = strings.TrimPrefix(e, "-")
	mant, exp, _ := strings.Cut(e, "e")
	x, _ := strconv.Atoi(exp)
	digits := strings.TrimRight(strings.Replace(mant, ".", "", 1), "0")
	return shortest(neg, digits, x+1)
}

// shortest lays out the number 0.d × 10^n (d without leading or trailing
// zeros) as ECMAScript's Number::toString does; js/merge.mjs has the twin.
func shortest(neg bool, d string, n int) string {
	k := len(d)
	var s string
	switch {
	case k <= n && n <= 21:
		s = d + strings.Repeat("0", n-k)
	case 0 < n && n <= 21:
		s = d[:n] + "." + d[n:]
	case -6 < n && n <= 0:
		s = "0." + strings.Repeat("0", -n) + d
	default:
		s = d[:1]
		if k > 1 {
			s += "." + d[1:]
		}
		e := n - 1
		if e >= 0 {
			s += "e+" + strconv.Itoa(e)
		} else {
			s += "e-" + strconv.Itoa(-e)
		}
	}
	if neg {
		return "-" + s
	}
	return s
}

// quote writes s as a JSON string exactly as JavaScript's JSON.stringify
// does (encoding/json would escape <, >, & and U+2028/U+2029).
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// ---- dates and timestamps ----

// canonDate renders a date from its ISO text.
func canonDate(s string) (string, error) {
	days, finite, err := pgtext.ParseDate(s)
	if err != nil {
		return "", err
	}
	if !finite {
		return "null", nil // ±infinity is not a DATE: written as NULL
	}
	return quote(pgtext.DateText(days)), nil
}

// canonTimestamp renders a timestamp or timestamptz from its ISO text.
func canonTimestamp(s string, tz bool) (string, error) {
	us, ok, err := pgtext.ParseTimestamp(s, tz)
	if err != nil {
		return "", err
	}
	if !ok {
		return "null", nil // ±infinity, or beyond int64 microseconds: written as NULL
	}
	out := pgtext.TimestampText(us)
	if tz {
		out += "Z"
	}
	return quote(out), nil
}
