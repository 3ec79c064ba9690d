package pgtext

import (
	"slices"
	"testing"
)

func TestParseArray(t *testing.T) {
	tests := []struct {
		in   string
		want []string // "<nil>" for NULL
	}{
		{"{}", nil},
		{"{1,2,3}", []string{"1", "2", "3"}},
		{"{{1,2},{3,NULL}}", []string{"1", "2", "3", "<nil>"}},
		{"[0:1]={5,6}", []string{"5", "6"}},
		{`{"a,b","q\"u\\ote",NULL,"","NULL"," x "}`, []string{"a,b", `q"u\ote`, "<nil>", "", "NULL", " x "}},
		{`{"(1,\"x y\")"}`, []string{`(1,"x y")`}},
		{"{{{1},{2}},{{3},{4}}}", []string{"1", "2", "3", "4"}},
	}
	for _, tt := range tests {
		elems, err := ParseArray(tt.in)
		if err != nil {
			t.Errorf("ParseArray(%q): %v", tt.in, err)
			continue
		}
		var got []string
		for _, e := range elems {
			if e == nil {
				got = append(got, "<nil>")
			} else {
				got = append(got, string(e))
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("ParseArray(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, in := range []string{"", "{", "{1,2", `{"a}`, "{1}x", "1,2"} {
		if _, err := ParseArray(in); err == nil {
			t.Errorf("ParseArray(%q) succeeded, want an error", in)
		}
	}
}

func TestCivil(t *testing.T) {
	for _, days := range []int64{-2440588, -719528, -719529, -1, 0, 1, 59, 11016, 2145042906} {
		y, m, d := CivilFromDays(days)
		if back := DaysFromCivil(y, m, d); back != days {
			t.Errorf("days %d -> %d-%d-%d -> %d", days, y, m, d, back)
		}
	}
	if got := DateText(-719528); got != "0000-01-01" {
		t.Errorf("DateText(-719528) = %s", got)
	}
	if got := TimestampText(-1); got != "1969-12-31T23:59:59.999999" {
		t.Errorf("TimestampText(-1) = %s", got)
	}
}

// TestTwins checks that js/merge.mjs, reading values that DuckDB wrote to
// Parquet, renders them exactly as the Go side does: random and edge floats,
// timestamps, dates, decimals, bytes and text.
