// Package decoder turns pgoutput messages into the rows of the output
// contract. It is pure: bytes in, rows out, no I/O and no logging.
//
// It keeps the relation cache (keyed by relation id, as pgoutput expects),
// keeps NULL and "unchanged TOASTed value" apart, fills unchanged values from
// the before image when the server sent one (REPLICA IDENTITY FULL), and
// shapes updates the way the contract wants them: an update that changes the
// primary key, and any update of a table without a primary key, becomes a
// delete of the old row followed by an insert of the new one.
package decoder

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pglogrepl"
)

// Ops written in the Op column.
const (
	OpInsert   = 'I'
	OpUpdate   = 'U'
	OpDelete   = 'D'
	OpTruncate = 'T'
)

// Replica identity settings as pgoutput reports them (pg_class.relreplident).
const (
	IdentityDefault = 'd'
	IdentityNothing = 'n'
	IdentityFull    = 'f'
	IdentityIndex   = 'i'
)

// Column is one column of a published relation.
type Column struct {
	Name    string
	TypeOID uint32
	TypeMod int32
	// Identity reports whether the column is part of the replica identity
	// (pgoutput's flag 1). With REPLICA IDENTITY FULL every column is.
	Identity bool
}

// Relation is a published table as last described by a Relation message.
// A Relation is immutable: a changed description is a new *Relation, so a
// caller can tell a schema change by comparing pointers.
type Relation struct {
	ID              uint32
	Namespace       string
	Name            string
	ReplicaIdentity byte
	Columns         []Column
	// Key holds the indexes of the primary-key columns; nil when the table
	// has no primary key.
	Key []int
}

// sameColumns reports whether two descriptions agree on everything a
// Relation message carries.
func (r *Relation) sameColumns(o *Relation) bool {
	return r.Namespace == o.Namespace && r.Name == o.Name &&
		r.ReplicaIdentity == o.ReplicaIdentity && slices.Equal(r.Columns, o.Columns)
}

// Row is one output row.
type Row struct {
	Op  byte
	Rel *Relation
	// Values holds the text of each column of Rel, nil for NULL and for an
	// unchanged TOASTed value. The slices may alias the message bytes: use
	// them before the message buffer is reused.
	Values [][]byte
	// Unchanged names the columns whose value was not sent because it is an
	// unchanged TOASTed value that no before image could fill.
	Unchanged []string
}

// IdentityKey is the key a relation has until SetKey says otherwise:
// under the default replica identity the identity columns are the primary
// key; otherwise (FULL, USING INDEX, NOTHING) the primary key cannot be
// told from the stream, and the table is treated as having none.
func IdentityKey(rel *Relation) []int {
	if rel.ReplicaIdentity != IdentityDefault {
		return nil
	}
	var key []int
	for i, c := range rel.Columns {
		if c.Identity {
			key = append(key, i)
		}
	}
	return key
}

// ErrUnknownRelation is returned for a row message whose relation was never
// described, a protocol violation.
var ErrUnknownRelation = errors.New("row for a relation not described by a Relation message")

// Decoder decodes the row-level pgoutput messages of protocol version 1.
// It is not safe for concurrent use.
//
// Which columns form a relation's primary key decides how an update is
// shaped, and the stream cannot always tell (REPLICA IDENTITY FULL sends
// every column as identity). The decoder does not look it up: Decode
// returns each relation a Relation message describes, and the caller, who
// owns the catalog, may set its key with SetKey before decoding the rows
// that follow.
type Decoder struct {
	rels map[uint32]*Relation
}

// New returns a Decoder with an empty relation cache.
func New() *Decoder {
	return &Decoder{rels: map[uint32]*Relation{}}
}

// SetKey sets the primary key of relation id to the given column indexes
// (nil: none) and returns its current description, a new *Relation when
// the key changed. It fails for a relation not described yet.
func (d *Decoder) SetKey(id uint32, key []int) (*Relation, error) {
	rel, err := d.rel(id)
	if err != nil {
		return nil, err
	}
	if slices.Equal(rel.Key, key) {
		return rel, nil
	}
	n := *rel
	n.Key = slices.Clone(key)
	d.rels[id] = &n
	return &n, nil
}

// Relation returns the current description of relation id.
func (d *Decoder) Relation(id uint32) (*Relation, bool) {
	r, ok := d.rels[id]
	return r, ok
}

// Decode decodes one pgoutput message of protocol version 1 (a streamed
// message once Frame has taken its transaction id off) and appends the rows
// it produces to rows. A Relation message updates the cache, produces no
// row, and returns the relation it describes as described (with the key
// IdentityKey gives, or the one SetKey set if the description repeats the
// cached one); Begin, Commit, Origin, Type and logical decoding messages
// produce nothing (Frame reads the transaction boundaries).
func (d *Decoder) Decode(data []byte, rows []Row) (_ []Row, described *Relation, _ error) {
	rows, err := d.decode(data, rows)
	if err == nil && len(data) > 0 && data[0] == 'R' {
		described = d.rels[binary.BigEndian.Uint32(data[1:5])]
	}
	return rows, described, err
}

