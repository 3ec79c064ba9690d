package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/cdc2s3/cdc2s3/decoder"
	"github.com/cdc2s3/cdc2s3/internal/logkey"
	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/source"
)

// writer owns the catalog connection and the open files: it decodes each
// committed transaction, takes the catalog's decisions the stream cannot
// (a relation's primary key, its column types, an added column's missing
// value), writes the rows to per-table Parquet files, and at each flush
// hands the sealed files to the uploader. It also writes the heartbeat.
type writer struct {
	cfg      Config
	conn     *pgx.Conn // catalog look-ups
	store    sink.Store
	states   *lsnstore.Store
	log      *slog.Logger
	h        *handoff
	dec      *decoder.Decoder
	resolver *source.Resolver

	tables       map[string]*table
	counting     []*table // tables with counts not yet in the metrics
	rows         []decoder.Row
	processed    int64 // transactions written
	sealed       []sealedFile
	pendingBytes int64
	lastFlush    time.Time
	lastCommit   pglogrepl.LSN // end LSN of the last commit processed
	handed       pglogrepl.LSN // ack LSN of the last batch handed to the uploader
	// lastHeartbeat is when the heartbeat was last written.
	lastHeartbeat time.Time

	// Reloads (reloadrows.go): each running one's progress by id, those
	// with a chunk window open by table label, and what the reload engine
	// shares with the writer (nil: no engine).
	reloads      map[string]*reloadRun
	windows      map[string]*reloadRun
	reloadShared *reloadShared
	// flushNow asks for a flush at once (a reload's start or marker).
	flushNow bool
	// xid is the transaction being written; visible reports that it is
	// visible to the catalog connection (visible.go).
	xid     uint32
	visible bool
	// resent are the relations the stream sent again since their table's
	// last row: the columns' numbers are checked at the next row (a
	// column dropped and added again under its name).
	resent map[uint32]bool
}

func newWriter(cfg Config, conn *pgx.Conn, store sink.Store, states *lsnstore.Store, checkpoint pglogrepl.LSN, h *handoff, log *slog.Logger) *writer {
	w := &writer{
		cfg: cfg, conn: conn, store: store, states: states, h: h, log: log,
		dec:     decoder.New(),
		tables:  map[string]*table{},
		resent:  map[uint32]bool{},
		windows: map[string]*reloadRun{},
	}
	w.initReloads(nil)
	if conn != nil {
		w.resolver = source.NewResolver(conn)
		w.resolver.ArraysAsText = cfg.ArraysAsText
	}
	w.lastCommit, w.handed = checkpoint, checkpoint
	return w
}

// sealedFile is a closed change file waiting for upload.
type sealedFile struct {
	key   string
	path  string
	rows  int64
	table string
}

// batch is what one flush hands to the uploader: every file sealed since
// the previous flush, the schema histories that changed, and the LSN that
// may be acknowledged once all of it is uploaded.
type batch struct {
	files     []sealedFile
	histories []*lsnstore.History
	ack       pglogrepl.LSN
	reloads   []lsnstore.Reload // the reloads' progress as of ack
}

// run is the writing loop: it writes each committed transaction, flushes
// when a batch is due, and writes the heartbeat. When the receiver stops
// gracefully it writes what is queued, flushes, and returns nil.
func (w *writer) run(ctx context.Context) error {
	w.lastFlush = time.Now()
	w.lastHeartbeat = time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	pending := false
	for {
		next := time.Now().Add(time.Hour)
		if pending {
			next = w.lastFlush.Add(w.cfg.FlushInterval)
		}
		if w.cfg.HeartbeatInterval > 0 {
			next = earliest(next, w.lastHeartbeat.Add(w.cfg.HeartbeatInterval))
		}
		timer.Reset(time.Until(next))
		select {
		case c, ok := <-w.h.txns:
			if !ok {
				if !w.h.stopped.Load() {
					return nil // the receiver failed: its error is the one reported
				}
				w.log.Info("stopping: flushing open files")
				return w.flush(ctx)
			}
			var err error
			if c.message != nil {
				w.visible = true // no transaction: the catalog is read as it is
				err = w.watermark(ctx, c.message, c.end)
			} else {
				w.xid, w.visible = c.xid, false
				err = w.commit(ctx, c.each, c.end, c.at)
			}
			w.release(c)
			if err != nil {
				return err
			}
			w.processed++
		case <-timer.C:
		case <-w.h.caughtUpSignal:
		case <-ctx.Done():
			return ctx.Err()
		}
		if w.flushDue() || w.caughtUpFlushDue() {
			if err := w.flush(ctx); err != nil {
				return err
			}
		}
		if w.cfg.HeartbeatInterval > 0 && time.Since(w.lastHeartbeat) >= w.cfg.HeartbeatInterval {
			if err := w.heartbeat(ctx); err != nil {
				return err
			}
		}
		pending = w.publish()
	}
}

