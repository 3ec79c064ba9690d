// Package snapshot copies tables from one consistent PostgreSQL snapshot
// into LOAD Parquet files (contract §1): every table read inside the same
// exported snapshot, so the full load and the change stream that starts at
// the snapshot's consistent point meet exactly.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"

	"github.com/cdc2s3/cdc2s3/internal/pgcat"
	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/pqfile"
)

// Defaults for Options.
const (
	DefaultWorkers     = 2
	DefaultMaxFileSize = 256 << 20
)

// Options configures a full load.
type Options struct {
	// Snapshot is the name of an exported snapshot every worker reads in.
	Snapshot string
	// LSN and Time are written in the _cdc_lsn and _cdc_commit_ts of LOAD
	// rows: the snapshot's consistent point and when it was taken.
	LSN  pglogrepl.LSN
	Time time.Time
	// Workers is the number of tables copied at once.
	Workers int
	// MaxFileSize splits a table's LOAD files at this many uncompressed
	// bytes of values (compressed files are smaller).
	MaxFileSize int64
	Compression string
	TempDir     string
	Log         *slog.Logger
}

// Job is one table to copy with its resolved output columns.
type Job struct {
	Table   pgcat.Table
	Columns []pqfile.Column
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
	conn, err := pgcat.Connect(ctx, dsn)
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

// Resolve builds the jobs for tables, resolving each column's output type.
func Resolve(ctx context.Context, r *pgcat.Resolver, tables []pgcat.Table) ([]Job, error) {
	jobs := make([]Job, 0, len(tables))
	for _, t := range tables {
		cols := make([]pqfile.Column, len(t.Columns))
		for i, c := range t.Columns {
			typ, err := r.Resolve(ctx, c.TypeOID, c.TypeMod)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", t, c.Name, err)
			}
			cols[i] = pqfile.Column{Name: c.Name, Type: typ}
		}
		jobs = append(jobs, Job{Table: t, Columns: cols})
	}
	return jobs, nil
}

