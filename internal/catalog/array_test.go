package catalog

import (
	"slices"
	"testing"
)

// TestArrayElems splits PostgreSQL's array text into its elements.
func TestArrayElems(t *testing.T) {
	for pg, want := range map[string][]string{
		`{}`:                     nil,
		`{1,2,3}`:                {"1", "2", "3"},
		`{a,"b c",NULL,"NULL"}`:  {"a", "b c", "<nil>", "NULL"},
		`{"it's","q\"x","a\\b"}`: {"it's", `q"x`, `a\b`},
		`[0:1]={7,8}`:            {"7", "8"},
	} {
		var got []string
		for _, e := range arrayElems(pg) {
			if e == nil {
				got = append(got, "<nil>")
			} else {
				got = append(got, *e)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("arrayElems(%s) = %q, want %q", pg, got, want)
		}
	}
}
