package catalog

import (
	"fmt"
	"strings"

	"github.com/cdc2s3/cdc2s3/sink/pqfile"
)

// DuckDB returns the script that makes each table a view
// "<schema>"."<table>" of its current state over the folder under base (a
// local directory or s3://bucket/prefix, read through DuckDB's httpfs
// settings), with exactly the table's columns.
func DuckDB(base string, tables []Table) string {
	var b strings.Builder
	b.WriteString("-- cdc2s3 catalog --format duckdb: one view per table, its current state by the merge rule\n")
	b.WriteString("-- of docs/output-format.md section 6 (version 2). Generated; run it again after a schema change.\n")
	schemas := map[string]bool{}
	for _, t := range tables {
		if !schemas[t.Schema] {
			schemas[t.Schema] = true
			fmt.Fprintf(&b, "CREATE SCHEMA IF NOT EXISTS %s;\n", duckIdent(t.Schema))
		}
	}
	for _, t := range tables {
		fmt.Fprintf(&b, "\n-- %s.%s\nCREATE OR REPLACE VIEW %s.%s AS\n%s;\n", t.Schema, t.Name, duckIdent(t.Schema), duckIdent(t.Name), duckView(base, t))
	}
	return b.String()
}

// duckView is the SELECT of a table's current state.
func duckView(base string, t Table) string {
	if t.Empty {
		cols := make([]string, len(t.Columns))
		for i, c := range t.Columns {
			cols[i] = "CAST(NULL AS " + duckType(c.Type) + ") AS " + duckIdent(c.Name)
		}
		return "SELECT " + strings.Join(cols, ", ") + " WHERE false"
	}
	// The typed empty side of UNION ALL BY NAME gives every column the
	// files may lack (the metadata columns of a folder never reloaded or
	// never holding unchanged TOAST values, a column no file has yet) a
	// NULL of its type.
	typed := []string{"CAST(NULL AS VARCHAR) AS Op", "CAST(NULL AS BIGINT) AS _cdc_lsn", "CAST(NULL AS BIGINT) AS _cdc_seq",
		"CAST(NULL AS VARCHAR[]) AS _cdc_unchanged", "CAST(NULL AS BIGINT) AS _cdc_reload"}
	for _, c := range t.Columns {
		typed = append(typed, "CAST(NULL AS "+duckType(c.Type)+") AS "+duckIdent(c.Name))
	}
	glob := strings.TrimSuffix(base, "/") + "/" + t.Dir + "**/*.parquet"
	var b strings.Builder
	fmt.Fprintf(&b, `WITH files AS (
    SELECT * FROM read_parquet(%s, union_by_name = true)
    UNION ALL BY NAME SELECT %s WHERE false),
  done AS (SELECT DISTINCT _cdc_reload AS id FROM files WHERE Op = 'R'),
  cut AS (SELECT CASE Op WHEN 'T' THEN _cdc_lsn ELSE _cdc_reload END AS tl,
                 CASE Op WHEN 'T' THEN _cdc_seq ELSE 9223372036854775807 END AS ts
          FROM files WHERE Op IN ('T', 'R') ORDER BY tl DESC, ts DESC LIMIT 1),
  live AS (SELECT f.* FROM files f LEFT JOIN cut ON true
           WHERE f.Op NOT IN ('T', 'R')
             AND (f.Op <> 'L' OR f._cdc_reload IN (SELECT id FROM done))
             AND (cut.tl IS NULL OR f._cdc_lsn > cut.tl OR (f._cdc_lsn = cut.tl AND f._cdc_seq > cut.ts)))`,
		duckString(glob), strings.Join(typed, ", "))
	if len(t.Key) == 0 {
		duckMultiset(&b, t)
	} else {
		duckKeyed(&b, t)
	}
	return b.String()
}

