package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"

	"github.com/cdc2s3/cdc2s3/internal/logkey"
	"github.com/cdc2s3/cdc2s3/internal/retry"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/pqfile"
	"github.com/cdc2s3/cdc2s3/source"
)

// How a full load names its files
//
// Workers copy chunks in any order, several chunks of one table at once, yet
// a table's files must be LOAD00000001.parquet, LOAD00000002.parquet, ...
// without gaps, and never mix rows of two snapshots. So:
//
//   - A chunk writes its rows into local temp files (under TempDir), split
//     at MaxFileSize; nothing is uploaded while it runs. If it fails, its
//     files are deleted and it is copied again in a fresh transaction in
//     the same snapshot.
//   - When a chunk has all its rows, it takes the next len(files) numbers of
//     its table (a counter under the table's lock) and uploads its files
//     under those names. An upload that fails is retried under the same
//     names (a Put replaces), so numbers are taken once per chunk.
//   - The first chunk of a table to take numbers first deletes the table's
//     LOAD files from any earlier, unfinished load; until then none of this
//     load's files are there, so old and new rows never mix.
//   - When the table's last chunk is done and no chunk had rows, one empty
//     file is written, so the folder and its schema exist for readers.
//
// Numbers follow the order in which chunks finish, not block order; LOAD
// rows all carry the same _cdc_lsn and _cdc_seq, so their order does not
// matter. Local disk holds at most one chunk's files per worker: about
// ChunkSize of Parquet each (more where a few rows hold large TOASTed values).

// maxRetries is how often a failed chunk is tried again, after
// retryBackoff, then twice and four times that.
const maxRetries = 3

// retryBackoff is a variable so that tests can shorten it.
var retryBackoff = time.Second

// beforeCopy, when set by a test, runs before each chunk's COPY.
var beforeCopy func(conn *pgx.Conn)

// tableState is a table being loaded: its chunks share it.
type tableState struct {
	job  Job
	prog *tableProgress

	mu        sync.Mutex
	cleaned   bool // this load removed the table's old LOAD files
	last      int  // LOAD numbers 1..last are taken
	remaining int  // chunks not done
	res       Result
	start     time.Time
}

