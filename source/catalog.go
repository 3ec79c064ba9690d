package source

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Table is a source table to copy and stream.
type Table struct {
	OID    uint32
	Schema string
	Name   string
	// Partitioned is true for a declaratively partitioned root: its rows
	// live in its partitions and are read through it. Any other table is
	// read with ONLY, so an inheritance parent never repeats its
	// children's rows.
	Partitioned bool
	Columns     []Column
	Key         []string // primary-key columns, empty when there is none
	// ColumnList is the publication's column list for the table (FOR
	// TABLE t (a, b), PostgreSQL 15+): only these columns are published,
	// and Columns holds only them. Nil: every column.
	ColumnList []string
	// RowFilter is the publication's row filter (FOR TABLE t WHERE (...),
	// PostgreSQL 15+) as PostgreSQL prints it: only rows it holds for are
	// published, so the full load reads only them. Empty: every row.
	RowFilter string
}

// Publish restricts t to what a publication publishes of it: the columns
// of list (nil: all) and the rows of filter (empty: all).
func (t *Table) Publish(list []string, filter string) {
	t.ColumnList, t.RowFilter = list, filter
	if list == nil {
		return
	}
	kept := t.Columns[:0:0]
	for _, c := range t.Columns {
		if slices.Contains(list, c.Name) {
			kept = append(kept, c)
		}
	}
	t.Columns = kept
}

// Column is a table column as the snapshot reads it: not dropped, not
// generated (pgoutput before PostgreSQL 18 does not send generated
// columns, so neither does the snapshot).
type Column struct {
	Name    string
	TypeOID uint32
	TypeMod int32
	// AttNum is the column's number in the table (pg_attribute.attnum):
	// a column dropped and added again under the same name has a new one.
	AttNum int16
}

// QualifiedName returns the quoted "schema"."name".
func (t Table) QualifiedName() string {
	return pgx.Identifier{t.Schema, t.Name}.Sanitize()
}

// SelectList returns the quoted names of t's columns, comma-separated, for
// a SELECT of what is published ("1" for a table without columns).
func (t Table) SelectList() string {
	if len(t.Columns) == 0 {
		return "1"
	}
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = pgx.Identifier{c.Name}.Sanitize()
	}
	return strings.Join(cols, ", ")
}

