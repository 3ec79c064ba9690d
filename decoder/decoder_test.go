package decoder_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pglogrepl"

	"github.com/cdc2s3/cdc2s3/decoder"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// wire appends the field types of the PostgreSQL protocol ("Logical
// Replication Message Formats", protocol version 1).
type wire []byte

func (w wire) byte1(b byte) wire     { return append(w, b) }
func (w wire) int16(v uint16) wire   { return binary.BigEndian.AppendUint16(w, v) }
func (w wire) int32(v uint32) wire   { return binary.BigEndian.AppendUint32(w, v) }
func (w wire) int64(v uint64) wire   { return binary.BigEndian.AppendUint64(w, v) }
func (w wire) str(s string) wire     { return append(append(w, s...), 0) }
func (w wire) bytes(b []byte) wire   { return append(w, b...) }
func (w wire) tuple(cols []tv) wire  { return appendTuple(w, cols) }
func (w wire) relID(id uint32) wire  { return w.int32(id) }
func (w wire) done() []byte          { return []byte(w) }
func (w wire) kind(k byte) wire      { return w.byte1(k) }
func (w wire) lsn(v uint64) wire     { return w.int64(v) }
func (w wire) typmod(v int32) wire   { return w.int32(uint32(v)) }
func (w wire) oid(v uint32) wire     { return w.int32(v) }
func (w wire) pgTime(us int64) wire  { return w.int64(uint64(us)) }
func (w wire) count16(n int) wire    { return w.int16(uint16(n)) }
func (w wire) count32(n int) wire    { return w.int32(uint32(n)) }
func (w wire) flag(b bool) wire      { return w.byte1(map[bool]byte{false: 0, true: 1}[b]) }
func (w wire) ident(ident byte) wire { return w.byte1(ident) }

// col describes one column of a Relation message.
type col struct {
	key    bool // flag 1: part of the replica identity
	name   string
	oid    uint32
	typmod int32
}

// tv is one TupleData column: 'n' NULL, 'u' unchanged TOASTed value, 't'
// text (or 'b' binary) with its data.
type tv struct {
	kind byte
	data string
}

func txt(s string) tv { return tv{kind: 't', data: s} }

var (
	null  = tv{kind: 'n'}
	toast = tv{kind: 'u'}
)

func appendTuple(w wire, cols []tv) wire {
	w = w.count16(len(cols))
	for _, c := range cols {
		w = w.kind(c.kind)
		if c.kind == 't' || c.kind == 'b' {
			w = w.count32(len(c.data)).bytes([]byte(c.data))
		}
	}
	return w
}

// Builders of whole messages, type byte included.

func relationMsg(id uint32, ns, name string, ident byte, cols ...col) []byte {
	w := wire{'R'}.relID(id).str(ns).str(name).ident(ident).count16(len(cols))
	for _, c := range cols {
		var f byte
		if c.key {
			f = 1
		}
		w = w.byte1(f).str(c.name).oid(c.oid).typmod(c.typmod)
	}
	return w.done()
}

func insertMsg(id uint32, tup ...tv) []byte {
	return wire{'I'}.relID(id).kind('N').tuple(tup).done()
}

// updateMsg builds an Update; old is sent as a 'K' or 'O' submessage when
// oldKind is not 0.
func updateMsg(id uint32, oldKind byte, old, tup []tv) []byte {
	w := wire{'U'}.relID(id)
	if oldKind != 0 {
		w = w.kind(oldKind).tuple(old)
	}
	return w.kind('N').tuple(tup).done()
}

func deleteMsg(id uint32, oldKind byte, old ...tv) []byte {
	return wire{'D'}.relID(id).kind(oldKind).tuple(old).done()
}

func truncateMsg(options byte, ids ...uint32) []byte {
	w := wire{'T'}.count32(len(ids)).byte1(options)
	for _, id := range ids {
		w = w.relID(id)
	}
	return w.done()
}

func beginMsg(finalLSN uint64, commitTime int64, xid uint32) []byte {
	return wire{'B'}.lsn(finalLSN).pgTime(commitTime).int32(xid).done()
}

func commitMsg(commitLSN, endLSN uint64, commitTime int64) []byte {
	return wire{'C'}.byte1(0).lsn(commitLSN).lsn(endLSN).pgTime(commitTime).done()
}

func originMsg(lsn uint64, name string) []byte {
	return wire{'O'}.lsn(lsn).str(name).done()
}