// Copy writes the LOAD files of every job, o.Workers tables at a time, each
// worker on its own connection inside snapshot o.Snapshot. A table's old
// LOAD files (from an earlier, unfinished attempt) are removed first.
func Copy(ctx context.Context, dsn string, store sink.Store, jobs []Job, o Options) ([]Result, error) {
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = DefaultMaxFileSize
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	results := make([]Result, len(jobs))
	next := make(chan int)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(next)
		for i := range jobs {
			select {
			case next <- i:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for w := 0; w < min(o.Workers, max(len(jobs), 1)); w++ {
		g.Go(func() error {
			conn, err := pgcat.Connect(gctx, dsn)
			if err != nil {
				return err
			}
			defer conn.Close(context.WithoutCancel(gctx))
			for i := range next {
				res, err := copyTable(gctx, conn, store, jobs[i], o)
				if err != nil {
					return fmt.Errorf("snapshot %s: %w", jobs[i].Table, err)
				}
				results[i] = res
				for col, n := range res.Nulled {
					o.Log.Warn("values not representable in the column's Parquet type were written as NULL", "table", res.Table, "column", col, "count", n)
				}
				for col, n := range res.Flattened {
					o.Log.Warn("multi-dimensional array values were flattened", "table", res.Table, "column", col, "count", n)
				}
				o.Log.Info("table loaded", "table", res.Table, "rows", res.Rows, "files", res.Files,
					"bytes", res.Bytes, "duration", res.Duration.Round(time.Millisecond))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return results, nil
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
func Prepare(ctx context.Context, snap *pgx.Conn, tables []pgcat.Table) ([]pgcat.Table, error) {
	out := make([]pgcat.Table, 0, len(tables))
	for _, t := range tables {
		seen, err := pgcat.Describe(ctx, snap, t.OID)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, seen)
	}
	return out, nil
}

func openSnapshotConn(ctx context.Context, dsn, snapshot string) (*pgx.Conn, error) {
	conn, err := pgcat.Connect(ctx, dsn)
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

// lockAndCheck takes the table's ACCESS SHARE lock in the current
// transaction, so no DDL runs on it during its COPY, then checks that the
// columns the snapshot sees still parse to the same types: COPY parses
// against the current catalog. One transaction per table keeps each lock
// short, so a DDL statement queued behind it never waits for another table.
func lockAndCheck(ctx context.Context, conn *pgx.Conn, job Job) error {
	t := job.Table
	if _, err := conn.Exec(ctx, "LOCK TABLE "+t.QualifiedName()+" IN ACCESS SHARE MODE"); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	if len(t.Columns) == 0 {
		return nil
	}
	rows, err := conn.Query(ctx, selectQuery(t)+" LIMIT 0")
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (pgErr.Code == "42703" || pgErr.Code == "42P01") {
			return fmt.Errorf("%w: %s: %s", ErrTableChanged, t, pgErr.Message)
		}
		return err
	}
	fields := rows.FieldDescriptions()
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(fields) != len(t.Columns) {
		return fmt.Errorf("%w: %s", ErrTableChanged, t)
	}
	return nil
}

// selectQuery returns the SELECT of a table's non-generated columns, ONLY
// unless it is a partitioned root.
func selectQuery(t pgcat.Table) string {
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = pgx.Identifier{c.Name}.Sanitize()
	}
	only := "ONLY "
	if t.Partitioned {
		only = ""
	}
	list := strings.Join(cols, ", ")
	if list == "" {
		list = "1"
	}
	return fmt.Sprintf("SELECT %s FROM %s%s", list, only, t.QualifiedName())
}

// selectSQL returns the COPY statement of a table.
func selectSQL(t pgcat.Table) string {
	return "COPY (" + selectQuery(t) + ") TO STDOUT"
}

func copyTable(ctx context.Context, conn *pgx.Conn, store sink.Store, job Job, o Options) (Result, error) {
	start := time.Now()
	t := job.Table
	res := Result{Table: t.String(), Nulled: map[string]int64{}, Flattened: map[string]int64{}}
	if err := removeLoadFiles(ctx, store, t); err != nil {
		return res, err
	}
	if err := beginSnapshot(ctx, conn, o.Snapshot); err != nil {
		return res, err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
	if err := lockAndCheck(ctx, conn, job); err != nil {
		return res, err
	}
	pr, pw := io.Pipe()
	copyErr := make(chan error, 1)
	go func() {
		_, err := conn.PgConn().CopyTo(ctx, pw, selectSQL(t))
		pw.CloseWithError(err)
		copyErr <- err
	}()
	out := &loadFile{store: store, job: job, o: o}
	err := func() error {
		rd := newCopyReader(pr)
		meta := pqfile.Meta{Op: 'I', CommitTime: o.Time.UnixMicro(), LSN: int64(o.LSN)}
		for {
			fields, err := rd.next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if len(job.Columns) == 0 {
				fields = fields[:0]
			}
			if err := out.write(ctx, meta, fields); err != nil {
				return err
			}
		}
	}()
	if err != nil {
		pr.CloseWithError(err)
		<-copyErr
		out.abort()
		return res, err
	}
	if err := <-copyErr; err != nil {
		out.abort()
		return res, fmt.Errorf("copy: %w", err)
	}
	if err := out.finish(ctx); err != nil {
		return res, err
	}
	res.Files, res.Rows, res.Bytes, res.Duration = out.n, out.rows, out.bytes, time.Since(start)
	for k, v := range out.nulled {
		res.Nulled[k] += v
	}
	for k, v := range out.flattened {
		res.Flattened[k] += v
	}
	return res, nil
}

func removeLoadFiles(ctx context.Context, store sink.Store, t pgcat.Table) error {
	objs, err := store.List(ctx, sink.TableDir(t.Schema, t.Name))
	if err != nil {
		return fmt.Errorf("list %s: %w", t, err)
	}
	for _, obj := range objs {
		if sink.IsLoadKey(obj.Key) {
			if err := store.Delete(ctx, obj.Key); err != nil {
				return fmt.Errorf("remove old %s: %w", obj.Key, err)
			}
		}
	}
	return nil
}

// loadFile writes a table's rows into LOAD files, starting a new one at
// MaxFileSize. An empty table still gets one (empty) file, so its folder
// and schema exist for readers.
type loadFile struct {
	store     sink.Store
	job       Job
	o         Options
	f         *os.File
	w         *pqfile.Writer
	n         int
	rows      int64
	bytes     int64
	nulled    map[string]int64
	flattened map[string]int64
}

func (l *loadFile) write(ctx context.Context, m pqfile.Meta, vals [][]byte) error {
	if l.w == nil {
		if err := l.open(); err != nil {
			return err
		}
	}
	if err := l.w.Write(m, vals); err != nil {
		return err
	}
	if l.w.Stats().Bytes >= l.o.MaxFileSize {
		return l.upload(ctx)
	}
	return nil
}

func (l *loadFile) open() error {
	f, err := os.CreateTemp(l.o.TempDir, "cdc2s3-load-*.parquet")
	if err != nil {
		return fmt.Errorf("temp file: %w", err)
	}
	w, err := pqfile.NewWriter(f, l.job.Columns, pqfile.Options{Compression: l.o.Compression})
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	l.f, l.w = f, w
	return nil
}

func (l *loadFile) upload(ctx context.Context) error {
	if err := l.w.Close(); err != nil {
		return err
	}
	st := l.w.Stats()
	l.rows += st.Rows
	l.bytes += st.Bytes
	if l.nulled == nil {
		l.nulled, l.flattened = map[string]int64{}, map[string]int64{}
	}
	for k, v := range st.Nulled {
		l.nulled[k] += v
	}
	for k, v := range st.Flattened {
		l.flattened[k] += v
	}
	l.n++
	key := sink.LoadKey(l.job.Table.Schema, l.job.Table.Name, l.n)
	err := putFile(ctx, l.store, key, l.f)
	l.f.Close()
	os.Remove(l.f.Name())
	l.f, l.w = nil, nil
	return err
}

func (l *loadFile) finish(ctx context.Context) error {
	if l.w == nil && l.n == 0 {
		if err := l.open(); err != nil {
			return err
		}
	}
	if l.w == nil {
		return nil
	}
	return l.upload(ctx)
}

func (l *loadFile) abort() {
	if l.f != nil {
		l.f.Close()
		os.Remove(l.f.Name())
	}
}

// putFile uploads a finished local file under key.
func putFile(ctx context.Context, store sink.Store, key string, f *os.File) error {
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := store.Put(ctx, key, f, info.Size()); err != nil {
		return fmt.Errorf("upload %s: %w", key, err)
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
		h.Observe(names, 0, nil)
		if err := states.SaveHistory(ctx, h); err != nil {
			return err
		}
	}
	return nil
}

// ErrNoTables is returned when there is nothing to copy.
var ErrNoTables = errors.New("no tables to copy")

// Conn returns the connection whose transaction holds the snapshot.
func (e *Exported) Conn() *pgx.Conn { return e.conn }
