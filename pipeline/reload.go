package pipeline

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/cdc2s3/cdc2s3/internal/faultpoint"
	"github.com/cdc2s3/cdc2s3/internal/logkey"
	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/source"
)

// The reload engine (docs/reload.md): it picks up reload requests from the
// destination, writes the watermarks into the WAL and reads each chunk in
// the snapshot of a temporary slot; the writer (reloadrows.go) meets the
// chunks with the stream at the watermarks. It runs beside the stream's
// three stages and shares with them only the reloadShared registry and the
// durable LSN.

// ReloadRequestPrefix is the folder of reload requests in a destination:
// one object per request, `{"tables": ["schema.table", ...]}`, picked up by
// the daemon and deleted once every table's reload has begun.
const ReloadRequestPrefix = sink.StatePrefix + "reload/requests/"

// ReloadRequest is the content of a request object.
type ReloadRequest struct {
	Tables      []string  `json:"tables"`
	RequestedAt time.Time `json:"requested_at"`
}

// PutReloadRequest writes a request to reload tables into the destination,
// for the daemon to pick up, and returns its key.
func PutReloadRequest(ctx context.Context, store sink.Store, tables []string) (string, error) {
	if len(tables) == 0 {
		return "", errors.New("no tables to reload: name them with --tables schema.table,...")
	}
	now := time.Now().UTC()
	b, err := json.Marshal(ReloadRequest{Tables: tables, RequestedAt: now})
	if err != nil {
		return "", err
	}
	key := ReloadRequestPrefix + now.Format(stampLayout) + "-" + randomHex(4) + ".json"
	if err := store.Put(ctx, key, bytes.NewReader(b), int64(len(b))); err != nil {
		return "", fmt.Errorf("write reload request: %w", err)
	}
	return key, nil
}

// stampLayout is the UTC time in the names of requests and reloads: it
// sorts as it reads.
const stampLayout = "20060102T150405.000000Z"

// Defaults of the reload engine.
const (
	// DefaultReloadChunkSize is the size a keyed reload's chunk aims at,
	// in bytes of values read.
	DefaultReloadChunkSize = 16 << 20
	// DefaultReloadWorkers is how many tables are reloaded at a time.
	DefaultReloadWorkers = 2
	// reloadPoll is how often the destination is checked for requests.
	reloadPoll = 2 * time.Second
	// reloadFirstChunkRows is the first chunk's row limit, before the
	// rows' size is known.
	reloadFirstChunkRows = 1000
	maxReloadChunkRows   = 1 << 20
	reloadRetryDelay     = 10 * time.Second
	// treeCheckInterval is how often the published tables are checked for
	// reloads due (watch).
	treeCheckInterval = 10 * time.Second
)

// reloadEngine runs the reloads of one stream session, up to
// Config.ReloadWorkers tables at a time.
type reloadEngine struct {
	cfg    Config
	store  sink.Store
	log    *slog.Logger
	h      *handoff
	shared *reloadShared
	runID  string // this session's run
	// todo holds the reloads to do, in order; the saved state's first.
	todo    []lsnstore.Reload
	conn    *pgx.Conn // watermarks and catalog
	read    *pgx.Conn // chunk reads
	workerN int       // a worker's number in this run (0: the engine itself)
	slots   int       // temporary slots created, for their names
	// inflight is the chunk handed last, until the writer has written it.
	inflight *reloadChunk
	// known are the published tables the destination has a history of
	// (no reload due for joining), trees each partitioned root's partition
	// tree as last recorded, by label; checkedAt is when watch last looked.
	known     map[string]bool
	trees     map[string]string
	checkedAt time.Time
}

func newReloadEngine(cfg Config, store sink.Store, h *handoff, shared *reloadShared, saved []lsnstore.Reload, log *slog.Logger) *reloadEngine {
	return &reloadEngine{cfg: cfg, store: store, h: h, shared: shared, todo: slices.Clone(saved), runID: randomHex(6), log: log,
		known: map[string]bool{}, trees: map[string]string{}}
}

