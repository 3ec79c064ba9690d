// Package oracle is the tests' judge of what cdc2s3 writes. It computes the
// current state of a table from the table's folder of Parquet files by the
// merge rule of the output contract (/work/shared/spec/output-format.md,
// section 4), independently of cdc2s3's own writer and readers: the Parquet
// files are decoded by DuckDB, run from Node.js (js/merge.mjs). It also reads
// the same table from PostgreSQL, and renders both sides in one canonical text
// form so that the two can be compared row for row.
//
// Canonical text is JSON, one string per value:
//
//	NULL                    null
//	boolean                 true, false
//	smallint/integer/bigint 42
//	real, double precision  shortest text that reads back as the same float32 or
//	                        float64, laid out like JavaScript's Number#toString
//	                        (0.1, 1e+30, -0), or "NaN", "Infinity", "-Infinity"
//	numeric(p,s), p <= 38   plain decimal, no trailing fractional zeros (1.5,
//	                        -0.001, 100); NaN and ±Infinity are NULL
//	other numeric           "1.500": PostgreSQL's exact text, as a string
//	bytea                   "\\x0aff": lower-case hex after \x
//	date                    "2024-01-31"; ±infinity is NULL
//	timestamp               "2024-01-31T12:00:00.000000"
//	timestamptz             "2024-01-31T12:00:00.000000Z" (UTC)
//	everything else         PostgreSQL's text output as a JSON string
//	arrays                  [1,null,3]: canonical elements, flattened row-major
//
// Years are astronomical (year 0 is 1 BC, "-0044-03-15" is 15 March 45 BC) and
// have at least four digits. Timestamps that are infinite or do not fit in
// int64 microseconds since 1970 are NULL, as the writer stores them.
package oracle

import (
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pglogrepl"
)

// Kind says how a column's values are stored in Parquet (output contract
// section 3) and so how they are canonicalized.
type Kind string

// The kinds. An array column has the kind of its elements and Column.Array set.
const (
	KindBool        Kind = "bool"        // BOOLEAN
	KindInt         Kind = "int"         // INT32 or INT64
	KindFloat4      Kind = "float4"      // FLOAT
	KindFloat8      Kind = "float8"      // DOUBLE
	KindDecimal     Kind = "decimal"     // DECIMAL(p,s): numeric with p <= 38 and 0 <= s <= p
	KindNumeric     Kind = "numeric"     // STRING: numeric without typmod, p > 38 or an odd scale
	KindText        Kind = "text"        // STRING: PostgreSQL's text output
	KindBytea       Kind = "bytea"       // BINARY
	KindDate        Kind = "date"        // DATE
	KindTimestamp   Kind = "timestamp"   // TIMESTAMP(MICROS, not adjusted to UTC)
	KindTimestampTZ Kind = "timestamptz" // TIMESTAMP(MICROS, adjusted to UTC)
)

// Column is one current column of a table.
type Column struct {
	Name  string
	Type  string // PostgreSQL's format_type, for messages only
	Kind  Kind
	Array bool // a LIST of Kind
}

// ColumnHistory is when a column appeared and the value that rows older than
// that take (PostgreSQL's attmissingval), from the tool's schema history.
type ColumnHistory struct {
	Name     string
	AddedLSN pglogrepl.LSN
	// AddedSeq is the _cdc_seq of the first row with the column: rows
	// before (AddedLSN, AddedSeq) take Missing.
	AddedSeq uint64
	Missing  *string // PostgreSQL's text output; nil is NULL
}

// Table describes a source table: what the merge needs and how to read it
// from PostgreSQL.
type Table struct {
	Schema string
	Name   string
	// Key is the primary key; empty means the table is a multiset.
	Key     []string
	Columns []Column
	// Partitioned is set for a declaratively partitioned root, which is read
	// with its partitions; any other table is read with ONLY, without
	// inheritance children.
	Partitioned bool
	// History holds the columns' appearance LSNs and missing values; a column
	// without an entry was there from LSN 0 on.
	History []ColumnHistory
	// Filter, when set, is a SQL condition on the source's rows: only rows
	// it holds for are expected in the destination (a publication's row
	// filter).
	Filter string
}

// ArraysAsText returns a copy of t for a destination written with the
// option that stores every array column as a STRING of PostgreSQL's text.
func (t Table) ArraysAsText() Table {
	t.Columns = slices.Clone(t.Columns)
	for i, c := range t.Columns {
		if c.Array {
			t.Columns[i].Array = false
			t.Columns[i].Kind = KindText
		}
	}
	return t
}

// column returns the named column.
func (t Table) column(name string) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// Row is one row of a table's state: the canonical text of each value, in
// the order of Table.Columns.
type Row []string

// String formats r for messages.
func (r Row) String() string {
	return "(" + strings.Join(r, ", ") + ")"
}

// maxDiffRows bounds how many differing rows Compare shows per side.
const maxDiffRows = 10

// Compare returns nil if want and got hold the same rows, as multisets, and
// otherwise an error that counts and shows the rows only one side holds.
func Compare(want, got []Row) error {
	w, g := sortRows(want), sortRows(got)
	var missing, extra []Row
	i, j := 0, 0
	for i < len(w) || j < len(g) {
		switch {
		case j == len(g) || (i < len(w) && cmpRow(w[i], g[j]) < 0):
			missing = append(missing, w[i])
			i++
		case i == len(w) || cmpRow(w[i], g[j]) > 0:
			extra = append(extra, g[j])
			j++
		default:
			i++
			j++
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "state differs: want %d rows, got %d; %d wanted rows missing, %d unexpected rows",
		len(want), len(got), len(missing), len(extra))
	show := func(title string, rows []Row) {
		if len(rows) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n%s:", title)
		for k, r := range rows {
			if k == maxDiffRows {
				fmt.Fprintf(&b, "\n  ... and %d more", len(rows)-maxDiffRows)
				break
			}
			fmt.Fprintf(&b, "\n  %s", r)
		}
	}
	show("missing (in want, not in got)", missing)
	show("unexpected (in got, not in want)", extra)
	return fmt.Errorf("%s", b.String())
}

func sortRows(rows []Row) []Row {
	s := slices.Clone(rows)
	slices.SortFunc(s, cmpRow)
	return s
}

func cmpRow(a, b Row) int {
	for k := 0; k < len(a) && k < len(b); k++ {
		if c := strings.Compare(a[k], b[k]); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}