// Where returns the WHERE clause (with a leading space) of the non-empty
// conds and the publication's row filter, evaluated by PostgreSQL as for
// the stream, so a read holds exactly the published rows; "" when there
// is neither.
func (t Table) Where(conds ...string) string {
	var where []string
	for _, c := range conds {
		if c != "" {
			where = append(where, c)
		}
	}
	if t.RowFilter != "" {
		where = append(where, "("+t.RowFilter+")")
	}
	if len(where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(where, " AND ")
}

// String returns schema.name unquoted, for messages.
func (t Table) String() string { return t.Schema + "." + t.Name }

// PublishedTables returns the tables of a publication as the stream will
// name them (with publish_via_partition_root, partitioned roots instead of
// their partitions), each restricted to the publication's column list and
// row filter.
func PublishedTables(ctx context.Context, conn *pgx.Conn, publication string) ([]Table, error) {
	return publishedTables(ctx, conn, publication, 0)
}

// PublishedTable returns the table oid as the publication publishes it
// (PublishedTables), and false when the publication does not publish it.
func PublishedTable(ctx context.Context, conn *pgx.Conn, publication string, oid uint32) (Table, bool, error) {
	ts, err := publishedTables(ctx, conn, publication, oid)
	if err != nil || len(ts) == 0 {
		return Table{}, false, err
	}
	return ts[0], true, nil
}

// publishedTables lists the publication's tables, or only oid's (non-zero).
func publishedTables(ctx context.Context, conn *pgx.Conn, publication string, oid uint32) ([]Table, error) {
	// Column lists and row filters exist from PostgreSQL 15 on.
	extra := "NULL::text[], NULL::text"
	if ServerVersion(conn) >= 150000 {
		extra = "pt.attnames::text[], pt.rowfilter"
	}
	rows, err := conn.Query(ctx, `
		SELECT c.oid, `+extra+`
		FROM pg_publication_tables pt
		JOIN pg_namespace n ON n.nspname = pt.schemaname
		JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
		WHERE pt.pubname = $1 AND ($2::oid = 0 OR c.oid = $2::oid)
		ORDER BY pt.schemaname, pt.tablename`, publication, oid)
	if err != nil {
		return nil, fmt.Errorf("list tables of publication %q: %w", publication, err)
	}
	type published struct {
		oid    uint32
		list   []string
		filter *string
	}
	pubs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (published, error) {
		var p published
		err := r.Scan(&p.oid, &p.list, &p.filter)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("list tables of publication %q: %w", publication, err)
	}
	tables := make([]Table, 0, len(pubs))
	for _, p := range pubs {
		t, err := Describe(ctx, conn, p.oid)
		if err != nil {
			return nil, err
		}
		// PostgreSQL 15 lists every column in attnames when there is no
		// column list; only a list that leaves columns out restricts.
		if len(p.list) >= len(t.Columns) {
			p.list = nil
		}
		t.Publish(p.list, deref(p.filter))
		tables = append(tables, t)
	}
	return tables, nil
}

// UserTables returns every ordinary and partitioned-root table outside the
// system schemas, or, when names is not empty, the named ones
// ("schema.table" or "table" for public).
func UserTables(ctx context.Context, conn *pgx.Conn, names []string) ([]Table, error) {
	var oids []uint32
	if len(names) == 0 {
		rows, err := conn.Query(ctx, `
			SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
			  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
			  AND n.nspname NOT LIKE 'pg_temp%'
			ORDER BY n.nspname, c.relname`)
		if err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		if oids, err = pgx.CollectRows(rows, pgx.RowTo[uint32]); err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
	} else {
		for _, n := range names {
			schema, name := SplitName(n)
			var oid uint32
			err := conn.QueryRow(ctx, `
				SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
				WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`, schema, name).Scan(&oid)
			if err == pgx.ErrNoRows {
				return nil, fmt.Errorf("table %s.%s not found: fix --tables", schema, name)
			}
			if err != nil {
				return nil, fmt.Errorf("look up table %s.%s: %w", schema, name, err)
			}
			oids = append(oids, oid)
		}
	}
	return describe(ctx, conn, oids)
}

// SplitName splits "schema.table" ("table" means public.table).
func SplitName(s string) (schema, name string) {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return "public", s
}

func describe(ctx context.Context, conn *pgx.Conn, oids []uint32) ([]Table, error) {
	tables := make([]Table, 0, len(oids))
	for _, oid := range oids {
		t, err := Describe(ctx, conn, oid)
		if err != nil {
			return nil, err
		}
		tables = append(tables, t)
	}
	return tables, nil
}

// Describe reads one table's columns and primary key.
func Describe(ctx context.Context, conn *pgx.Conn, oid uint32) (Table, error) {
	t := Table{OID: oid}
	var kind byte
	err := conn.QueryRow(ctx, `
		SELECT n.nspname, c.relname, c.relkind::"char"
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1`, oid).
		Scan(&t.Schema, &t.Name, &kind)
	if err != nil {
		return t, fmt.Errorf("describe table %d: %w", oid, err)
	}
	t.Partitioned = kind == 'p'
	rows, err := conn.Query(ctx, `
		SELECT attname, atttypid, atttypmod, attnum FROM pg_attribute
		WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
		ORDER BY attnum`, oid)
	if err != nil {
		return t, fmt.Errorf("describe %s: %w", t, err)
	}
	t.Columns, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Column, error) {
		var c Column
		err := r.Scan(&c.Name, &c.TypeOID, &c.TypeMod, &c.AttNum)
		return c, err
	})
	if err != nil {
		return t, fmt.Errorf("describe %s: %w", t, err)
	}
	if t.Key, err = PrimaryKey(ctx, conn, oid); err != nil {
		return t, err
	}
	return t, nil
}