// duckKeyed finishes a keyed table's view: per key the latest row unless
// it is a delete, each column from the latest row at or before it that
// did not list the column in _cdc_unchanged, a row older than the column
// taking its missing value.
func duckKeyed(b *strings.Builder, t Table) {
	part := make([]string, len(t.Key))
	for i, k := range t.Key {
		part[i] = duckIdent(k)
	}
	fmt.Fprintf(b, `,
  ranked AS (SELECT Op, _cdc_lsn, _cdc_seq,
                    row_number() OVER (PARTITION BY %[1]s ORDER BY _cdc_lsn DESC, _cdc_seq DESC) AS _rn`, strings.Join(part, ", "))
	for i, c := range t.Columns {
		fmt.Fprintf(b, `,
                    last_value(CASE WHEN list_contains(coalesce(_cdc_unchanged, []), %s) THEN NULL
                               ELSE {'v': %s, 'lsn': _cdc_lsn, 'seq': _cdc_seq} END IGNORE NULLS) OVER w AS _f%d`,
			duckString(c.Name), duckIdent(c.Name), i)
	}
	fmt.Fprintf(b, `
             FROM live
             WINDOW w AS (PARTITION BY %s ORDER BY _cdc_lsn, _cdc_seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))
SELECT `, strings.Join(part, ", "))
	for i, c := range t.Columns {
		if i > 0 {
			b.WriteString(",\n       ")
		}
		f := fmt.Sprintf("_f%d", i)
		if !c.Added() {
			fmt.Fprintf(b, "%s.v AS %s", f, duckIdent(c.Name))
			continue
		}
		missing := duckMissing(c)
		fmt.Fprintf(b, "CASE WHEN %[1]s IS NULL THEN (CASE WHEN %[2]s THEN %[3]s END) WHEN %[4]s THEN %[3]s ELSE %[1]s.v END AS %[5]s",
			f, before("_cdc_lsn", "_cdc_seq", c), missing, before(f+".lsn", f+".seq", c), duckIdent(c.Name))
	}
	b.WriteString("\nFROM ranked WHERE _rn = 1 AND Op <> 'D'")
}

// duckMultiset finishes a keyless table's view: each distinct row as many
// times as it was inserted (I, or L of a completed reload) less the times
// it was deleted, after the cut; the L rows of a reload are its state at
// the cut, so order does not matter.
func duckMultiset(b *strings.Builder, t Table) {
	cols := make([]string, len(t.Columns))
	vals := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = duckIdent(c.Name)
		vals[i] = duckIdent(c.Name)
		if c.Added() {
			vals[i] = fmt.Sprintf("CASE WHEN %s THEN %s ELSE %s END AS %s", before("_cdc_lsn", "_cdc_seq", c), duckMissing(c), duckIdent(c.Name), duckIdent(c.Name))
		}
	}
	list := strings.Join(cols, ", ")
	fmt.Fprintf(b, `,
  counted AS (SELECT %[1]s, CAST(sum(CASE WHEN Op = 'D' THEN -1 ELSE 1 END) AS BIGINT) AS _n
              FROM (SELECT Op, %[2]s FROM live) GROUP BY ALL)
SELECT %[1]s FROM counted, range(greatest(_n, 0)) _copies(_i)`, list, strings.Join(vals, ", "))
}

// before is the condition that the row at (lsn, seq) is older than c.
func before(lsn, seq string, c Column) string {
	return fmt.Sprintf("(%[1]s < %[3]d OR (%[1]s = %[3]d AND %[2]s < %[4]d))", lsn, seq, c.AddedLSN, c.AddedSeq)
}

// duckMissing is c's missing value as a DuckDB expression of its type.
func duckMissing(c Column) string { return missingValue(c, duckDialect) }

// duckDialect writes DuckDB's missing values.
var duckDialect = dialect{
	typ: duckType,
	hex: func(lit string) string { return "from_hex(" + lit + ")" },
	array: func(elems []string, typ string) string {
		return "CAST([" + strings.Join(elems, ", ") + "] AS " + typ + "[])"
	},
}

// duckType is the DuckDB type the files' column has.
func duckType(t pqfile.Type) string {
	var s string
	switch t.Kind {
	case pqfile.Bool:
		s = "BOOLEAN"
	case pqfile.Int16:
		s = "SMALLINT"
	case pqfile.Int32:
		s = "INTEGER"
	case pqfile.Int64:
		s = "BIGINT"
	case pqfile.Float32:
		s = "FLOAT"
	case pqfile.Float64:
		s = "DOUBLE"
	case pqfile.Decimal:
		s = fmt.Sprintf("DECIMAL(%d,%d)", t.Precision, t.Scale)
	case pqfile.Bytes:
		s = "BLOB"
	case pqfile.Date:
		s = "DATE"
	case pqfile.Timestamp:
		s = "TIMESTAMP"
	case pqfile.TimestampTZ:
		s = "TIMESTAMPTZ"
	default:
		s = "VARCHAR"
	}
	if t.List {
		s += "[]"
	}
	return s
}

// duckIdent quotes a DuckDB identifier.
func duckIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// duckString quotes a DuckDB string literal.
func duckString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