func typeMsg(oid uint32, ns, name string) []byte {
	return wire{'Y'}.oid(oid).str(ns).str(name).done()
}

func logicalMsg(transactional bool, lsn uint64, prefix string, content []byte) []byte {
	return wire{'M'}.flag(transactional).lsn(lsn).str(prefix).count32(len(content)).bytes(content).done()
}

// The relations used below. Type OIDs: 23 int4, 25 text, 1043 varchar.
const (
	relUsers  = 16384 // default replica identity, primary key (id)
	relFull   = 16390 // REPLICA IDENTITY FULL
	relOrders = 16400 // default replica identity, composite key (a, b)
	relEmpty  = 16410 // CREATE TABLE empty () REPLICA IDENTITY FULL
)

func usersRel() []byte {
	return relationMsg(relUsers, "public", "users", decoder.IdentityDefault,
		col{key: true, name: "id", oid: 23, typmod: -1},
		col{name: "name", oid: 1043, typmod: 68},
		col{name: "bio", oid: 25, typmod: -1},
	)
}

func fullRel() []byte {
	return relationMsg(relFull, "app", "Events", decoder.IdentityFull,
		col{key: true, name: "id", oid: 23, typmod: -1},
		col{key: true, name: "payload", oid: 25, typmod: -1},
		col{key: true, name: "note", oid: 25, typmod: -1},
	)
}

func ordersRel() []byte {
	return relationMsg(relOrders, "shop", "orders", decoder.IdentityDefault,
		col{key: true, name: "a", oid: 23, typmod: -1},
		col{name: "x", oid: 25, typmod: -1},
		col{key: true, name: "b", oid: 23, typmod: -1},
	)
}

func emptyRel() []byte {
	return relationMsg(relEmpty, "public", "empty", decoder.IdentityFull)
}

// pkFirst is the key function of a table whose primary key is its first column.
func pkFirst(*decoder.Relation) []int { return []int{0} }

// noPK is the key function of a table without a primary key.
func noPK(*decoder.Relation) []int { return nil }

