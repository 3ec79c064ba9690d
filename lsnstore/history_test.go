package lsnstore

import (
	"slices"
	"testing"

	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/jackc/pglogrepl"
)

func TestHistoryKeys(t *testing.T) {
	var h History
	if _, ok := h.KeyAt(100); ok {
		t.Fatal("a key in an empty history")
	}
	if !h.ObserveKey([]string{"id"}, 0) || h.ObserveKey([]string{"id"}, 50) {
		t.Fatal("ObserveKey: a new key not recorded, or the same one recorded twice")
	}
	if !h.ObserveKey(nil, 200) || !h.ObserveKey([]string{"id", "region"}, 300) {
		t.Fatal("ObserveKey: a changed key not recorded")
	}
	for _, c := range []struct {
		lsn  uint64
		want []string
	}{{0, []string{"id"}}, {199, []string{"id"}}, {200, []string{}}, {299, []string{}}, {300, []string{"id", "region"}}, {1000, []string{"id", "region"}}} {
		got, ok := h.KeyAt(pglsn(c.lsn))
		if !ok || !slices.Equal(got, c.want) {
			t.Errorf("KeyAt(%d) = %v, %t; want %v", c.lsn, got, ok, c.want)
		}
	}
}

func pglsn(v uint64) pglogrepl.LSN { return pglogrepl.LSN(v) }

// TestObserveAttNums checks that the first numbers seen are recorded
// without a change of column, that a new number under a live column's name
// ends its incarnation and starts one at the position seen, with the
// missing value asked for, and that the same numbers again change nothing.
func TestObserveAttNums(t *testing.T) {
	h := &History{}
	h.Observe([]string{"id", "c"}, sink.Pos{}, nil)
	if changed, readded := h.ObserveAttNums(map[string]int16{"id": 1, "c": 2}, sink.Pos{LSN: 10}, nil); !changed || readded {
		t.Fatalf("first numbers: changed %v, readded %v", changed, readded)
	}
	if changed, readded := h.ObserveAttNums(map[string]int16{"id": 1, "c": 2}, sink.Pos{LSN: 20}, nil); changed || readded {
		t.Fatalf("same numbers: changed %v, readded %v", changed, readded)
	}
	seven := "7"
	asked := ""
	changed, readded := h.ObserveAttNums(map[string]int16{"id": 1, "c": 3}, sink.Pos{LSN: 30, Seq: 2}, func(name string) (*string, bool) {
		asked = name
		return &seven, false
	})
	if !changed || !readded || asked != "c" {
		t.Fatalf("new number: changed %v, readded %v, missing value asked for %q", changed, readded, asked)
	}
	if got := h.Live(); len(got) != 2 || got[0] != "id" || got[1] != "c" {
		t.Errorf("live columns %v, want [id c]", got)
	}
	old, cur := h.Columns[1], h.Columns[2]
	if old.DroppedLSN != 30 || old.AttNum != 2 || cur.AddedLSN != 30 || cur.AddedSeq != 2 || cur.AttNum != 3 || cur.Missing == nil || *cur.Missing != "7" {
		t.Errorf("incarnations: old %+v, new %+v", old, cur)
	}
	if changed, _ := h.ObserveAttNums(map[string]int16{"id": 1, "c": 3}, sink.Pos{LSN: 40}, nil); changed {
		t.Error("the new number seen again changed the history")
	}
}
