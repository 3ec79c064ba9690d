package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cdc2s3/cdc2s3/internal/logkey"
	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/snapshot"
	"github.com/cdc2s3/cdc2s3/source"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// session is one connection to the source: a catalog connection and a
// replication connection positioned on the slot.
type session struct {
	conn  *pgx.Conn
	repl  *pgconn.PgConn
	state lsnstore.State
}

func (s *session) close(ctx context.Context) {
	s.conn.Close(context.WithoutCancel(ctx))
	s.repl.Close(context.WithoutCancel(ctx))
}

// open connects, checks the server, makes sure the publication and slot
// exist (running the full load when the slot is new) and returns a session
// ready to stream.
func open(ctx context.Context, cfg Config, store sink.Store, states *lsnstore.Store, log *slog.Logger) (*session, error) {
	conn, err := source.Connect(ctx, cfg.Source)
	if err != nil {
		return nil, err
	}
	s := &session{conn: conn}
	fail := func(err error) (*session, error) {
		conn.Close(context.WithoutCancel(ctx))
		if s.repl != nil {
			s.repl.Close(context.WithoutCancel(ctx))
		}
		return nil, err
	}
	if err := source.CheckServer(ctx, conn); err != nil {
		return fail(err)
	}
	warnIdleSlots(ctx, conn, cfg.Slot, log)
	if s.repl, err = source.ConnectReplication(ctx, cfg.Source); err != nil {
		return fail(err)
	}
	if err := ensurePublication(ctx, conn, cfg, log); err != nil {
		return fail(err)
	}
	st, haveState, err := states.Load(ctx)
	if err != nil {
		return fail(err)
	}
	// A crashed predecessor's walsender may still be creating the slot;
	// such a start waits for it rather than failing.
	for attempt := 0; ; attempt++ {
		var slot *source.Slot
		if slot, err = lookupSlot(ctx, conn, cfg.Slot, log); err != nil {
			return fail(err)
		}
		st, err = prepareSlot(ctx, conn, s.repl, cfg, store, states, st, haveState, slot, log)
		if !errors.Is(err, source.ErrSlotExists) || attempt == 10 {
			break
		}
		log.Warn("replication slot is being created by another connection; waiting", logkey.Slot, cfg.Slot)
		if st, haveState, err = states.Load(ctx); err != nil {
			return fail(err)
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return fail(ctx.Err())
		}
	}
	if err != nil {
		return fail(err)
	}
	if !st.DatePartition.Same(cfg.DatePartition) {
		// Readers of the destination (cdc2s3 catalog) learn the layout
		// of the change files from the state.
		st.DatePartition = cfg.DatePartition
		if err := states.Save(ctx, st); err != nil {
			return fail(err)
		}
	}
	s.state = st
	return s, nil
}

// prepareSlot decides, from the slot and the destination's state, whether
// to resume streaming or to (re)start the full load, and returns the state
// to stream from.
func prepareSlot(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn, cfg Config, store sink.Store,
	states *lsnstore.Store, st lsnstore.State, haveState bool, slot *source.Slot, log *slog.Logger) (lsnstore.State, error) {
	ours := haveState && st.Slot == cfg.Slot
	switch {
	case slot != nil && ours && st.SnapshotDone && st.SlotAhead(slot.ConfirmedFlushLSN):
		if !cfg.ReloadOnSlotReplaced {
			return st, slotAheadError(cfg.Slot, slot.ConfirmedFlushLSN, st)
		}
		return reloadAll(ctx, conn, cfg, store, states, st, slot.ConfirmedFlushLSN, log)
	case slot != nil && ours && st.SnapshotDone:
		if st.AckLimit == 0 {
			// A state written before the check: trust the slot this once
			// and record from now on.
			st.AckLimit = max(st.Checkpoint, slot.ConfirmedFlushLSN)
		}
		log.Info("resuming", logkey.Slot, cfg.Slot, logkey.ConfirmedFlushLSN, slot.ConfirmedFlushLSN, logkey.Checkpoint, st.Checkpoint)
		if st.Checkpoint < slot.ConfirmedFlushLSN {
			st.Checkpoint = slot.ConfirmedFlushLSN
		}
		return st, nil
	case slot != nil && ours:
		// A full load did not finish: its exported snapshot died with the
		// connection that made it. Start over from a new slot.
		log.Warn("previous full load did not finish; dropping the slot and starting over", logkey.Slot, cfg.Slot)
		if err := source.DropSlot(ctx, conn, cfg.Slot); err != nil {
			return st, err
		}
		return initialLoad(ctx, conn, repl, cfg, store, log)
	case slot == nil && (!haveState || !st.SnapshotDone):
		return initialLoad(ctx, conn, repl, cfg, store, log)
	case slot == nil:
		return st, fmt.Errorf("replication slot %q does not exist but %s holds a finished load (checkpoint %s): changes since then are gone from the WAL. "+
			"To start over with a new full load, use a new --dest (or empty the whole destination: old change files would bring back rows deleted since); see docs/operations.md",
			cfg.Slot, store, st.Checkpoint)
	}
	return st, fmt.Errorf("replication slot %q exists but %s has no cdc2s3 state for it: choose another --slot, or drop the slot (SELECT pg_drop_replication_slot('%s')) if nothing else uses it",
		cfg.Slot, store, cfg.Slot)
}