// render prints rows one per line: op, table, values (NULL or quoted), and
// the unchanged column names when there are any.
func render(rows []decoder.Row) string {
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "%c %s.%s [", r.Op, r.Rel.Namespace, r.Rel.Name)
		for i, v := range r.Values {
			if i > 0 {
				b.WriteByte(' ')
			}
			if v == nil {
				b.WriteString("NULL")
			} else {
				fmt.Fprintf(&b, "%q", v)
			}
		}
		b.WriteByte(']')
		if len(r.Unchanged) > 0 {
			fmt.Fprintf(&b, " unchanged=%s", strings.Join(r.Unchanged, ","))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// decodeAll feeds msgs to d and returns the rows of the last one.
func decodeAll(t *testing.T, d *keyed, msgs ...[]byte) []decoder.Row {
	t.Helper()
	var rows []decoder.Row
	for i, m := range msgs {
		var err error
		rows, err = d.Decode(m, nil)
		if err != nil {
			t.Fatalf("message %d (%q): %v", i, m[0], err)
		}
	}
	return rows
}

// TestBuilders checks the builders against pglogrepl's own parser, so that
// the decoder tests below feed it real wire bytes.
func TestBuilders(t *testing.T) {
	m, err := pglogrepl.Parse(relationMsg(7, "s", "t", 'f',
		col{key: true, name: "a", oid: 23, typmod: -1}, col{name: "b", oid: 1700, typmod: 655366}))
	if err != nil {
		t.Fatal(err)
	}
	rel := m.(*pglogrepl.RelationMessage)
	if rel.RelationID != 7 || rel.Namespace != "s" || rel.RelationName != "t" || rel.ReplicaIdentity != 'f' ||
		rel.ColumnNum != 2 || rel.Columns[0].Flags != 1 || rel.Columns[0].Name != "a" || rel.Columns[0].DataType != 23 ||
		rel.Columns[0].TypeModifier != -1 || rel.Columns[1].Flags != 0 || rel.Columns[1].TypeModifier != 655366 {
		t.Errorf("relation: %+v %+v %+v", rel, rel.Columns[0], rel.Columns[1])
	}

	m, err = pglogrepl.Parse(updateMsg(9, 'O', []tv{txt("1"), null}, []tv{txt(""), toast}))
	if err != nil {
		t.Fatal(err)
	}
	up := m.(*pglogrepl.UpdateMessage)
	if up.RelationID != 9 || up.OldTupleType != 'O' || len(up.OldTuple.Columns) != 2 || len(up.NewTuple.Columns) != 2 ||
		string(up.OldTuple.Columns[0].Data) != "1" || up.OldTuple.Columns[1].DataType != 'n' ||
		up.NewTuple.Columns[0].DataType != 't' || len(up.NewTuple.Columns[0].Data) != 0 || up.NewTuple.Columns[1].DataType != 'u' {
		t.Errorf("update: %+v", up)
	}

	m, err = pglogrepl.Parse(deleteMsg(9, 'K', txt("5"), null))
	if err != nil {
		t.Fatal(err)
	}
	if del := m.(*pglogrepl.DeleteMessage); del.OldTupleType != 'K' || string(del.OldTuple.Columns[0].Data) != "5" {
		t.Errorf("delete: %+v", del)
	}

	m, err = pglogrepl.Parse(truncateMsg(pglogrepl.TruncateOptionCascade, 1, 2, 3))
	if err != nil {
		t.Fatal(err)
	}
	if tr := m.(*pglogrepl.TruncateMessage); !slices.Equal(tr.RelationIDs, []uint32{1, 2, 3}) || tr.Option != 1 {
		t.Errorf("truncate: %+v", tr)
	}

	m, err = pglogrepl.Parse(commitMsg(0x10, 0x20, 0))
	if err != nil {
		t.Fatal(err)
	}
	if c := m.(*pglogrepl.CommitMessage); c.CommitLSN != 0x10 || c.TransactionEndLSN != 0x20 {
		t.Errorf("commit: %+v", c)
	}

	m, err = pglogrepl.Parse(logicalMsg(true, 0x30, "pfx", []byte("hello")))
	if err != nil {
		t.Fatal(err)
	}
	if lm := m.(*pglogrepl.LogicalDecodingMessage); !lm.Transactional || lm.Prefix != "pfx" || string(lm.Content) != "hello" {
		t.Errorf("message: %+v", lm)
	}
}

func TestRelationCache(t *testing.T) {
	calls := 0
	d := newKeyed(func(rel *decoder.Relation) []int {
		calls++
		return decoder.IdentityKey(rel)
	})
	if _, ok := d.Relation(relUsers); ok {
		t.Fatal("relation known before any Relation message")
	}
	decodeAll(t, d, usersRel())
	first, ok := d.Relation(relUsers)
	if !ok {
		t.Fatal("relation not cached")
	}
	want := &decoder.Relation{
		ID: relUsers, Namespace: "public", Name: "users", ReplicaIdentity: decoder.IdentityDefault,
		Columns: []decoder.Column{
			{Name: "id", TypeOID: 23, TypeMod: -1, Identity: true},
			{Name: "name", TypeOID: 1043, TypeMod: 68},
			{Name: "bio", TypeOID: 25, TypeMod: -1},
		},
		Key: []int{0},
	}
	if !reflect.DeepEqual(first, want) {
		t.Errorf("relation:\n got %+v\nwant %+v", first, want)
	}

	// pgoutput repeats the description after a reconnect: same pointer.
	decodeAll(t, d, usersRel())
	if again, _ := d.Relation(relUsers); again != first {
		t.Error("an identical Relation message replaced the cached *Relation")
	}
	rows := decodeAll(t, d, insertMsg(relUsers, txt("1"), txt("a"), null))
	if rows[0].Rel != first {
		t.Error("row does not point at the cached relation")
	}

	changes := map[string][]byte{
		"typmod": relationMsg(relUsers, "public", "users", decoder.IdentityDefault,
			col{key: true, name: "id", oid: 23, typmod: -1}, col{name: "name", oid: 1043, typmod: 104}, col{name: "bio", oid: 25, typmod: -1}),
		"added column": relationMsg(relUsers, "public", "users", decoder.IdentityDefault,
			col{key: true, name: "id", oid: 23, typmod: -1}, col{name: "name", oid: 1043, typmod: 68}, col{name: "bio", oid: 25, typmod: -1},
			col{name: "age", oid: 23, typmod: -1}),
		"renamed table": relationMsg(relUsers, "public", "people", decoder.IdentityDefault,
			col{key: true, name: "id", oid: 23, typmod: -1}, col{name: "name", oid: 1043, typmod: 68}, col{name: "bio", oid: 25, typmod: -1}),
		"replica identity": relationMsg(relUsers, "public", "users", decoder.IdentityFull,
			col{key: true, name: "id", oid: 23, typmod: -1}, col{key: true, name: "name", oid: 1043, typmod: 68}, col{key: true, name: "bio", oid: 25, typmod: -1}),
		"key": relationMsg(relUsers, "public", "users", decoder.IdentityDefault,
			col{key: true, name: "id", oid: 23, typmod: -1}, col{key: true, name: "name", oid: 1043, typmod: 68}, col{name: "bio", oid: 25, typmod: -1}),
	}
	for name, msg := range changes {
		t.Run(name, func(t *testing.T) {
			decodeAll(t, d, usersRel())
			before, _ := d.Relation(relUsers)
			decodeAll(t, d, msg)
			after, _ := d.Relation(relUsers)
			if after == before {
				t.Fatal("a changed description kept the old *Relation")
			}
			// The old description stays as it was: rows already decoded
			// keep pointing at what they were decoded with.
			if !reflect.DeepEqual(before.Columns, want.Columns) || before.Name != "users" {
				t.Errorf("old relation modified: %+v", before)
			}
			rows := decodeAll(t, d, insertMsg(relUsers, slices.Repeat([]tv{null}, len(after.Columns))...))
			if rows[0].Rel != after || len(rows[0].Values) != len(after.Columns) {
				t.Errorf("row after the change: rel %p (want %p), %d values", rows[0].Rel, after, len(rows[0].Values))
			}
		})
	}
	if calls != 2+2*len(changes) {
		t.Errorf("key function called %d times for %d Relation messages", calls, 2+2*len(changes))
	}

	// Relations are cached by id: another id is another table.
	decodeAll(t, d, ordersRel())
	if o, _ := d.Relation(relOrders); o == nil || o.Name != "orders" || !slices.Equal(o.Key, []int{0, 2}) {
		t.Errorf("second relation: %+v", o)
	}
}

func TestIdentityKey(t *testing.T) {
	cols := []decoder.Column{{Name: "a", Identity: true}, {Name: "b"}, {Name: "c", Identity: true}}
	for _, tc := range []struct {
		ident byte
		cols  []decoder.Column
		want  []int
	}{
		{decoder.IdentityDefault, cols, []int{0, 2}},
		{decoder.IdentityDefault, []decoder.Column{{Name: "a"}, {Name: "b"}}, nil}, // no primary key
		{decoder.IdentityDefault, nil, nil},
		{decoder.IdentityFull, []decoder.Column{{Name: "a", Identity: true}, {Name: "b", Identity: true}}, nil},
		{decoder.IdentityIndex, cols, nil},
		{decoder.IdentityNothing, cols, nil},
	} {
		got := decoder.IdentityKey(&decoder.Relation{ReplicaIdentity: tc.ident, Columns: tc.cols})
		if !slices.Equal(got, tc.want) {
			t.Errorf("IdentityKey(%c, %v) = %v, want %v", tc.ident, tc.cols, got, tc.want)
		}
	}

	// New(nil) uses IdentityKey.
	d := newKeyed(nil)
	decodeAll(t, d, ordersRel(), fullRel())
	if r, _ := d.Relation(relOrders); !slices.Equal(r.Key, []int{0, 2}) {
		t.Errorf("default key of orders = %v", r.Key)
	}
	if r, _ := d.Relation(relFull); r.Key != nil {
		t.Errorf("default key of a FULL table = %v, want none", r.Key)
	}
}

// TestRows decodes one row message after the relations are described and
// compares the rendered rows.
func TestRows(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys func(*decoder.Relation) []int
		msg  []byte
		want string
	}{
		{
			name: "insert",
			msg:  insertMsg(relUsers, txt("1"), txt("Ann"), txt("x\x00y\n")),
			want: `I public.users ["1" "Ann" "x\x00y\n"]`,
		},
		{
			name: "insert NULL and empty string stay apart",
			msg:  insertMsg(relUsers, txt("2"), null, txt("")),
			want: `I public.users ["2" NULL ""]`,
		},
		{
			name: "insert binary column",
			msg:  insertMsg(relUsers, tv{kind: 'b', data: "\x00\x01"}, null, null),
			want: `I public.users ["\x00\x01" NULL NULL]`,
		},
		{
			name: "update without old tuple",
			msg:  updateMsg(relUsers, 0, nil, []tv{txt("1"), txt("Bob"), txt("new bio")}),
			want: `U public.users ["1" "Bob" "new bio"]`,
		},
		{
			name: "update without old tuple, unchanged TOAST",
			msg:  updateMsg(relUsers, 0, nil, []tv{txt("1"), toast, toast}),
			want: `U public.users ["1" NULL NULL] unchanged=name,bio`,
		},
		{
			name: "update setting NULL and empty string",
			msg:  updateMsg(relUsers, 0, nil, []tv{txt("1"), txt(""), null}),
			want: `U public.users ["1" "" NULL]`,
		},
		{
			name: "update of the key ('K')",
			msg:  updateMsg(relUsers, 'K', []tv{txt("1"), null, null}, []tv{txt("2"), txt("Ann"), toast}),
			want: "D public.users [\"1\" NULL NULL]\n" +
				`I public.users ["2" "Ann" NULL] unchanged=bio`,
		},
		{
			name: "update of a composite key ('K')",
			msg:  updateMsg(relOrders, 'K', []tv{txt("1"), null, txt("2")}, []tv{txt("1"), toast, txt("3")}),
			want: "D shop.orders [\"1\" NULL \"2\"]\n" +
				`I shop.orders ["1" NULL "3"] unchanged=x`,
		},
		{
			name: "FULL with primary key, key unchanged: fill from before image",
			keys: pkFirst,
			msg:  updateMsg(relFull, 'O', []tv{txt("1"), txt("big"), txt("n1")}, []tv{txt("1"), toast, txt("n2")}),
			want: `U app.Events ["1" "big" "n2"]`,
		},
		{
			name: "FULL with primary key, key unchanged, before value NULL",
			keys: pkFirst,
			msg:  updateMsg(relFull, 'O', []tv{txt("1"), null, txt("")}, []tv{txt("1"), null, null}),
			want: `U app.Events ["1" NULL NULL]`,
		},
		{
			name: "FULL with primary key, before image without the value",
			keys: pkFirst,
			msg:  updateMsg(relFull, 'O', []tv{txt("1"), toast, txt("n")}, []tv{txt("1"), toast, txt("n")}),
			want: `U app.Events ["1" NULL "n"] unchanged=payload`,
		},
		{
			name: "FULL with primary key, key changed",
			keys: pkFirst,
			msg:  updateMsg(relFull, 'O', []tv{txt("1"), txt("big"), txt("n1")}, []tv{txt("2"), toast, txt("n1")}),
			want: "D app.Events [\"1\" \"big\" \"n1\"]\n" +
				`I app.Events ["2" "big" "n1"]`,
		},
		{
			name: "FULL with primary key, key from NULL to empty string",
			keys: func(*decoder.Relation) []int { return []int{2} },
			msg:  updateMsg(relFull, 'O', []tv{txt("1"), txt("p"), null}, []tv{txt("1"), txt("p"), txt("")}),
			want: "D app.Events [\"1\" \"p\" NULL]\n" +
				`I app.Events ["1" "p" ""]`,
		},
		{
			name: "FULL without primary key",
			keys: noPK,
			msg:  updateMsg(relFull, 'O', []tv{txt("1"), txt("big"), null}, []tv{txt("1"), toast, txt("n")}),
			want: "D app.Events [\"1\" \"big\" NULL]\n" +
				`I app.Events ["1" "big" "n"]`,
		},
		{
			name: "FULL without primary key, nothing changed",
			keys: noPK,
			msg:  updateMsg(relFull, 'O', []tv{txt("1"), txt("a"), txt("b")}, []tv{txt("1"), txt("a"), txt("b")}),
			want: "D app.Events [\"1\" \"a\" \"b\"]\n" +
				`I app.Events ["1" "a" "b"]`,
		},
		{
			name: "FULL by default (IdentityKey: no primary key)",
			msg:  updateMsg(relFull, 'O', []tv{txt("1"), txt("a"), txt("b")}, []tv{txt("1"), txt("a"), txt("c")}),
			want: "D app.Events [\"1\" \"a\" \"b\"]\n" +
				`I app.Events ["1" "a" "c"]`,
		},
		{
			name: "delete by key ('K')",
			msg:  deleteMsg(relUsers, 'K', txt("7"), null, null),
			want: `D public.users ["7" NULL NULL]`,
		},
		{
			name: "delete with before image ('O')",
			msg:  deleteMsg(relFull, 'O', txt("7"), txt(""), null),
			want: `D app.Events ["7" "" NULL]`,
		},
		{
			name: "truncate of several tables",
			msg:  truncateMsg(pglogrepl.TruncateOptionCascade|pglogrepl.TruncateOptionRestartIdentity, relUsers, relFull, relOrders),
			want: "T public.users [NULL NULL NULL]\n" +
				"T app.Events [NULL NULL NULL]\n" +
				"T shop.orders [NULL NULL NULL]",
		},
		{
			name: "insert into a table without columns",
			msg:  insertMsg(relEmpty),
			want: `I public.empty []`,
		},
		{
			name: "update of a table without columns",
			keys: noPK,
			msg:  updateMsg(relEmpty, 'O', nil, nil),
			want: "D public.empty []\nI public.empty []",
		},
		{
			name: "truncate of a table without columns",
			msg:  truncateMsg(0, relEmpty),
			want: `T public.empty []`,
		},
		{name: "begin", msg: beginMsg(0x16B3748, 1, 734)},
		{name: "commit", msg: commitMsg(0x16B3748, 0x16B3778, 1)},
		{name: "origin", msg: originMsg(0x16B3748, "node_a")},
		{name: "type", msg: typeMsg(16500, "public", "mood")},
		{name: "logical message", msg: logicalMsg(false, 0x16B3748, "cdc2s3", []byte("x"))},
		{name: "logical message, transactional, empty", msg: logicalMsg(true, 0x16B3748, "", nil)},
		{name: "relation", msg: relationMsg(1, "s", "t", decoder.IdentityNothing)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newKeyed(tc.keys)
			decodeAll(t, d, usersRel(), fullRel(), ordersRel(), emptyRel())
			rows, err := d.Decode(tc.msg, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.TrimSuffix(render(rows), "\n")
			if got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
			for _, r := range rows {
				rel, _ := d.Relation(r.Rel.ID)
				if r.Rel != rel {
					t.Errorf("row of %s does not point at the cached relation", r.Rel.Name)
				}
				if len(r.Values) != len(r.Rel.Columns) {
					t.Errorf("%d values for %d columns", len(r.Values), len(r.Rel.Columns))
				}
			}
		})
	}
}

