package validate

import (
	"strings"
	"testing"

	"github.com/cdc2s3/cdc2s3/sink/pqfile"
)

var (
	intCol = func(name string) testCol {
		return testCol{name: name, typ: pqfile.Type{Kind: pqfile.Int32}, kind: ColumnKind{Kind: KindInt}}
	}
	textCol = func(name string) testCol {
		return testCol{name: name, typ: pqfile.Type{Kind: pqfile.String}, kind: ColumnKind{Kind: KindText}}
	}
)

// TestUnchangedCarriedForward: a value an update marks unchanged
// (_cdc_unchanged) is the one the latest earlier row sent.
func TestUnchangedCarriedForward(t *testing.T) {
	tt := newTestTable(t, []testCol{intCol("id"), textCol("big"), intCol("small")}, "id")
	tt.write("LOAD00000001.parquet", nil, false, ins(100, 0, s("1"), s("large one"), s("1")), ins(100, 0, s("2"), s("large two"), s("2")))
	tt.write(cdc(200, 300), nil, false,
		upd(200, 0, []string{"big"}, s("1"), nil, s("10")),
		upd(250, 0, nil, s("2"), s("now small"), s("20")),
		upd(300, 0, []string{"big"}, s("2"), nil, s("21")))
	expect(t, tt.compare(300, 0, []*string{s("1"), s("large one"), s("10")}, []*string{s("2"), s("now small"), s("21")}), 2, 2, 0, 0, 0)
	// Without the carry, big would be NULL.
	r := tt.compare(300, 0, []*string{s("1"), nil, s("10")}, []*string{s("2"), s("now small"), s("21")})
	expect(t, r, 2, 2, 0, 0, 1)
}

// TestMissingValues: rows older than a column's (added_lsn, added_seq)
// take its missing value, also rows of the same transaction before the
// ALTER and values carried forward from such rows; a column dropped and
// added again does not bring back its old values.
func TestMissingValues(t *testing.T) {
	c := intCol("c")
	c.added, c.missing = position{200, 1}, s("7")
	d := textCol("d") // re-added at 400 without a default: old values are gone
	d.added = position{400, 0}
	tt := newTestTable(t, []testCol{intCol("id"), textCol("big"), c, d}, "id")
	tt.write("LOAD00000001.parquet", []string{"id", "big", "d"}, false,
		ins(100, 0, s("1"), s("x"), s("old d")), ins(100, 0, s("2"), s("y"), s("old d")), ins(100, 0, s("3"), s("z"), s("old d")))
	tt.write(cdc(200, 200), []string{"id", "big", "d"}, false, upd(200, 0, nil, s("2"), s("y2"), s("old d")))
	tt.write(cdc(201, 300), []string{"id", "big", "c"}, false,
		ins(200, 1, s("4"), s("w"), nil),                  // c sent as NULL at its added position: NULL
		upd(300, 0, []string{"big"}, s("3"), nil, s("8"))) // big carried from the LOAD row
	tt.write(cdc(400, 400), nil, false, upd(400, 0, nil, s("4"), s("w"), nil, s("new d")))
	want := [][]*string{
		{s("1"), s("x"), s("7"), nil},
		{s("2"), s("y2"), s("7"), nil},
		{s("3"), s("z"), s("8"), nil},
		{s("4"), s("w"), nil, s("new d")},
	}
	expect(t, tt.compare(400, 0, want...), 4, 4, 0, 0, 0)
	// Without the rule, c would be NULL and d "old d" in rows 1 and 2.
	want[0] = []*string{s("1"), s("x"), nil, s("old d")}
	expect(t, tt.compare(400, 0, want...), 4, 4, 0, 0, 1)
}

