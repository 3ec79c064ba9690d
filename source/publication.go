package source

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Publication is a publication as pg_publication shows it.
type Publication struct {
	Name      string
	AllTables bool // FOR ALL TABLES
	// ViaRoot is publish_via_partition_root: partitions' changes are
	// published under their root's name.
	ViaRoot                          bool
	Insert, Update, Delete, Truncate bool // the operations published
	Tables                           int  // rows in pg_publication_tables
	Partitions                       int  // of them, partitions published under their own names
}

// Operations returns the names of the operations published.
func (p *Publication) Operations() []string {
	var ops []string
	for _, op := range []struct {
		on   bool
		name string
	}{{p.Insert, "insert"}, {p.Update, "update"}, {p.Delete, "delete"}, {p.Truncate, "truncate"}} {
		if op.on {
			ops = append(ops, op.name)
		}
	}
	return ops
}

// LookupPublication returns the publication name, or nil when there is
// none.
func LookupPublication(ctx context.Context, conn *pgx.Conn, name string) (*Publication, error) {
	p := Publication{Name: name}
	err := conn.QueryRow(ctx, `
		SELECT p.puballtables, p.pubviaroot, p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate,
		       (SELECT count(*) FROM pg_publication_tables t WHERE t.pubname = p.pubname)::int,
		       (SELECT count(*) FROM pg_publication_tables t
		          JOIN pg_namespace n ON n.nspname = t.schemaname
		          JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.tablename
		        WHERE t.pubname = p.pubname AND c.relispartition)::int
		FROM pg_publication p WHERE p.pubname = $1`, name).
		Scan(&p.AllTables, &p.ViaRoot, &p.Insert, &p.Update, &p.Delete, &p.Truncate, &p.Tables, &p.Partitions)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, Explain(fmt.Errorf("look up publication %q: %w", name, err), nil)
	}
	return &p, nil
}

// PublicationTarget returns the FOR clause CreatePublication uses: ALL
// TABLES, or TABLE with the quoted names ("schema.table" or "table" for
// public).
func PublicationTarget(tables []string) string {
	if len(tables) == 0 {
		return "ALL TABLES"
	}
	names := make([]string, len(tables))
	for i, t := range tables {
		schema, name := SplitName(strings.TrimSpace(t))
		names[i] = pgx.Identifier{schema, name}.Sanitize()
	}
	return "TABLE " + strings.Join(names, ", ")
}

// CreatePublication creates the publication name for tables (every table
// when empty) with publish_via_partition_root, so a partitioned table is
// one table downstream. Missing privileges and unknown tables give
// messages that name the fix.
func CreatePublication(ctx context.Context, conn *pgx.Conn, name string, tables []string) error {
	sql := fmt.Sprintf("CREATE PUBLICATION %s FOR %s WITH (publish_via_partition_root = true)",
		pgx.Identifier{name}.Sanitize(), PublicationTarget(tables))
	if _, err := conn.Exec(ctx, sql); err != nil {
		switch sqlState(err) {
		case "42501":
			return hint(err, "cannot create publication %q: %s; create it as a superuser (CREATE PUBLICATION %s FOR ALL TABLES WITH (publish_via_partition_root = true)) or pass --tables for tables you own",
				name, serverMessage(err), pgx.Identifier{name}.Sanitize())
		case "42P01":
			return hint(err, "cannot create publication: %s: fix --tables", serverMessage(err))
		}
		return Explain(fmt.Errorf("create publication %q: %w", name, err), nil)
	}
	return nil
}

// DropPublication drops the publication name if it exists.
func DropPublication(ctx context.Context, conn *pgx.Conn, name string) error {
	if _, err := conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
		return Explain(fmt.Errorf("drop publication %q: %w", name, err), nil)
	}
	return nil
}

// PublishedNames returns the tables the publication publishes as
// "schema.table", sorted, as pg_publication_tables names them (with
// publish_via_partition_root, the roots).
func PublishedNames(ctx context.Context, conn *pgx.Conn, name string) ([]string, error) {
	pairs, err := PublishedTableNames(ctx, conn, name)
	names := make([]string, len(pairs))
	for i, p := range pairs {
		names[i] = p[0] + "." + p[1]
	}
	return names, err
}

// PublishedTableNames is PublishedNames with each name as its schema and
// table, which may themselves hold dots.
func PublishedTableNames(ctx context.Context, conn *pgx.Conn, name string) ([][2]string, error) {
	rows, err := conn.Query(ctx, `
		SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1, 2`, name)
	if err != nil {
		return nil, Explain(fmt.Errorf("list tables of publication %q: %w", name, err), nil)
	}
	pairs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var p [2]string
		err := r.Scan(&p[0], &p[1])
		return p, err
	})
	if err != nil {
		return nil, Explain(fmt.Errorf("list tables of publication %q: %w", name, err), nil)
	}
	return pairs, nil
}

// PublishesSchemas reports whether the publication publishes whole schemas
// (FOR TABLES IN SCHEMA, PostgreSQL 15+), whose tables may come later.
func PublishesSchemas(ctx context.Context, conn *pgx.Conn, name string) (bool, error) {
	if ServerVersion(conn) < 150000 {
		return false, nil
	}
	var ok bool
	err := conn.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM pg_publication_namespace pn JOIN pg_publication p ON p.oid = pn.pnpubid WHERE p.pubname = $1)`, name).Scan(&ok)
	if err != nil {
		return false, Explain(fmt.Errorf("look up publication %q: %w", name, err), nil)
	}
	return ok, nil
}

// CanonicalNames returns the --tables names ("schema.table", or "table"
// for public) as "schema.table", and those that name no table or
// partitioned table of the database.
func CanonicalNames(ctx context.Context, conn *pgx.Conn, names []string) (found, missing []string, err error) {
	for _, n := range names {
		schema, table := SplitName(strings.TrimSpace(n))
		var ok bool
		err := conn.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
			               WHERE ns.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p'))`, schema, table).Scan(&ok)
		if err != nil {
			return nil, nil, Explain(fmt.Errorf("look up table %s.%s: %w", schema, table, err), nil)
		}
		if ok {
			found = append(found, schema+"."+table)
		} else {
			missing = append(missing, schema+"."+table)
		}
	}
	return found, missing, nil
}

// SetPublicationTables makes the publication publish exactly tables
// ("schema.table"): ALTER PUBLICATION ... SET TABLE.
func SetPublicationTables(ctx context.Context, conn *pgx.Conn, name string, tables []string) error {
	sql := fmt.Sprintf("ALTER PUBLICATION %s SET %s", pgx.Identifier{name}.Sanitize(), PublicationTarget(tables))
	if _, err := conn.Exec(ctx, sql); err != nil {
		if sqlState(err) == "42501" {
			return hint(err, "cannot change publication %q: %s; run as its owner: %s", name, serverMessage(err), sql)
		}
		return Explain(fmt.Errorf("change publication %q: %w", name, err), nil)
	}
	return nil
}

// TableDiff compares the tables a publication publishes with the ones
// wanted (both as "schema.table"): the wanted ones it does not publish,
// and the published ones not wanted.
func TableDiff(published, wanted []string) (notPublished, notWanted []string) {
	for _, t := range wanted {
		if !slices.Contains(published, t) && !slices.Contains(notPublished, t) {
			notPublished = append(notPublished, t)
		}
	}
	for _, t := range published {
		if !slices.Contains(wanted, t) {
			notWanted = append(notWanted, t)
		}
	}
	return notPublished, notWanted
}