// TestNullVersusEmpty checks the representation itself, not only its
// rendering: NULL is a nil slice, the empty string a non-nil empty one.
func TestNullVersusEmpty(t *testing.T) {
	d := newKeyed(nil)
	rows := decodeAll(t, d, usersRel(), insertMsg(relUsers, txt("1"), null, txt("")))
	if v := rows[0].Values[1]; v != nil {
		t.Errorf("NULL decoded as %q", v)
	}
	if v := rows[0].Values[2]; v == nil || len(v) != 0 {
		t.Errorf("empty string decoded as %#v", v)
	}
}

func TestDecodeAppends(t *testing.T) {
	d := newKeyed(nil)
	decodeAll(t, d, usersRel())
	prev := []decoder.Row{{Op: 'X'}}
	rows, err := d.Decode(insertMsg(relUsers, txt("1"), null, null), prev)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Op != 'X' || rows[1].Op != decoder.OpInsert {
		t.Errorf("rows = %+v", rows)
	}
	rows, err = d.Decode(beginMsg(1, 2, 3), rows)
	if err != nil || len(rows) != 2 {
		t.Errorf("begin: %d rows, %v", len(rows), err)
	}
}

func TestUnknownRelation(t *testing.T) {
	for name, msg := range map[string][]byte{
		"insert":         insertMsg(99, txt("1")),
		"update":         updateMsg(99, 0, nil, []tv{txt("1")}),
		"update K":       updateMsg(99, 'K', []tv{txt("1")}, []tv{txt("2")}),
		"delete":         deleteMsg(99, 'K', txt("1")),
		"truncate":       truncateMsg(0, 99),
		"truncate mixed": truncateMsg(0, relUsers, 99),
	} {
		t.Run(name, func(t *testing.T) {
			d := newKeyed(nil)
			decodeAll(t, d, usersRel())
			_, err := d.Decode(msg, nil)
			if !errors.Is(err, decoder.ErrUnknownRelation) {
				t.Fatalf("err = %v, want ErrUnknownRelation", err)
			}
			if !strings.Contains(err.Error(), "99") {
				t.Errorf("error does not name the relation id: %v", err)
			}
		})
	}
}

