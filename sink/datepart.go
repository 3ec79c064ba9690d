package sink

import (
	"fmt"
	"strings"
	"time"
)

// DatePartition places change files in date folders inside their table
// folder (contract §1), by the commit time of their rows, with AWS DMS's
// settings and names: DatePartitionSequence, DatePartitionDelimiter and
// DatePartitionTimezone. LOAD files stay at the table folder's top.
//
// The zero value is not usable: build one with ParseDatePartition. A nil
// *DatePartition means no date folders.
type DatePartition struct {
	// Sequence is the order of the date's parts: YYYYMMDD, YYYYMMDDHH,
	// YYYYMM, MMYYYYDD or DDMMYYYY.
	Sequence string `json:"sequence"`
	// Delimiter separates the parts: SLASH, UNDERSCORE, DASH or NONE.
	Delimiter string `json:"delimiter"`
	// TimeZone names the zone the commit time is read in (an IANA name,
	// Area/Location, or UTC).
	TimeZone string `json:"timezone"`

	loc   *time.Location
	parts []string // Go layouts of the parts, in order
	sep   string
	unit  string // the folder's length: HOURS, DAYS or MONTHS
}

// The DMS values of each setting, and the Go layout of each date part.
var (
	dateSequences = map[string][]string{
		"YYYYMMDD":   {"2006", "01", "02"},
		"YYYYMMDDHH": {"2006", "01", "02", "15"},
		"YYYYMM":     {"2006", "01"},
		"MMYYYYDD":   {"01", "2006", "02"},
		"DDMMYYYY":   {"02", "01", "2006"},
	}
	dateDelimiters = map[string]string{"SLASH": "/", "UNDERSCORE": "_", "DASH": "-", "NONE": ""}
	// javaParts are the Java DateTimeFormatter patterns of the Go layouts,
	// for Athena's partition projection.
	javaParts = map[string]string{"2006": "yyyy", "01": "MM", "02": "dd", "15": "HH"}
)

// DefaultDateSequence, DefaultDateDelimiter and DefaultDateTimeZone are
// DMS's defaults.
const (
	DefaultDateSequence  = "YYYYMMDD"
	DefaultDateDelimiter = "SLASH"
	DefaultDateTimeZone  = "UTC"
)

// ParseDatePartition checks the three settings (case-insensitive for the
// first two) and returns the layout they describe.
func ParseDatePartition(sequence, delimiter, timeZone string) (*DatePartition, error) {
	d := &DatePartition{Sequence: strings.ToUpper(sequence), Delimiter: strings.ToUpper(delimiter), TimeZone: timeZone}
	if err := d.init(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *DatePartition) init() error {
	parts, ok := dateSequences[d.Sequence]
	if !ok {
		return fmt.Errorf("date partition sequence %q: want YYYYMMDD, YYYYMMDDHH, YYYYMM, MMYYYYDD or DDMMYYYY", d.Sequence)
	}
	sep, ok := dateDelimiters[d.Delimiter]
	if !ok {
		return fmt.Errorf("date partition delimiter %q: want SLASH, UNDERSCORE, DASH or NONE", d.Delimiter)
	}
	loc, err := time.LoadLocation(d.TimeZone)
	if err != nil || d.TimeZone == "" || d.TimeZone == "Local" {
		return fmt.Errorf("date partition time zone %q: want UTC or an IANA name such as Europe/Paris", d.TimeZone)
	}
	d.loc, d.parts, d.sep = loc, parts, sep
	switch d.Sequence {
	case "YYYYMMDDHH":
		d.unit = "HOURS"
	case "YYYYMM":
		d.unit = "MONTHS"
	default:
		d.unit = "DAYS"
	}
	return nil
}

// Same reports whether d and e describe the same folders (both nil: none).
func (d *DatePartition) Same(e *DatePartition) bool {
	if d == nil || e == nil {
		return d == e
	}
	return d.Sequence == e.Sequence && d.Delimiter == e.Delimiter && d.TimeZone == e.TimeZone
}

// Ready completes a DatePartition read from JSON (the destination's state).
func (d *DatePartition) Ready() error {
	if d.loc != nil {
		return nil
	}
	return d.init()
}

// Folder returns the date folder of a commit time (microseconds since the
// Unix epoch) and the span [from, until) of commit times that share it, so
// that a writer computes it once per folder rather than once per row.
func (d *DatePartition) Folder(micros int64) (folder string, from, until int64) {
	t := time.UnixMicro(micros).In(d.loc)
	var start, next time.Time
	switch d.unit {
	case "HOURS":
		start = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, d.loc)
		// An hour that happens twice (clocks going back) has one start
		// per occurrence; time.Date may give either.
		if t.Before(start) {
			start = start.Add(-time.Hour)
		} else if !t.Before(start.Add(time.Hour)) {
			start = start.Add(time.Hour)
		}
		next = start.Add(time.Hour)
	case "MONTHS":
		start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, d.loc)
		next = start.AddDate(0, 1, 0)
	default:
		start = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, d.loc)
		next = start.AddDate(0, 0, 1)
	}
	// Times before the epoch's microsecond range cannot occur (commit
	// times are the source's clock); the span is exact either way.
	return d.format(t), start.UnixMicro(), next.UnixMicro()
}

func (d *DatePartition) format(t time.Time) string {
	s := make([]string, len(d.parts))
	for i, p := range d.parts {
		s[i] = t.Format(p)
	}
	return strings.Join(s, d.sep)
}

// Parse returns the start of the date folder named folder, in the
// partition's zone.
func (d *DatePartition) Parse(folder string) (time.Time, error) {
	return time.ParseInLocation(strings.Join(d.parts, d.sep), folder, d.loc)
}

// JavaFormat is the folder's pattern in Java's DateTimeFormatter letters
// (yyyy/MM/dd), as Athena's date partition projection takes it.
func (d *DatePartition) JavaFormat() string {
	s := make([]string, len(d.parts))
	for i, p := range d.parts {
		s[i] = javaParts[p]
	}
	return strings.Join(s, d.sep)
}

// Unit is the length of one folder in Athena's projection interval units:
// HOURS, DAYS or MONTHS.
func (d *DatePartition) Unit() string { return d.unit }

// Location is the time zone folders are cut in.
func (d *DatePartition) Location() *time.Location { return d.loc }

// CDCKeyIn is CDCKey inside a date folder of the table's folder; an empty
// folder gives CDCKey's key.
func CDCKeyIn(schema, table, folder string, first, last Pos) string {
	if folder == "" {
		return CDCKey(schema, table, first, last)
	}
	return fmt.Sprintf("%s%s/CDC-%s-%s.parquet", TableDir(schema, table), folder, first, last)
}

// TableOfKey returns the table folder (with its trailing '/') that holds
// key, a data file at the folder's top or in a date folder below it, and
// false for a key outside any table folder (the state, a stray object at
// the top).
func TableOfKey(key string) (dir string, ok bool) {
	if strings.HasPrefix(key, StatePrefix) {
		return "", false
	}
	i := strings.IndexByte(key, '/')
	if i < 0 {
		return "", false
	}
	j := strings.IndexByte(key[i+1:], '/')
	if j < 0 {
		return "", false
	}
	return key[:i+1+j+1], true
}
