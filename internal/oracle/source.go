package oracle

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// sessionSettings are the settings under which cdc2s3 reads the source, so
// that text output matches what the writer stored.
var sessionSettings = []string{
	"SET LOCAL TimeZone = 'UTC'",
	"SET LOCAL DateStyle = 'ISO'",
	"SET LOCAL IntervalStyle = 'iso_8601'",
	"SET LOCAL extra_float_digits = 3",
	"SET LOCAL bytea_output = 'hex'",
}

// TableFromCatalog describes schema.table from pg_catalog: its non-dropped,
// non-generated columns in attnum order, their kinds (domains resolved to
// their base types), and its primary key. It leaves History empty.
func TableFromCatalog(ctx context.Context, conn *pgx.Conn, schema, table string) (Table, error) {
	t := Table{Schema: schema, Name: table}
	var oid uint32
	var relkind string
	err := conn.QueryRow(ctx, `
		SELECT c.oid, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2`, schema, table).Scan(&oid, &relkind)
	if err != nil {
		return t, fmt.Errorf("oracle: table %s.%s: %w", schema, table, err)
	}
	t.Partitioned = relkind == "p"

	rows, err := conn.Query(ctx, `
		SELECT attname, atttypid, atttypmod, format_type(atttypid, atttypmod)
		FROM pg_attribute
		WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
		ORDER BY attnum`, oid)
	if err != nil {
		return t, fmt.Errorf("oracle: columns of %s.%s: %w", schema, table, err)
	}
	type attr struct {
		name, typ string
		oid       uint32
		typmod    int32
	}
	attrs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (attr, error) {
		var a attr
		return a, r.Scan(&a.name, &a.oid, &a.typmod, &a.typ)
	})
	if err != nil {
		return t, fmt.Errorf("oracle: columns of %s.%s: %w", schema, table, err)
	}
	for _, a := range attrs {
		kind, array, err := kindOf(ctx, conn, a.oid, a.typmod)
		if err != nil {
			return t, fmt.Errorf("oracle: column %s of %s.%s: %w", a.name, schema, table, err)
		}
		t.Columns = append(t.Columns, Column{Name: a.name, Type: a.typ, Kind: kind, Array: array})
	}

	rows, err = conn.Query(ctx, `
		SELECT a.attname
		FROM pg_index i
		CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indrelid = $1 AND i.indisprimary
		ORDER BY k.n`, oid)
	if err != nil {
		return t, fmt.Errorf("oracle: primary key of %s.%s: %w", schema, table, err)
	}
	t.Key, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return t, fmt.Errorf("oracle: primary key of %s.%s: %w", schema, table, err)
	}
	return t, nil
}

// kindOf maps a column type to its Parquet kind (output contract section 3):
// domains as their base type, arrays as lists of their element's kind.
func kindOf(ctx context.Context, conn *pgx.Conn, oid uint32, typmod int32) (Kind, bool, error) {
	array := false
	for range 64 { // domains nest; a cycle is impossible but bound it anyway
		var typtype, category string
		var base, elem uint32
		var domainTypmod int32
		err := conn.QueryRow(ctx, `
			SELECT typtype::text, typcategory::text, typbasetype, typelem, typtypmod
			FROM pg_type WHERE oid = $1`, oid).Scan(&typtype, &category, &base, &elem, &domainTypmod)
		if err != nil {
			return "", false, fmt.Errorf("type %d: %w", oid, err)
		}
		switch {
		case typtype == "d":
			if typmod == -1 {
				typmod = domainTypmod
			}
			oid = base
		case category == "A" && elem != 0 && !array:
			// The column's typmod applies to the elements.
			array = true
			oid = elem
		default:
			return scalarKind(oid, typmod), array, nil
		}
	}
	return "", false, fmt.Errorf("type %d: domains nest too deep", oid)
}

// scalarKind maps a base (non-domain, non-array) type.
func scalarKind(oid uint32, typmod int32) Kind {
	switch oid {
	case pgtype.BoolOID:
		return KindBool
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
		return KindInt
	case pgtype.Float4OID:
		return KindFloat4
	case pgtype.Float8OID:
		return KindFloat8
	case pgtype.NumericOID:
		if typmod < 4 { // VARHDRSZ: no typmod
			return KindNumeric
		}
		p := int((typmod - 4) >> 16 & 0xffff)
		s := int(((typmod-4)&0x7ff)^1024) - 1024 // 11-bit signed scale (PostgreSQL 15)
		if p <= 38 && s >= 0 && s <= p {
			return KindDecimal
		}
		return KindNumeric
	case pgtype.ByteaOID:
		return KindBytea
	case pgtype.DateOID:
		return KindDate
	case pgtype.TimestampOID:
		return KindTimestamp
	case pgtype.TimestamptzOID:
		return KindTimestampTZ
	}
	return KindText
}

// SourceState reads table t from PostgreSQL in canonical text, in the order
// of t.Columns, in one repeatable-read snapshot. A partitioned root is read
// with its partitions; any other table without its inheritance children.
// conn must not be inside a transaction; its session settings are changed
// only for the duration of the read.
func SourceState(ctx context.Context, conn *pgx.Conn, t Table) ([]Row, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("oracle: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	for _, s := range sessionSettings {
		if _, err := tx.Exec(ctx, s); err != nil {
			return nil, fmt.Errorf("oracle: %s: %w", s, err)
		}
	}
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = pgx.Identifier{c.Name}.Sanitize()
	}
	only := "ONLY "
	if t.Partitioned {
		only = ""
	}
	sql := fmt.Sprintf("SELECT %s FROM %s%s", strings.Join(cols, ", "), only, pgx.Identifier{t.Schema, t.Name}.Sanitize())
	if t.Filter != "" {
		sql += " WHERE " + t.Filter
	}
	// The simple protocol returns every value as its type's text output,
	// exactly what pgoutput sends and what the writer converts from.
	rows, err := tx.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return nil, fmt.Errorf("oracle: %s: %w", sql, err)
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		raw := rows.RawValues()
		row := make(Row, len(t.Columns))
		for i, c := range t.Columns {
			var text *string
			if raw[i] != nil {
				s := string(raw[i])
				text = &s
			}
			if row[i], err = canonValue(c, text); err != nil {
				return nil, fmt.Errorf("oracle: %s.%s column %s: %w", t.Schema, t.Name, c.Name, err)
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("oracle: %s: %w", sql, err)
	}
	return out, nil
}