// TestMalformed feeds invalid messages, including every proper prefix of
// valid ones: each must be an error, never a panic and never rows.
func TestMalformed(t *testing.T) {
	bad := map[string][]byte{
		"empty":                       {},
		"unknown type":                {'Z', 0, 0},
		"stream start (v2 only)":      {'S', 0, 0, 0, 1, 1},
		"insert without N":            wire{'I'}.relID(relUsers).kind('X').tuple([]tv{txt("1")}).done(),
		"update bad old kind":         wire{'U'}.relID(relUsers).kind('X').tuple([]tv{txt("1")}).done(),
		"update K without N":          wire{'U'}.relID(relUsers).kind('K').tuple([]tv{txt("1"), null, null}).kind('X').tuple([]tv{txt("2"), null, null}).done(),
		"delete bad old kind":         wire{'D'}.relID(relUsers).kind('N').tuple([]tv{txt("1")}).done(),
		"tuple length too large":      wire{'I'}.relID(relUsers).kind('N').count16(1).kind('t').int32(0xFFFFFFF0).bytes([]byte("ab")).done(),
		"tuple column kind":           wire{'I'}.relID(relUsers).kind('N').count16(3).kind('t').count32(1).bytes([]byte("1")).kind('x').kind('n').done(),
		"truncate count too large":    wire{'T'}.int32(0xFFFFFFFF).byte1(0).relID(relUsers).done(),
		"relation column count":       wire{'R'}.relID(1).str("s").str("t").ident('d').count16(1000).done(),
		"message content length":      wire{'M'}.flag(true).lsn(1).str("p").int32(0xFFFFFFFF).bytes([]byte("abc")).done(),
		"message prefix unterminated": wire{'M'}.flag(true).lsn(1).bytes([]byte("prefix-without-nul")).done(),
	}
	valid := map[string][]byte{
		"relation": usersRel(),
		"insert":   insertMsg(relUsers, txt("1"), null, toast),
		"update":   updateMsg(relUsers, 0, nil, []tv{txt("1"), txt("b"), toast}),
		"update K": updateMsg(relUsers, 'K', []tv{txt("1"), null, null}, []tv{txt("2"), txt("b"), toast}),
		"update O": updateMsg(relUsers, 'O', []tv{txt("1"), txt("a"), txt("c")}, []tv{txt("2"), txt("b"), toast}),
		"delete":   deleteMsg(relUsers, 'K', txt("1"), null, null),
		"truncate": truncateMsg(0, relUsers, relUsers),
		"begin":    beginMsg(1, 2, 3),
		"commit":   commitMsg(1, 2, 3),
		"origin":   originMsg(1, "o"),
		"type":     typeMsg(1, "s", "t"),
		"message":  logicalMsg(true, 1, "p", []byte("content")),
	}
	for name, msg := range valid {
		for n := range len(msg) {
			bad[fmt.Sprintf("%s cut at %d", name, n)] = msg[:n]
		}
	}
	for name, msg := range bad {
		t.Run(name, func(t *testing.T) {
			d := newKeyed(nil)
			decodeAll(t, d, usersRel())
			rows, err := d.Decode(slices.Clone(msg), nil)
			if err == nil {
				t.Errorf("no error for %q, rows:\n%s", msg, render(rows))
			}
			if len(rows) != 0 {
				t.Errorf("%d rows returned with the error", len(rows))
			}
		})
	}
	// The cut-off relation messages left the cached description alone.
	d := newKeyed(nil)
	decodeAll(t, d, usersRel())
	before, _ := d.Relation(relUsers)
	for n := range len(usersRel()) {
		d.Decode(ordersRel()[:n], nil)
	}
	if after, _ := d.Relation(relUsers); after != before {
		t.Error("a malformed Relation message changed the cache")
	}
}