// warnIdleSlots warns about other inactive replication slots on the server:
// each holds WAL from its restart_lsn on until the disk fills (AWS DMS
// leaves them behind when a task is deleted).
func warnIdleSlots(ctx context.Context, conn *pgx.Conn, ours string, log *slog.Logger) {
	slots, err := source.IdleSlots(ctx, conn, ours)
	if err != nil {
		return // only a warning: the checks that matter come next
	}
	for _, s := range slots {
		if s.RetainedBytes > 0 {
			log.Warn("an inactive replication slot holds WAL on the server; drop it if nothing uses it",
				logkey.Slot, s.Name, logkey.Database, s.Database, logkey.RetainedBytes, s.RetainedBytes, logkey.Fix, fmt.Sprintf("SELECT pg_drop_replication_slot('%s')", s.Name))
		}
	}
}

// slotWait bounds how long a start waits for a slot still held by another
// connection: after a crash (SIGKILL) the old walsender holds it until it
// notices its client is gone.
const slotWait = 30 * time.Second

// lookupSlot returns cdc2s3's slot once no other connection holds it, nil
// when there is none, or an error when the slot cannot be streamed from.
func lookupSlot(ctx context.Context, conn *pgx.Conn, name string, log *slog.Logger) (*source.Slot, error) {
	slot, err := source.WaitSlotFree(ctx, conn, name, slotWait, func(s *source.Slot) {
		log.Warn("replication slot in use; waiting for it to be released", logkey.Slot, name, logkey.PID, s.PID)
	})
	if err != nil || slot == nil {
		return nil, err
	}
	return slot, slot.Usable()
}

// initialLoad creates the slot with an exported snapshot, copies every
// published table inside it, and records the finished load. The
// replication connection must not run anything else until the copy is
// done: the exported snapshot lives only while it is idle.
// initialLoad runs the full load, starting over from a new slot (and so a
// new snapshot) when DDL changed a table before its copy.
func initialLoad(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn, cfg Config, store sink.Store, log *slog.Logger) (lsnstore.State, error) {
	for attempt := 1; ; attempt++ {
		st, err := loadOnce(ctx, conn, repl, cfg, store, log)
		if !errors.Is(err, snapshot.ErrTableChanged) || attempt == 3 {
			return st, err
		}
		log.Warn("a table changed during the full load; starting over from a new snapshot", logkey.Error, err)
		if err := source.DropSlot(ctx, conn, cfg.Slot); err != nil {
			return st, err
		}
	}
}