// defaults fills in the file and chunk sizes and the logger a load and
// a distributed plan share.
func (o *Options) defaults() {
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = DefaultMaxFileSize
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Copy writes the LOAD files of every job, o.Workers chunks at a time, each
// worker on its own connection inside snapshot o.Snapshot. Tables are split
// into chunks of about o.ChunkSize (see above for how files are named). A
// table's old LOAD files (from an earlier, unfinished load) are removed
// before its first new file is uploaded. A failed chunk is retried up to
// three times; ErrTableChanged and errors no retry can fix end the load.
func Copy(ctx context.Context, dsn string, store sink.Store, jobs []Job, o Options) ([]Result, error) {
	o.defaults()
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.Progress == nil {
		o.Progress = &Progress{}
	}
	if o.ProgressInterval == 0 {
		o.ProgressInterval = DefaultProgressInterval
	}
	if len(jobs) == 0 {
		return nil, nil
	}
	tables, chunks, err := plan(ctx, dsn, jobs, o)
	if err != nil {
		return nil, err
	}
	progs := make([]*tableProgress, len(tables))
	for i, t := range tables {
		progs[i] = t.prog
	}
	o.Progress.init(progs)
	o.Log.Info("full load planned", logkey.Tables, len(tables), logkey.Chunks, len(chunks), logkey.Workers, o.Workers,
		logkey.BytesOnDisk, o.Progress.Total().DiskBytes)

	g, gctx := errgroup.WithContext(ctx)
	if o.ProgressInterval > 0 {
		logCtx, stopLog := context.WithCancel(gctx)
		logDone := make(chan struct{})
		go func() {
			defer close(logDone)
			logProgress(logCtx, o.Progress, o.Log, o.ProgressInterval)
		}()
		// No progress line after Copy returns.
		defer func() { stopLog(); <-logDone }()
	}
	next := make(chan *chunk)
	g.Go(func() error {
		defer close(next)
		for _, c := range chunks {
			select {
			case next <- c:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for range min(o.Workers, len(chunks)) {
		g.Go(func() error {
			w := &worker{dsn: dsn, store: store, o: o}
			defer w.close(context.WithoutCancel(gctx))
			for c := range next {
				if err := w.run(gctx, c); err != nil {
					return fmt.Errorf("snapshot %s: %w", c.table.job.Table, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	results := make([]Result, len(tables))
	for i, t := range tables {
		results[i] = t.res
	}
	return results, nil
}

// plan lists the chunks of every job in job order, through a connection in
// the snapshot.
func plan(ctx context.Context, dsn string, jobs []Job, o Options) ([]*tableState, []*chunk, error) {
	snap, err := openSnapshotConn(ctx, dsn, o.Snapshot)
	if err != nil {
		return nil, nil, err
	}
	defer snap.Close(context.WithoutCancel(ctx))
	rels, err := planRelations(ctx, snap, jobs)
	if err != nil {
		return nil, nil, err
	}
	return planChunks(jobs, rels, o.ChunkSize)
}

// planChunks divides each job's relations into chunks: a relation larger
// than chunkSize into block ranges, while small relations of one table (the
// partitions of a partitioned root) are grouped up to chunkSize, so that many
// small partitions do not make as many transactions and files.
func planChunks(jobs []Job, rels [][]relation, chunkSize int64) ([]*tableState, []*chunk, error) {
	tables := make([]*tableState, len(jobs))
	var chunks []*chunk
	for i, j := range jobs {
		t := &tableState{job: j, prog: &tableProgress{name: j.Table.String()}}
		t.res = Result{Table: j.Table.String(), Nulled: map[string]int64{}, Flattened: map[string]int64{}}
		tables[i] = t
		n := 0
		add := func(c *chunk) {
			n++
			c.table, c.seq = t, n
			chunks = append(chunks, c)
		}
		var group *chunk // small relations so far
		for k := range rels[i] {
			r := &rels[i][k]
			t.prog.disk += r.Bytes
			ranges := []blockRange{{0, 0}}
			if r.Splittable && chunkSize > 0 {
				ranges = splitBlocks(r.Pages, r.Bytes, chunkSize)
			}
			if len(ranges) > 1 || !r.Heap || chunkSize <= 0 {
				// A foreign table's size is unknown: it is a chunk
				// of its own, as is every relation when not splitting.
				for _, rng := range ranges {
					add(&chunk{parts: []part{{r, rng}}, disk: chunkDisk(r, rng)})
				}
				continue
			}
			if group != nil && group.disk+r.Bytes > chunkSize {
				add(group)
				group = nil
			}
			if group == nil {
				group = &chunk{}
			}
			group.parts = append(group.parts, part{r, blockRange{}})
			group.disk += r.Bytes
		}
		if group != nil || n == 0 {
			// A partitioned root without partitions is one chunk that
			// reads nothing, so the table still gets its empty file.
			if group == nil {
				group = &chunk{}
			}
			add(group)
		}
		t.remaining = n
		t.prog.chunks = int64(n)
	}
	return tables, chunks, nil
}

// chunkDisk is the planned disk bytes of a block range of r.
func chunkDisk(r *relation, b blockRange) int64 {
	if r.Pages <= 0 {
		return r.Bytes
	}
	end := b.End
	if end == 0 || end > r.Pages {
		end = r.Pages
	}
	if end <= b.Start {
		return 0
	}
	return r.Bytes * (end - b.Start) / r.Pages
}

// worker copies chunks on one connection, opened when first needed and
// again after an error.
type worker struct {
	dsn   string
	store sink.Store
	o     Options
	conn  *pgx.Conn
}

func (w *worker) close(ctx context.Context) {
	if w.conn != nil {
		w.conn.Close(ctx)
		w.conn = nil
	}
}

// run copies one chunk and uploads its files, retrying either step, then
// finishes the table when it was its last chunk.
func (w *worker) run(ctx context.Context, c *chunk) error {
	t := c.table
	t.begin()
	var out *chunkOutput
	defer func() { out.remove() }()
	attrs := []any{logkey.Table, t.job.Table.String(), logkey.Chunk, c.seq, logkey.Of, t.prog.chunks}
	if len(c.parts) == 1 && c.parts[0].rng != (blockRange{}) {
		p := c.parts[0]
		attrs = append(attrs, logkey.Relation, p.rel.Schema+"."+p.rel.Name, logkey.Blocks, p.rng.String())
	} else if len(c.parts) > 1 {
		attrs = append(attrs, logkey.Relations, len(c.parts))
	}
	err := withRetry(ctx, w.o.Log, attrs, func() error {
		if out == nil {
			var err error
			if out, err = w.copy(ctx, c); err != nil {
				w.close(context.WithoutCancel(ctx)) // its state is unknown
				return err
			}
		}
		return t.publish(ctx, w.store, out)
	})
	if err != nil {
		return err
	}
	return t.chunkDone(ctx, w.store, w.o, c, out)
}

// copy reads a chunk into local files in a transaction of its own.
func (w *worker) copy(ctx context.Context, c *chunk) (*chunkOutput, error) {
	job, o := c.table.job, w.o
	out := &chunkOutput{job: job, o: o}
	if len(c.parts) == 0 {
		return out, nil
	}
	if w.conn == nil {
		conn, err := source.Connect(ctx, w.dsn)
		if err != nil {
			return nil, err
		}
		w.conn = conn
	}
	conn := w.conn
	if err := beginSnapshot(ctx, conn, o.Snapshot); err != nil {
		return nil, err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
	prog := c.table.prog
	meta := pqfile.Meta{Op: 'I', CommitTime: o.Time.UnixMicro(), LSN: o.LSN}
	// Progress is told every progressRows rows, not every row: its
	// counters are shared by every worker.
	const progressRows = 4096
	var rows, bytes, told, toldBytes int64
	tell := func() {
		o.Progress.add(prog, rows-told, bytes-toldBytes)
		told, toldBytes = rows, bytes
	}
	rd := newCopyReader(func(fields [][]byte, size int) error {
		if len(job.Columns) == 0 {
			fields = fields[:0]
		}
		if err := out.write(meta, fields); err != nil {
			return err
		}
		rows++
		bytes += int64(size)
		if rows-told >= progressRows {
			tell()
		}
		return nil
	})
	err := func() error {
		for _, p := range c.parts {
			if err := lockAndCheck(ctx, conn, job, p.rel); err != nil {
				return err
			}
			sql, text, err := copyStatement(ctx, conn, job, p, o.TextCopy, out)
			if err != nil {
				return err
			}
			rd.use(text)
			if beforeCopy != nil {
				beforeCopy(conn)
			}
			// Rows are parsed and written as they arrive, inside CopyTo.
			_, err = conn.PgConn().CopyTo(ctx, rd, sql)
			tell()
			if err != nil {
				return fmt.Errorf("copy: %w", err)
			}
			if err := rd.Close(); err != nil {
				return err
			}
		}
		return out.seal()
	}()
	if err != nil {
		o.Progress.add(prog, -told, -toldBytes)
		out.remove()
		return nil, err
	}
	out.textBytes = bytes
	return out, nil
}

// begin marks the table started.
func (t *tableState) begin() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.start.IsZero() {
		t.start = time.Now()
		t.prog.started.Store(t.start.UnixNano())
	}
}

// reserve takes the next n LOAD numbers of the table and returns the first.
// The first call removes the LOAD files of an earlier load.
func (t *tableState) reserve(ctx context.Context, store sink.Store, n int) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.cleaned {
		if err := removeLoadFiles(ctx, store, t.job); err != nil {
			return 0, err
		}
		t.cleaned = true
	}
	first := t.last + 1
	t.last += n
	return first, nil
}

// publish uploads a chunk's files under the table's next LOAD numbers,
// taken on the first call; a later call (a retry) uploads what is left
// under the same names.
func (t *tableState) publish(ctx context.Context, store sink.Store, out *chunkOutput) error {
	if len(out.files) == 0 {
		return nil
	}
	if out.first == 0 {
		first, err := t.reserve(ctx, store, len(out.files))
		if err != nil {
			return err
		}
		out.first = first
	}
	for out.uploaded < len(out.files) {
		key := sink.LoadKey(t.job.Table.Schema, t.job.Table.Name, out.first+out.uploaded)
		if err := putFile(ctx, store, key, out.files[out.uploaded].path); err != nil {
			return err
		}
		out.uploaded++
		t.prog.files.Add(1)
	}
	return nil
}

// chunkDone adds a published chunk to the table's result; after the last
// chunk it writes the empty file of a table without rows and logs the table.
func (t *tableState) chunkDone(ctx context.Context, store sink.Store, o Options, c *chunk, out *chunkOutput) error {
	t.mu.Lock()
	t.res.Files += len(out.files)
	t.res.Rows += out.rows
	t.res.Bytes += out.bytes
	for k, v := range out.nulled {
		t.res.Nulled[k] += v
	}
	for k, v := range out.flattened {
		t.res.Flattened[k] += v
	}
	t.remaining--
	last := t.remaining == 0
	t.mu.Unlock()
	t.prog.doneDisk.Add(c.disk)
	t.prog.doneBytes.Add(out.textBytes)
	if !last {
		t.prog.chunksDone.Add(1)
		return nil
	}
	if t.res.Files == 0 {
		var empty *chunkOutput
		defer func() { empty.remove() }()
		err := withRetry(ctx, o.Log, []any{logkey.Table, t.job.Table.String(), logkey.Chunk, "empty file"}, func() error {
			if empty == nil {
				e := &chunkOutput{job: t.job, o: o}
				if err := e.open(); err != nil {
					return err
				}
				if err := e.seal(); err != nil {
					e.remove()
					return err
				}
				empty = e
			}
			return t.publish(ctx, store, empty)
		})
		if err != nil {
			return err
		}
		t.res.Files = 1
	}
	t.res.Duration = time.Since(t.start)
	t.prog.chunksDone.Add(1)
	t.prog.finished.Store(time.Now().UnixNano())
	logLoaded(o.Log, t.res, logkey.Chunks, t.prog.chunks, logkey.Duration, t.res.Duration.Round(time.Millisecond))
	return nil
}

// logLoaded logs a loaded table: a warning per column whose values were
// written as NULL or flattened, then the table's counts and attrs.
func logLoaded(log *slog.Logger, res Result, attrs ...any) {
	for col, n := range res.Nulled {
		log.Warn("values not representable in the column's Parquet type were written as NULL", logkey.Table, res.Table, logkey.Column, col, logkey.Count, n)
	}
	for col, n := range res.Flattened {
		log.Warn("multi-dimensional array values were flattened", logkey.Table, res.Table, logkey.Column, col, logkey.Count, n)
	}
	log.Info("table loaded", append([]any{logkey.Table, res.Table, logkey.Rows, res.Rows, logkey.Files, res.Files, logkey.Bytes, res.Bytes}, attrs...)...)
}

// removeLoadFiles deletes every LOAD file in the table's folder.
func removeLoadFiles(ctx context.Context, store sink.Store, job Job) error {
	t := job.Table
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

// putFile uploads a finished local file under key.
func putFile(ctx context.Context, store sink.Store, key, path string) error {
	if err := sink.PutFile(ctx, store, key, path); err != nil {
		return fmt.Errorf("upload %s: %w", key, err)
	}
	return nil
}

// lockAndCheck takes the ACCESS SHARE lock of the relation a chunk reads in
// the current transaction, so no DDL runs on it during the COPY, then checks
// that the relation still has the file the snapshot knows (a rewrite or a
// TRUNCATE since the snapshot gives it a new one, which the snapshot would
// read as empty: those are not MVCC-safe) and that the columns the snapshot
// sees still parse to the same types: COPY parses against the current
// catalog. One short transaction per chunk keeps
// each lock short, so a DDL statement queued behind it never waits for
// another table. ONLY: the lock of an inheritance parent need not hold its
// children, and a DDL on a partitioned root must lock the partition.
func lockAndCheck(ctx context.Context, conn *pgx.Conn, job Job, rel *relation) error {
	if _, err := conn.Exec(ctx, "LOCK TABLE ONLY "+rel.qualifiedName()+" IN ACCESS SHARE MODE"); err != nil {
		if isUndefined(err) {
			return fmt.Errorf("%w: %s: %v", ErrTableChanged, job.Table, err)
		}
		return fmt.Errorf("lock: %w", err)
	}
	// pg_class read in the snapshot gives the file it knows; the function
	// reads the current catalog, up to date once the lock is held.
	var seen, now *int64
	err := conn.QueryRow(ctx, `SELECT c.relfilenode::int8, pg_relation_filenode(c.oid)::int8 FROM pg_class c WHERE c.oid = $1::regclass`,
		rel.qualifiedName()).Scan(&seen, &now)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		if isUndefined(err) {
			return fmt.Errorf("%w: %s: %v", ErrTableChanged, job.Table, err)
		}
		return fmt.Errorf("check the file of %s: %w", rel.qualifiedName(), err)
	}
	if errors.Is(err, pgx.ErrNoRows) || (seen != nil && now != nil && *seen != *now) {
		return fmt.Errorf("%w: %s was rewritten or truncated after the snapshot (ALTER TABLE ... TYPE, ADD COLUMN with a volatile default, TRUNCATE, VACUUM FULL, CLUSTER)", ErrTableChanged, rel.qualifiedName())
	}
	if len(job.Columns) == 0 {
		return nil
	}
	rows, err := conn.Query(ctx, selectQuery(job, rel, blockRange{})+" LIMIT 0")
	if err != nil {
		if isUndefined(err) {
			return fmt.Errorf("%w: %s: %v", ErrTableChanged, job.Table, err)
		}
		return err
	}
	fields := rows.FieldDescriptions()
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(fields) != len(job.Columns) {
		return fmt.Errorf("%w: %s", ErrTableChanged, job.Table)
	}
	return nil
}

// isUndefined reports an undefined column or table.
func isUndefined(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "42703" || pgErr.Code == "42P01")
}

// selectQuery returns the SELECT of a job's columns from ONLY the relation,
// restricted to a block range and the publication's row filter.
func selectQuery(job Job, rel *relation, b blockRange) string {
	return "SELECT " + job.Table.SelectList() + " FROM ONLY " + rel.qualifiedName() + job.Table.Where(b.where())
}

// copySQL returns the COPY statement of a chunk.
func copySQL(job Job, rel *relation, b blockRange) string {
	return "COPY (" + selectQuery(job, rel, b) + ") TO STDOUT"
}

// withRetry runs fn until it succeeds, fails permanently or has been retried
// maxRetries times, logging each retry with attrs.
func withRetry(ctx context.Context, log *slog.Logger, attrs []any, fn func() error) error {
	return retry.Policy{
		Base: retryBackoff, Retries: maxRetries,
		Permanent: func(err error) bool { return permanent(ctx, err) },
		OnRetry: func(attempt int, wait time.Duration, err error) {
			log.Warn("retrying", append(attrs[:len(attrs):len(attrs)], logkey.Attempt, attempt, logkey.Delay, wait, logkey.Error, err)...)
		},
	}.Do(ctx, fn)
}

// errPermanent marks errors that trying again cannot fix, such as a value
// the Parquet writer refuses.
type errPermanent struct{ err error }

func (e errPermanent) Error() string { return e.err.Error() }
func (e errPermanent) Unwrap() error { return e.err }

// permanent reports whether err is not worth another attempt: the load was
// cancelled, a table changed (the load must start over from a new
// snapshot), or PostgreSQL refused the statement itself (data exceptions,
// such as an exported snapshot that no longer exists; undefined objects;
// missing privileges).
func permanent(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, ErrTableChanged) || errors.As(err, new(errPermanent)) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:min(len(pgErr.Code), 2)] {
		case "0A", "22", "28", "3D", "42":
			return true
		}
	}
	return false
}
