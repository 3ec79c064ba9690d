package decoder_test

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/cdc2s3/cdc2s3/decoder"
)

// fuzzSeeds are valid messages for the relations fuzzDecoder describes;
// testdata/fuzz/FuzzDecode holds them and the inputs the fuzzer found.
func fuzzSeeds() [][]byte {
	return [][]byte{
		usersRel(),
		fullRel(),
		insertMsg(relUsers, txt("1"), null, toast),
		insertMsg(relFull, txt("1"), txt(""), null),
		updateMsg(relUsers, 0, nil, []tv{txt("1"), toast, txt("x")}),
		updateMsg(relUsers, 'K', []tv{txt("1"), null, null}, []tv{txt("2"), txt("b"), toast}),
		updateMsg(relFull, 'O', []tv{txt("1"), txt("a"), null}, []tv{txt("1"), toast, txt("c")}),
		updateMsg(relFull, 'O', []tv{txt("1"), txt("a"), null}, []tv{txt("2"), toast, txt("c")}),
		deleteMsg(relUsers, 'K', txt("1"), null, null),
		deleteMsg(relFull, 'O', txt("1"), txt("a"), null),
		truncateMsg(1, relUsers, relFull),
		beginMsg(0x1000, 1, 2),
		commitMsg(0x1000, 0x1028, 1),
		originMsg(0x1000, "origin"),
		typeMsg(16500, "public", "mood"),
		logicalMsg(true, 0x1000, "prefix", []byte("content")),
		// A tuple with more and with fewer columns than the relation.
		insertMsg(relUsers, txt("1"), txt("2"), txt("3"), txt("4")),
		insertMsg(relUsers, txt("1")),
	}
}

// fuzzDecoder returns a decoder that knows relUsers (primary key) and
// relFull (REPLICA IDENTITY FULL, key from the key function), so that row
// messages reach the row-shaping code.
func fuzzDecoder(t *testing.T) *keyed {
	d := newKeyed(func(rel *decoder.Relation) []int {
		if rel.ID == relFull && len(rel.Columns) > 0 {
			return []int{0}
		}
		return decoder.IdentityKey(rel)
	})
	decodeAll(t, d, usersRel(), fullRel())
	return d
}

func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := fuzzDecoder(t)
		orig := slices.Clone(data)
		rows, err := d.Decode(data, nil)
		if !slices.Equal(data, orig) {
			t.Fatal("Decode modified its input")
		}
		if err != nil {
			if len(rows) != 0 && data[0] != 'T' {
				t.Fatalf("%d rows with error %v", len(rows), err)
			}
			return
		}
		for _, r := range rows {
			if !slices.Contains([]byte{decoder.OpInsert, decoder.OpUpdate, decoder.OpDelete, decoder.OpTruncate}, r.Op) {
				t.Fatalf("op %q", r.Op)
			}
			if cur, ok := d.Relation(r.Rel.ID); !ok || cur != r.Rel {
				t.Fatalf("row of relation %d not pointing at the cache", r.Rel.ID)
			}
			if len(r.Values) != len(r.Rel.Columns) {
				t.Fatalf("%d values for %d columns", len(r.Values), len(r.Rel.Columns))
			}
			for _, name := range r.Unchanged {
				i := slices.IndexFunc(r.Rel.Columns, func(c decoder.Column) bool { return c.Name == name })
				if i < 0 || r.Values[i] != nil {
					t.Fatalf("unchanged column %q: index %d, not NULL", name, i)
				}
			}
			if r.Op == decoder.OpTruncate && slices.ContainsFunc(r.Values, func(v []byte) bool { return v != nil }) {
				t.Fatal("truncate row with a value")
			}
		}
		// A new description is followed by rows for it, as pgoutput does.
		if data[0] == 'R' {
			id := binary.BigEndian.Uint32(data[1:5])
			rel, ok := d.Relation(id)
			if !ok {
				t.Fatalf("relation %d not cached", id)
			}
			vals := make([]tv, len(rel.Columns))
			for i := range vals {
				vals[i] = []tv{txt("v"), null, toast}[i%3]
			}
			for _, m := range [][]byte{
				insertMsg(id, vals...),
				updateMsg(id, 0, nil, vals),
				updateMsg(id, 'O', vals, vals),
				updateMsg(id, 'K', vals, vals),
				deleteMsg(id, 'O', vals...),
				truncateMsg(0, id),
			} {
				rows, err := d.Decode(m, nil)
				if err != nil {
					t.Fatalf("row for the new relation: %v", err)
				}
				for _, r := range rows {
					if r.Rel != rel || len(r.Values) != len(rel.Columns) {
						t.Fatalf("row %+v for relation %+v", r, rel)
					}
				}
			}
		}
	})
}
