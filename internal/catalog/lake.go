package catalog

import (
	"fmt"
	"strings"
	"time"

	"github.com/cdc2s3/cdc2s3/sink/pqfile"
)

// This file generates the SQL of the engines that read the bucket through a
// metastore (Athena's Glue Data Catalog, Spark's Hive metastore or Glue): per
// table, an external table over its folder (every LOAD and CDC row, typed as
// the files are) and a view of its current state, in database db. Both
// engines keep names in lower case; a table is <schema>_<table>, its change
// table <schema>_<table>_cdc (LakeName).

// metaColumns are the contract's metadata columns as an external table
// declares them (Hive types).
var metaColumns = [][2]string{
	{"op", "string"}, {"_cdc_commit_ts", "timestamp"}, {"_cdc_lsn", "bigint"}, {"_cdc_seq", "bigint"},
	{"_cdc_unchanged", "array<string>"}, {"_cdc_reload", "bigint"},
}

// LakeName is the name of t's view in a metastore: <schema>_<table> in
// lower case, every character other than a letter, a digit or _ as _.
func LakeName(t Table) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '_'
	}, t.Schema+"_"+t.Name)
}

// hiveType is the Hive (Glue, Spark DDL, Athena DDL) type of the files'
// column.
func hiveType(t pqfile.Type) string {
	var s string
	switch t.Kind {
	case pqfile.Bool:
		s = "boolean"
	case pqfile.Int16:
		s = "smallint"
	case pqfile.Int32:
		s = "int"
	case pqfile.Int64:
		s = "bigint"
	case pqfile.Float32:
		s = "float"
	case pqfile.Float64:
		s = "double"
	case pqfile.Decimal:
		s = fmt.Sprintf("decimal(%d,%d)", t.Precision, t.Scale)
	case pqfile.Bytes:
		s = "binary"
	case pqfile.Date:
		s = "date"
	case pqfile.Timestamp, pqfile.TimestampTZ:
		s = "timestamp"
	default:
		s = "string"
	}
	if t.List {
		s = "array<" + s + ">"
	}
	return s
}

// externalTable is the DDL of t's change table, dropped first so that a
// run after a schema change declares the new columns (the table is
// external: dropping it leaves the folder alone); tail follows the column
// list (STORED AS PARQUET for Athena, USING parquet for Spark).
func externalTable(db string, t Table, base, create, tail string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "DROP TABLE IF EXISTS `%[1]s`.`%[2]s_cdc`;\n%[3]s `%[1]s`.`%[2]s_cdc` (\n", db, LakeName(t), create)
	writeColumns(&b, t)
	fmt.Fprintf(&b, ")\n%s\nLOCATION %s", tail, sqlString(tableLocation(base, t)))
	return b.String()
}

// writeColumns writes the change table's column list, one a line: the
// metadata columns, then t's, with their Hive types.
func writeColumns(b *strings.Builder, t Table) {
	cols := append([][2]string{}, metaColumns...)
	for _, c := range t.Columns {
		cols = append(cols, [2]string{strings.ToLower(c.Name), hiveType(c.Type)})
	}
	for i, c := range cols {
		sep := ","
		if i == len(cols)-1 {
			sep = ""
		}
		fmt.Fprintf(b, "  `%s` %s%s\n", strings.ReplaceAll(c[0], "`", "``"), c[1], sep)
	}
}

// dialect is how an engine writes a missing value.
type dialect struct {
	typ   func(pqfile.Type) string                // a column type's name
	hex   func(lit string) string                 // bytes from a literal of hex digits
	array func(elems []string, typ string) string // an array of elems, of element type typ
	// utc is appended to a timestamptz's UTC text: "+00" where the type
	// keeps a zone (DuckDB's TIMESTAMPTZ), "" where it is a timestamp.
	utc string
}

// missingValue is c's missing value as an expression of its type in d.
func missingValue(c Column, d dialect) string {
	elem := d.typ(pqfile.Type{Kind: c.Type.Kind, Precision: c.Type.Precision, Scale: c.Type.Scale})
	scalar := func(v *string) string {
		switch {
		case v == nil:
			return "CAST(NULL AS " + elem + ")"
		case c.Type.Kind == pqfile.Bytes:
			return d.hex(sqlString(strings.TrimPrefix(*v, `\x`)))
		case c.Type.Kind == pqfile.TimestampTZ:
			return "CAST(" + sqlString(utcText(*v)+d.utc) + " AS " + elem + ")"
		}
		return "CAST(" + sqlString(*v) + " AS " + elem + ")"
	}
	if c.Missing == nil {
		return "CAST(NULL AS " + d.typ(c.Type) + ")"
	}
	if !c.Type.List {
		return scalar(c.Missing)
	}
	var elems []string
	for _, e := range arrayElems(*c.Missing) {
		elems = append(elems, scalar(e))
	}
	return d.array(elems, elem)
}

// utcText turns PostgreSQL's text of a timestamptz into UTC without a zone,
// as every engine's timestamp cast reads it (the files hold UTC); other
// text (infinity) is kept.
func utcText(s string) string {
	for _, layout := range []string{"2006-01-02 15:04:05.999999-07", "2006-01-02 15:04:05.999999-07:00", "2006-01-02 15:04:05.999999-07:00:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Format("2006-01-02 15:04:05.999999")
		}
	}
	return s
}

// sqlString quotes a string literal (the same in DuckDB, Trino and Spark
// with ANSI escapes).
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
