package source

import (
	"context"
	"errors"
	"fmt"
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
