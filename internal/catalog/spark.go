package catalog

import (
	"fmt"
	"strings"
)

// Spark returns the Spark SQL (3.3, Glue 4.0) script of tables in database
// db: per table its change table over base and a view of its current state
// (LakeName).
func Spark(db, base string, tables []Table) string {
	var b strings.Builder
	b.WriteString("-- cdc2s3 catalog --format spark: per table, the change table and a view of its current state by the\n")
	b.WriteString("-- merge rule of docs/output-format.md section 6 (version 2). Generated; run it again after a schema change.\n")
	fmt.Fprintf(&b, "CREATE DATABASE IF NOT EXISTS `%s`;\n", db)
	for _, t := range tables {
		fmt.Fprintf(&b, "\n-- %s.%s\n%s;\n\nCREATE OR REPLACE VIEW `%s`.`%s` AS\n%s;\n", t.Schema, t.Name,
			externalTable(db, t, base, "CREATE TABLE", "USING parquet\nOPTIONS ('recursiveFileLookup' = 'true')"), db, LakeName(t), SparkView(db, t))
	}
	return b.String()
}

// SparkView is the SELECT of t's current state in Spark SQL over its change
// table in db: last_value(…, true) ignores NULLs, so an unchanged TOAST value
// is the latest struct of a row that sent the column.
func SparkView(db string, t Table) string {
	q := func(s string) string { return "`" + strings.ReplaceAll(strings.ToLower(s), "`", "``") + "`" }
	src := fmt.Sprintf("`%s`.`%s_cdc`", db, LakeName(t))
	var b strings.Builder
	fmt.Fprintf(&b, `WITH done AS (SELECT DISTINCT _cdc_reload AS id FROM %[1]s WHERE op = 'R'),
cut AS (SELECT CASE op WHEN 'T' THEN _cdc_lsn ELSE _cdc_reload END AS tl,
               CASE op WHEN 'T' THEN _cdc_seq ELSE 9223372036854775807 END AS ts
        FROM %[1]s WHERE op IN ('T', 'R') ORDER BY tl DESC, ts DESC LIMIT 1),
live AS (SELECT r.* FROM %[1]s r LEFT JOIN cut ON true
         WHERE r.op NOT IN ('T', 'R')
           AND (r.op <> 'L' OR r._cdc_reload IN (SELECT id FROM done))
           AND (cut.tl IS NULL OR r._cdc_lsn > cut.tl OR (r._cdc_lsn = cut.tl AND r._cdc_seq > cut.ts)))`, src)
	missing := func(c Column) string { return missingValue(c, sparkDialect) }
	if len(t.Key) == 0 {
		vals := make([]string, len(t.Columns))
		names := make([]string, len(t.Columns))
		for i, c := range t.Columns {
			names[i] = q(c.Name)
			vals[i] = q(c.Name)
			if c.Added() {
				vals[i] = fmt.Sprintf("CASE WHEN %s THEN %s ELSE %s END", before("_cdc_lsn", "_cdc_seq", c), missing(c), q(c.Name))
			}
			vals[i] += " AS " + q(c.Name)
		}
		list := strings.Join(names, ", ")
		fmt.Fprintf(&b, `,
counted AS (SELECT %[1]s, CAST(sum(CASE WHEN op = 'D' THEN -1 ELSE 1 END) AS bigint) AS _n
            FROM (SELECT op, %[2]s FROM live) v GROUP BY %[1]s)
SELECT %[1]s FROM (SELECT inline(array_repeat(struct(%[1]s), CAST(_n AS int))) FROM counted WHERE _n > 0) copies`, list, strings.Join(vals, ", "))
		return b.String()
	}
	key := make([]string, len(t.Key))
	for i, k := range t.Key {
		key[i] = q(k)
	}
	part := strings.Join(key, ", ")
	b.WriteString(",\nranked AS (SELECT op, _cdc_lsn, _cdc_seq,\n")
	fmt.Fprintf(&b, "                  row_number() OVER (PARTITION BY %s ORDER BY _cdc_lsn DESC, _cdc_seq DESC) AS _rn", part)
	for i, c := range t.Columns {
		fmt.Fprintf(&b, `,
                  last_value(CASE WHEN array_contains(coalesce(_cdc_unchanged, array()), %s) THEN NULL
                             ELSE named_struct('v', %s, 'lsn', _cdc_lsn, 'seq', _cdc_seq) END, true)
                    OVER (PARTITION BY %s ORDER BY _cdc_lsn, _cdc_seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS _f%d`,
			sqlString(c.Name), q(c.Name), part, i)
	}
	b.WriteString("\n           FROM live)\nSELECT ")
	for i, c := range t.Columns {
		if i > 0 {
			b.WriteString(",\n       ")
		}
		f := fmt.Sprintf("_f%d", i)
		v := f + ".v"
		if c.Added() {
			v = fmt.Sprintf("CASE WHEN %[1]s IS NULL THEN (CASE WHEN %[2]s THEN %[3]s END) WHEN %[4]s THEN %[3]s ELSE %[1]s.v END",
				f, before("_cdc_lsn", "_cdc_seq", c), missing(c), before(f+".lsn", f+".seq", c))
		}
		b.WriteString(v + " AS " + q(c.Name))
	}
	b.WriteString("\nFROM ranked WHERE _rn = 1 AND op <> 'D'")
	return b.String()
}

// sparkDialect writes Spark's missing values.
var sparkDialect = dialect{
	typ: hiveType,
	hex: func(lit string) string { return "unhex(" + lit + ")" },
	array: func(elems []string, typ string) string {
		return "CAST(array(" + strings.Join(elems, ", ") + ") AS array<" + typ + ">)"
	},
}