func (d *Decoder) decode(data []byte, rows []Row) ([]Row, error) {
	if len(data) == 0 {
		return rows, errors.New("empty pgoutput message")
	}
	switch data[0] {
	case 'I', 'U', 'D':
		// The hot path: row messages are read in place, without copying
		// values (pglogrepl allocates a struct per column and copies every
		// value byte by byte).
		if err := checkLayout(data); err != nil {
			return rows, fmt.Errorf("parse pgoutput %q message: %w", data[0], err)
		}
		return d.row(data, rows)
	}
	msg, err := parse(data)
	if err != nil {
		return rows, fmt.Errorf("parse pgoutput %q message: %w", data[0], err)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		d.relation(m)
		return rows, nil
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			rel, err := d.rel(id)
			if err != nil {
				return rows, err
			}
			rows = append(rows, Row{Op: OpTruncate, Rel: rel, Values: make([][]byte, len(rel.Columns))})
		}
		return rows, nil
	}
	return rows, nil
}

// parse checks the layout of data, then parses it with pglogrepl, which
// trusts the lengths it reads: a cut or corrupt message would make it index
// out of range, or allocate what a length field claims, up to 16 GiB.
func parse(data []byte) (msg pglogrepl.Message, err error) {
	if err := checkLayout(data); err != nil {
		return nil, err
	}
	if data[0] == 'I' && len(data) == 8 {
		// An insert into a table without columns (CREATE TABLE t ()),
		// which pglogrepl rejects as too short.
		return &pglogrepl.InsertMessage{
			RelationID: binary.BigEndian.Uint32(data[1:]),
			Tuple:      &pglogrepl.TupleData{},
		}, nil
	}
	defer func() {
		// checkLayout should have caught it; a panic is still an error.
		if p := recover(); p != nil {
			msg, err = nil, fmt.Errorf("malformed message: %v", p)
		}
	}()
	return pglogrepl.Parse(data)
}

// errShort reports a message that ends before its fields do.
var errShort = errors.New("message truncated")

// layout walks the fields of a message without decoding them.
type layout struct {
	b   []byte
	err error
}

func (l *layout) skip(n uint64) {
	if l.err != nil {
		return
	}
	if uint64(len(l.b)) < n {
		l.err = errShort
		return
	}
	l.b = l.b[n:]
}

// num reads a big-endian unsigned integer of n bytes.
func (l *layout) num(n int) uint64 {
	if l.err != nil {
		return 0
	}
	if len(l.b) < n {
		l.err = errShort
		return 0
	}
	var v uint64
	for _, c := range l.b[:n] {
		v = v<<8 | uint64(c)
	}
	l.b = l.b[n:]
	return v
}

func (l *layout) byte1() byte { return byte(l.num(1)) }

func (l *layout) str() {
	if l.err != nil {
		return
	}
	i := bytes.IndexByte(l.b, 0)
	if i < 0 {
		l.err = errShort
		return
	}
	l.b = l.b[i+1:]
}

func (l *layout) tuple() {
	n := l.num(2)
	for i := uint64(0); i < n && l.err == nil; i++ {
		switch k := l.byte1(); k {
		case pglogrepl.TupleDataTypeText, pglogrepl.TupleDataTypeBinary:
			l.skip(l.num(4))
		case pglogrepl.TupleDataTypeNull, pglogrepl.TupleDataTypeToast:
		default:
			if l.err == nil {
				l.err = fmt.Errorf("invalid tuple column kind %q", k)
			}
		}
	}
}

func (l *layout) expect(kinds string) byte {
	k := l.byte1()
	if l.err == nil && !strings.ContainsRune(kinds, rune(k)) {
		l.err = fmt.Errorf("invalid tuple type %q, want one of %q", k, kinds)
	}
	return k
}

// checkLayout checks that the fields of the message types pglogrepl.Parse
// does not check itself fit in data.
func checkLayout(data []byte) error {
	l := layout{b: data[1:]}
	switch data[0] {
	case 'R':
		l.skip(4) // relation id
		l.str()   // namespace
		l.str()   // name
		l.skip(1) // replica identity
		n := l.num(2)
		for i := uint64(0); i < n && l.err == nil; i++ {
			l.skip(1) // flags
			l.str()   // name
			l.skip(8) // type oid, typmod
		}
	case 'I':
		l.skip(4)
		l.expect("N")
		l.tuple()
	case 'U':
		l.skip(4)
		if l.expect("KON") != 'N' {
			l.tuple()
			l.expect("N")
		}
		l.tuple()
	case 'D':
		l.skip(4)
		l.expect("KO")
		l.tuple()
	case 'T':
		n := l.num(4)
		l.skip(1)     // options
		l.skip(4 * n) // relation ids
	case 'M':
		l.skip(1 + 8) // flags, LSN
		l.str()       // prefix
		l.skip(l.num(4))
	}
	return l.err
}

