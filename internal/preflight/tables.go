package preflight

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/cdc2s3/cdc2s3/sink/pqfile"
	"github.com/cdc2s3/cdc2s3/source"
)

// table is a table cdc2s3 would copy and stream.
type table struct {
	oid          uint32
	schema, name string
	partitioned  bool
	hasPK        bool
	canSelect    bool
	owned        bool // the user may act as its owner (CREATE PUBLICATION ... FOR TABLE)
	owner        string
}

func (t table) String() string { return t.schema + "." + t.name }

// quoted returns the quoted "schema"."name".
func (t table) quoted() string { return quoteIdent(t.schema, t.name) }

// checkTables finds the tables cdc2s3 would publish: the publication's when it
// exists, else the --tables list or every user table (FOR ALL TABLES). For
// a publication cdc2s3 would create FOR TABLE, it also checks that every
// table exists and that the user owns it.
func checkTables(ctx context.Context, conn *pgx.Conn, pub *publication, o Options) ([]table, Result) {
	oids, missing, origin, err := findTables(ctx, conn, pub, o.Tables)
	if err != nil {
		return nil, queryFailed(NameTables, err)
	}
	tables, err := describeTables(ctx, conn, oids)
	if err != nil {
		return nil, queryFailed(NameTables, err)
	}
	if len(missing) > 0 {
		return tables, Result{Name: NameTables, Status: Fail,
			Detail: fmt.Sprintf("%d table(s) named by --tables do not exist: %s", len(missing), listNames(missing, 10)),
			Fix:    "fix --tables (schema.table; a bare name means public.table)"}
	}
	if !pub.exists && len(o.Tables) > 0 {
		if r, failed := checkOwnership(pub, tables); failed {
			return tables, r
		}
	}
	return tables, tablesFound(tables, origin, !pub.exists && len(o.Tables) == 0)
}

// findTables returns the OIDs of the tables cdc2s3 would publish, the names
// in names that are not tables, and where the tables come from, for
// messages.
func findTables(ctx context.Context, conn *pgx.Conn, pub *publication, names []string) (oids []uint32, missing []string, origin string, err error) {
	switch {
	case pub.exists:
		oids, err = publishedOIDs(ctx, conn, pub.name)
		return oids, nil, "published by " + pub.name, err
	case len(names) > 0:
		oids, missing, err = namedOIDs(ctx, conn, names)
		return oids, missing, "named by --tables", err
	default:
		oids, err = userTableOIDs(ctx, conn)
		return oids, nil, "in a publication FOR ALL TABLES", err
	}
}

// publishedOIDs returns the OIDs of the tables of publication name.
func publishedOIDs(ctx context.Context, conn *pgx.Conn, name string) ([]uint32, error) {
	rows, err := conn.Query(ctx, `
		SELECT c.oid FROM pg_publication_tables pt
		JOIN pg_namespace n ON n.nspname = pt.schemaname
		JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
		WHERE pt.pubname = $1`, name)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[uint32])
}

// namedOIDs returns the OIDs of the tables named ("schema.table" or "table"
// for public) and the names that are not tables. A failed lookup does not
// stop the others; the last failure is returned.
func namedOIDs(ctx context.Context, conn *pgx.Conn, names []string) (oids []uint32, missing []string, err error) {
	for _, n := range names {
		schema, name := source.SplitName(strings.TrimSpace(n))
		var oid uint32
		e := conn.QueryRow(ctx, `
			SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`, schema, name).Scan(&oid)
		switch {
		case e == pgx.ErrNoRows:
			missing = append(missing, schema+"."+name)
		case e != nil:
			err = e
		default:
			oids = append(oids, oid)
		}
	}
	return oids, missing, err
}

// userTableOIDs returns the OIDs of the tables a publication FOR ALL TABLES
// would publish (with publish_via_partition_root, partitioned roots
// instead of their partitions).
func userTableOIDs(ctx context.Context, conn *pgx.Conn) ([]uint32, error) {
	rows, err := conn.Query(ctx, `
		SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
		  AND n.nspname NOT LIKE 'pg_temp%'`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[uint32])
}