// run does the reloads until stop or ctx is done, up to
// Config.ReloadWorkers tables at a time, each in a worker of its own (a
// copy of the engine with its own connections). A failure of one reload
// is logged and the reload tried again later: a reload never stops the
// stream.
func (e *reloadEngine) run(ctx, stop context.Context) error {
	ctx, cancel := mergeDone(ctx, stop)
	defer cancel()
	defer e.close()
	type result struct {
		r   lsnstore.Reload
		err error
	}
	results := make(chan result)
	running := map[string]bool{}
	retryAt := map[string]time.Time{}
	workers := max(e.cfg.ReloadWorkers, 1)
	next := 0
	for ctx.Err() == nil {
		if err := e.watch(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("checking the published tables for reloads due", logkey.Error, err)
		}
		if err := e.pickUp(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("reload requests", logkey.Error, err)
		}
		for _, r := range e.todo {
			if len(running) >= workers {
				break
			}
			if running[r.ID] || time.Now().Before(retryAt[r.ID]) {
				continue
			}
			running[r.ID] = true
			next++
			w := e.worker(next)
			go func(r lsnstore.Reload) {
				err := w.reload(ctx, &r)
				w.close()
				results <- result{r, err}
			}(r)
		}
		select {
		case res := <-results:
			delete(running, res.r.ID)
			i := slices.IndexFunc(e.todo, func(o lsnstore.Reload) bool { return o.ID == res.r.ID })
			switch {
			case i < 0:
			case res.err == nil:
				e.todo = slices.Delete(e.todo, i, i+1)
			case ctx.Err() == nil:
				e.todo[i] = res.r // the retry goes on from the chunks handed
				retryAt[res.r.ID] = time.Now().Add(reloadRetryDelay)
				e.log.Error("reload failed; trying again", logkey.Table, res.r.Schema+"."+res.r.Table, logkey.Reload, res.r.ID,
					logkey.Error, res.err, logkey.Delay, reloadRetryDelay)
			}
		case <-time.After(reloadPoll):
		case <-ctx.Done():
		}
	}
	for len(running) > 0 {
		res := <-results
		delete(running, res.r.ID)
	}
	return nil
}

// worker returns a copy of the engine for one reload: the same run and
// shared state, its own connections, chunk in flight and temporary slot
// names (n numbers the workers of this run).
func (e *reloadEngine) worker(n int) *reloadEngine {
	w := &reloadEngine{cfg: e.cfg, store: e.store, log: e.log, h: e.h, shared: e.shared, runID: e.runID, workerN: n}
	if workers := max(e.cfg.ReloadWorkers, 1); w.cfg.ReloadRate > 0 {
		w.cfg.ReloadRate = max(w.cfg.ReloadRate/int64(workers), 1) // the cap is for all of them
	}
	return w
}

func (e *reloadEngine) close() {
	for _, c := range []*pgx.Conn{e.conn, e.read} {
		if c != nil {
			c.Close(context.Background())
		}
	}
	e.conn, e.read = nil, nil
}

// connect opens the engine's connections when they are not open.
func (e *reloadEngine) connect(ctx context.Context) error {
	var err error
	if e.conn == nil {
		if e.conn, err = source.Connect(ctx, e.cfg.Source); err != nil {
			return err
		}
	}
	if e.read == nil {
		if e.read, err = source.Connect(ctx, e.cfg.Source); err != nil {
			return err
		}
	}
	return nil
}

// pickUp reads the requests in the destination: each table becomes a
// reload, begun with a start watermark; the request is deleted once every
// start is in the saved state (so a crash before then finds it again, and
// one after finds the reloads).
func (e *reloadEngine) pickUp(ctx context.Context) error {
	objs, err := e.store.List(ctx, ReloadRequestPrefix)
	if err != nil || len(objs) == 0 {
		return err
	}
	if err := e.connect(ctx); err != nil {
		return err
	}
	for _, o := range objs {
		if err := e.request(ctx, o.Key); err != nil {
			return fmt.Errorf("%s: %w", o.Key, err)
		}
	}
	return nil
}

