package sink

import (
	"encoding/json"
	"testing"
	"time"
)

func TestDatePartitionFolder(t *testing.T) {
	at := time.Date(2026, 12, 3, 23, 30, 15, 123456, time.UTC).UnixMicro()
	for _, c := range []struct {
		seq, delim, tz string
		want, java     string
	}{
		{"YYYYMMDD", "SLASH", "UTC", "2026/12/03", "yyyy/MM/dd"},
		{"yyyymmdd", "slash", "UTC", "2026/12/03", "yyyy/MM/dd"},
		{"YYYYMMDDHH", "SLASH", "UTC", "2026/12/03/23", "yyyy/MM/dd/HH"},
		{"YYYYMM", "DASH", "UTC", "2026-12", "yyyy-MM"},
		{"MMYYYYDD", "UNDERSCORE", "UTC", "12_2026_03", "MM_yyyy_dd"},
		{"DDMMYYYY", "NONE", "UTC", "03122026", "ddMMyyyy"},
		// Seoul is UTC+9: the commit is on the 4th there.
		{"YYYYMMDD", "SLASH", "Asia/Seoul", "2026/12/04", "yyyy/MM/dd"},
		{"YYYYMMDDHH", "DASH", "America/New_York", "2026-12-03-18", "yyyy-MM-dd-HH"},
	} {
		d, err := ParseDatePartition(c.seq, c.delim, c.tz)
		if err != nil {
			t.Fatalf("%s %s %s: %v", c.seq, c.delim, c.tz, err)
		}
		got, from, until := d.Folder(at)
		if got != c.want || d.JavaFormat() != c.java {
			t.Errorf("%s %s %s: folder %q format %q, want %q %q", c.seq, c.delim, c.tz, got, d.JavaFormat(), c.want, c.java)
		}
		if !(from <= at && at < until) {
			t.Errorf("%s %s %s: span [%d, %d) does not hold %d", c.seq, c.delim, c.tz, from, until, at)
		}
		// Every time in the span has the folder, the ones just outside do not.
		for _, m := range []int64{from, until - 1} {
			if f, _, _ := d.Folder(m); f != got {
				t.Errorf("%s %s %s: %d in the span has folder %q, want %q", c.seq, c.delim, c.tz, m, f, got)
			}
		}
		for _, m := range []int64{from - 1, until} {
			if f, _, _ := d.Folder(m); f == got {
				t.Errorf("%s %s %s: %d outside the span has the same folder %q", c.seq, c.delim, c.tz, m, f)
			}
		}
	}
}

// TestDatePartitionDST checks the spans across daylight saving changes: a
// day of 23 and 25 hours, and an hour that happens twice.
func TestDatePartitionDST(t *testing.T) {
	paris, _ := time.LoadLocation("Europe/Paris")
	day, _ := ParseDatePartition("YYYYMMDD", "SLASH", "Europe/Paris")
	for date, hours := range map[time.Time]int64{
		time.Date(2026, 3, 29, 12, 0, 0, 0, paris):  23,
		time.Date(2026, 10, 25, 12, 0, 0, 0, paris): 25,
	} {
		_, from, until := day.Folder(date.UnixMicro())
		if got := (until - from) / int64(time.Hour/time.Microsecond); got != hours {
			t.Errorf("%s: the day's span is %d hours, want %d", date, got, hours)
		}
	}
	hour, _ := ParseDatePartition("YYYYMMDDHH", "SLASH", "Europe/Paris")
	// 2026-10-25 02:30 happens twice in Paris: at 00:30 and 01:30 UTC.
	first := time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC).UnixMicro()
	second := time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC).UnixMicro()
	f1, from1, until1 := hour.Folder(first)
	f2, from2, until2 := hour.Folder(second)
	if f1 != "2026/10/25/02" || f2 != f1 {
		t.Errorf("folders %q and %q, want 2026/10/25/02 for both", f1, f2)
	}
	if !(from1 <= first && first < until1) || !(from2 <= second && second < until2) || from2 != until1 {
		t.Errorf("spans [%d,%d) and [%d,%d) do not hold %d and %d one after the other", from1, until1, from2, until2, first, second)
	}
}

func TestDatePartitionBadInput(t *testing.T) {
	for _, c := range [][3]string{
		{"YYYY", "SLASH", "UTC"},
		{"YYYYMMDD", "COMMA", "UTC"},
		{"YYYYMMDD", "SLASH", "Mars/Olympus"},
		{"YYYYMMDD", "SLASH", ""},
		{"YYYYMMDD", "SLASH", "Local"},
	} {
		if _, err := ParseDatePartition(c[0], c[1], c[2]); err == nil {
			t.Errorf("%v: no error", c)
		}
	}
}

func TestDatePartitionJSON(t *testing.T) {
	d, _ := ParseDatePartition("YYYYMMDDHH", "DASH", "Asia/Seoul")
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var back DatePartition
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Ready(); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixMicro()
	a, _, _ := d.Folder(at)
	c, _, _ := back.Folder(at)
	if a != c || back.Unit() != "HOURS" {
		t.Errorf("after JSON (%s): folder %q unit %s, want %q HOURS", b, c, back.Unit(), a)
	}
}

func TestTableOfKey(t *testing.T) {
	for key, want := range map[string]string{
		"public/t/LOAD00000001.parquet":                         "public/t/",
		"public/t/2026/12/03/CDC-x-y.parquet":                   "public/t/",
		"a%2Fb/t/CDC-x-y.parquet":                               "a%2Fb/t/",
		"_cdc2s3/state.json":                                    "",
		"_cdc2s3/schema/public/t.json":                          "",
		"stray.parquet":                                         "",
		"public/only-two":                                       "",
		CDCKeyIn("s", "t", "2026-12", Pos{LSN: 1}, Pos{LSN: 2}): "s/t/",
	} {
		got, ok := TableOfKey(key)
		if got != want || ok != (want != "") {
			t.Errorf("TableOfKey(%q) = %q, %v; want %q", key, got, ok, want)
		}
	}
	if k := CDCKeyIn("s", "t", "2026/12/03", Pos{LSN: 1}, Pos{LSN: 2}); k != "s/t/2026/12/03/CDC-000000000000000100000000-000000000000000200000000.parquet" {
		t.Errorf("CDCKeyIn: %s", k)
	}
	first, last, ok := ParseCDCKey(CDCKeyIn("s", "t", "2026/12/03", Pos{LSN: 1, Seq: 2}, Pos{LSN: 3}))
	if !ok || first != (Pos{LSN: 1, Seq: 2}) || last != (Pos{LSN: 3}) {
		t.Errorf("ParseCDCKey of a dated key: %v %v %v", first, last, ok)
	}
}