// checkOwnership fails, with the statement to run instead, when the user
// does not own every table of the publication cdc2s3 would create FOR
// TABLE them (which needs ownership).
func checkOwnership(pub *publication, tables []table) (Result, bool) {
	var notOwned []string
	for _, t := range tables {
		if !t.owned {
			notOwned = append(notOwned, fmt.Sprintf("%s (owner %s)", t, t.owner))
		}
	}
	if len(notOwned) == 0 {
		return Result{}, false
	}
	quoted := make([]string, len(tables))
	for i, t := range tables {
		quoted[i] = t.quoted()
	}
	return Result{Name: NameTables, Status: Fail,
		Detail: fmt.Sprintf("the first run creates publication %s FOR TABLE these, which needs ownership, and the user does not own %s", pub.name, listNames(notOwned, 10)),
		Fix: fmt.Sprintf("create the publication as their owner or a superuser: CREATE PUBLICATION %s FOR TABLE %s WITH (publish_via_partition_root = true);",
			quoteIdent(pub.name), strings.Join(quoted, ", ")),
	}, true
}

// tablesFound lists the tables found (from origin), or warns that there are
// none; allTables says they would be every user table, so that the fix is
// to create some.
func tablesFound(tables []table, origin string, allTables bool) Result {
	if len(tables) == 0 {
		fix := "add tables to the publication (ALTER PUBLICATION ... ADD TABLE ...) or fix --tables"
		if allTables {
			fix = "create the tables first, or point --source at the right database"
		}
		return Result{Name: NameTables, Status: Warn,
			Detail: fmt.Sprintf("no tables %s: nothing would be copied or streamed", origin),
			Fix:    fix}
	}
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.String()
	}
	return Result{Name: NameTables, Status: OK, Detail: fmt.Sprintf("%d table(s) %s: %s", len(tables), origin, listNames(names, 10))}
}

// describeTables reads the facts the checks need about each table, sorted
// by name.
func describeTables(ctx context.Context, conn *pgx.Conn, oids []uint32) ([]table, error) {
	if len(oids) == 0 {
		return nil, nil
	}
	rows, err := conn.Query(ctx, `
		SELECT c.oid, n.nspname::text, c.relname::text, c.relkind = 'p',
		       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
		       has_table_privilege(c.oid, 'SELECT'), pg_has_role(c.relowner, 'USAGE'), pg_get_userbyid(c.relowner)::text
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = ANY($1::oid[])
		ORDER BY n.nspname, c.relname`, oids)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (table, error) {
		var t table
		err := r.Scan(&t.oid, &t.schema, &t.name, &t.partitioned, &t.hasPK, &t.canSelect, &t.owned, &t.owner)
		return t, err
	})
}

// oidsOf returns the OIDs of tables.
func oidsOf(tables []table) []uint32 {
	oids := make([]uint32, len(tables))
	for i, t := range tables {
		oids[i] = t.oid
	}
	return oids
}

// checkPrivileges checks that the user may read every table (the full load
// copies them with SELECT).
func checkPrivileges(srv *server, tables []table) Result {
	var denied []table
	for _, t := range tables {
		if !t.canSelect {
			denied = append(denied, t)
		}
	}
	if len(denied) == 0 {
		return Result{Name: NameSelect, Status: OK, Detail: fmt.Sprintf("user %s may read all %d table(s)", srv.user, len(tables))}
	}
	names := make([]string, len(denied))
	quoted := make([]string, len(denied))
	schemas := map[string]bool{}
	for i, t := range denied {
		names[i], quoted[i] = t.String(), t.quoted()
		schemas[quoteIdent(t.schema)] = true
	}
	fix := fmt.Sprintf("GRANT SELECT ON %s TO %s;", strings.Join(quoted, ", "), quoteIdent(srv.user))
	if len(denied) > 10 {
		var ss []string
		for s := range schemas {
			ss = append(ss, s)
		}
		sort.Strings(ss)
		fix = fmt.Sprintf("GRANT SELECT ON ALL TABLES IN SCHEMA %s TO %s;", strings.Join(ss, ", "), quoteIdent(srv.user))
	}
	return Result{Name: NameSelect, Status: Fail,
		Detail: fmt.Sprintf("user %s may not read %d table(s): %s", srv.user, len(denied), listNames(names, 10)),
		Fix:    fix}
}

