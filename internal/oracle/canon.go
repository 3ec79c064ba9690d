package oracle

// Canonical text from PostgreSQL's text output, read with TimeZone = UTC,
// DateStyle = ISO, IntervalStyle = iso_8601, extra_float_digits = 3 and
// bytea_output = hex. js/merge.mjs produces the same forms from DuckDB's
// values; the shared pieces (shortest, civil dates) exist once in each
// language and are kept in step by the tests.

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
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
	elems, err := parseArray(*text)
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
		s, err := canonScalar(c.Kind, *e)
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
		return canonDecimal(s)
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

var decimalRE = regexp.MustCompile(`^([+-]?)(\d*)(?:\.(\d*))?$`)

// canonDecimal writes a decimal without leading zeros, trailing fractional
// zeros or a negative zero.
func canonDecimal(s string) (string, error) {
	m := decimalRE.FindStringSubmatch(s)
	if m == nil || m[2]+m[3] == "" {
		return "", fmt.Errorf("bad decimal %q", s)
	}
	intPart := strings.TrimLeft(m[2], "0")
	frac := strings.TrimRight(m[3], "0")
	if intPart == "" && frac == "" {
		return "0", nil
	}
	if intPart == "" {
		intPart = "0"
	}
	out := intPart
	if frac != "" {
		out += "." + frac
	}
	if m[1] == "-" {
		out = "-" + out
	}
	return out, nil
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

var (
	dateRE = regexp.MustCompile(`^(\d{4,})-(\d{2})-(\d{2})( BC)?$`)
	// ISO DateStyle output; the offset appears for timestamptz only.
	timestampRE = regexp.MustCompile(`^(\d{4,})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?` +
		`(?:([+-])(\d{2})(?::(\d{2}))?(?::(\d{2}))?)?( BC)?$`)
)

const dayMicros = 86400 * 1000000

// canonDate renders a date from its ISO text.
func canonDate(s string) (string, error) {
	if s == "infinity" || s == "-infinity" {
		return "null", nil // not a DATE: written as NULL
	}
	m := dateRE.FindStringSubmatch(s)
	if m == nil {
		return "", fmt.Errorf("bad date %q (DateStyle must be ISO)", s)
	}
	days := daysFromCivil(year(m[1], m[4]), atoi(m[2]), atoi(m[3]))
	return quote(dateText(days)), nil
}

// canonTimestamp renders a timestamp or timestamptz from its ISO text.
func canonTimestamp(s string, tz bool) (string, error) {
	if s == "infinity" || s == "-infinity" {
		return "null", nil // not a TIMESTAMP: written as NULL
	}
	m := timestampRE.FindStringSubmatch(s)
	if m == nil || (m[8] != "") != tz {
		return "", fmt.Errorf("bad timestamp %q (DateStyle must be ISO)", s)
	}
	days := daysFromCivil(year(m[1], m[12]), atoi(m[2]), atoi(m[3]))
	secs := int64(atoi(m[4])*3600 + atoi(m[5])*60 + atoi(m[6]))
	if m[8] != "" {
		off := int64(atoi(m[9])*3600 + atoi(m[10])*60 + atoi(m[11]))
		if m[8] == "+" {
			secs -= off
		} else {
			secs += off
		}
	}
	frac := int64(0)
	if m[7] != "" {
		frac = int64(atoi((m[7] + "00000")[:6]))
	}
	// days × 86400e6 can pass int64 near the end of PostgreSQL's range.
	us := new(big.Int).Mul(big.NewInt(days), big.NewInt(dayMicros))
	us.Add(us, big.NewInt(secs*1000000+frac))
	if !us.IsInt64() {
		return "null", nil // beyond int64 microseconds: written as NULL
	}
	out := timestampText(us.Int64())
	if tz {
		out += "Z"
	}
	return quote(out), nil
}

// year converts a PostgreSQL year and era to an astronomical year.
func year(digits, bc string) int64 {
	y := int64(atoi(digits))
	if bc != "" {
		return 1 - y
	}
	return y
}

func atoi(s string) int {
	if s == "" {
		return 0
	}
	n, _ := strconv.Atoi(s)
	return n
}

// daysFromCivil counts days from 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's days_from_civil).
func daysFromCivil(y int64, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := floorDiv(y, 400)
	yoe := y - era*400
	mp := int64((m + 9) % 12)
	doy := (153*mp+2)/5 + int64(d) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// civilFromDays is the inverse of daysFromCivil; js/merge.mjs has the twin.
func civilFromDays(days int64) (y int64, m, d int) {
	z := days + 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		m = int(mp + 3)
	} else {
		m = int(mp - 9)
	}
	y = yoe + era*400
	if m <= 2 {
		y++
	}
	return y, m, d
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// dateText writes days since 1970-01-01 as YYYY-MM-DD.
func dateText(days int64) string {
	y, m, d := civilFromDays(days)
	if y < 0 {
		return fmt.Sprintf("-%04d-%02d-%02d", -y, m, d)
	}
	return fmt.Sprintf("%04d-%02d-%02d", y, m, d)
}

// timestampText writes microseconds since 1970 as YYYY-MM-DDTHH:MM:SS.ffffff.
func timestampText(us int64) string {
	days := floorDiv(us, dayMicros)
	rem := us - days*dayMicros
	secs := rem / 1000000
	return fmt.Sprintf("%sT%02d:%02d:%02d.%06d", dateText(days), secs/3600, secs/60%60, secs%60, rem%1000000)
}

// ---- arrays ----

// parseArray reads PostgreSQL's text output of an array and returns its
// elements flattened in row-major order; nil elements are NULL.
func parseArray(s string) ([]*string, error) {
	p := arrayParser{s: s}
	if strings.HasPrefix(s, "[") {
		// Dimension decoration, "[0:1]={...}", when a lower bound is not 1.
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return nil, fmt.Errorf("bad array %q", s)
		}
		p.i = eq + 1
	}
	if err := p.parse(); err != nil {
		return nil, fmt.Errorf("bad array %q: %w", s, err)
	}
	if p.i != len(s) {
		return nil, fmt.Errorf("bad array %q: trailing text", s)
	}
	return p.out, nil
}

type arrayParser struct {
	s   string
	i   int
	out []*string
}

var errArrayEnd = errors.New("unexpected end")

// parse reads one brace-enclosed level at p.i.
func (p *arrayParser) parse() error {
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		return fmt.Errorf("want '{' at %d", p.i)
	}
	p.i++
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return nil
	}
	for {
		if p.i >= len(p.s) {
			return errArrayEnd
		}
		switch p.s[p.i] {
		case '{':
			if err := p.parse(); err != nil {
				return err
			}
		case '"':
			var b strings.Builder
			p.i++
			for {
				if p.i >= len(p.s) {
					return errArrayEnd
				}
				c := p.s[p.i]
				p.i++
				if c == '"' {
					break
				}
				if c == '\\' {
					if p.i >= len(p.s) {
						return errArrayEnd
					}
					c = p.s[p.i]
					p.i++
				}
				b.WriteByte(c)
			}
			v := b.String()
			p.out = append(p.out, &v)
		default:
			var b strings.Builder
			for p.i < len(p.s) && p.s[p.i] != ',' && p.s[p.i] != '}' {
				c := p.s[p.i]
				p.i++
				if c == '\\' && p.i < len(p.s) {
					c = p.s[p.i]
					p.i++
				}
				b.WriteByte(c)
			}
			v := strings.TrimSpace(b.String())
			if strings.EqualFold(v, "NULL") {
				p.out = append(p.out, nil)
			} else {
				p.out = append(p.out, &v)
			}
		}
		if p.i >= len(p.s) {
			return errArrayEnd
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return nil
		default:
			return fmt.Errorf("want ',' or '}' at %d", p.i)
		}
	}
}
