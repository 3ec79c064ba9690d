// Package pgtext reads PostgreSQL's text output of numerics, dates,
// timestamps and arrays, as a session with cdc2s3's settings prints them (DateStyle ISO,
// TimeZone UTC), and writes dates and timestamps in the canonical text the
// readers that check the output compare (internal/oracle in the tests,
// internal/validate in `cdc2s3 validate`). The writer (sink/pqfile) has
// its own conversions: a reader sharing them could not catch their bugs.
package pgtext

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
)

// PostgreSQL's ISO output of dates and timestamps; the UTC offset appears
// for timestamptz only.
var (
	dateRE      = regexp.MustCompile(`^(\d{4,})-(\d{2})-(\d{2})( BC)?$`)
	timestampRE = regexp.MustCompile(`^(\d{4,})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?` +
		`(?:([+-])(\d{2})(?::(\d{2}))?(?::(\d{2}))?)?( BC)?$`)
)

// MicrosPerDay is the number of microseconds in a day.
const MicrosPerDay = 86400 * 1000000

// ParseDate returns the days since 1970-01-01 of a date's text; finite is
// false for ±infinity.
func ParseDate(s string) (days int64, finite bool, err error) {
	if s == "infinity" || s == "-infinity" {
		return 0, false, nil
	}
	m := dateRE.FindStringSubmatch(s)
	if m == nil {
		return 0, false, fmt.Errorf("invalid date %q (DateStyle must be ISO)", s)
	}
	return DaysFromCivil(year(m[1], m[4]), atoi(m[2]), atoi(m[3])), true, nil
}

// ParseTimestamp returns the microseconds since 1970-01-01 00:00 UTC of a
// timestamp's (tz: a timestamptz's) text; ok is false for ±infinity and
// for instants beyond int64 microseconds.
func ParseTimestamp(s string, tz bool) (us int64, ok bool, err error) {
	if s == "infinity" || s == "-infinity" {
		return 0, false, nil
	}
	m := timestampRE.FindStringSubmatch(s)
	if m == nil || (m[8] != "") != tz {
		return 0, false, fmt.Errorf("invalid timestamp %q (DateStyle must be ISO)", s)
	}
	days := DaysFromCivil(year(m[1], m[12]), atoi(m[2]), atoi(m[3]))
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
	// days × 86400e6 can pass int64 near the ends of PostgreSQL's range.
	t := new(big.Int).Mul(big.NewInt(days), big.NewInt(MicrosPerDay))
	t.Add(t, big.NewInt(secs*1000000+frac))
	if !t.IsInt64() {
		return 0, false, nil
	}
	return t.Int64(), true, nil
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
	n, _ := strconv.Atoi(s)
	return n
}

// DaysFromCivil counts days from 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's days_from_civil).
func DaysFromCivil(y int64, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := FloorDiv(y, 400)
	yoe := y - era*400
	mp := int64((m + 9) % 12)
	doy := (153*mp+2)/5 + int64(d) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// CivilFromDays is the inverse of DaysFromCivil; internal/oracle/js/merge.mjs
// has its twin (civil).
func CivilFromDays(days int64) (y int64, m, d int) {
	z := days + 719468
	era := FloorDiv(z, 146097)
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

// FloorDiv is a / b rounded toward negative infinity.
func FloorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// DateText writes days since 1970-01-01 as YYYY-MM-DD (astronomical years:
// 1 BC is 0000, 2 BC is -0001).
func DateText(days int64) string {
	y, m, d := CivilFromDays(days)
	if y < 0 {
		return fmt.Sprintf("-%04d-%02d-%02d", -y, m, d)
	}
	return fmt.Sprintf("%04d-%02d-%02d", y, m, d)
}

// TimestampText writes microseconds since 1970 as YYYY-MM-DDTHH:MM:SS.ffffff.
func TimestampText(us int64) string {
	days := FloorDiv(us, MicrosPerDay)
	rem := us - days*MicrosPerDay
	secs := rem / 1000000
	return fmt.Sprintf("%sT%02d:%02d:%02d.%06d", DateText(days), secs/3600, secs/60%60, secs%60, rem%1000000)
}

// NormalDecimal writes PostgreSQL's numeric text (digits, an optional sign
// and point, no exponent) without leading zeros, trailing fractional zeros
// or a negative zero.
func NormalDecimal(s string) (string, error) {
	body, neg := strings.CutPrefix(s, "-")
	if !neg {
		body = strings.TrimPrefix(body, "+")
	}
	intPart, frac, _ := strings.Cut(body, ".")
	if intPart+frac == "" || strings.Trim(intPart+frac, "0123456789") != "" {
		return "", fmt.Errorf("invalid numeric %q", s)
	}
	intPart = strings.TrimLeft(intPart, "0")
	frac = strings.TrimRight(frac, "0")
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
	if neg {
		out = "-" + out
	}
	return out, nil
}

// ParseArray reads PostgreSQL's text output of an array ("{1,NULL,3}",
// "{{1,2},{3,4}}", "[0:1]={7,8}") and returns its elements flattened in
// row-major order, nil for NULL (an empty string is an empty, non-nil
// slice): the LIST the contract writes.
func ParseArray(s string) ([][]byte, error) {
	p := arrayParser{s: s}
	if strings.HasPrefix(s, "[") {
		// Dimension decoration, "[0:1]={...}", when a lower bound is not 1.
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return nil, fmt.Errorf("invalid array %.40q", s)
		}
		p.i = eq + 1
	}
	if err := p.level(); err != nil {
		return nil, fmt.Errorf("invalid array %.40q: %w", s, err)
	}
	if p.i != len(s) {
		return nil, fmt.Errorf("invalid array %.40q: trailing text", s)
	}
	return p.out, nil
}

type arrayParser struct {
	s   string
	i   int
	out [][]byte
}

var errArrayEnd = errors.New("unexpected end")

// level reads one brace-enclosed level at p.i.
func (p *arrayParser) level() error {
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
		var err error
		switch p.s[p.i] {
		case '{':
			err = p.level()
		case '"':
			err = p.quoted()
		default:
			p.bare()
		}
		if err != nil {
			return err
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

// quoted reads a double-quoted element.
func (p *arrayParser) quoted() error {
	b := []byte{}
	for p.i++; ; {
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
		b = append(b, c)
	}
	p.out = append(p.out, b)
	return nil
}

// bare reads an unquoted element; NULL (in any case) is a NULL element.
func (p *arrayParser) bare() {
	var b []byte
	for p.i < len(p.s) && p.s[p.i] != ',' && p.s[p.i] != '}' {
		c := p.s[p.i]
		p.i++
		if c == '\\' && p.i < len(p.s) {
			c = p.s[p.i]
			p.i++
		}
		b = append(b, c)
	}
	v := strings.TrimSpace(string(b))
	if strings.EqualFold(v, "NULL") {
		p.out = append(p.out, nil)
		return
	}
	p.out = append(p.out, []byte(v))
}