// checkReplicaIdentity warns about tables whose updates and deletes PostgreSQL
// would refuse once published, or whose deletes would not carry the
// primary key: no primary key without REPLICA IDENTITY FULL, REPLICA
// IDENTITY NOTHING, or an identity index other than the primary key. A
// partitioned table is judged by its partitions, which are what PostgreSQL
// checks.
func checkReplicaIdentity(ctx context.Context, conn *pgx.Conn, tables []table) Result {
	rows, err := conn.Query(ctx, `
		SELECT n.nspname::text, c.relname::text, c.relreplident::text,
		       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
		       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident AND NOT i.indisprimary)
		FROM unnest($1::oid[]) AS t(root)
		JOIN pg_class r ON r.oid = t.root
		-- pg_partition_tree lists nothing for a table outside a partition tree.
		CROSS JOIN LATERAL (
			SELECT p.relid FROM pg_partition_tree(t.root) AS p WHERE p.isleaf AND r.relkind = 'p'
			UNION ALL
			SELECT t.root WHERE r.relkind <> 'p'
		) AS l(relid)
		JOIN pg_class c ON c.oid = l.relid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r'
		ORDER BY 1, 2`, oidsOf(tables))
	if err != nil {
		return queryFailed(NameReplicaIdentity, err)
	}
	var noKey, nothing, otherIndex, fixes []string
	for rows.Next() {
		var schema, name, ident string
		var pk, otherIdx bool
		if err := rows.Scan(&schema, &name, &ident, &pk, &otherIdx); err != nil {
			rows.Close()
			return queryFailed(NameReplicaIdentity, err)
		}
		t := schema + "." + name
		q := quoteIdent(schema, name)
		switch {
		case !pk && ident != "f":
			noKey = append(noKey, t)
			fixes = append(fixes, fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY FULL;", q))
		case ident == "n":
			nothing = append(nothing, t)
			fixes = append(fixes, fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY DEFAULT;", q))
		case ident == "i" && otherIdx:
			otherIndex = append(otherIndex, t)
			fixes = append(fixes, fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY DEFAULT;", q))
		}
	}
	if err := rows.Err(); err != nil {
		return queryFailed(NameReplicaIdentity, err)
	}
	if len(fixes) == 0 {
		return Result{Name: NameReplicaIdentity, Status: OK, Detail: "every table has a primary key or REPLICA IDENTITY FULL"}
	}
	var parts []string
	if len(noKey) > 0 {
		parts = append(parts, fmt.Sprintf("%d table(s) without a primary key and without REPLICA IDENTITY FULL (once published, PostgreSQL refuses their UPDATE and DELETE; without a key cdc2s3 could not tell which row changed): %s",
			len(noKey), listNames(noKey, 10)))
	}
	if len(nothing) > 0 {
		parts = append(parts, fmt.Sprintf("%d table(s) with REPLICA IDENTITY NOTHING (PostgreSQL refuses their UPDATE and DELETE once published): %s", len(nothing), listNames(nothing, 10)))
	}
	if len(otherIndex) > 0 {
		parts = append(parts, fmt.Sprintf("%d table(s) whose replica identity is an index other than the primary key (their deletes carry that index's columns, not the key cdc2s3 merges by): %s", len(otherIndex), listNames(otherIndex, 10)))
	}
	if len(fixes) > 10 {
		fixes = append(fixes[:10], fmt.Sprintf("(and %d more of the same)", len(fixes)-10))
	}
	return Result{Name: NameReplicaIdentity, Status: Warn, Detail: strings.Join(parts, "; "), Fix: strings.Join(fixes, " ")}
}

// checkTOAST reports, for information, the tables with a primary key and
// without REPLICA IDENTITY FULL whose columns can be TOASTed: an update
// that leaves such a value unchanged does not send it. (Without a primary
// key, ReplicaIdentity already asks for FULL.)
func checkTOAST(ctx context.Context, conn *pgx.Conn, tables []table) Result {
	rows, err := conn.Query(ctx, `
		SELECT a.attrelid, string_agg(a.attname::text, ', ' ORDER BY a.attnum)
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		  AND a.attstorage IN ('x', 'e') AND c.relreplident <> 'f'
		  -- varchar(n) and char(n) short enough never to reach the TOAST
		  -- threshold (about 2 kB; up to 4 bytes a character) stay inline.
		  AND NOT (a.atttypid IN (1042, 1043) AND a.atttypmod > 0 AND (a.atttypmod - 4) * 4 < 2000)
		GROUP BY a.attrelid`, oidsOf(tables))
	if err != nil {
		return queryFailed(NameTOAST, err)
	}
	cols := map[uint32]string{}
	for rows.Next() {
		var oid uint32
		var names string
		if err := rows.Scan(&oid, &names); err != nil {
			rows.Close()
			return queryFailed(NameTOAST, err)
		}
		cols[oid] = names
	}
	if err := rows.Err(); err != nil {
		return queryFailed(NameTOAST, err)
	}
	var found []string
	for _, t := range tables {
		if c, ok := cols[t.oid]; ok && t.hasPK {
			found = append(found, fmt.Sprintf("%s (%s)", t, c))
		}
	}
	if len(found) == 0 {
		return Result{Name: NameTOAST, Status: OK, Detail: "no TOASTable columns in tables with a primary key and without REPLICA IDENTITY FULL"}
	}
	return Result{Name: NameTOAST, Status: Info,
		Detail: fmt.Sprintf("%d table(s) with a primary key and without REPLICA IDENTITY FULL have columns that can be TOASTed: %s. "+
			"An update that leaves such a large value unchanged does not send it: cdc2s3 writes NULL, names the column in _cdc_unchanged, "+
			"and the merge rule takes the value from the row's previous version (docs/output-format.md); REPLICA IDENTITY FULL would have cdc2s3 fill it in, at the cost of more WAL",
			len(found), listNames(found, 10))}
}

// typeFacts is what ColumnTypes needs of a column's type, after domains.
type typeFacts struct {
	typtype  byte // b base, c composite, e enum, r range, m multirange, p pseudo
	category byte
	name     string
	base     uint32 // of a domain
}

// naturalText are the base types whose Parquet STRING is their natural
// form (contract §3), so writing them as text loses nothing a reader
// needs: numeric without typmod, time, timetz, interval, uuid, json, jsonb.
var naturalText = map[uint32]bool{1700: true, 1083: true, 1266: true, 1186: true, 2950: true, 114: true, 3802: true}

// checkColumnTypes reports the columns whose values a reader must parse (written
// as PostgreSQL's text: ranges, geometric types, composites, network
// addresses ...), the array columns (a multi-dimensional value is
// flattened, and no catalog tells which columns hold one), and column names
// that readers cannot tell apart (they match names without case) or that
// clash with cdc2s3's metadata columns.
func checkColumnTypes(ctx context.Context, conn *pgx.Conn, tables []table, arraysAsText bool) []Result {
	cols, err := readColumns(ctx, conn, tables)
	if err != nil {
		return []Result{queryFailed(NameTypes, err)}
	}
	asText, arrays, err := textAndListColumns(ctx, conn, cols, arraysAsText)
	if err != nil {
		return []Result{queryFailed(NameTypes, err)}
	}
	return []Result{typesResult(asText), arraysResult(arrays, arraysAsText), columnNamesResult(nameClashes(cols))}
}

// tableColumn is a column of a table cdc2s3 would copy, as ColumnTypes
// reads it.
type tableColumn struct {
	rel      uint32
	name     string
	label    string // schema.table.column, for messages
	typ      uint32
	mod      int32
	typeName string // format_type's
}

// readColumns returns the columns of tables that are copied and streamed
// (not dropped, not generated), table by table in column order.
func readColumns(ctx context.Context, conn *pgx.Conn, tables []table) ([]tableColumn, error) {
	rows, err := conn.Query(ctx, `
		SELECT a.attrelid, a.attname::text, a.atttypid, a.atttypmod, format_type(a.atttypid, a.atttypmod)
		FROM pg_attribute a
		WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		ORDER BY a.attrelid, a.attnum`, oidsOf(tables))
	if err != nil {
		return nil, err
	}
	byOID := map[uint32]table{}
	for _, t := range tables {
		byOID[t.oid] = t
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (tableColumn, error) {
		var c tableColumn
		err := r.Scan(&c.rel, &c.name, &c.typ, &c.mod, &c.typeName)
		c.label = fmt.Sprintf("%s.%s", byOID[c.rel], c.name)
		return c, err
	})
}

// textAndListColumns returns, described for messages, the columns written
// as text that readers must parse (not those whose text is their natural
// form: strings, enums, the naturalText types, and arrays under
// --arrays-as-text) and the array columns written as LIST.
func textAndListColumns(ctx context.Context, conn *pgx.Conn, cols []tableColumn, arraysAsText bool) (asText, arrays []string, err error) {
	resolver := source.NewResolver(conn)
	resolver.ArraysAsText = arraysAsText
	facts := map[uint32]typeFacts{}
	for _, c := range cols {
		ct, err := resolver.Resolve(ctx, c.typ, c.mod)
		if err != nil {
			return nil, nil, err
		}
		pt := pqfile.TypeFor(ct.OID, ct.Mod, ct.Array)
		if pt.List {
			arrays = append(arrays, fmt.Sprintf("%s (%s)", c.label, c.typeName))
			continue
		}
		if pt.Kind != pqfile.String {
			continue
		}
		base, f, err := baseType(ctx, conn, facts, c.typ)
		if err != nil {
			return nil, nil, err
		}
		if naturalText[base] || f.category == 'S' || f.typtype == 'e' || (f.category == 'A' && arraysAsText) {
			continue
		}
		asText = append(asText, fmt.Sprintf("%s (%s)", c.label, c.typeName))
	}
	return asText, arrays, nil
}

// nameClashes returns, described for messages, the columns whose names
// readers that match names without regard to case cannot tell from an
// earlier column of the same table or from a metadata column.
func nameClashes(cols []tableColumn) []string {
	meta := map[string]bool{}
	for _, m := range []string{pqfile.ColOp, pqfile.ColCommitTS, pqfile.ColLSN, pqfile.ColSeq, pqfile.ColUnchanged} {
		meta[strings.ToLower(m)] = true
	}
	var clashes []string
	seen := map[uint32]map[string]string{} // table → lower-case name → first spelling
	for _, c := range cols {
		lower := strings.ToLower(c.name)
		if seen[c.rel] == nil {
			seen[c.rel] = map[string]string{}
		}
		switch first, dup := seen[c.rel][lower]; {
		case meta[lower]:
			clashes = append(clashes, c.label+" (a metadata column's name)")
		case dup:
			clashes = append(clashes, fmt.Sprintf("%s (same as %s but for case)", c.label, first))
		}
		seen[c.rel][lower] = c.name
	}
	return clashes
}

// typesResult reports the columns written as text that readers must parse.
func typesResult(asText []string) Result {
	if len(asText) == 0 {
		return Result{Name: NameTypes, Status: OK, Detail: "no columns of types written as text that readers must parse"}
	}
	return Result{Name: NameTypes, Status: Info,
		Detail: fmt.Sprintf("%d column(s) are written as STRING in PostgreSQL's text output, which readers must parse (ranges, geometric types, composites, network addresses, money, bit strings, other extension types): %s",
			len(asText), listNames(asText, 10))}
}

// arraysResult reports the array columns written as LIST, whose
// multi-dimensional values are flattened.
func arraysResult(arrays []string, arraysAsText bool) Result {
	switch {
	case len(arrays) == 0 && arraysAsText:
		return Result{Name: NameArrays, Status: OK, Detail: "array columns are written as text (--arrays-as-text), which keeps dimensions and bounds"}
	case len(arrays) == 0:
		return Result{Name: NameArrays, Status: OK, Detail: "no array columns"}
	}
	return Result{Name: NameArrays, Status: Info,
		Detail: fmt.Sprintf("%d array column(s) are written as LIST: %s. A value with more than one dimension is written flattened and explicit lower bounds are dropped; PostgreSQL's catalog cannot tell which columns hold such values",
			len(arrays), listNames(arrays, 10)),
		Fix: "if a column holds multi-dimensional arrays, run with --arrays-as-text (every array column as PostgreSQL's array text)"}
}

// columnNamesResult warns about the column names readers cannot read.
func columnNamesResult(clashes []string) Result {
	if len(clashes) == 0 {
		return Result{Name: NameColumnNames, Status: OK, Detail: "column names are distinct without regard to case and clash with no metadata column"}
	}
	return Result{Name: NameColumnNames, Status: Warn,
		Detail: fmt.Sprintf("%d column name(s) cannot be read by DuckDB, Athena or Spark, which match names without regard to case: %s", len(clashes), listNames(clashes, 10)),
		Fix:    "rename them in the source: ALTER TABLE ... RENAME COLUMN ... TO ...;"}
}

// baseType follows domains to the base type of oid.
func baseType(ctx context.Context, conn *pgx.Conn, cache map[uint32]typeFacts, oid uint32) (uint32, typeFacts, error) {
	for depth := 0; ; depth++ {
		f, ok := cache[oid]
		if !ok {
			err := conn.QueryRow(ctx, `SELECT typtype::"char", typcategory::"char", typname::text, typbasetype FROM pg_type WHERE oid = $1`, oid).
				Scan(&f.typtype, &f.category, &f.name, &f.base)
			if err != nil {
				return 0, f, fmt.Errorf("look up type %d: %w", oid, err)
			}
			cache[oid] = f
		}
		if f.typtype != 'd' || depth > 16 {
			return oid, f, nil
		}
		oid = f.base
	}
}

// checkPublicationTables checks, for an existing publication and --tables,
// what run checks at its start: that the publication publishes exactly
// the tables named (run refuses to start otherwise, unless
// --reconcile-publication). Nil when there is nothing to compare.
func checkPublicationTables(ctx context.Context, conn *pgx.Conn, pub *publication, o Options) *Result {
	if !pub.exists || len(o.Tables) == 0 {
		return nil
	}
	r := &Result{Name: NamePublicationTables, Status: OK}
	wanted, _, err := source.CanonicalNames(ctx, conn, o.Tables)
	if err != nil {
		q := queryFailed(NamePublicationTables, err)
		return &q
	}
	published, err := source.PublishedNames(ctx, conn, pub.name)
	if err != nil {
		q := queryFailed(NamePublicationTables, err)
		return &q
	}
	notPublished, notListed := source.TableDiff(published, wanted)
	if len(notPublished) == 0 && len(notListed) == 0 {
		r.Detail = fmt.Sprintf("publication %s publishes exactly the %d table(s) of --tables", pub.name, len(wanted))
		return r
	}
	r.Status = Fail
	r.Detail = fmt.Sprintf("publication %s does not publish what --tables names, and run refuses to start: not published: %s; published but not in --tables: %s",
		pub.name, orNone(notPublished), orNone(notListed))
	if pub.allTables {
		r.Fix = "drop --tables (the publication is FOR ALL TABLES), or choose another --publication"
	} else {
		r.Fix = fmt.Sprintf("ALTER PUBLICATION %s SET %s; or pass --reconcile-publication to run; or drop --tables", quoteIdent(pub.name), source.PublicationTarget(wanted))
	}
	return r
}

// checkPublishedSubsets lists the tables the publication publishes only in
// part (a column list, a row filter: PostgreSQL 15+), which the full load
// and the stream both apply. Nil when the publication does not exist.
func checkPublishedSubsets(ctx context.Context, conn *pgx.Conn, pub *publication) *Result {
	if !pub.exists {
		return nil
	}
	tables, err := source.PublishedTables(ctx, conn, pub.name)
	if err != nil {
		q := queryFailed(NamePublishedSubsets, err)
		return &q
	}
	var parts []string
	for _, t := range tables {
		var what []string
		if t.ColumnList != nil {
			what = append(what, "columns "+strings.Join(t.ColumnList, ", "))
		}
		if t.RowFilter != "" {
			what = append(what, "rows WHERE "+t.RowFilter)
		}
		if len(what) > 0 {
			parts = append(parts, fmt.Sprintf("%s (%s)", t, strings.Join(what, "; ")))
		}
	}
	if len(parts) == 0 {
		return &Result{Name: NamePublishedSubsets, Status: OK, Detail: "every table is published with all its columns and rows"}
	}
	return &Result{Name: NamePublishedSubsets, Status: Info,
		Detail: fmt.Sprintf("%d table(s) are published in part, and the full load and the stream both write only that part: %s", len(parts), strings.Join(parts, "; "))}
}

// orNone joins names, or says none.
func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
