package snapshot

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cdc2s3/cdc2s3/sink/pqfile"
)

// How a chunk is read in COPY's binary format
//
// One binary COPY per chunk serves every column. A column whose type has a
// binary format the writer decodes (pqfile.FormatBinary: the built-in types
// with a Parquet type of their own, arrays of them, and the types whose
// binary format is their text) is selected as it is. Any other column is
// selected as its type's output function's text,
// pg_catalog.textin(<typoutput>(col)), whose binary format is that text:
// exactly what the text COPY prints for it under the same session settings
// (a cast to text is not: char(n)::text drops the padding, inet::text
// always shows the netmask, xml::text skips xml_out). A numeric written as
// text (no typmod, or a precision above 38) comes in binary and is printed
// by the writer (pqfile.FormatBinaryNumeric).
//
// A domain is first cast to its base type (with its typmod): polymorphic
// output functions such as enum_out refuse a domain. Where the session may
// not call an output function (no USAGE on its schema), the chunk is read
// with the text COPY instead, which needs no privilege on it.
//
// The plan is made in each chunk's transaction, once its relation is
// locked, from the types the SELECT yields then (domains looked through, as
// PostgreSQL describes result columns): the catalog the COPY itself reads.

// readPlan is what a chunk's binary COPY selects for each column and the
// format each value arrives in.
type readPlan struct {
	exprs   []string
	formats []pqfile.Format
}

// typeRead is what the catalog says about one result type.
type typeRead struct {
	output   string // its output function, schema-qualified and quoted
	callable bool   // the session may call it (the text COPY needs not)
	elem     uint32 // for an array, its element type after domains; else 0
}

// typeReadsSQL describes result types: their output functions and, for
// arrays, their element types with domains looked through.
const typeReadsSQL = `
WITH RECURSIVE t AS (
	SELECT ty.oid, ty.typoutput, CASE WHEN ty.typcategory = 'A' THEN ty.typelem ELSE 0 END AS elem
	FROM pg_catalog.pg_type ty WHERE ty.oid = ANY($1::oid[])
), e(oid, base, depth) AS (
	SELECT t.oid, t.elem, 0 FROM t WHERE t.elem <> 0
	UNION ALL
	SELECT e.oid, d.typbasetype, e.depth + 1
	FROM e JOIN pg_catalog.pg_type d ON d.oid = e.base
	WHERE d.typtype = 'd' AND e.depth < 16
)
SELECT t.oid, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname),
       pg_catalog.has_schema_privilege(n.oid, 'USAGE') AND pg_catalog.has_function_privilege(p.oid, 'EXECUTE'),
       coalesce((SELECT e.base FROM e WHERE e.oid = t.oid ORDER BY e.depth DESC LIMIT 1), 0)
FROM t
JOIN pg_catalog.pg_proc p ON p.oid = t.typoutput
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace`

// planRead makes the read plan of job's columns from rel, through conn in
// the chunk's transaction. It returns nil, for the text COPY, when a column
// would need an output function the session may not call (an extension's
// type in a schema it has no USAGE on): the text COPY needs no privilege on
// them.
func planRead(ctx context.Context, conn *pgx.Conn, job Job, rel *relation) (*readPlan, error) {
	if len(job.Columns) == 0 {
		return &readPlan{}, nil
	}
	rows, err := conn.Query(ctx, selectQuery(job, rel, blockRange{})+" LIMIT 0")
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", rel.qualifiedName(), err)
	}
	fields := rows.FieldDescriptions()
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("describe %s: %w", rel.qualifiedName(), err)
	}
	if len(fields) != len(job.Columns) {
		return nil, fmt.Errorf("%w: %s", ErrTableChanged, job.Table)
	}
	oids := make([]uint32, len(fields))
	for i, f := range fields {
		oids[i] = f.DataTypeOID
	}
	reads := map[uint32]typeRead{}
	trows, err := conn.Query(ctx, typeReadsSQL, oids)
	if err != nil {
		return nil, fmt.Errorf("look up output functions: %w", err)
	}
	var oid uint32
	var tr typeRead
	if _, err := pgx.ForEachRow(trows, []any{&oid, &tr.output, &tr.callable, &tr.elem}, func() error {
		reads[oid] = tr
		return nil
	}); err != nil {
		return nil, fmt.Errorf("look up output functions: %w", err)
	}
	p := &readPlan{exprs: make([]string, len(fields)), formats: make([]pqfile.Format, len(fields))}
	for i, c := range job.Columns {
		tr, ok := reads[oids[i]]
		if !ok {
			return nil, fmt.Errorf("%s.%s: type %d not in the catalog", job.Table, c.Name, oids[i])
		}
		p.exprs[i], p.formats[i] = columnRead(c, oids[i], tr)
		if p.formats[i] != pqfile.FormatText {
			continue
		}
		if !tr.callable {
			return nil, nil
		}
		if job.Table.Columns[i].TypeOID != oids[i] {
			// A domain: its base type's output function may be
			// polymorphic (enum_out, range_out) and refuse it, so the
			// value is cast to the base type and its typmod (free).
			var base string
			if err := conn.QueryRow(ctx, "SELECT pg_catalog.format_type($1, $2)", oids[i], fields[i].TypeModifier).Scan(&base); err != nil {
				return nil, fmt.Errorf("look up type %d: %w", oids[i], err)
			}
			p.exprs[i] = outputText(tr.output, pgx.Identifier{c.Name}.Sanitize()+"::"+base)
		}
	}
	return p, nil
}