// discard removes the open and the sealed files not handed over, and the
// files of batches the uploader did not take, once the stream is over.
// Only after every stage has returned.
func (w *writer) discard() {
	for _, t := range w.tables {
		if o := t.open; o != nil {
			t.open = nil
			o.f.Close()
			os.Remove(o.f.Name())
		}
	}
	removeFiles(w.sealed)
	w.sealed = nil
	for b := range w.h.batches { // closed by the writer's return
		removeFiles(b.files)
	}
}

// removeFiles removes the local copies of sealed files.
func removeFiles(files []sealedFile) {
	for _, f := range files {
		os.Remove(f.path)
	}
}

// publish tells the receiver how far the writer has got, and returns
// whether anything is pending (a walk over every table, done once per
// turn).
func (w *writer) publish() bool {
	ws := &writerState{processed: w.processed, pending: w.hasPending(), handed: w.handed}
	w.h.written.Store(ws)
	return ws.pending
}

// release empties a written transaction's spool, gives it back for reuse
// if there is room, and tells the receiver.
func (w *writer) release(c *committed) {
	if c.spool != nil {
		c.spool.reset()
		w.h.queued.Add(-c.mem)
		select {
		case w.h.free <- c.spool:
		default:
		}
	}
	select {
	case w.h.released <- struct{}{}:
	default:
	}
}

// commit decodes the spooled transaction and appends its rows to the open
// files, now that its end LSN is known.
func (w *writer) commit(ctx context.Context, each func(func([]byte) error) error, end pglogrepl.LSN, at time.Time) error {
	var seq uint64
	ts := at.UnixMicro()
	err := each(func(msg []byte) error {
		rows, described, err := w.dec.Decode(msg, w.rows[:0])
		w.rows = rows[:0]
		if err != nil {
			return err
		}
		if described != nil {
			if w.reloadShared != nil {
				w.reloadShared.relationChanged()
			}
			w.resent[described.ID] = true
			return w.setKey(ctx, described, end)
		}
		for _, row := range rows {
			pos := sink.Pos{LSN: end, Seq: seq}
			seq++
			t, err := w.table(ctx, row.Rel, pos)
			if err != nil {
				return err
			}
			if !t.done.Less(pos) {
				continue // already in the destination (replay after a restart)
			}
			if row.Op == decoder.OpInsert && len(row.Unchanged) > 0 {
				if err := w.fillUnchanged(ctx, t, &row); err != nil {
					return err
				}
			}
			if err := w.writeRow(t, pos, ts, row); err != nil {
				return fmt.Errorf("%s.%s: %w", t.schema, t.name, err)
			}
			if len(w.windows) > 0 {
				w.recordWindow(t, end, row)
			}
		}
		return nil
	})
	w.publishCounts()
	if err != nil {
		return err
	}
	w.lastCommit = end
	return nil
}

