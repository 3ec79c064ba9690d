package catalog

import (
	"fmt"
	"strings"

	"github.com/cdc2s3/cdc2s3/sink/pqfile"
)

// Athena returns the Athena (engine v3, Trino SQL) script of tables in
// database db: per table its change table over base and a view of its
// current state (LakeName).
func Athena(db, base string, tables []Table) string {
	var b strings.Builder
	b.WriteString("-- cdc2s3 catalog --format athena: per table, the change table and a view of its current state by the\n")
	b.WriteString("-- merge rule of docs/output-format.md section 6 (version 2). Generated; run it again after a schema change.\n")
	fmt.Fprintf(&b, "CREATE DATABASE IF NOT EXISTS `%s`;\n", db)
	for _, t := range tables {
		fmt.Fprintf(&b, "\n-- %s.%s\n%s;\n\nCREATE OR REPLACE VIEW \"%s\".\"%s\" AS\n%s;\n", t.Schema, t.Name,
			externalTable(db, t, base, "CREATE EXTERNAL TABLE", "STORED AS PARQUET"), db, LakeName(t), AthenaView(db, t))
		if t.Dated != nil {
			fmt.Fprintf(&b, "\n-- %s.%s: its change files by commit date (WHERE %s = '...' reads only those folders)\n%s;\n",
				t.Schema, t.Name, DatedColumn, athenaDated(db, base, t))
		}
	}
	return b.String()
}

// AthenaView is the SELECT of t's current state in Trino SQL, over its
// change table in db. Trino has no IGNORE NULLS for last_value in every
// Athena version, so an unchanged TOAST value is found by runs: per key,
// each row that sent the column's value starts a run, and the run's first
// row has the value (and its position, for the missing-value rule).
func AthenaView(db string, t Table) string {
	q := func(s string) string { return `"` + strings.ReplaceAll(strings.ToLower(s), `"`, `""`) + `"` }
	src := fmt.Sprintf(`"%s"."%s_cdc"`, db, LakeName(t))
	var b strings.Builder
	fmt.Fprintf(&b, `WITH done AS (SELECT DISTINCT "_cdc_reload" AS id FROM %[1]s WHERE op = 'R'),
cut AS (SELECT CASE op WHEN 'T' THEN "_cdc_lsn" ELSE "_cdc_reload" END AS tl,
               CASE op WHEN 'T' THEN "_cdc_seq" ELSE 9223372036854775807 END AS ts
        FROM %[1]s WHERE op IN ('T', 'R') ORDER BY 1 DESC, 2 DESC LIMIT 1),
live AS (SELECT r.* FROM %[1]s r LEFT JOIN cut ON true
         WHERE r.op NOT IN ('T', 'R')
           AND (r.op <> 'L' OR r."_cdc_reload" IN (SELECT id FROM done))
           AND (cut.tl IS NULL OR r."_cdc_lsn" > cut.tl OR (r."_cdc_lsn" = cut.tl AND r."_cdc_seq" > cut.ts)))`, src)
	missing := func(c Column) string { return missingValue(c, trinoDialect) }
	if len(t.Key) == 0 {
		vals := make([]string, len(t.Columns))
		names := make([]string, len(t.Columns))
		for i, c := range t.Columns {
			names[i] = q(c.Name)
			vals[i] = q(c.Name)
			if c.Added() {
				vals[i] = fmt.Sprintf("CASE WHEN %s THEN %s ELSE %s END", before(`"_cdc_lsn"`, `"_cdc_seq"`, c), missing(c), q(c.Name))
			}
			vals[i] += " AS " + q(c.Name)
		}
		list := strings.Join(names, ", ")
		fmt.Fprintf(&b, `,
counted AS (SELECT %[1]s, CAST(sum(CASE WHEN op = 'D' THEN -1 ELSE 1 END) AS bigint) AS "_n"
            FROM (SELECT op, %[2]s FROM live) v GROUP BY %[1]s)
SELECT %[1]s FROM counted CROSS JOIN UNNEST(sequence(1, "_n")) AS u("_i") WHERE "_n" > 0`, list, strings.Join(vals, ", "))
		return b.String()
	}
	key := make([]string, len(t.Key))
	for i, k := range t.Key {
		key[i] = q(k)
	}
	part := strings.Join(key, ", ")
	b.WriteString(",\nruns AS (SELECT live.*")
	for i, c := range t.Columns {
		fmt.Fprintf(&b, `,
             count(CASE WHEN NOT contains(coalesce("_cdc_unchanged", ARRAY[]), %s) THEN 1 END)
               OVER (PARTITION BY %s ORDER BY "_cdc_lsn", "_cdc_seq" ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS "_r%d"`,
			sqlString(c.Name), part, i)
	}
	b.WriteString(" FROM live),\nfilled AS (SELECT op, \"_cdc_lsn\", \"_cdc_seq\", " + part)
	for i, c := range t.Columns {
		w := fmt.Sprintf(`OVER (PARTITION BY %s, "_r%d" ORDER BY "_cdc_lsn", "_cdc_seq")`, part, i)
		fmt.Fprintf(&b, `,
               first_value(%[1]s) %[2]s AS "_v%[3]d"`, q(c.Name), w, i)
		if c.Added() {
			fmt.Fprintf(&b, `, first_value("_cdc_lsn") %[1]s AS "_l%[2]d", first_value("_cdc_seq") %[1]s AS "_s%[2]d"`, w, i)
		}
	}
	fmt.Fprintf(&b, `
               , row_number() OVER (PARTITION BY %s ORDER BY "_cdc_lsn" DESC, "_cdc_seq" DESC) AS "_rn"
            FROM runs)
SELECT `, part)
	for i, c := range t.Columns {
		if i > 0 {
			b.WriteString(",\n       ")
		}
		v := fmt.Sprintf(`"_v%d"`, i)
		if c.Added() {
			v = fmt.Sprintf("CASE WHEN %s THEN %s ELSE %s END", before(fmt.Sprintf(`"_l%d"`, i), fmt.Sprintf(`"_s%d"`, i), c), missing(c), v)
		}
		b.WriteString(v + " AS " + q(c.Name))
	}
	b.WriteString("\nFROM filled WHERE \"_rn\" = 1 AND op <> 'D'")
	return b.String()
}

// trinoDialect writes Trino's missing values.
var trinoDialect = dialect{
	typ: func(t pqfile.Type) string {
		if t.List {
			return "array(" + trinoType(pqfile.Type{Kind: t.Kind, Precision: t.Precision, Scale: t.Scale}) + ")"
		}
		return trinoType(t)
	},
	hex: func(lit string) string { return "from_hex(" + lit + ")" },
	array: func(elems []string, typ string) string {
		return "CAST(ARRAY[" + strings.Join(elems, ", ") + "] AS array(" + typ + "))"
	},
}

// trinoType is the Trino name of a scalar type.
func trinoType(t pqfile.Type) string {
	hive := hiveType(t)
	switch hive {
	case "string":
		return "varchar"
	case "int":
		return "integer"
	case "float":
		return "real"
	case "binary":
		return "varbinary"
	}
	return hive
}
