package catalog

import "testing"

// TestArrayText turns PostgreSQL's array text into list text.
func TestArrayText(t *testing.T) {
	for pg, want := range map[string]string{
		`{}`:                     `[]`,
		`{1,2,3}`:                `['1', '2', '3']`,
		`{a,"b c",NULL,"NULL"}`:  `['a', 'b c', NULL, 'NULL']`,
		`{"it's","q\"x","a\\b"}`: `['it''s', 'q"x', 'a\b']`,
		`[0:1]={7,8}`:            `['7', '8']`,
	} {
		if got := arrayText(pg); got != want {
			t.Errorf("arrayText(%s) = %s, want %s", pg, got, want)
		}
	}
}