// setKey gives a relation described by the stream its primary key from
// the catalog: the stream cannot tell it under REPLICA IDENTITY FULL, and
// the key decides whether an update is written as U or as D and I, and so
// the _cdc_seq of the rows after it. A transaction (ending at end) whose
// rows may be in the destination already is a replay: it gets the key the
// table's schema history records for it, so that it is numbered as the
// first time, whatever the catalog says now (a key dropped or added
// between a crash and the restart). Otherwise the key is the catalog's,
// recorded in the history when it changes.
func (w *writer) setKey(ctx context.Context, rel *decoder.Relation, end pglogrepl.LSN) error {
	if err := w.catalogReady(ctx); err != nil {
		return err
	}
	names, err := source.PrimaryKey(ctx, w.conn, rel.ID)
	if err != nil {
		return err
	}
	t, err := w.tableState(ctx, rel.Namespace, rel.Name)
	if err != nil {
		return err
	}
	if end <= t.done.LSN {
		if recorded, ok := t.history.KeyAt(end); ok {
			names = recorded
		}
	} else if t.history.ObserveKey(names, end) {
		t.historyDirty = true
		w.windowChanged(t)
	}
	var key []int
	for _, n := range names {
		if i := slices.IndexFunc(rel.Columns, func(c decoder.Column) bool { return c.Name == n }); i >= 0 {
			key = append(key, i)
		}
	}
	_, err = w.dec.SetKey(rel.ID, key)
	return err
}

// hasPending reports whether rows, files or histories wait for a flush.
func (w *writer) hasPending() bool {
	if len(w.sealed) > 0 || w.lastCommit > w.handed {
		return true
	}
	for _, t := range w.tables {
		if t.open != nil || t.historyDirty {
			return true
		}
	}
	return false
}

// flushDue reports whether FlushSize or FlushInterval is reached, or a
// flush is asked for.
func (w *writer) flushDue() bool {
	if w.pendingBytes >= w.cfg.FlushSize || w.flushNow {
		return true
	}
	return time.Since(w.lastFlush) >= w.cfg.FlushInterval && w.hasPending()
}

// caughtUpFlushDue reports whether to flush before the interval ends: the
// server has nothing more to send, every transaction received is written,
// and either the batch holds at least a quarter of FlushSize or the server
// had been sending without pause for a quarter of FlushInterval (a backlog,
// now drained). Waiting would not make the files larger, only later (and
// the slot's WAL older); a trickle of small transactions still waits for
// the interval, so it does not make many small files.
func (w *writer) caughtUpFlushDue() bool {
	if w.h.caughtUp.Load() != w.processed || len(w.h.txns) > 0 {
		return false
	}
	return w.pendingBytes >= w.cfg.FlushSize/4 || (w.pendingBytes > 0 && w.h.backlogDone.Load() == w.processed)
}

// flush seals every open file and hands the batch to the uploader, waiting
// for room (the receiver keeps the walsender informed meanwhile).
func (w *writer) flush(ctx context.Context) error {
	w.lastFlush = time.Now()
	w.flushNow = false
	if !w.hasPending() {
		return nil
	}
	b := &batch{ack: w.lastCommit, reloads: w.reloadList()}
	for _, t := range w.tables {
		if err := w.seal(t); err != nil {
			return err
		}
		if t.historyDirty {
			b.histories = append(b.histories, t.history.Clone())
			t.historyDirty = false
		}
	}
	b.files, w.sealed = w.sealed, nil
	w.pendingBytes = 0
	select {
	case w.h.batches <- b:
		w.handed = b.ack
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// heartbeat writes a transactional logical message in the source database.
// It reaches the stream like any transaction, so the acknowledged position
// moves past all the WAL written before it, also when no published table
// changes while other databases or tables fill the WAL. It also logs the
// lag: WAL bytes and time behind the server.
func (w *writer) heartbeat(ctx context.Context) error {
	w.lastHeartbeat = time.Now()
	var walNow string
	err := w.conn.QueryRow(ctx, "SELECT pg_logical_emit_message(true, 'cdc2s3.heartbeat', '')::text, pg_current_wal_lsn()::text").Scan(new(string), &walNow)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	now, err := pglogrepl.ParseLSN(walNow)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	ack := w.h.ack()
	lag := time.Duration(0)
	if at := w.h.ackedAt.Load(); at != 0 && ack < now {
		lag = time.Since(time.Unix(0, at))
	}
	w.log.Info("status", logkey.Acknowledged, ack, logkey.ServerWAL, now, logkey.LagBytes, uint64(now-min(ack, now)), logkey.LagSeconds, lag.Seconds())
	m := w.cfg.Metrics
	m.lastHeartbeat.Store(time.Now().UnixNano())
	m.lagBytes.Set(float64(now - min(ack, now)))
	m.lagSeconds.Set(lag.Seconds())
	return nil
}