// request begins the reloads one request asks for.
func (e *reloadEngine) request(ctx context.Context, key string) error {
	var req ReloadRequest
	found, err := sink.GetJSON(ctx, e.store, key, &req)
	switch {
	case errors.Is(err, sink.ErrBadJSON):
		e.log.Error("ignoring a reload request that cannot be read: write it again with cdc2s3 reload", logkey.Request, key, logkey.Error, err)
		return e.store.Delete(ctx, key)
	case err != nil:
		return err // read again at the next poll
	case !found:
		return nil
	}
	published, err := source.PublishedTables(ctx, e.conn, e.cfg.Publication)
	if err != nil {
		return err
	}
	name := strings.TrimSuffix(path.Base(key), ".json")
	var last pglogrepl.LSN
	for i, want := range req.Tables {
		schema, table := source.SplitName(want)
		j := slices.IndexFunc(published, func(t source.Table) bool { return t.Schema == schema && t.Name == table })
		if j < 0 {
			e.log.Error("not reloading a table the publication does not publish: add it to the publication (or --tables) and ask again",
				logkey.Table, schema+"."+table, logkey.Publication, e.cfg.Publication, logkey.Request, key)
			continue
		}
		id := name + "." + strconv.Itoa(i)
		if slices.ContainsFunc(e.todo, func(o lsnstore.Reload) bool { return o.ID == id }) {
			continue // begun before a restart
		}
		if e.reloading(schema, table) {
			e.log.Info("a reload of the table is already queued or running; not adding another", logkey.Table, schema+"."+table, logkey.Request, key)
			continue
		}
		lsn, err := e.begin(ctx, id, published[j], "")
		if err != nil {
			return err
		}
		last = lsn
		e.log.Info("reload requested", logkey.Table, schema+"."+table, logkey.Reload, id, logkey.Request, key)
	}
	if err := e.waitDurable(ctx, last); err != nil {
		return err
	}
	return e.store.Delete(ctx, key)
}

// begin begins a reload of t: its start watermark, and the reload queued.
// tree, for a partitioned root, is its partition tree, recorded with the
// start. It returns the start's position.
func (e *reloadEngine) begin(ctx context.Context, id string, t source.Table, tree string) (pglogrepl.LSN, error) {
	r := lsnstore.Reload{ID: id, Schema: t.Schema, Table: t.Name, Keyed: len(t.Key) > 0, StartedAt: time.Now().UTC()}
	est, err := source.EstimatedRows(ctx, e.conn, t)
	if err != nil {
		return 0, err
	}
	r.Estimate = est
	e.register(r.ID)
	lsn, err := e.emit(ctx, watermark{ID: r.ID, Kind: markStart, Schema: t.Schema, Table: t.Name, Keyed: r.Keyed, Tree: tree, Estimate: est})
	if err != nil {
		return 0, err
	}
	if r.Keyed {
		r.Cut = lsn
	}
	e.todo = append(e.todo, r)
	return lsn, nil
}

// reloading reports whether a reload of schema.table is queued or running.
func (e *reloadEngine) reloading(schema, table string) bool {
	return slices.ContainsFunc(e.todo, func(r lsnstore.Reload) bool { return r.Schema == schema && r.Table == table })
}

// watch begins the reloads the source's structure calls for, every
// treeCheckInterval and when the stream sent a known relation again (the
// writer's relationChanged): of each published table the destination has no
// schema history for, or one marked unloaded (it joined the pipeline after
// the full load: added to the publication, created later, a schema of the
// publication gaining it, a partition detached); and of each partitioned
// root whose partition tree changed since it was last recorded (a
// partition attached, detached, dropped or truncated, none of which the
// stream carries as changes of the root's rows). A tree never recorded is
// recorded. Between checks, the tables the writer meets for the first
// time in the stream are reloaded at once.
func (e *reloadEngine) watch(ctx context.Context) error {
	var want []reloadDue
	for _, j := range e.shared.takeJoined() {
		if !e.known[j[0]+"."+j[1]] { // not reloaded by this engine already
			want = append(want, reloadDue{j[0], j[1], whyJoined})
		}
	}
	trees := map[string]string{} // root label → its tree now, recorded with its reload
	why := whyTree
	if e.shared.takeRelationChanged() {
		why = whyTreeSent
	} else if time.Since(e.checkedAt) < treeCheckInterval {
		why = ""
	}
	if why != "" {
		e.checkedAt = time.Now()
		due, err := e.check(ctx, why, trees)
		if err != nil {
			return err
		}
		want = append(want, due...)
	}
	if len(want) == 0 {
		return nil
	}
	return e.beginDue(ctx, want, trees)
}