func loadOnce(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn, cfg Config, store sink.Store, log *slog.Logger) (lsnstore.State, error) {
	states := lsnstore.New(store)
	// Refuse tables that cannot be written before creating anything: the
	// load repeats the check for the tables of the snapshot.
	if err := checkNames(ctx, conn, cfg.Publication); err != nil {
		return lsnstore.State{}, err
	}
	st, res, snap, err := newSlot(ctx, repl, cfg, states)
	if err != nil {
		return st, err
	}
	defer snap.Close(context.WithoutCancel(ctx))
	lsn, taken := st.SnapshotLSN, st.SnapshotTime
	published, err := source.PublishedTables(ctx, conn, cfg.Publication)
	if err != nil {
		return st, err
	}
	if published, err = splitInitialLoad(ctx, conn, cfg, published, log); err != nil {
		return st, err
	}
	resolver := source.NewResolver(conn)
	resolver.ArraysAsText = cfg.ArraysAsText
	start := time.Now()
	progress := &snapshot.Progress{}
	cfg.Metrics.snapshot.Store(progress)
	defer cfg.Metrics.snapshot.Store(nil)
	results, err := snapshot.Load(ctx, cfg.Source, snap, resolver, published, store, snapshot.Options{
		Progress: progress,
		Snapshot: res.Snapshot, LSN: lsn, Time: taken, Workers: cfg.SnapshotWorkers, ChunkSize: cfg.SnapshotChunkSize,
		MaxFileSize: cfg.MaxFileSize, Compression: cfg.Compression, TempDir: cfg.TempDir, Log: log,
		TextCopy: cfg.SnapshotTextCopy,
	})
	if err != nil {
		return st, err
	}
	var rows int64
	for _, r := range results {
		rows += r.Rows
		cfg.Metrics.snapshotRows.WithLabelValues(r.Table).Add(float64(r.Rows))
	}
	st.SnapshotDone = true
	if err := states.Save(ctx, st); err != nil {
		return st, err
	}
	if cfg.HistoriesSaved != nil {
		names := make([]string, len(results))
		for i, r := range results {
			names[i] = r.Table
		}
		cfg.HistoriesSaved(names)
	}
	log.Info("full load done", logkey.Tables, len(results), logkey.Rows, rows, logkey.Duration, time.Since(start).Round(time.Millisecond))
	return st, nil
}

// newSlot creates the slot of a first load and returns the state that
// records it (saved), the slot's exported snapshot and a connection inside
// it. The slot is recorded before it is created: if the process dies
// between the two, the next start knows the slot is its own to drop and
// redo. The replication connection must then stay idle: the snapshot
// lives as long as it does.
func newSlot(ctx context.Context, repl *pgconn.PgConn, cfg Config, states *lsnstore.Store) (lsnstore.State, source.CreatedSlot, *pgx.Conn, error) {
	st := lsnstore.State{Slot: cfg.Slot, Publication: cfg.Publication}
	var res source.CreatedSlot
	if err := states.Delete(ctx); err != nil {
		return st, res, nil, err
	}
	if err := states.Save(ctx, st); err != nil {
		return st, res, nil, err
	}
	res, err := source.CreateSlot(ctx, repl, cfg.Slot)
	if err != nil {
		return st, res, nil, err
	}
	lsn := res.ConsistentPoint
	st.SnapshotLSN, st.SnapshotTime, st.Checkpoint, st.AckLimit = lsn, time.Now().UTC(), lsn, lsn
	if err := states.Save(ctx, st); err != nil {
		return st, res, nil, err
	}
	snap, err := snapshot.OpenSnapshot(ctx, cfg.Source, res.Snapshot)
	return st, res, snap, err
}