// outputText returns the SQL of the text the output function output gives
// for expr, as a text value.
func outputText(output, expr string) string {
	return "pg_catalog.textin(" + output + "(" + expr + "))"
}

// columnRead chooses what to select for column c, whose result type is oid,
// and the format its value then arrives in.
func columnRead(c pqfile.Column, oid uint32, tr typeRead) (string, pqfile.Format) {
	col := pgx.Identifier{c.Name}.Sanitize()
	t := c.Type
	binaryOf := func(oid uint32) (pqfile.Format, bool) {
		switch {
		case t.Kind == pqfile.String && pqfile.TextBinary(oid):
			return pqfile.FormatBinary, true
		case t.Kind == pqfile.String && oid == pgtype.NumericOID:
			return pqfile.FormatBinaryNumeric, true
		case t.Kind != pqfile.String && oid == pqfile.KindOID(t.Kind):
			return pqfile.FormatBinary, true
		}
		return pqfile.FormatText, false
	}
	in := oid
	if t.List {
		in = tr.elem // 0 if it is no longer an array: as text
	}
	if f, ok := binaryOf(in); ok && in != 0 {
		return col, f
	}
	return outputText(tr.output, col), pqfile.FormatText
}

// copyBinarySQL returns the binary COPY statement of a chunk's part.
func copyBinarySQL(job Job, rel *relation, b blockRange, p *readPlan) string {
	list := "1"
	if len(p.exprs) > 0 {
		list = strings.Join(p.exprs, ", ")
	}
	return "COPY (SELECT " + list + " FROM ONLY " + rel.qualifiedName() + job.Table.Where(b.where()) + ") TO STDOUT (FORMAT binary)"
}

// copyReader parses a COPY stream into rows, with copyRows (text) or
// copyBinaryRows as the COPY it reads next was asked for (use).
type copyReader struct {
	text   *copyRows
	binary *copyBinaryRows
	isText bool
}

// newCopyReader returns a reader that hands each row to row.
func newCopyReader(row func(fields [][]byte, size int) error) *copyReader {
	return &copyReader{text: newCopyRows(row), binary: newCopyBinaryRows(row)}
}

// use sets the format of the next COPY.
func (r *copyReader) use(text bool) { r.isText = text }

// Write parses p in the current format.
func (r *copyReader) Write(p []byte) (int, error) {
	if r.isText {
		return r.text.Write(p)
	}
	return r.binary.Write(p)
}

// Close checks that the COPY ended with a whole row.
func (r *copyReader) Close() error {
	if r.isText {
		return r.text.Close()
	}
	return r.binary.Close()
}

// copyStatement returns the COPY of one part of a chunk and whether it is
// in text format: when text is set, or when the part cannot be read in
// binary (see planRead); else in binary format with the part's read plan,
// whose formats out's next rows take.
func copyStatement(ctx context.Context, conn *pgx.Conn, job Job, p part, text bool, out *chunkOutput) (string, bool, error) {
	var plan *readPlan
	if !text {
		var err error
		if plan, err = planRead(ctx, conn, job, p.rel); err != nil {
			return "", false, err
		}
	}
	if plan == nil {
		return copySQL(job, p.rel, p.rng), true, out.setFormats(nil)
	}
	if err := out.setFormats(plan.formats); err != nil {
		return "", false, err
	}
	return copyBinarySQL(job, p.rel, p.rng, plan), false, nil
}