// reloadDue is a table watch found a reload due for, and why.
type reloadDue struct{ schema, table, why string }

// check looks at every published table: those with no schema history or
// one marked unloaded are due, and so are the partitioned roots whose
// partition tree changed (why says which check found it). It puts each
// root's tree now in trees, and records the trees never recorded.
func (e *reloadEngine) check(ctx context.Context, why string, trees map[string]string) ([]reloadDue, error) {
	if err := e.connect(ctx); err != nil {
		return nil, err
	}
	rels, err := source.PublishedRelations(ctx, e.conn, e.cfg.Publication)
	if err != nil {
		return nil, err
	}
	var want []reloadDue
	var record []source.Table // roots whose tree is only recorded
	states := lsnstore.New(e.store)
	for _, t := range rels {
		label := t.String()
		var h *lsnstore.History
		if !e.known[label] || (t.Partitioned && e.trees[label] == "") {
			if h, err = states.LoadHistory(ctx, t.Schema, t.Name); err != nil {
				return nil, err
			}
			if len(h.Columns) == 0 || h.Unloaded {
				want = append(want, reloadDue{t.Schema, t.Name, whyJoined})
			} else {
				e.known[label] = true
			}
		}
		if !t.Partitioned {
			continue
		}
		now, err := source.PartitionFiles(ctx, e.conn, t.OID)
		if err != nil {
			return nil, err
		}
		known := e.trees[label]
		if known == "" && h != nil {
			known = h.Partitions
		}
		switch {
		case known == now:
		case known == "":
			record = append(record, t)
		default:
			// Also while a reload of the root runs: what it read before
			// the change may be wrong now, so another one follows it (the
			// reload sees the change again once the first is done, which
			// records the tree it began with).
			want = append(want, reloadDue{t.Schema, t.Name, why})
		}
		trees[label] = now
	}
	for _, t := range record {
		id := "tree-" + t.String()
		e.register(id)
		if _, err := e.emit(ctx, watermark{ID: id, Kind: markTree, Schema: t.Schema, Table: t.Name, Tree: trees[t.String()]}); err != nil {
			return nil, err
		}
		e.trees[t.String()] = trees[t.String()]
	}
	return want, nil
}

// beginDue begins the reloads want asks for, of the tables still published
// and not being reloaded, each root with its tree now (trees), and waits
// until their starts are in the destination.
func (e *reloadEngine) beginDue(ctx context.Context, want []reloadDue, trees map[string]string) error {
	if err := e.connect(ctx); err != nil {
		return err
	}
	published, err := source.PublishedTables(ctx, e.conn, e.cfg.Publication)
	if err != nil {
		return err
	}
	var last pglogrepl.LSN
	stamp := time.Now().UTC().Format(stampLayout)
	for i, w := range want {
		label := w.schema + "." + w.table
		j := slices.IndexFunc(published, func(t source.Table) bool { return t.Schema == w.schema && t.Name == w.table })
		if j < 0 || e.reloading(w.schema, w.table) {
			continue
		}
		id := "auto-" + stamp + "." + strconv.Itoa(i)
		lsn, err := e.begin(ctx, id, published[j], trees[label])
		if err != nil {
			return err
		}
		if tree, ok := trees[label]; ok {
			e.trees[label] = tree
		}
		e.known[label] = true
		last = lsn
		e.log.Info("reloading a table the stream cannot make exact by itself", logkey.Table, label, logkey.Reload, id, logkey.Reason, w.why)
	}
	return e.waitDurable(ctx, last)
}

// Why watch reloads a table.
const (
	whyJoined = "the folder does not hold the table's existing rows: it joined the pipeline after the full load, or the first load left it to chunks (--initial-load chunks)"
	whyTree   = "the partition tree changed: a partition attached, detached, dropped or truncated"
	// whyTreeSent is whyTree found by the check that a relation the stream
	// sent again set off, rather than by the timed one.
	whyTreeSent = whyTree + " (seen when the stream sent the relation again)"
)

