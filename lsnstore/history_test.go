package lsnstore

import (
	"slices"
	"testing"

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
