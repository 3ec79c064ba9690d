package pqfile

import (
	"bytes"
	"testing"
)

func TestUpperBound(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"abcdef", "abd"},
		{"ab\xffdef", "ac"},
		{"\xff\xff\xffa", "\xff\xff\xffb"},
		{"\xff\xff\xff\xff\xff", "\xff\xff\xff\xff\xff"},
		{"\xff\xff\xff\xff\x01", "\xff\xff\xff\xff\x02"},
	} {
		got := upperBound([]byte(c.in), 3)
		if string(got) != c.want {
			t.Errorf("upperBound(%q, 3) = %q, want %q", c.in, got, c.want)
		}
		if bytes.Compare(got, []byte(c.in)) < 0 {
			t.Errorf("upperBound(%q, 3) = %q is below it", c.in, got)
		}
	}
}