// register makes id's watermarks of this session's run count.
func (e *reloadEngine) register(id string) {
	e.shared.mu.Lock()
	e.shared.runs[id] = e.runID
	e.shared.mu.Unlock()
}

// reload runs one table's reload to its end.
func (e *reloadEngine) reload(ctx context.Context, r *lsnstore.Reload) error {
	if err := e.connect(ctx); err != nil {
		return err
	}
	e.register(r.ID)
	published, err := source.PublishedTables(ctx, e.conn, e.cfg.Publication)
	if err != nil {
		return err
	}
	j := slices.IndexFunc(published, func(t source.Table) bool { return t.Schema == r.Schema && t.Name == r.Table })
	if j < 0 {
		// Unpublished since (dropped, attached as a partition, taken out
		// of the publication): the stream no longer has it either. The
		// reload ends without a marker, so its rows count for nothing.
		if _, err := e.emit(ctx, watermark{ID: r.ID, Kind: markCancel}); err != nil {
			return err
		}
		e.log.Warn("reload abandoned: the table is no longer published", logkey.Table, r.Schema+"."+r.Table, logkey.Reload, r.ID, logkey.Publication, e.cfg.Publication)
		return nil
	}
	t := published[j]
	start := time.Now()
	if r.Keyed {
		err = e.keyed(ctx, r, t)
	} else {
		err = e.keyless(ctx, r, t)
	}
	if err == nil {
		err = e.settle(ctx, r)
	}
	e.inflight = nil
	if err != nil {
		return err
	}
	// The marker goes in a file sealed after every file of the reload's L
	// rows, and files are uploaded in the order they were sealed: a
	// reader sees the marker only once every L row is there too.
	end, err := e.emit(ctx, watermark{ID: r.ID, Kind: markEnd})
	if err != nil {
		return err
	}
	if err := e.waitDurable(ctx, end); err != nil {
		return err
	}
	e.log.Info("reload complete", logkey.Table, t.String(), logkey.Reload, r.ID, logkey.Rows, r.Rows, logkey.Chunks, r.Chunks,
		logkey.Duration, time.Since(start).Round(time.Millisecond))
	return nil
}

// chunkable reports whether t can be read in chunks by key: it has a key,
// and the publication publishes every key column.
func chunkable(t source.Table) bool {
	return len(t.Key) > 0 && !slices.ContainsFunc(t.Key, func(k string) bool {
		return !slices.ContainsFunc(t.Columns, func(c source.Column) bool { return c.Name == k })
	})
}

// keyed reads a table with a key in chunks, each in its own temporary
// slot's snapshot between a low and a high watermark, from the last key
// done. Each chunk locks the table for its read and takes the table's
// columns from the catalog then, so its rows and the stream's changes
// after it have the same columns unless DDL lands between the read and
// the high watermark: the writer then drops the chunk, and its range is
// read again.
func (e *reloadEngine) keyed(ctx context.Context, r *lsnstore.Reload, t source.Table) error {
	limit := reloadFirstChunkRows
	for n := 1; ; n++ {
		if _, err := e.emit(ctx, watermark{ID: r.ID, Kind: markLow, Chunk: n}); err != nil {
			return err
		}
		c := &reloadChunk{from: r.LastKey, done: make(chan struct{})}
		var bytesRead int64
		err := e.inSnapshot(ctx, func(consistent pglogrepl.LSN) error {
			c.consistent = consistent
			var err error
			if t, err = e.lockRead(ctx, t); err != nil {
				return err
			}
			if c.key, err = keyIndexes(t); err != nil {
				return err
			}
			c.cols = t.Columns
			c.rows, bytesRead, err = e.readKeyed(ctx, t, c.key, r.LastKey, limit)
			return err
		})
		if errors.Is(err, errRewritten) {
			e.log.Info("reading the chunk again: the table was rewritten after its snapshot was taken", logkey.Table, t.String(), logkey.Reload, r.ID, logkey.Chunk, n)
			continue
		}
		if err != nil {
			return err
		}
		faultpoint.Delay(faultpoint.ReloadBeforeHigh)
		c.lastKey = r.LastKey
		if len(c.rows) > 0 {
			lastRow := c.rows[len(c.rows)-1]
			c.lastKey = nil
			for _, k := range c.key {
				c.lastKey = append(c.lastKey, string(lastRow[k]))
			}
		}
		h, judged, err := e.hand(ctx, r, n, c)
		if err != nil {
			return err
		}
		e.log.Info("reload chunk", logkey.Table, t.String(), logkey.Reload, r.ID, logkey.Chunk, n, logkey.Rows, len(c.rows), logkey.LSN, h)
		if judged {
			if c.redo {
				continue // from where the writer has got
			}
		} else {
			r.LastKey = c.lastKey // as the writer will have it, unless it drops the chunk
		}
		if len(c.rows) < limit {
			// The last chunk: done once the writer has written it.
			if err := e.settle(ctx, r); err != nil {
				return err
			}
			if c.redo {
				r.LastKey = c.resume
				continue
			}
			return nil
		}
		if bytesRead > 0 {
			limit = int(min(max(int64(len(c.rows))*e.chunkSize()/bytesRead, 100), maxReloadChunkRows))
		}
	}
}

