package snapshot

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// A full load is planned as chunks, each read in its own transaction in the
// exported snapshot and retried as a unit. A plain table, an inheritance
// parent (read with ONLY) and each leaf partition of a partitioned root are
// relations; every leaf has its own ctid space, so a partitioned root is
// chunked per partition and all its chunks write into the root's folder. A
// relation larger than the chunk size is split into ranges of heap blocks;
// smaller relations of one table are grouped into chunks up to that size.

// relation is one heap read for a table: the table itself, or one leaf
// partition of a partitioned root.
type relation struct {
	Schema, Name string
	Pages        int64 // heap blocks when planned
	Bytes        int64 // heap plus TOAST bytes when planned
	Heap         bool  // an ordinary table, whose size is known (not a foreign table)
	Splittable   bool  // a heap on a server with TID range scans
}

// qualifiedName returns the quoted "schema"."name".
func (r relation) qualifiedName() string {
	return pgx.Identifier{r.Schema, r.Name}.Sanitize()
}

// blockRange is a half-open range [Start, End) of heap blocks; End 0 means
// "to the end of the relation", so rows on blocks added after planning are
// still read (the snapshot does not see them, but nothing is left out).
type blockRange struct {
	Start, End int64
}

// String prints the range as "start-end" blocks, "start-" when open.
func (b blockRange) String() string {
	if b.End == 0 {
		return fmt.Sprintf("%d-", b.Start)
	}
	return fmt.Sprintf("%d-%d", b.Start, b.End)
}

// where returns the ctid condition that selects the range, "" for the whole
// relation. Since PostgreSQL 14 the planner answers it with a TID range
// scan that reads only those blocks.
func (b blockRange) where() string {
	var conds []string
	if b.Start > 0 {
		conds = append(conds, fmt.Sprintf("ctid >= '(%d,0)'::tid", b.Start))
	}
	if b.End > 0 {
		conds = append(conds, fmt.Sprintf("ctid < '(%d,0)'::tid", b.End))
	}
	return strings.Join(conds, " AND ")
}

// chunk is the unit of work of a full load: one block range of a large
// relation, or several small relations (partitions) of one table read one
// after the other, in one transaction.
type chunk struct {
	table *tableState
	parts []part // none for a partitioned root without partitions
	seq   int    // 1-based position among the table's chunks, for logs
	disk  int64  // planned heap and TOAST bytes, for progress
}

// part is what a chunk reads of one relation.
type part struct {
	rel *relation
	rng blockRange
}

// splitBlocks divides a relation of pages blocks holding bytes bytes (heap
// and TOAST) into ranges of about target bytes each. The bytes per block
// are averaged over the relation, so a table whose values are mostly
// TOASTed gets proportionally fewer blocks per chunk. The last range is
// open-ended. A relation of one chunk or less is one open range.
func splitBlocks(pages, bytes, target int64) []blockRange {
	whole := []blockRange{{0, 0}}
	if pages <= 1 || target <= 0 || bytes <= target {
		return whole
	}
	perBlock := max(bytes/pages, 1)
	per := max(target/perBlock, 1)
	n := (pages + per - 1) / per
	if n <= 1 {
		return whole
	}
	out := make([]blockRange, 0, n)
	for i := int64(0); i < n; i++ {
		r := blockRange{Start: i * per, End: (i + 1) * per}
		if i == n-1 {
			r.End = 0
		}
		out = append(out, r)
	}
	return out
}

// minTIDRangeVersion is the first server_version_num with TID range scans;
// on older servers a ctid range would be a full scan per chunk, so every
// relation is read whole.
const minTIDRangeVersion = 140000

// planRelations lists the relations to read for each job, with their sizes,
// through snap, a connection inside the exported snapshot (so the partitions
// are those the snapshot sees).
func planRelations(ctx context.Context, snap *pgx.Conn, jobs []Job) ([][]relation, error) {
	var version int
	if err := snap.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return nil, fmt.Errorf("server version: %w", err)
	}
	out := make([][]relation, len(jobs))
	for i, j := range jobs {
		// Leaf partitions, recursively, or the table itself. relkind 'r' is
		// an ordinary heap; 'f' a foreign table, read whole.
		rows, err := snap.Query(ctx, `
			WITH RECURSIVE tree(oid) AS (
				SELECT $1::oid
				UNION ALL
				SELECT i.inhrelid FROM pg_inherits i JOIN tree t ON i.inhparent = t.oid
				WHERE $2::boolean
			)
			SELECT n.nspname, c.relname, c.relkind = 'r',
			       coalesce(pg_relation_size(c.oid), 0),
			       coalesce(pg_relation_size(nullif(c.reltoastrelid, 0)), 0),
			       current_setting('block_size')::bigint
			FROM tree t JOIN pg_class c ON c.oid = t.oid JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind IN ('r', 'f')
			ORDER BY n.nspname, c.relname`, j.Table.OID, j.Table.Partitioned)
		if err != nil {
			return nil, fmt.Errorf("plan %s: %w", j.Table, err)
		}
		rels, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (relation, error) {
			var rel relation
			var heap, toast, block int64
			if err := r.Scan(&rel.Schema, &rel.Name, &rel.Heap, &heap, &toast, &block); err != nil {
				return rel, err
			}
			rel.Pages = heap / max(block, 1)
			rel.Bytes = heap + toast
			rel.Splittable = rel.Heap && version >= minTIDRangeVersion
			return rel, nil
		})
		if err != nil {
			return nil, fmt.Errorf("plan %s: %w", j.Table, err)
		}
		out[i] = rels
	}
	return out, nil
}