// TestCuts: a truncate ends the history before it; a reload's L rows count
// once its R row is in, and then replace everything up to its cut; rows
// after the position do not count.
func TestCuts(t *testing.T) {
	tt := newTestTable(t, []testCol{intCol("id"), textCol("v")}, "id")
	tt.write("LOAD00000001.parquet", nil, false, ins(100, 0, s("1"), s("a")), ins(100, 0, s("2"), s("b")))
	tt.write(cdc(200, 210), nil, false, ins(200, 0, s("3"), s("c")), trunc(210, 0))
	tt.write(cdc(220, 220), nil, false, ins(220, 0, s("4"), s("d")))
	after := [][]*string{{s("4"), s("d")}}
	expect(t, tt.compare(205, 0, []*string{s("1"), s("a")}, []*string{s("2"), s("b")}, []*string{s("3"), s("c")}), 3, 3, 0, 0, 0)
	expect(t, tt.compare(210, 0), 0, 0, 0, 0, 0)
	expect(t, tt.compare(220, 0, after...), 1, 1, 0, 0, 0)

	// A reload cut at 230: its L rows at 240 and 250, a change of key 5
	// between them, its marker at 260, a change after it.
	tt.write(cdc(240, 240), nil, true, reloaded(240, 0, 230, s("4"), s("d")), reloaded(240, 1, 230, s("5"), s("e")))
	tt.write(cdc(245, 245), nil, false, upd(245, 0, nil, s("5"), s("e2")))
	tt.write(cdc(250, 250), nil, true, reloaded(250, 0, 230, s("6"), s("f")))
	tt.write(cdc(260, 260), []string{}, true, row{m: pqfile.Meta{Op: 'R', LSN: 260, Reload: 230}})
	tt.write(cdc(270, 270), nil, false, del(270, 0, s("6"), nil))
	// Before the marker the L rows count for nothing: the state is the
	// stream's (key 4 from 220, key 5 from the update at 245).
	expect(t, tt.compare(255, 0, after[0], []*string{s("5"), s("e2")}), 2, 2, 0, 0, 0)
	// With it, the L rows and what followed them.
	expect(t, tt.compare(270, 0, []*string{s("4"), s("d")}, []*string{s("5"), s("e2")}), 2, 2, 0, 0, 0)
	r := tt.compare(265, 0, []*string{s("4"), s("d")}, []*string{s("5"), s("e2")})
	expect(t, r, 2, 3, 0, 1, 0)
	if len(r.ExtraKeys) != 1 || r.ExtraKeys[0] != "(id=6)" {
		t.Errorf("extra %v, want (id=6)", r.ExtraKeys)
	}
}

// TestMultiset: a table without a key is a multiset: I and L add a row, D
// removes one equal row; LOAD rows that are equal are not duplicates.
func TestMultiset(t *testing.T) {
	tt := newTestTable(t, []testCol{intCol("a"), textCol("b")})
	tt.write("LOAD00000001.parquet", nil, false, ins(100, 0, s("1"), s("dup")), ins(100, 0, s("1"), s("dup")), ins(100, 0, nil, nil))
	tt.write(cdc(200, 201), nil, false, del(200, 0, s("1"), s("dup")), ins(201, 0, s("3"), s("new")), ins(201, 1, s("3"), s("new")))
	src := [][]*string{{s("1"), s("dup")}, {nil, nil}, {s("3"), s("new")}, {s("3"), s("new")}}
	expect(t, tt.compare(201, 0, src...), 4, 4, 0, 0, 0)
	r := tt.compare(201, 0, src[:3]...)
	expect(t, r, 3, 4, 0, 1, 0)
	if len(r.ExtraKeys) != 1 || r.ExtraKeys[0] != `(a=3, b="new")` {
		t.Errorf("extra %v", r.ExtraKeys)
	}
	// The same CDC file again under another name: a change twice.
	tt.write(cdc(201, 202), nil, false, del(200, 0, s("1"), s("dup")), ins(201, 0, s("3"), s("new")), ins(201, 1, s("3"), s("new")))
	r = tt.compare(202, 0, src...)
	expect(t, r, 4, 4, 0, 3, 0)
}