// keyIndexes returns the indexes in t's columns of its key columns.
func keyIndexes(t source.Table) ([]int, error) {
	key := make([]int, len(t.Key))
	for i, k := range t.Key {
		key[i] = slices.IndexFunc(t.Columns, func(c source.Column) bool { return c.Name == k })
		if key[i] < 0 {
			return nil, fmt.Errorf("%s: key column %q is not published (the publication's column list leaves it out)", t, k)
		}
	}
	return key, nil
}

// errRewritten: the table has another file than the chunk's snapshot
// knows (ALTER TABLE ... TYPE, ADD COLUMN with a volatile default, VACUUM
// FULL, CLUSTER, TRUNCATE since the snapshot), which the snapshot would
// read as empty: rewrites are not MVCC-safe.
var errRewritten = errors.New("the table was rewritten after the snapshot of its read was taken")

// lockRead takes the ACCESS SHARE lock of t in the read's transaction,
// so no DDL changes it while it is read, then checks that no
// rewrite since the snapshot emptied it (errRewritten) and returns t as
// the publication publishes it now. The lock of a partitioned root holds
// its partitions; any other table is read with ONLY.
func (e *reloadEngine) lockRead(ctx context.Context, t source.Table) (source.Table, error) {
	lock := "LOCK TABLE ONLY "
	if t.Partitioned {
		lock = "LOCK TABLE "
	}
	if _, err := e.read.Exec(ctx, lock+t.QualifiedName()+" IN ACCESS SHARE MODE"); err != nil {
		return t, fmt.Errorf("lock %s for its read: %w", t, err)
	}
	// pg_class read in the snapshot gives the files it knows; the function
	// reads the current catalog, up to date once the lock is held.
	var rewritten bool
	err := e.read.QueryRow(ctx, `
		SELECT EXISTS (SELECT FROM pg_class c
		               WHERE c.relkind = 'r' AND c.relfilenode IS DISTINCT FROM pg_relation_filenode(c.oid)
		                 AND (c.oid = $1::oid OR ($2 AND c.oid IN (SELECT relid FROM pg_partition_tree($1::oid::regclass)))))`,
		t.OID, t.Partitioned).Scan(&rewritten)
	if err != nil {
		return t, fmt.Errorf("check the files of %s: %w", t, err)
	}
	if rewritten {
		return t, errRewritten
	}
	now, ok, err := source.PublishedTable(ctx, e.conn, e.cfg.Publication, t.OID)
	if err != nil {
		return t, err
	}
	if !ok {
		return t, fmt.Errorf("%s is no longer published by %s", t, e.cfg.Publication)
	}
	return now, nil
}

