package validate

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
)

// PostgreSQL's ISO output of dates and timestamps (DateStyle ISO); the UTC
// offset appears for timestamptz only.
var (
	dateRE      = regexp.MustCompile(`^(\d{4,})-(\d{2})-(\d{2})( BC)?$`)
	timestampRE = regexp.MustCompile(`^(\d{4,})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?` +
		`(?:([+-])(\d{2})(?::(\d{2}))?(?::(\d{2}))?)?( BC)?$`)
)

const microsPerDay = 86400 * 1000000

// appendPGDate appends the canonical value of a date's text; ±infinity and
// days beyond 32 bits, which a DATE cannot hold, are NULL.
func appendPGDate(buf []byte, s string) ([]byte, error) {
	if s == "infinity" || s == "-infinity" {
		return appendNull(buf), nil
	}
	m := dateRE.FindStringSubmatch(s)
	if m == nil {
		return nil, fmt.Errorf("invalid date %q (DateStyle must be ISO)", s)
	}
	days := daysFromCivil(year(m[1], m[4]), atoi(m[2]), atoi(m[3]))
	if days < -1<<31 || days > 1<<31-1 {
		return appendNull(buf), nil
	}
	return appendValue(buf, tagDate, []byte(dateText(days))), nil
}

// appendPGTimestamp appends the canonical value of a timestamp's (tz: a
// timestamptz's) text; ±infinity and instants beyond int64 microseconds
// since 1970 are NULL.
func appendPGTimestamp(buf []byte, s string, tz bool) ([]byte, error) {
	if s == "infinity" || s == "-infinity" {
		return appendNull(buf), nil
	}
	m := timestampRE.FindStringSubmatch(s)
	if m == nil || (m[8] != "") != tz {
		return nil, fmt.Errorf("invalid timestamp %q (DateStyle must be ISO)", s)
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
	// days × 86400e6 can pass int64 near the ends of PostgreSQL's range.
	us := new(big.Int).Mul(big.NewInt(days), big.NewInt(microsPerDay))
	us.Add(us, big.NewInt(secs*1000000+frac))
	if !us.IsInt64() {
		return appendNull(buf), nil
	}
	tag := tagTime
	if tz {
		tag = tagTimeTZ
	}
	return appendValue(buf, tag, []byte(timestampText(us.Int64()))), nil
}

// year converts a PostgreSQL year and era to an astronomical year.
func year(digits, bc string) int64 {
	y, _ := strconv.ParseInt(digits, 10, 64)
	if bc != "" {
		return 1 - y
	}
	return y
}

func atoi(s string) int {
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

// civilFromDays is the inverse of daysFromCivil.
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
	if a%b != 0 && (a < 0) != (b < 0) {
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
	days := floorDiv(us, microsPerDay)
	rem := us - days*microsPerDay
	secs := rem / 1000000
	return fmt.Sprintf("%sT%02d:%02d:%02d.%06d", dateText(days), secs/3600, secs/60%60, secs%60, rem%1000000)
}

// parseArray reads PostgreSQL's text output of an array ("{1,NULL,3}",
// "{{1,2},{3,4}}", "[0:1]={7,8}") and returns its elements flattened in
// row-major order, nil for NULL: the LIST the contract writes.
func parseArray(text []byte) ([][]byte, error) {
	s := string(text)
	p := arrayParser{s: s}
	if strings.HasPrefix(s, "[") {
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
	var b []byte
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
	if b == nil {
		b = []byte{}
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
