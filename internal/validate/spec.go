package validate

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/cdc2s3/cdc2s3/internal/catalog"
	"github.com/cdc2s3/cdc2s3/source"
	"github.com/jackc/pgx/v5/pgtype"
)

// Table pairs a published source table with its folder's plan.
type Table struct {
	// Source is the table as the publication publishes it (its column
	// list and row filter), read in the snapshot.
	Source source.Table
	// Plan is the folder's plan from the destination's schema history;
	// nil when the destination has no folder for the table.
	Plan *catalog.Table
}

// String returns schema.table.
func (t Table) String() string { return t.Source.String() }

// spec is how one table is compared: the columns both sides have, in the
// source's order, each with its kind and the merge rule's missing value,
// and the key the folder is merged by.
type spec struct {
	name string
	src  source.Table // restricted to the compared columns
	plan catalog.Table
	cols []specColumn
	// key indexes cols: the folder's primary key; empty: a multiset.
	key   []int
	notes []string
}

// specColumn is one compared column.
type specColumn struct {
	name string
	kind ColumnKind
	// added is the position of the column's first row (the schema
	// history's added_lsn and added_seq); older rows take missing.
	added   position
	isAdded bool
	missing []byte // the encoded missing value
}

// newSpec builds the comparison of t, resolving the source's column types
// with r.
func newSpec(ctx context.Context, r *source.Resolver, t Table) (*spec, error) {
	s := &spec{name: t.String(), src: t.Source}
	if t.Plan != nil {
		s.plan = *t.Plan
	}
	planCols := map[string]catalog.Column{}
	for _, c := range s.plan.Columns {
		planCols[c.Name] = c
	}
	var kept []source.Column
	var onlySource []string
	for _, c := range t.Source.Columns {
		pc, ok := planCols[c.Name]
		if !ok && t.Plan != nil {
			onlySource = append(onlySource, c.Name)
			continue
		}
		ct, err := r.Resolve(ctx, c.TypeOID, c.TypeMod)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		sc := specColumn{name: c.Name, kind: kindOf(ct, pc.Type.List || t.Plan == nil)}
		if pc.Added() {
			sc.added, sc.isAdded = position{pc.AddedLSN, pc.AddedSeq}, true
		}
		var missing []byte
		if pc.Missing != nil {
			missing = []byte(*pc.Missing)
		}
		if sc.missing, err = appendPG(nil, sc.kind, missing); err != nil {
			return nil, fmt.Errorf("%s: the missing value of column %s: %w", s.name, c.Name, err)
		}
		kept = append(kept, c)
		s.cols = append(s.cols, sc)
	}
	s.src.Columns = kept
	s.noteColumns(onlySource)
	s.key = s.keyColumns(t)
	return s, nil
}

// noteColumns records the columns only one side has: the stream sees a
// column added or dropped with the table's next change (the contract's
// section 5), so they are left out of the comparison rather than counted.
func (s *spec) noteColumns(onlySource []string) {
	if len(onlySource) > 0 {
		s.notes = append(s.notes, fmt.Sprintf("not compared, not in the destination's schema history yet (it records a column with the table's next change): %s", strings.Join(onlySource, ", ")))
	}
	var onlyDest []string
	for _, c := range s.plan.Columns {
		if !slices.ContainsFunc(s.cols, func(sc specColumn) bool { return sc.name == c.Name }) {
			onlyDest = append(onlyDest, c.Name)
		}
	}
	if len(onlyDest) > 0 {
		s.notes = append(s.notes, fmt.Sprintf("not compared, not published by the source (dropped, or left out of the publication's column list): %s", strings.Join(onlyDest, ", ")))
	}
}

// keyColumns returns the compared columns of the folder's key (the source's
// when the destination has no folder); none when a key column is not
// compared, and the table is then compared as a multiset.
func (s *spec) keyColumns(t Table) []int {
	names := s.plan.Key
	if t.Plan == nil {
		names = t.Source.Key
	}
	var key []int
	for _, n := range names {
		i := slices.IndexFunc(s.cols, func(c specColumn) bool { return c.name == n })
		if i < 0 {
			s.notes = append(s.notes, fmt.Sprintf("compared as a multiset: the key column %s is not compared", n))
			return nil
		}
		key = append(key, i)
	}
	return key
}

// keyed reports whether the table is merged by a key.
func (s *spec) keyed() bool { return len(s.key) > 0 }

// kindOf maps a column type (domains and arrays looked through) to its
// kind by the contract's type table. An array the destination does not
// hold as a LIST (destList false: written with --arrays-as-text) is text.
func kindOf(t source.ColumnType, destList bool) ColumnKind {
	if t.Array && !destList {
		return ColumnKind{Kind: KindText}
	}
	k := KindText
	switch t.OID {
	case pgtype.BoolOID:
		k = KindBool
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
		k = KindInt
	case pgtype.Float4OID:
		k = KindFloat32
	case pgtype.Float8OID:
		k = KindFloat64
	case pgtype.NumericOID:
		k = numericKind(t.Mod)
	case pgtype.ByteaOID:
		k = KindBytes
	case pgtype.DateOID:
		k = KindDate
	case pgtype.TimestampOID:
		k = KindTimestamp
	case pgtype.TimestamptzOID:
		k = KindTimestampTZ
	}
	return ColumnKind{Kind: k, List: t.Array}
}

// numericKind decodes numeric's typmod ((precision << 16 | scale) + 4, the
// scale an 11-bit signed number): DECIMAL for 1 <= p <= 38 and
// 0 <= s <= p, else the exact text.
func numericKind(typmod int32) Kind {
	if typmod < 4 {
		return KindText
	}
	m := typmod - 4
	p := int(m>>16) & 0xffff
	sc := int(m & 0x7ff)
	if sc > 1023 {
		sc -= 2048
	}
	if p < 1 || p > 38 || sc < 0 || sc > p {
		return KindText
	}
	return KindDecimal
}