// PrimaryKey returns the primary-key column names of a table in key order.
func PrimaryKey(ctx context.Context, conn *pgx.Conn, oid uint32) ([]string, error) {
	rows, err := conn.Query(ctx, `
		SELECT a.attname FROM pg_index i
		CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indrelid = $1 AND i.indisprimary
		ORDER BY k.ord`, oid)
	if err != nil {
		return nil, fmt.Errorf("primary key of %d: %w", oid, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// MissingValue returns PostgreSQL's text of the value rows that existed
// before a column was added take without any WAL (attmissingval), or nil
// when there is none. A partitioned table keeps the value on its leaves,
// never on the root, so it is read there; varies reports leaves that hold
// different values (a partition attached with the column already added
// under another default), and the value is then nil.
func MissingValue(ctx context.Context, conn *pgx.Conn, oid uint32, column string) (v *string, varies bool, err error) {
	// attmissingval is an anyarray holding the one value (none for a NULL
	// default: atthasmissing is false). array_to_string prints it with its
	// type's output function, as a column of that type prints, so there is
	// no array text to parse whatever the type's delimiter or quoting.
	// The table itself and, when it is partitioned, its leaves (a root has
	// no storage and never a missing value).
	rows, err := conn.Query(ctx, `
		SELECT DISTINCT array_to_string(a.attmissingval, ',')
		FROM (SELECT $1::oid AS relid UNION SELECT relid FROM pg_partition_tree($1::oid::regclass) WHERE isleaf) t
		JOIN pg_attribute a ON a.attrelid = t.relid AND a.attname = $2 AND NOT a.attisdropped
		WHERE a.atthasmissing`, oid, column)
	if err != nil {
		return nil, false, fmt.Errorf("missing value of %s: %w", column, err)
	}
	values, err := pgx.CollectRows(rows, pgx.RowTo[*string])
	if err != nil {
		return nil, false, fmt.Errorf("missing value of %s: %w", column, err)
	}
	switch len(values) {
	case 0:
		return nil, false, nil
	case 1:
		return values[0], false, nil
	}
	return nil, true, nil
}

// CurrentValues reads the named columns of the row whose primary key
// columns equal keyVals (PostgreSQL text), in PostgreSQL's text output. It
// returns found=false when no such row exists any more. Values are read in
// the text format, so they are exactly what pgoutput would have sent.
func CurrentValues(ctx context.Context, conn *pgx.Conn, t Table, key []string, keyVals [][]byte, cols []string) ([][]byte, bool, error) {
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = pgx.Identifier{c}.Sanitize()
	}
	where := make([]string, len(key))
	for i, k := range key {
		where[i] = fmt.Sprintf("%s = $%d", pgx.Identifier{k}.Sanitize(), i+1)
	}
	only := "ONLY "
	if t.Partitioned {
		only = ""
	}
	sql := fmt.Sprintf("SELECT %s FROM %s%s WHERE %s", strings.Join(sel, ", "), only, t.QualifiedName(), strings.Join(where, " AND "))
	// Parameters go as untyped text, so the server parses them as the key
	// columns' types.
	rr := conn.PgConn().ExecParams(ctx, sql, keyVals, nil, nil, nil)
	var out [][]byte
	found := false
	for rr.NextRow() {
		found = true
		for _, v := range rr.Values() {
			if v != nil {
				v = append([]byte{}, v...)
			}
			out = append(out, v)
		}
	}
	if _, err := rr.Close(); err != nil {
		return nil, false, fmt.Errorf("read current row of %s: %w", t, err)
	}
	return out, found, nil
}

// PartitionFiles describes the partition tree of a partitioned root as
// conn sees it (now, or in the snapshot conn's transaction reads in): each
// leaf partition's oid and data file (relfilenode), in oid order. It changes when a partition is attached, detached or dropped, and
// when one is truncated (pgoutput sends no truncate of a single partition
// when publishing through the root), but also when one is rewritten
// (VACUUM FULL, CLUSTER, a rewriting ALTER TABLE) and when the root is
// truncated.
func PartitionFiles(ctx context.Context, conn *pgx.Conn, root uint32) (string, error) {
	rows, err := conn.Query(ctx, `
		WITH RECURSIVE tree(oid) AS (
			SELECT $1::oid
			UNION ALL
			SELECT i.inhrelid FROM pg_inherits i JOIN tree t ON i.inhparent = t.oid
		)
		SELECT c.oid::int8, c.relfilenode::int8
		FROM tree t JOIN pg_class c ON c.oid = t.oid
		WHERE c.relkind IN ('r', 'f')
		ORDER BY c.oid`, root)
	if err != nil {
		return "", fmt.Errorf("partitions of %d: %w", root, err)
	}
	var b strings.Builder
	var oid, node int64
	_, err = pgx.ForEachRow(rows, []any{&oid, &node}, func() error {
		fmt.Fprintf(&b, "%d:%d ", oid, node)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("partitions of %d: %w", root, err)
	}
	return strings.TrimSpace(b.String()), nil
}

// PublishedRelations lists the tables a publication publishes as the
// stream names them, with only OID, Schema, Name and Partitioned set: a
// cheap query for a check that runs often (PublishedTables describes each).
func PublishedRelations(ctx context.Context, conn *pgx.Conn, publication string) ([]Table, error) {
	rows, err := conn.Query(ctx, `
		SELECT c.oid, pt.schemaname::text, pt.tablename::text, c.relkind = 'p'
		FROM pg_publication_tables pt
		JOIN pg_namespace n ON n.nspname = pt.schemaname
		JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
		WHERE pt.pubname = $1
		ORDER BY 2, 3`, publication)
	if err != nil {
		return nil, fmt.Errorf("list tables of publication %q: %w", publication, err)
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Table, error) {
		var t Table
		err := r.Scan(&t.OID, &t.Schema, &t.Name, &t.Partitioned)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("list tables of publication %q: %w", publication, err)
	}
	return tables, nil
}

// TableSize returns the bytes a table takes on disk, heap and TOAST
// (pg_table_size), summed over the leaves of a partitioned root.
func TableSize(ctx context.Context, conn *pgx.Conn, t Table) (int64, error) {
	var n int64
	err := conn.QueryRow(ctx, `
		SELECT CASE WHEN $2 THEN (SELECT coalesce(sum(pg_table_size(relid)), 0) FROM pg_partition_tree($1::oid) WHERE isleaf)
		            ELSE pg_table_size($1::oid) END::int8`, t.OID, t.Partitioned).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("size of %s.%s: %w", t.Schema, t.Name, err)
	}
	return n, nil
}

// EstimatedRows returns PostgreSQL's estimate of a table's rows
// (pg_class.reltuples, summed over the leaves of a partitioned root), 0
// when it has none (a table never vacuumed nor analyzed).
func EstimatedRows(ctx context.Context, conn *pgx.Conn, t Table) (int64, error) {
	var n int64
	err := conn.QueryRow(ctx, `
		SELECT CASE WHEN $2 THEN (SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)
		                          FROM pg_partition_tree($1::oid) p JOIN pg_class c ON c.oid = p.relid WHERE p.isleaf)
		            ELSE (SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = $1::oid) END::int8`, t.OID, t.Partitioned).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("row estimate of %s.%s: %w", t.Schema, t.Name, err)
	}
	return n, nil
}

// AttNums returns the number (pg_attribute.attnum) of each column of the
// table oid, by name.
func AttNums(ctx context.Context, conn *pgx.Conn, oid uint32) (map[string]int16, error) {
	rows, err := conn.Query(ctx, `
		SELECT attname, attnum FROM pg_attribute
		WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped`, oid)
	if err != nil {
		return nil, fmt.Errorf("columns of %d: %w", oid, err)
	}
	nums := map[string]int16{}
	var name string
	var num int16
	_, err = pgx.ForEachRow(rows, []any{&name, &num}, func() error {
		nums[name] = num
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("columns of %d: %w", oid, err)
	}
	return nums, nil
}
