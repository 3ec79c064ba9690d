package snapshot

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/cdc2s3/cdc2s3/internal/logkey"
	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/source"
)

// Load is the full load, the one sequence both the daemon's first load and
// `cdc2s3 snapshot` run: it describes tables as snap (a connection inside
// the exported snapshot o.Snapshot) sees them, leaving out those created
// after it; chooses each column's output type from its type as resolver
// describes it; records each table's schema history; and copies every
// table on o.Workers connections to dsn. It returns ErrTableChanged when
// DDL changed a table before its copy (start over from a new snapshot).
func Load(ctx context.Context, dsn string, snap *pgx.Conn, resolver *source.Resolver, tables []source.Table, store sink.Store, o Options) ([]Result, error) {
	jobs, err := prepareJobs(ctx, snap, resolver, tables)
	if err != nil {
		return nil, err
	}
	if err := SaveHistories(ctx, lsnstore.New(store), jobs); err != nil {
		return nil, err
	}
	if o.Log != nil {
		o.Log.Info("full load starting", logkey.Tables, len(jobs), logkey.Snapshot, o.Snapshot, logkey.LSN, o.LSN, logkey.Dest, store.String())
	}
	return Copy(ctx, dsn, store, jobs, o)
}

// prepareJobs checks the tables' names, describes them as snap (a
// connection inside the snapshot) sees them, leaving out those created
// after it, resolves their output types and reads each partitioned root's
// partition tree.
func prepareJobs(ctx context.Context, snap *pgx.Conn, resolver *source.Resolver, tables []source.Table) ([]Job, error) {
	for _, t := range tables {
		if err := sink.CheckTableName(t.Schema, t.Name); err != nil {
			return nil, err
		}
	}
	seen, err := Prepare(ctx, snap, tables)
	if err != nil {
		return nil, err
	}
	jobs, err := Resolve(ctx, resolver, seen)
	if err != nil {
		return nil, err
	}
	for i, j := range jobs {
		if j.Table.Partitioned {
			if jobs[i].Partitions, err = source.PartitionFiles(ctx, snap, j.Table.OID); err != nil {
				return nil, err
			}
		}
	}
	return jobs, nil
}
