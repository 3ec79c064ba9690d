package pipeline

import (
	"slices"
	"testing"

	"github.com/cdc2s3/cdc2s3/decoder"
	"github.com/cdc2s3/cdc2s3/source"
)

// TestApplyWindow checks how a chunk's rows meet the changes of its window:
// changes that ended at or below the chunk's consistent point are already
// in the rows; later ones apply by key in commit order, an unchanged
// TOASTed value keeping the row's, a key change moving the row out of the
// chunk, a delete and re-insert bringing it back, and keys the chunk did
// not read left to the stream.
func TestApplyWindow(t *testing.T) {
	rel := &decoder.Relation{Columns: []decoder.Column{{Name: "id"}, {Name: "big"}, {Name: "v"}}}
	// The stream's relation lists the columns in another order than the
	// chunk: values go by name.
	swapped := &decoder.Relation{Columns: []decoder.Column{{Name: "v"}, {Name: "id"}, {Name: "big"}}}
	b := func(s string) []byte { return []byte(s) }
	c := &reloadChunk{
		cols:       []source.Column{{Name: "id"}, {Name: "big"}, {Name: "v"}},
		key:        []int{0},
		consistent: 100,
		rows: [][][]byte{
			{b("1"), b("B1"), b("a")},
			{b("2"), b("B2"), b("a")},
			{b("3"), b("B3"), b("a")},
			{b("4"), b("B4"), b("a")},
			{b("5"), b("B5"), b("a")},
		},
	}
	win := &reloadWindow{changes: []windowChange{
		// Ended below the consistent point: the snapshot has it already.
		{end: 90, op: decoder.OpDelete, rel: rel, values: [][]byte{b("1"), nil, nil}},
		// An update leaving the TOASTed column out.
		{end: 110, op: decoder.OpUpdate, rel: rel, values: [][]byte{b("2"), nil, b("u")}, unchanged: []string{"big"}},
		// A key change: the delete half takes 3 out; 30 is the stream's.
		{end: 120, op: decoder.OpDelete, rel: rel, values: [][]byte{b("3"), nil, nil}},
		{end: 120, op: decoder.OpInsert, rel: rel, values: [][]byte{b("30"), b("B3"), b("a")}},
		// Deleted and inserted again.
		{end: 130, op: decoder.OpDelete, rel: swapped, values: [][]byte{nil, b("4"), nil}},
		{end: 140, op: decoder.OpInsert, rel: swapped, values: [][]byte{b("new"), b("4"), b("N4")}},
		// Deleted.
		{end: 150, op: decoder.OpDelete, rel: rel, values: [][]byte{b("5"), nil, nil}},
	}}
	alive := []bool{true, true, true, true, true}
	applyWindow(c, win, alive)
	var got [][]string
	for i, row := range c.rows {
		if !alive[i] {
			continue
		}
		var r []string
		for _, v := range row {
			r = append(r, string(v))
		}
		got = append(got, r)
	}
	want := [][]string{{"1", "B1", "a"}, {"2", "B2", "u"}, {"4", "N4", "new"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("rows after the window:\n got %q\nwant %q", got, want)
	}

	// A truncate after the consistent point removes every row read.
	alive = []bool{true, true, true, true, true}
	applyWindow(c, &reloadWindow{changes: []windowChange{{end: 200, op: decoder.OpTruncate, rel: rel}}}, alive)
	if slices.Contains(alive, true) {
		t.Errorf("rows left after a truncate in the window: %v", alive)
	}
}