// TestDifferences: each kind of difference is counted and shown by key; a
// change in the folder twice is an extra row; objects that are no
// contract file are listed.
func TestDifferences(t *testing.T) {
	tt := newTestTable(t, []testCol{intCol("id"), textCol("v")}, "id")
	tt.write("LOAD00000001.parquet", nil, false, ins(100, 0, s("1"), s("a")), ins(100, 0, s("2"), s("b")), ins(100, 0, s("3"), s("c")))
	tt.write(cdc(200, 200), nil, false, upd(200, 0, nil, s("1"), s("a2")), del(200, 1, s("3"), nil), ins(200, 2, s("4"), s("d")))
	src := [][]*string{{s("1"), s("a2")}, {s("2"), s("b")}, {s("4"), s("d")}}
	r := tt.compare(200, 0, src...)
	expect(t, r, 3, 3, 0, 0, 0)
	if r.Differs() {
		t.Errorf("differs: %+v", r)
	}

	r = tt.compare(200, 0, []*string{s("1"), s("a2")}, []*string{s("2"), s("B")}, []*string{s("5"), s("e")})
	expect(t, r, 3, 3, 1, 1, 1)
	if strings.Join(r.MissingKeys, ",") != "(id=5)" || strings.Join(r.ExtraKeys, ",") != "(id=4)" ||
		len(r.Mismatches) != 1 || r.Mismatches[0].Key != "(id=2)" || r.Mismatches[0].Columns[0] != (ColumnDiff{"v", `"B"`, `"b"`}) {
		t.Errorf("got missing %v extra %v mismatches %+v", r.MissingKeys, r.ExtraKeys, r.Mismatches)
	}

	// The CDC file copied under a later name: every change in it twice.
	tt.write(cdc(200, 201), nil, false, upd(200, 0, nil, s("1"), s("a2")), del(200, 1, s("3"), nil), ins(200, 2, s("4"), s("d")))
	r = tt.compare(201, 0, src...)
	expect(t, r, 3, 3, 0, 3, 0)
	if !strings.Contains(strings.Join(r.ExtraKeys, "|"), "(id=4): the change at 0/C8 (seq 2) is in the folder twice") {
		t.Errorf("extra %v", r.ExtraKeys)
	}
	// A LOAD file copied: in a keyed table, duplicates too.
	if err := tt.store.Delete(t.Context(), tt.dir+cdc(200, 201)); err != nil {
		t.Fatal(err)
	}
	tt.write("LOAD00000002.parquet", nil, false, ins(100, 0, s("2"), s("b")))
	expect(t, tt.compare(200, 0, src...), 3, 3, 0, 1, 0)

	// Stray objects: listed; a Parquet file among them is read as
	// readers read it.
	if err := tt.store.Delete(t.Context(), tt.dir+"LOAD00000002.parquet"); err != nil {
		t.Fatal(err)
	}
	tt.write("part-0.parquet", nil, false, ins(150, 0, s("9"), s("stray")))
	if err := tt.store.Put(t.Context(), tt.dir+"notes.txt", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	r = tt.compare(200, 0, src...)
	expect(t, r, 3, 4, 0, 1, 0)
	if len(r.Files) != 2 || !strings.HasPrefix(r.Files[0], "notes.txt: not a Parquet file") || !strings.HasPrefix(r.Files[1], "part-0.parquet: not a LOAD or CDC file name") {
		t.Errorf("files %q", r.Files)
	}
}

// TestKeyChange: a primary-key update is a D of the old key and an I of the
// new one.
func TestKeyChange(t *testing.T) {
	tt := newTestTable(t, []testCol{intCol("id"), textCol("big")}, "id")
	tt.write("LOAD00000001.parquet", nil, false, ins(100, 0, s("1"), s("x")))
	tt.write(cdc(200, 200), nil, false, del(200, 0, s("1"), nil), ins(200, 1, s("50"), s("x")))
	expect(t, tt.compare(200, 0, []*string{s("50"), s("x")}), 1, 1, 0, 0, 0)
	expect(t, tt.compare(200, 0, []*string{s("1"), s("x")}), 1, 1, 1, 1, 0)
}
