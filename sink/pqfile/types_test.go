package pqfile

import "testing"

// TestParseType reads back what Type.String writes, and refuses the rest.
func TestParseType(t *testing.T) {
	for _, typ := range []Type{
		{Kind: String}, {Kind: Int16}, {Kind: Int64, List: true}, {Kind: Decimal, Precision: 12, Scale: 2},
		{Kind: Decimal, Precision: 38, Scale: 0, List: true}, {Kind: TimestampTZ}, {Kind: Bytes, List: true},
	} {
		got, err := ParseType(typ.String())
		if err != nil || got != typ {
			t.Errorf("ParseType(%q) = %+v, %v; want %+v", typ.String(), got, err, typ)
		}
	}
	for _, bad := range []string{"", "decimal", "int128", "list<int64"} {
		if _, err := ParseType(bad); err == nil {
			t.Errorf("ParseType(%q) succeeded", bad)
		}
	}
}