func (d *Decoder) rel(id uint32) (*Relation, error) {
	r, ok := d.rels[id]
	if !ok {
		return nil, fmt.Errorf("%w: relation id %d", ErrUnknownRelation, id)
	}
	return r, nil
}

func (d *Decoder) relation(m *pglogrepl.RelationMessage) {
	rel := &Relation{
		ID:              m.RelationID,
		Namespace:       m.Namespace,
		Name:            m.RelationName,
		ReplicaIdentity: m.ReplicaIdentity,
		Columns:         make([]Column, len(m.Columns)),
	}
	for i, c := range m.Columns {
		rel.Columns[i] = Column{Name: c.Name, TypeOID: c.DataType, TypeMod: c.TypeModifier, Identity: c.Flags&1 != 0}
	}
	rel.Key = IdentityKey(rel)
	// pgoutput repeats a Relation message after every reconnect and cache
	// invalidation; keep the old pointer (and the key SetKey gave it) when
	// nothing the stream shows changed.
	if old, ok := d.rels[m.RelationID]; ok && old.sameColumns(rel) {
		return
	}
	d.rels[m.RelationID] = rel
}

// row decodes an Insert, Update or Delete message whose layout
// checkLayout has verified.
func (d *Decoder) row(data []byte, rows []Row) ([]Row, error) {
	rel, err := d.rel(binary.BigEndian.Uint32(data[1:5]))
	if err != nil {
		return rows, err
	}
	b := data[5:]
	switch data[0] {
	case 'I':
		vals, unchanged, _ := values(rel, b[1:], nil) // after 'N'
		return append(rows, Row{Op: OpInsert, Rel: rel, Values: vals, Unchanged: unchanged}), nil
	case 'D':
		vals, _, _ := values(rel, b[1:], nil) // after 'K' or 'O'
		return append(rows, Row{Op: OpDelete, Rel: rel, Values: vals}), nil
	}
	// Update: an optional old tuple ('K' key or 'O' full before image),
	// then 'N' and the new tuple.
	kind := b[0]
	var old [][]byte
	if kind == 'K' || kind == 'O' {
		old, _, b = values(rel, b[1:], nil)
	}
	var before [][]byte
	if kind == 'O' {
		before = old
	}
	after, unchanged, _ := values(rel, b[1:], before)
	switch {
	case kind == 'K':
		// pgoutput sends the old key only when a key column changed.
		return append(rows,
			Row{Op: OpDelete, Rel: rel, Values: old},
			Row{Op: OpInsert, Rel: rel, Values: after, Unchanged: unchanged}), nil
	case before != nil && (rel.Key == nil || keyChanged(rel.Key, before, after)):
		return append(rows,
			Row{Op: OpDelete, Rel: rel, Values: before},
			Row{Op: OpInsert, Rel: rel, Values: after, Unchanged: unchanged}), nil
	}
	return append(rows, Row{Op: OpUpdate, Rel: rel, Values: after, Unchanged: unchanged}), nil
}

// values reads one tuple (as checkLayout verified it) into per-column text
// that aliases b, and returns the bytes after it. Unchanged TOASTed values
// are taken from before when it holds them, else listed as unchanged.
// Columns beyond the relation's are ignored; missing ones are NULL.
func values(rel *Relation, b []byte, before [][]byte) (vals [][]byte, unchanged []string, rest []byte) {
	vals = make([][]byte, len(rel.Columns))
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	for i := 0; i < n; i++ {
		kind := b[0]
		b = b[1:]
		var v []byte
		switch kind {
		case pglogrepl.TupleDataTypeText, pglogrepl.TupleDataTypeBinary:
			l := int(binary.BigEndian.Uint32(b))
			v, b = b[4:4+l:4+l], b[4+l:]
		}
		if i >= len(vals) {
			continue
		}
		switch kind {
		case pglogrepl.TupleDataTypeText, pglogrepl.TupleDataTypeBinary:
			vals[i] = v // never nil: an empty value is not NULL
		case pglogrepl.TupleDataTypeToast:
			if before != nil && before[i] != nil {
				vals[i] = before[i]
			} else {
				unchanged = append(unchanged, rel.Columns[i].Name)
			}
		}
	}
	return vals, unchanged, b
}

func keyChanged(key []int, before, after [][]byte) bool {
	for _, i := range key {
		if (before[i] == nil) != (after[i] == nil) || string(before[i]) != string(after[i]) {
			return true
		}
	}
	return false
}