// keyless reads a table without a key whole, in one temporary slot's
// snapshot whose consistent point is the cut, in batches written at a high
// watermark each.
func (e *reloadEngine) keyless(ctx context.Context, r *lsnstore.Reload, t source.Table) error {
	r.Rows, r.Chunks = 0, 0
	return e.inSnapshot(ctx, func(consistent pglogrepl.LSN) error {
		if _, err := e.emit(ctx, watermark{ID: r.ID, Kind: markStart, Cut: consistent}); err != nil {
			return err
		}
		r.Cut = consistent
		// The lock holds until the last batch is read: no DDL meets this
		// read, unlike a keyed reload's chunks.
		var err error
		if t, err = e.lockRead(ctx, t); err != nil {
			return err
		}
		q := "DECLARE reload NO SCROLL CURSOR FOR " + selectPublished(t, nil, 0)
		if _, err := e.read.Exec(ctx, q); err != nil {
			return fmt.Errorf("read %s: %w", t, err)
		}
		limit := reloadFirstChunkRows
		for n := 1; ; n++ {
			rows, bytesRead, err := e.query(ctx, fmt.Sprintf("FETCH %d FROM reload", limit), nil)
			if err != nil {
				return fmt.Errorf("read %s: %w", t, err)
			}
			c := &reloadChunk{cols: t.Columns, rows: rows, consistent: consistent, done: make(chan struct{})}
			if _, _, err := e.hand(ctx, r, n, c); err != nil {
				return err
			}
			if len(rows) < limit {
				return nil
			}
			if bytesRead > 0 {
				limit = int(min(max(int64(len(rows))*e.chunkSize()/bytesRead, 100), maxReloadChunkRows))
			}
		}
	})
}

// hand gives a chunk to the writer at a high watermark, then waits until
// the writer has written the chunk handed before it: the next chunk is
// read while the writer writes this one, and at most two are held in
// memory. When the writer dropped the one before (to be read again), this
// one starts past where the writer has got, and the writer judges it too:
// hand waits for that and reports judged, with r.LastKey set back to the
// writer's progress.
func (e *reloadEngine) hand(ctx context.Context, r *lsnstore.Reload, n int, c *reloadChunk) (h pglogrepl.LSN, judged bool, err error) {
	k := chunkKey(r.ID, e.runID, n)
	e.shared.mu.Lock()
	e.shared.chunks[k] = c
	e.shared.mu.Unlock()
	h, err = e.emit(ctx, watermark{ID: r.ID, Kind: markHigh, Chunk: n})
	if err != nil {
		e.shared.mu.Lock()
		delete(e.shared.chunks, k)
		e.shared.mu.Unlock()
		return 0, false, err
	}
	prev := e.inflight
	if err := e.settle(ctx, r); err != nil {
		return 0, false, err
	}
	e.inflight = c
	if prev != nil && prev.redo {
		if err := e.settle(ctx, r); err != nil {
			return 0, false, err
		}
		r.LastKey = c.resume
		return h, true, nil
	}
	e.throttle(ctx, c)
	return h, false, nil
}

