// Package snapshot copies tables from one consistent PostgreSQL snapshot
// into LOAD Parquet files (contract §1): every table read inside the same
// exported snapshot, so the full load and the change stream that starts at
// the snapshot's consistent point meet exactly.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/pqfile"
	"github.com/cdc2s3/cdc2s3/source"
)

// Defaults for Options.
const (
	DefaultWorkers     = 2
	DefaultMaxFileSize = 256 << 20
	DefaultChunkSize   = 64 << 20
)

// Options configures a full load.
type Options struct {
	// Snapshot is the name of an exported snapshot every worker reads in.
	Snapshot string
	// LSN and Time are written in the _cdc_lsn and _cdc_commit_ts of LOAD
	// rows: the snapshot's consistent point and when it was taken.
	LSN  pglogrepl.LSN
	Time time.Time
	// Workers is the number of chunks copied at once, each on its own
	// connection: several workers share a large table.
	Workers int
	// ChunkSize is the target size, in heap and TOAST bytes on disk, of
	// one chunk: a block range of one table or partition, copied and
	// retried as a unit. Negative: never split a table or partition.
	ChunkSize int64
	// MaxFileSize splits a chunk's LOAD files at this many uncompressed
	// bytes of values (compressed files are smaller).
	MaxFileSize int64
	Compression string
	TempDir     string
	Log         *slog.Logger
	// Progress, when set, is kept up to date while Copy runs.
	Progress *Progress
	// ProgressInterval is how often "snapshot progress" lines are logged
	// (default DefaultProgressInterval); negative: never, for a caller
	// that shows Progress itself.
	ProgressInterval time.Duration
	// TextCopy reads chunks with COPY's text format instead of its binary
	// format: the same files, at more cost to the server and to cdc2s3
	// (for comparisons, and as a fallback).
	TextCopy bool
}

// Job is one table to copy with its resolved output columns.
type Job struct {
	Table   source.Table
	Columns []pqfile.Column
	// Partitions is a partitioned root's partition tree in the snapshot
	// (source.PartitionFiles), recorded in its schema history so that the
	// daemon can tell when it changes.
	Partitions string
}

// Result reports what was written for one table.
type Result struct {
	Table     string
	Files     int
	Rows      int64
	Bytes     int64 // uncompressed value bytes
	Duration  time.Duration
	Nulled    map[string]int64 // values the Parquet type could not hold, per column
	Flattened map[string]int64 // multi-dimensional array values flattened, per column
}

// Exported is a snapshot held open by a transaction so that others can
// read in it.
type Exported struct {
	Name string
	LSN  pglogrepl.LSN
	Time time.Time
	conn *pgx.Conn
}

// Export starts a REPEATABLE READ transaction, exports its snapshot and
// keeps it open until Close. It is the snapshot of `cdc2s3 snapshot`; the
// daemon takes its snapshot from the replication slot instead.
func Export(ctx context.Context, dsn string) (*Exported, error) {
	conn, err := source.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	e := &Exported{conn: conn}
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("begin snapshot: %w", err)
	}
	var lsn string
	if err := conn.QueryRow(ctx, "SELECT pg_export_snapshot(), pg_current_wal_lsn()::text, now()").Scan(&e.Name, &lsn, &e.Time); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("export snapshot: %w", err)
	}
	if e.LSN, err = pglogrepl.ParseLSN(lsn); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("parse snapshot lsn: %w", err)
	}
	return e, nil
}

// Close ends the exporting transaction.
func (e *Exported) Close(ctx context.Context) error {
	return e.conn.Close(ctx)
}

// Resolve builds the jobs for tables: r describes each column's type and
// pqfile.TypeFor chooses its output type.
func Resolve(ctx context.Context, r *source.Resolver, tables []source.Table) ([]Job, error) {
	jobs := make([]Job, 0, len(tables))
	for _, t := range tables {
		cols := make([]pqfile.Column, len(t.Columns))
		for i, c := range t.Columns {
			ct, err := r.Resolve(ctx, c.TypeOID, c.TypeMod)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", t, c.Name, err)
			}
			cols[i] = pqfile.Column{Name: c.Name, Type: pqfile.TypeFor(ct.OID, ct.Mod, ct.Array)}
		}
		jobs = append(jobs, Job{Table: t, Columns: cols})
	}
	return jobs, nil
}

// OpenSnapshot opens a connection whose transaction reads in the exported
// snapshot.
func OpenSnapshot(ctx context.Context, dsn, snapshot string) (*pgx.Conn, error) {
	return openSnapshotConn(ctx, dsn, snapshot)
}

// ErrTableChanged is returned when a table's columns changed between the
// snapshot and its copy (COPY parses against the current catalog, not the
// snapshot's): the full load cannot be consistent and must start over from
// a new snapshot.
var ErrTableChanged = errors.New("table changed during the full load")

// Prepare describes tables as snap, a connection inside the snapshot, sees
// them: the columns that the snapshot's rows have. A table created after the
// snapshot is left out: all its rows are in the change stream.
func Prepare(ctx context.Context, snap *pgx.Conn, tables []source.Table) ([]source.Table, error) {
	out := make([]source.Table, 0, len(tables))
	for _, t := range tables {
		seen, err := source.Describe(ctx, snap, t.OID)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		seen.Publish(t.ColumnList, t.RowFilter)
		out = append(out, seen)
	}
	return out, nil
}

func openSnapshotConn(ctx context.Context, dsn, snapshot string) (*pgx.Conn, error) {
	conn, err := source.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if err := beginSnapshot(ctx, conn, snapshot); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	return conn, nil
}

// beginSnapshot starts a read-only transaction in the exported snapshot.
func beginSnapshot(ctx context.Context, conn *pgx.Conn, snapshot string) error {
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if snapshot != "" {
		if _, err := conn.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+strings.ReplaceAll(snapshot, "'", "''")+"'"); err != nil {
			return fmt.Errorf("set transaction snapshot: %w", err)
		}
	}
	return nil
}

// SaveHistories records, for each job's table, that its columns exist from
// the full load on (added_lsn 0).
func SaveHistories(ctx context.Context, states *lsnstore.Store, jobs []Job) error {
	for _, j := range jobs {
		h := &lsnstore.History{Version: 1, Schema: j.Table.Schema, Table: j.Table.Name}
		names := make([]string, len(j.Columns))
		for i, c := range j.Columns {
			names[i] = c.Name
		}
		h.Observe(names, sink.Pos{}, nil)
		nums := make(map[string]int16, len(j.Table.Columns))
		for _, c := range j.Table.Columns {
			nums[c.Name] = c.AttNum
		}
		h.ObserveAttNums(nums, sink.Pos{}, nil)
		h.ObserveTypes(columnTypes(j.Columns))
		h.ObserveKey(j.Table.Key, 0)
		h.Partitions = j.Partitions
		if err := states.SaveHistory(ctx, h); err != nil {
			return err
		}
	}
	return nil
}

// columnTypes maps each column's name to its type's name, for the schema
// history.
func columnTypes(cols []pqfile.Column) map[string]string {
	m := make(map[string]string, len(cols))
	for _, c := range cols {
		m[c.Name] = c.Type.String()
	}
	return m
}

// ErrNoTables is returned when there is nothing to copy.
var ErrNoTables = errors.New("no tables to copy")

// Conn returns the connection whose transaction holds the snapshot.
func (e *Exported) Conn() *pgx.Conn { return e.conn }