// splitInitialLoad returns the tables the first load copies in the
// exported snapshot; the others (with a key that the publication's column
// list keeps) the reload engine loads in chunks once streaming: it finds
// them with no history in the destination and reloads them, each table's
// cut its start watermark. InitialLoadChunks chunks every such table,
// InitialLoadAuto the largest of them until the rest is at most
// InitialLoadSnapshotMax bytes on disk.
func splitInitialLoad(ctx context.Context, conn *pgx.Conn, cfg Config, tables []source.Table, log *slog.Logger) ([]source.Table, error) {
	if cfg.InitialLoad == InitialLoadSnapshot {
		return tables, nil
	}
	sizes := make([]int64, len(tables))
	var total int64
	if cfg.InitialLoad == InitialLoadAuto {
		for i, t := range tables {
			n, err := source.TableSize(ctx, conn, t)
			if err != nil {
				return nil, err
			}
			sizes[i], total = n, total+n
		}
	}
	order := make([]int, len(tables))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(sizes[b], sizes[a]) })
	chunked := make([]bool, len(tables))
	var names []string
	for _, i := range order {
		if !chunkable(tables[i]) || (cfg.InitialLoad == InitialLoadAuto && total <= cfg.InitialLoadSnapshotMax) {
			continue
		}
		chunked[i], total = true, total-sizes[i]
		names = append(names, tables[i].Schema+"."+tables[i].Name)
	}
	var now []source.Table
	for i, t := range tables {
		if !chunked[i] {
			now = append(now, t)
		}
	}
	if len(names) > 0 {
		log.Info("these tables with a key load in chunks once streaming; the others load now in the snapshot",
			logkey.InitialLoad, cfg.InitialLoad, logkey.ChunkedTables, names, logkey.Tables, len(now), logkey.BytesOnDisk, total)
	}
	return now, nil
}

// checkNames fails when a table of the publication cannot have a folder
// (sink.CheckTableName).
func checkNames(ctx context.Context, conn *pgx.Conn, publication string) error {
	names, err := source.PublishedTableNames(ctx, conn, publication)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := sink.CheckTableName(n[0], n[1]); err != nil {
			return err
		}
	}
	return nil
}

// slotAheadError explains a slot acknowledged beyond anything the
// destination's daemon acknowledged.
func slotAheadError(slot string, confirmed pglogrepl.LSN, st lsnstore.State) error {
	return fmt.Errorf("replication slot %q was acknowledged up to %s, beyond anything this destination's daemon acknowledged (%s; checkpoint %s): "+
		"the slot was dropped and created again under the same name, or another client consumed it, and the changes in between are not in the destination. "+
		"cdc2s3 will not stream from it. Either start a new full load into a new, empty --dest (drop this slot first: cdc2s3 drop --slot %s), "+
		"or keep this destination, stream from the new slot and reload every table (--reload-on-slot-replaced); see docs/operations.md, \"The slot was replaced\"",
		slot, confirmed, st.AckLimit, st.Checkpoint, slot)
}

// reloadAll is the way out of a replaced slot that keeps the destination
// (--reload-on-slot-replaced): it asks for a reload of every published
// table (a request object, which the reload engine picks up once
// streaming), then moves the checkpoint to the new slot's position and
// streams from there. The changes the old slot had and the new one lacks
// are in no file, but every table's reload cuts its history and brings its
// current rows: once the reloads are done, the folders are exact again.
// The request is written before the state, so a crash in between asks
// again at the next start (a table already being reloaded is not added
// twice).
func reloadAll(ctx context.Context, conn *pgx.Conn, cfg Config, store sink.Store, states *lsnstore.Store, st lsnstore.State,
	confirmed pglogrepl.LSN, log *slog.Logger) (lsnstore.State, error) {
	names, err := source.PublishedTableNames(ctx, conn, cfg.Publication)
	if err != nil {
		return st, err
	}
	tables := make([]string, len(names))
	for i, n := range names {
		tables[i] = n[0] + "." + n[1]
	}
	if len(tables) > 0 {
		key, err := PutReloadRequest(ctx, store, tables)
		if err != nil {
			return st, err
		}
		log.Warn("the replication slot was replaced (its position is beyond anything this destination acknowledged): streaming from the new slot and reloading every table (--reload-on-slot-replaced)",
			logkey.Slot, cfg.Slot, logkey.ConfirmedFlushLSN, confirmed, logkey.Checkpoint, st.Checkpoint, logkey.Tables, len(tables), logkey.Request, key)
	}
	st.Checkpoint, st.AckLimit = max(st.Checkpoint, confirmed), max(st.AckLimit, confirmed)
	if err := states.Save(ctx, st); err != nil {
		return st, err
	}
	return st, nil
}