// TestGolden decodes a stream of transactions and compares the rows with
// testdata/stream.golden (go test -update rewrites it).
func TestGolden(t *testing.T) {
	d := newKeyed(func(rel *decoder.Relation) []int {
		if rel.ID == relFull {
			return []int{0}
		}
		return decoder.IdentityKey(rel)
	})
	steps := []struct {
		comment string
		msg     []byte
	}{
		{"begin", beginMsg(0x1000, 0, 1)},
		{"relation users", usersRel()},
		{"relation Events (FULL, key id)", fullRel()},
		{"insert", insertMsg(relUsers, txt("1"), txt("Ann"), txt("long text"))},
		{"insert with NULL and empty", insertMsg(relUsers, txt("2"), null, txt(""))},
		{"update, TOAST unchanged", updateMsg(relUsers, 0, nil, []tv{txt("1"), txt("Anna"), toast})},
		{"update of the key", updateMsg(relUsers, 'K', []tv{txt("2"), null, null}, []tv{txt("3"), null, toast})},
		{"delete", deleteMsg(relUsers, 'K', txt("1"), null, null)},
		{"insert FULL", insertMsg(relFull, txt("10"), txt("payload"), null)},
		{"update FULL, key kept", updateMsg(relFull, 'O', []tv{txt("10"), txt("payload"), null}, []tv{txt("10"), toast, txt("note")})},
		{"update FULL, key changed", updateMsg(relFull, 'O', []tv{txt("10"), txt("payload"), txt("note")}, []tv{txt("11"), toast, txt("note")})},
		{"delete FULL", deleteMsg(relFull, 'O', txt("11"), txt("payload"), txt("note"))},
		{"logical message", logicalMsg(true, 0x1010, "app", []byte("hi"))},
		{"users gains a column", relationMsg(relUsers, "public", "users", decoder.IdentityDefault,
			col{key: true, name: "id", oid: 23, typmod: -1}, col{name: "name", oid: 1043, typmod: 68},
			col{name: "bio", oid: 25, typmod: -1}, col{name: "age", oid: 23, typmod: -1})},
		{"insert with the new column", insertMsg(relUsers, txt("4"), txt("Dan"), null, txt("40"))},
		{"truncate both", truncateMsg(0, relUsers, relFull)},
		{"commit", commitMsg(0x1020, 0x1048, 0)},
	}
	var b strings.Builder
	for _, s := range steps {
		rows, err := d.Decode(s.msg, nil)
		if err != nil {
			t.Fatalf("%s: %v", s.comment, err)
		}
		fmt.Fprintf(&b, "# %s\n%s", s.comment, render(rows))
	}
	golden := filepath.Join("testdata", "stream.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, []byte(b.String())) {
		t.Errorf("rows differ from %s (go test -update to rewrite):\n%s", golden, b.String())
	}
}

