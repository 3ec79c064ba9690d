package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// TestInspectOps checks that a reload's L and R rows are counted as such,
// not as unknown Op values (which inspect warns about), and that the
// summary shows their columns only when a folder holds some.
func TestInspectOps(t *testing.T) {
	var o opCounts
	for _, op := range []string{"I", "U", "D", "T", "L", "L", "R", "X"} {
		o.add(parquet.ValueOf(op))
	}
	o.add(parquet.Value{})
	if want := (opCounts{I: 1, U: 1, D: 1, T: 1, L: 2, R: 1, Other: 2}); o != want {
		t.Errorf("counts %+v, want %+v", o, want)
	}
	var b strings.Builder
	printSummary(&b, []*tableSummary{{Name: "public.a", Ops: opCounts{I: 3}}})
	if strings.Contains(b.String(), " L ") {
		t.Errorf("L and R columns without reload rows:\n%s", b.String())
	}
	b.Reset()
	printSummary(&b, []*tableSummary{{Name: "public.a", Ops: opCounts{I: 3}}, {Name: "public.b", Ops: opCounts{L: 5, R: 1}}})
	lines := strings.Split(b.String(), "\n")
	if !strings.Contains(lines[0], "T  L  R  LAST CDC LSN") || !regexp.MustCompile(`^public\.b .* 5\s+1\s+-$`).MatchString(lines[2]) {
		t.Errorf("summary with reload rows:\n%s", b.String())
	}
}