// settle waits until the writer has written (or dropped) the chunk last
// handed, and counts it in r when written.
func (e *reloadEngine) settle(ctx context.Context, r *lsnstore.Reload) error {
	if e.inflight == nil {
		return nil
	}
	select {
	case <-e.inflight.done:
		if !e.inflight.redo {
			r.Rows, r.Chunks = r.Rows+int64(len(e.inflight.rows)), r.Chunks+1
		}
		e.inflight = nil
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// throttle waits as long as reading the chunk's bytes should take at
// --reload-rate.
func (e *reloadEngine) throttle(ctx context.Context, c *reloadChunk) {
	if e.cfg.ReloadRate <= 0 {
		return
	}
	var n int64
	for _, row := range c.rows {
		for _, v := range row {
			n += int64(len(v))
		}
	}
	sleep(ctx, time.Duration(float64(n)/float64(e.cfg.ReloadRate)*float64(time.Second)))
}

func (e *reloadEngine) chunkSize() int64 {
	if e.cfg.ReloadChunkSize > 0 {
		return e.cfg.ReloadChunkSize
	}
	return DefaultReloadChunkSize
}

// inSnapshot creates a temporary slot, imports its snapshot in a
// read-only transaction on the read connection, drops the slot (the
// transaction keeps the snapshot) and calls fn with the consistent point
// inside the transaction.
func (e *reloadEngine) inSnapshot(ctx context.Context, fn func(consistent pglogrepl.LSN) error) error {
	repl, err := source.ConnectReplication(ctx, e.cfg.Source)
	if err != nil {
		return err
	}
	defer repl.Close(context.WithoutCancel(ctx))
	e.slots++
	slot, err := source.CreateTempSlot(ctx, repl, fmt.Sprintf("cdc2s3_reload_%s_%d_%d", e.runID, e.workerN, e.slots))
	if err != nil {
		return err
	}
	tx, err := e.read.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+slot.Snapshot+"'"); err != nil {
		return fmt.Errorf("import the reload snapshot: %w", err)
	}
	// The transaction holds the snapshot now; the slot would only hold
	// back WAL.
	repl.Close(ctx)
	if err := fn(slot.ConsistentPoint); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// readKeyed reads up to limit rows after the key after (nil: from the
// start), in key order.
func (e *reloadEngine) readKeyed(ctx context.Context, t source.Table, key []int, after []string, limit int) ([][][]byte, int64, error) {
	var args []any
	for _, v := range after {
		args = append(args, v)
	}
	q := selectPublished(t, after, limit)
	rows, n, err := e.query(ctx, q, args)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", t, err)
	}
	return rows, n, nil
}

// query runs q on the read connection with text results and returns the
// rows (values copied, nil for NULL) and their bytes.
func (e *reloadEngine) query(ctx context.Context, q string, args []any) ([][][]byte, int64, error) {
	params := make([][]byte, len(args))
	for i, a := range args {
		params[i] = []byte(a.(string))
	}
	rr := e.read.PgConn().ExecParams(ctx, q, params, nil, nil, nil)
	var out [][][]byte
	var n int64
	for rr.NextRow() {
		// One allocation for a row's values, one for its slice headers.
		vals := rr.Values()
		size := 0
		for _, v := range vals {
			size += len(v)
		}
		buf := make([]byte, 0, size)
		row := make([][]byte, len(vals))
		for i, v := range vals {
			if v != nil {
				buf = append(buf, v...)
				row[i] = buf[len(buf)-len(v) : len(buf) : len(buf)]
			}
		}
		n += int64(size)
		out = append(out, row)
	}
	_, err := rr.Close()
	return out, n, err
}

// selectPublished is the SELECT of what the publication publishes of t:
// its columns, its row filter, for a keyed read the rows after the key
// given as parameters $1… (afterKey non-nil) in key order up to limit.
func selectPublished(t source.Table, afterKey []string, limit int) string {
	from := "ONLY " + t.QualifiedName()
	if t.Partitioned {
		from = t.QualifiedName()
	}
	keys := make([]string, len(t.Key))
	for i, k := range t.Key {
		keys[i] = pgx.Identifier{k}.Sanitize()
	}
	var after string
	if len(afterKey) > 0 {
		ps := make([]string, len(afterKey))
		for i := range afterKey {
			ps[i] = "$" + strconv.Itoa(i+1)
		}
		after = "(" + strings.Join(keys, ", ") + ") > (" + strings.Join(ps, ", ") + ")"
	}
	q := "SELECT " + t.SelectList() + " FROM " + from + t.Where(after)
	if limit > 0 {
		q += " ORDER BY " + strings.Join(keys, ", ") + " LIMIT " + strconv.Itoa(limit)
	}
	return q
}

// emit writes a watermark into the WAL and returns its position.
func (e *reloadEngine) emit(ctx context.Context, m watermark) (pglogrepl.LSN, error) {
	m.Run, m.At = e.runID, time.Now().UTC()
	b, err := json.Marshal(m)
	if err != nil {
		return 0, err
	}
	var s string
	if err := e.conn.QueryRow(ctx, "SELECT pg_logical_emit_message(false, $1, $2::text)::text", reloadPrefix, string(b)).Scan(&s); err != nil {
		return 0, fmt.Errorf("write a reload watermark: %w", err)
	}
	return pglogrepl.ParseLSN(s)
}

// waitDurable waits until everything at or below lsn is in the
// destination.
func (e *reloadEngine) waitDurable(ctx context.Context, lsn pglogrepl.LSN) error {
	for e.h.durable.Load() < lsn {
		if !sleep(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
	return nil
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