// keyed decodes as the pipeline's writer does: it sets the key of every
// relation a Relation message describes from keys (the catalog, there),
// or leaves the key the stream gives when keys is nil.
type keyed struct {
	*decoder.Decoder
	keys func(*decoder.Relation) []int
}

func newKeyed(keys func(*decoder.Relation) []int) *keyed {
	return &keyed{Decoder: decoder.New(), keys: keys}
}

// Decode is decoder.Decode followed by SetKey for a described relation.
func (k *keyed) Decode(data []byte, rows []decoder.Row) ([]decoder.Row, error) {
	rows, rel, err := k.Decoder.Decode(data, rows)
	if err != nil || rel == nil || k.keys == nil {
		return rows, err
	}
	_, err = k.SetKey(rel.ID, k.keys(rel))
	return rows, err
}

// TestSetKey checks that a key set for a relation shapes its updates, is
// kept while pgoutput repeats the same description, and that a key change
// gives a new *Relation while rows decoded before keep the old one.
func TestSetKey(t *testing.T) {
	d := decoder.New()
	if _, err := d.SetKey(relFull, []int{0}); !errors.Is(err, decoder.ErrUnknownRelation) {
		t.Fatalf("SetKey before the relation is described: %v", err)
	}
	_, rel, err := d.Decode(fullRel(), nil)
	if err != nil || rel == nil || rel.Key != nil {
		t.Fatalf("Relation message: described %+v, err %v (want a relation without key: FULL identity)", rel, err)
	}
	upd := updateMsg(relFull, 'O', []tv{txt("1"), txt("a"), txt("x")}, []tv{txt("1"), txt("b"), txt("x")})
	rows, _, err := d.Decode(upd, nil)
	if err != nil || render(rows) != "D app.Events [\"1\" \"a\" \"x\"]\nI app.Events [\"1\" \"b\" \"x\"]\n" {
		t.Fatalf("update without a key: %v\n%s", err, render(rows))
	}
	keyedRel, err := d.SetKey(relFull, []int{0})
	if err != nil || keyedRel == rel || !slices.Equal(keyedRel.Key, []int{0}) {
		t.Fatalf("SetKey: %+v, %v", keyedRel, err)
	}
	if rel.Key != nil {
		t.Error("SetKey changed the old description")
	}
	if again, _ := d.SetKey(relFull, []int{0}); again != keyedRel {
		t.Error("setting the same key again replaced the *Relation")
	}
	_, described, _ := d.Decode(fullRel(), nil)
	if described != keyedRel {
		t.Error("a repeated description dropped the key SetKey gave")
	}
	rows, _, err = d.Decode(upd, nil)
	if err != nil || render(rows) != "U app.Events [\"1\" \"b\" \"x\"]\n" || rows[0].Rel != keyedRel {
		t.Fatalf("update with the key unchanged: %v\n%s", err, render(rows))
	}
}
