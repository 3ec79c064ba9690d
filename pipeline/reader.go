package pipeline

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"golang.org/x/sync/errgroup"

	"github.com/cdc2s3/cdc2s3/decoder"
	"github.com/cdc2s3/cdc2s3/internal/faultpoint"
	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/pqfile"
	"github.com/cdc2s3/cdc2s3/source"
)

// reader streams one replication connection into the destination with
// three goroutines, data flowing one way:
//
//   - receive owns the replication connection: it reads messages, stages
//     each transaction in a spool, hands committed transactions to write,
//     and sends the standby status (the acknowledged position);
//   - write owns the catalog connection and the open files: it decodes
//     committed transactions, writes their rows to per-table Parquet files,
//     and at each flush hands the sealed files to upload; it also sends
//     the heartbeat;
//   - upload puts the files, schema histories and checkpoint in the
//     destination and publishes the durable LSN.
//
// Receiving does not wait for decoding and encoding, so the walsender keeps
// sending while a large transaction is written.
type reader struct {
	cfg      Config
	conn     *pgx.Conn // catalog look-ups; used by write only
	repl     *pgconn.PgConn
	store    sink.Store
	states   *lsnstore.Store
	state    lsnstore.State // owned by the uploader once streaming
	log      *slog.Logger
	dec      *decoder.Decoder
	resolver *source.Resolver
	ctx      context.Context // for catalog look-ups made from the decoder's KeyFunc
	// serverVersion is PostgreSQL's version number (150004 for 15.4).
	serverVersion int

	// Owned by receive.
	spool      *spool // the transaction being received, between Begin and Commit
	inTxn      bool
	inStream   bool                 // between Stream Start and Stream Stop
	streamXid  uint32               // the transaction being streamed
	streams    map[uint32]*streamed // large transactions streamed, not yet committed
	sentTxns   int64                // transactions handed to write
	lastSent   pglogrepl.LSN
	lastStatus time.Time
	// sendingSince is when the server started sending after it last
	// caught up; zero while it has nothing to send.
	sendingSince time.Time

	// Owned by write.
	keyErr        error
	tables        map[string]*table
	counting      []*table // tables with counts not yet in the metrics
	rows          []decoder.Row
	processed     int64 // transactions written
	sealed        []sealedFile
	pendingBytes  int64
	lastFlush     time.Time
	lastCommit    pglogrepl.LSN // end LSN of the last commit processed
	handed        pglogrepl.LSN // ack LSN of the last batch handed to the uploader
	lastHeartbeat time.Time

	txns     chan *committed // receive → write
	free     chan *spool     // spools write has finished with, for reuse
	progress chan struct{}   // write has released a transaction
	nudge    chan struct{}   // receive has seen the server caught up
	uploads  chan *batch     // write → upload
	queued   atomic.Int64    // bytes of memory held by transactions handed to write

	wstate  atomic.Pointer[writerState] // published by write, read by receive
	durable atomic.Uint64               // set by upload
	idleAck atomic.Uint64               // server WAL end acknowledged while nothing was pending
	stopped atomic.Bool                 // receive stopped gracefully
	// caughtUp is the number of transactions handed to write when the
	// server last reported, between transactions, that it had nothing
	// more to send; -1 before that.
	caughtUp atomic.Int64
	// backlogDone is the number of transactions handed to write when the
	// server last caught up after sending without pause for at least a
	// quarter of FlushInterval (a backlog drained); -1 before that.
	backlogDone atomic.Int64
	ackedAt     atomic.Int64 // when the acknowledged position last moved (Unix ns)
}

// writerState is what write last published about its progress, so receive
// can tell when everything it received is in the destination.
type writerState struct {
	processed int64         // transactions written
	pending   bool          // rows, files or histories not yet handed over
	handed    pglogrepl.LSN // ack LSN of the last batch handed over
}

// committed is a transaction received in full, handed from receive to write.
type committed struct {
	spool    *spool
	mem      int64           // bytes of memory the spool holds
	streamed bool            // spool records carry the (sub)transaction id
	aborted  map[uint32]bool // streamed: rolled-back subtransactions
	end      pglogrepl.LSN
	at       time.Time
}

// each calls fn with each message of the transaction, in order, leaving
// out those of rolled-back subtransactions.
func (c *committed) each(fn func([]byte) error) error {
	if !c.streamed {
		return c.spool.each(fn)
	}
	return c.spool.each(func(rec []byte) error {
		if c.aborted[binary.BigEndian.Uint32(rec)] {
			return nil
		}
		return fn(rec[4:])
	})
}

// Limits of the queue between receive and write: while write is busy (a
// large transaction, a slow upload), receive goes on reading until the
// transactions waiting for write hold maxQueuedMemory bytes of memory (a
// spool keeps at most spoolMemory in memory, the rest on disk) or number
// maxQueuedTxns. freeSpools spools are kept for reuse.
const (
	maxQueuedMemory = 64 << 20
	maxQueuedTxns   = 4096
	freeSpools      = 16
)

// table is the reader's view of one output folder.
type table struct {
	schema, name string
	label        string // schema.name, for logs and metrics
	// Changes and bytes written since the metrics were last told, which
	// they are once per transaction rather than once per row.
	opCounts     [len(countedOps)]int64
	valueBytes   int64
	rel          *decoder.Relation
	cols         []pqfile.Column
	history      *lsnstore.History
	historyDirty bool
	// done is the last position already in the destination; rows at or
	// below it are replays and are skipped.
	done sink.Pos
	open *openFile
	// source describes the table in the catalog, read when first needed.
	source source.Table
}

type openFile struct {
	f           *os.File
	w           *pqfile.Writer
	first, last sink.Pos
}

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
}

func newReader(cfg Config, conn *pgx.Conn, repl *pgconn.PgConn, store sink.Store, states *lsnstore.Store, st lsnstore.State, log *slog.Logger) *reader {
	r := &reader{
		cfg: cfg, conn: conn, repl: repl, store: store, states: states, state: st, log: log,
		tables:   map[string]*table{},
		streams:  map[uint32]*streamed{},
		txns:     make(chan *committed, maxQueuedTxns),
		free:     make(chan *spool, freeSpools),
		progress: make(chan struct{}, 1),
		nudge:    make(chan struct{}, 1),
		uploads:  make(chan *batch, 1),
	}
	r.resolver = source.NewResolver(conn)
	if v, err := strconv.Atoi(conn.PgConn().ParameterStatus("server_version_num")); err == nil {
		r.serverVersion = v
	} else if parts := strings.SplitN(conn.PgConn().ParameterStatus("server_version"), ".", 2); len(parts) > 0 {
		if major, err := strconv.Atoi(parts[0]); err == nil {
			r.serverVersion = major * 10000
		}
	}
	r.resolver.ArraysAsText = cfg.ArraysAsText
	r.dec = decoder.New(r.primaryKey)
	r.durable.Store(uint64(st.Checkpoint))
	r.lastCommit, r.handed = st.Checkpoint, st.Checkpoint
	r.wstate.Store(&writerState{handed: st.Checkpoint})
	r.caughtUp.Store(-1)
	r.backlogDone.Store(-1)
	return r
}

// primaryKey is the decoder's KeyFunc: the primary key from the catalog.
func (r *reader) primaryKey(rel *decoder.Relation) []int {
	names, err := source.PrimaryKey(r.ctx, r.conn, rel.ID)
	if err != nil {
		r.keyErr = err
		return nil
	}
	var key []int
	for _, n := range names {
		if i := slices.IndexFunc(rel.Columns, func(c decoder.Column) bool { return c.Name == n }); i >= 0 {
			key = append(key, i)
		}
	}
	return key
}

func (r *reader) run(ctx, stop context.Context) error {
	pubs := "'" + strings.ReplaceAll(pgx.Identifier{r.cfg.Publication}.Sanitize(), "'", "''") + "'"
	args := []string{"proto_version '1'", "publication_names " + pubs, "messages 'true'"}
	if r.cfg.StreamLarge && r.serverVersion >= 140000 {
		// Large transactions arrive as they happen, staged on our disk, not
		// the server's, and are written at commit.
		args = []string{"proto_version '2'", "publication_names " + pubs, "messages 'true'", "streaming 'on'"}
	}
	err := pglogrepl.StartReplication(ctx, r.repl, r.cfg.Slot, 0, pglogrepl.StartReplicationOptions{PluginArgs: args})
	if err != nil {
		return source.Explain(fmt.Errorf("start replication on slot %q: %w", r.cfg.Slot, err), nil)
	}
	r.log.Info("streaming", "slot", r.cfg.Slot, "publication", r.cfg.Publication, "from", r.state.Checkpoint, "protocol", args[0])
	m := r.cfg.Metrics
	m.streaming.Store(true)
	defer m.streaming.Store(false)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.upload(gctx) })
	g.Go(func() error {
		defer close(r.uploads)
		return r.write(gctx)
	})
	g.Go(func() error {
		defer close(r.txns)
		return r.receive(gctx, stop)
	})
	err = g.Wait()
	if err == nil {
		// Everything handed over is uploaded: acknowledge it before leaving.
		r.sendStatus(false)
		r.log.Info("stopped", "acknowledged", r.ack())
	}
	return err
}

// receive is the receiving loop. It returns nil after a graceful stop, once
// every transaction received in full is handed to write.
func (r *reader) receive(ctx, stop context.Context) error {
	r.lastStatus = time.Now()
	// Reads wait on the socket's deadline rather than on a context: a
	// context per message costs a watcher goroutine each time (about a
	// seventh of the daemon's CPU in the drain benchmark). A stop, an
	// abort or a new durable position wakes the read by moving the
	// deadline to now.
	wakeOnStop := context.AfterFunc(stop, r.wake)
	defer wakeOnStop()
	wakeOnAbort := context.AfterFunc(ctx, r.wake)
	defer wakeOnAbort()
	defer r.repl.Conn().SetReadDeadline(time.Time{})
	var armed time.Time // the read deadline last set
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if stop.Err() != nil {
			return r.shutdown(ctx)
		}
		// Wake up for the next status update. The deadline is set only
		// when it changes or a read timed out (a wake moves it to now):
		// setting it costs a timer update, once per message otherwise.
		if next := r.lastStatus.Add(r.cfg.StatusInterval); !next.Equal(armed) {
			r.repl.Conn().SetReadDeadline(next)
			armed = next
		}
		// A position made durable just before the deadline was set would
		// not wake the read: report it now.
		if r.ack() > r.lastSent {
			r.sendStatus(false)
		}
		msg, err := r.repl.ReceiveMessage(context.Background())
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if stop.Err() != nil {
				return r.shutdown(ctx)
			}
			if !pgconn.Timeout(err) {
				return fmt.Errorf("replication stream: %w", err)
			}
			armed = time.Time{}
		}
		now := time.Now()
		if err == nil {
			r.cfg.Metrics.lastReceive.Store(now.UnixNano())
			if err := r.handle(ctx, msg); err != nil {
				return err
			}
		}
		if now.Sub(r.lastStatus) >= r.cfg.StatusInterval || r.ack() > r.lastSent {
			r.sendStatus(false)
		}
	}
}

// write is the writing loop: it writes each committed transaction, flushes
// when a batch is due, and sends the heartbeat. When receive stops
// gracefully it writes what is queued, flushes, and returns nil.
func (r *reader) write(ctx context.Context) error {
	r.ctx = ctx
	r.lastFlush = time.Now()
	r.lastHeartbeat = time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	pending := false
	for {
		next := time.Now().Add(time.Hour)
		if pending {
			next = r.lastFlush.Add(r.cfg.FlushInterval)
		}
		if r.cfg.HeartbeatInterval > 0 {
			next = earliest(next, r.lastHeartbeat.Add(r.cfg.HeartbeatInterval))
		}
		timer.Reset(time.Until(next))
		select {
		case c, ok := <-r.txns:
			if !ok {
				if !r.stopped.Load() {
					return nil // receive failed: its error is the one reported
				}
				r.log.Info("stopping: flushing open files")
				return r.flush(ctx)
			}
			err := r.commit(ctx, c.each, c.end, c.at)
			r.release(c)
			if err != nil {
				return err
			}
			r.processed++
		case <-timer.C:
		case <-r.nudge:
		case <-ctx.Done():
			return ctx.Err()
		}
		if r.flushDue() || r.caughtUpFlushDue() {
			if err := r.flush(ctx); err != nil {
				return err
			}
		}
		if r.cfg.HeartbeatInterval > 0 && time.Since(r.lastHeartbeat) >= r.cfg.HeartbeatInterval {
			if err := r.heartbeat(ctx); err != nil {
				return err
			}
		}
		pending = r.publish()
	}
}

// publish tells receive how far write has got, and returns whether
// anything is pending (a walk over every table, done once per turn).
func (r *reader) publish() bool {
	ws := &writerState{processed: r.processed, pending: r.hasPending(), handed: r.handed}
	r.wstate.Store(ws)
	return ws.pending
}

// release empties a written transaction's spool, keeps it for reuse if
// there is room, and tells receive.
func (r *reader) release(c *committed) {
	c.spool.reset()
	r.queued.Add(-c.mem)
	select {
	case r.free <- c.spool:
	default:
	}
	select {
	case r.progress <- struct{}{}:
	default:
	}
}

// hand passes a committed transaction to write. While the queue is full it
// waits for write, keeping the walsender informed.
func (r *reader) hand(ctx context.Context, c *committed) error {
	c.mem = int64(cap(c.spool.mem))
	var tick *time.Ticker
	defer func() {
		if tick != nil {
			tick.Stop()
		}
	}()
	for {
		if r.queued.Load() < maxQueuedMemory {
			select {
			case r.txns <- c:
				r.queued.Add(c.mem)
				r.sentTxns++
				return nil
			default:
			}
		}
		if tick == nil {
			tick = time.NewTicker(r.cfg.StatusInterval)
		}
		select {
		case <-r.progress:
		case <-tick.C:
			r.sendStatus(false)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// takeSpool returns a spool for a transaction that begins.
func (r *reader) takeSpool() *spool {
	select {
	case s := <-r.free:
		return s
	default:
		return newSpool(r.cfg.TempDir, spoolMemory)
	}
}

// wake interrupts a read in progress; safe from any goroutine.
func (r *reader) wake() {
	r.repl.Conn().SetReadDeadline(time.Now())
}

// heartbeat writes a transactional logical message in the source database.
// It reaches the stream like any transaction, so the acknowledged position
// moves past all the WAL written before it, also when no published table
// changes while other databases or tables fill the WAL. It also logs the
// lag: WAL bytes and time behind the server.
func (r *reader) heartbeat(ctx context.Context) error {
	r.lastHeartbeat = time.Now()
	var walNow string
	err := r.conn.QueryRow(ctx, "SELECT pg_logical_emit_message(true, 'cdc2s3.heartbeat', '')::text, pg_current_wal_lsn()::text").Scan(new(string), &walNow)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	now, err := pglogrepl.ParseLSN(walNow)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	ack := r.ack()
	lag := time.Duration(0)
	if at := r.ackedAt.Load(); at != 0 && ack < now {
		lag = time.Since(time.Unix(0, at))
	}
	r.log.Info("status", "acknowledged", ack, "server_wal", now, "lag_bytes", uint64(now-min(ack, now)), "lag_seconds", lag.Seconds())
	m := r.cfg.Metrics
	m.lastHeartbeat.Store(time.Now().UnixNano())
	m.lagBytes.Set(float64(now - min(ack, now)))
	m.lagSeconds.Set(lag.Seconds())
	return nil
}

func (r *reader) handle(ctx context.Context, msg pgproto3.BackendMessage) error {
	switch m := msg.(type) {
	case *pgproto3.CopyData:
		switch m.Data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
			if err != nil {
				return fmt.Errorf("parse keepalive: %w", err)
			}
			// With nothing pending, every change up to the server's WAL end
			// is in the destination: acknowledge it, so an idle publication
			// does not hold WAL back.
			// The walsender sends a keepalive when it has sent everything
			// and waits for WAL: tell write, which may flush at once.
			if !r.inTxn && len(r.streams) == 0 {
				r.caughtUp.Store(r.sentTxns)
				if !r.sendingSince.IsZero() && time.Since(r.sendingSince) >= r.cfg.FlushInterval/4 {
					r.backlogDone.Store(r.sentTxns)
				}
				r.sendingSince = time.Time{}
				select {
				case r.nudge <- struct{}{}:
				default:
				}
			}
			ws := r.wstate.Load()
			if !r.inTxn && len(r.streams) == 0 && ws.processed == r.sentTxns && !ws.pending &&
				pglogrepl.LSN(r.durable.Load()) >= ws.handed && uint64(ka.ServerWALEnd) > r.idleAck.Load() {
				r.idleAck.Store(uint64(ka.ServerWALEnd))
			}
			if ka.ReplyRequested {
				r.sendStatus(false)
			}
		case pglogrepl.XLogDataByteID:
			if r.sendingSince.IsZero() {
				r.sendingSince = time.Now()
			}
			xld, err := pglogrepl.ParseXLogData(m.Data[1:])
			if err != nil {
				return fmt.Errorf("parse xlogdata: %w", err)
			}
			return r.wal(ctx, xld.WALData)
		}
	case *pgproto3.ErrorResponse:
		return fmt.Errorf("replication stream: %w", pgconn.ErrorResponseToPgError(m))
	}
	return nil
}

// wal handles one pgoutput message.
func (r *reader) wal(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case 'B':
		if r.spool == nil {
			r.spool = r.takeSpool()
		}
		r.inTxn = true
		r.spool.reset()
		return nil
	case 'C':
		var c pglogrepl.CommitMessage
		if err := c.Decode(data[1:]); err != nil {
			return fmt.Errorf("decode commit: %w", err)
		}
		if !r.inTxn || r.spool == nil {
			return fmt.Errorf("commit at %s without a begin", c.TransactionEndLSN)
		}
		s := r.spool
		r.spool, r.inTxn = nil, false
		return r.hand(ctx, &committed{spool: s, end: c.TransactionEndLSN, at: c.CommitTime})
	case 'S', 'E', 'c', 'A':
		return r.streamControl(ctx, data)
	}
	if r.inStream {
		return r.streamAdd(data)
	}
	if !r.inTxn {
		// Only non-transactional logical messages arrive outside a
		// transaction; they carry no rows.
		return nil
	}
	return r.spool.add(data)
}

// streamed is a large transaction that PostgreSQL streams before it
// commits (protocol version 2, streaming = on): its changes are staged on
// disk by transaction, each tagged with the (sub)transaction that made it,
// and written at its commit like any other transaction.
type streamed struct {
	spool   *spool
	aborted map[uint32]bool // rolled-back subtransactions
}

// streamControl handles Stream Start, Stop, Commit and Abort.
func (r *reader) streamControl(ctx context.Context, data []byte) error {
	msg, err := pglogrepl.ParseV2(data, false)
	if err != nil {
		return fmt.Errorf("decode stream message %q: %w", data[0], err)
	}
	switch m := msg.(type) {
	case *pglogrepl.StreamStartMessageV2:
		r.inStream, r.streamXid = true, m.Xid
		if r.streams[m.Xid] == nil {
			r.streams[m.Xid] = &streamed{spool: newSpool(r.cfg.TempDir, spoolMemory), aborted: map[uint32]bool{}}
		}
	case *pglogrepl.StreamStopMessageV2:
		r.inStream = false
	case *pglogrepl.StreamAbortMessageV2:
		st := r.streams[m.Xid]
		if st == nil {
			return nil
		}
		if m.SubXid == m.Xid {
			st.spool.reset()
			delete(r.streams, m.Xid)
		} else {
			st.aborted[m.SubXid] = true
		}
	case *pglogrepl.StreamCommitMessageV2:
		st := r.streams[m.Xid]
		if st == nil {
			return fmt.Errorf("stream commit of transaction %d that was never streamed", m.Xid)
		}
		delete(r.streams, m.Xid)
		r.log.Info("streamed transaction committed", "xid", m.Xid, "messages", st.spool.count, "bytes", st.spool.size,
			"aborted_subtransactions", len(st.aborted), "lsn", m.TransactionEndLSN)
		r.cfg.Metrics.streamedTxns.Inc()
		return r.hand(ctx, &committed{spool: st.spool, streamed: true, aborted: st.aborted, end: m.TransactionEndLSN, at: m.CommitTime})
	}
	return nil
}

// streamAdd stages one message of a streamed transaction. Inside a stream
// block a message carries the (sub)transaction id after its type byte;
// without it, it is a protocol version 1 message, which is what the
// decoder reads. The record is that id followed by the version 1 message.
func (r *reader) streamAdd(data []byte) error {
	st := r.streams[r.streamXid]
	if st == nil || len(data) < 5 {
		return fmt.Errorf("streamed message %q outside a stream", data[0])
	}
	switch data[0] {
	case 'R', 'Y', 'I', 'U', 'D', 'T', 'M':
	default:
		return nil // origin and the like carry no rows
	}
	return st.spool.addParts(data[1:5], data[0:1], data[5:])
}

// commit decodes the spooled transaction and appends its rows to the open
// files, now that its end LSN is known.
func (r *reader) commit(ctx context.Context, each func(func([]byte) error) error, end pglogrepl.LSN, at time.Time) error {
	var seq uint64
	ts := at.UnixMicro()
	err := each(func(msg []byte) error {
		rows, err := r.dec.Decode(msg, r.rows[:0])
		r.rows = rows[:0]
		if err != nil {
			return err
		}
		if r.keyErr != nil {
			return r.keyErr
		}
		for _, row := range rows {
			pos := sink.Pos{LSN: uint64(end), Seq: seq}
			seq++
			t, err := r.table(ctx, row.Rel, end)
			if err != nil {
				return err
			}
			if !t.done.Less(pos) {
				continue // already in the destination (replay after a restart)
			}
			if row.Op == decoder.OpInsert && len(row.Unchanged) > 0 {
				if err := r.fillUnchanged(ctx, t, &row); err != nil {
					return err
				}
			}
			if err := r.writeRow(t, pos, ts, row); err != nil {
				return fmt.Errorf("%s.%s: %w", t.schema, t.name, err)
			}
		}
		return nil
	})
	r.publishCounts()
	if err != nil {
		return err
	}
	r.lastCommit = end
	return nil
}

func (r *reader) writeRow(t *table, pos sink.Pos, ts int64, row decoder.Row) error {
	if t.open == nil {
		f, err := os.CreateTemp(r.cfg.TempDir, "cdc2s3-cdc-*.parquet")
		if err != nil {
			return fmt.Errorf("temp file: %w", err)
		}
		w, err := pqfile.NewWriter(f, t.cols, pqfile.Options{Compression: r.cfg.Compression})
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			return err
		}
		t.open = &openFile{f: f, w: w, first: pos}
	}
	before := t.open.w.Stats().Bytes
	err := t.open.w.Write(pqfile.Meta{
		Op: row.Op, CommitTime: ts, LSN: int64(pos.LSN), Seq: int64(pos.Seq), Unchanged: row.Unchanged,
	}, row.Values)
	if err != nil {
		return err
	}
	t.open.last = pos
	n := t.open.w.Stats().Bytes - before
	r.pendingBytes += n + 32
	if t.opCounts == [len(countedOps)]int64{} && t.valueBytes == 0 {
		r.counting = append(r.counting, t)
	}
	if i := strings.IndexByte(countedOps, row.Op); i >= 0 {
		t.opCounts[i]++
	}
	t.valueBytes += n
	return nil
}

// countedOps are the row operations, in the order of table.opCounts.
const countedOps = "IUDT"

// publishCounts adds the changes and bytes written since the last call to
// the metrics.
func (r *reader) publishCounts() {
	m := r.cfg.Metrics
	for _, t := range r.counting {
		for i, n := range t.opCounts {
			if n > 0 {
				m.changes.Add(float64(n), t.label, countedOps[i:i+1])
			}
		}
		m.bytes.Add(float64(t.valueBytes), t.label)
		t.opCounts, t.valueBytes = [len(countedOps)]int64{}, 0
	}
	r.counting = r.counting[:0]
}

// table returns the output table of rel, handling a first sighting (load
// the position and schema history from the destination) and a schema
// change (seal the open file; record added and dropped columns).
func (r *reader) table(ctx context.Context, rel *decoder.Relation, at pglogrepl.LSN) (*table, error) {
	k := rel.Namespace + "\x00" + rel.Name
	t := r.tables[k]
	if t != nil && t.rel == rel {
		return t, nil
	}
	if t == nil {
		t = &table{schema: rel.Namespace, name: rel.Name, label: rel.Namespace + "." + rel.Name}
		done, err := r.position(ctx, t.schema, t.name)
		if err != nil {
			return nil, err
		}
		t.done = done
		if t.history, err = r.states.LoadHistory(ctx, t.schema, t.name); err != nil {
			return nil, err
		}
		r.tables[k] = t
	} else if err := r.seal(t); err != nil {
		return nil, err
	}
	cols := make([]pqfile.Column, len(rel.Columns))
	names := make([]string, len(rel.Columns))
	for i, c := range rel.Columns {
		typ, err := r.resolver.Resolve(ctx, c.TypeOID, c.TypeMod)
		if err != nil {
			return nil, err
		}
		cols[i] = pqfile.Column{Name: c.Name, Type: typ}
		names[i] = c.Name
	}
	var missErr error
	if t.history.Observe(names, uint64(at), func(name string) *string {
		v, err := source.MissingValue(ctx, r.conn, rel.ID, name)
		if err != nil {
			missErr = err
		}
		return v
	}) {
		t.historyDirty = true
		if t.rel != nil {
			r.log.Info("schema change", "table", t.schema+"."+t.name, "columns", names, "lsn", at)
		}
	}
	if missErr != nil {
		return nil, missErr
	}
	t.rel, t.cols = rel, cols
	return t, nil
}

// fillUnchanged completes the insert half of a primary-key update whose
// TOASTed columns were not sent. Under the default replica identity
// PostgreSQL sends neither the value nor a before image, and the merge rule
// cannot carry a value across keys, so the value is read from the row
// itself. It may be newer than the update, but any later change to the
// column is in the stream with its own value, and a row deleted since needs
// none: the current state derived from the folder is exact either way.
// With REPLICA IDENTITY FULL the decoder fills such values from the before
// image and this is never needed.
func (r *reader) fillUnchanged(ctx context.Context, t *table, row *decoder.Row) error {
	rel := row.Rel
	if len(rel.Key) == 0 {
		return nil
	}
	key := make([]string, len(rel.Key))
	keyVals := make([][]byte, len(rel.Key))
	for i, k := range rel.Key {
		key[i], keyVals[i] = rel.Columns[k].Name, row.Values[k]
	}
	if t.source.OID == 0 {
		src, err := source.Describe(ctx, r.conn, rel.ID)
		if err != nil {
			return err
		}
		t.source = src
	}
	vals, found, err := source.CurrentValues(ctx, r.conn, t.source, key, keyVals, row.Unchanged)
	if err != nil || !found {
		return err
	}
	for i, name := range row.Unchanged {
		for j, c := range rel.Columns {
			if c.Name == name {
				row.Values[j] = vals[i]
			}
		}
	}
	row.Unchanged = nil
	return nil
}

// position returns the last position of a table already in the
// destination, from the positions its change files' names carry.
func (r *reader) position(ctx context.Context, schema, name string) (sink.Pos, error) {
	objs, err := r.store.List(ctx, sink.TableDir(schema, name))
	if err != nil {
		return sink.Pos{}, fmt.Errorf("list %s.%s: %w", schema, name, err)
	}
	var done sink.Pos
	for _, o := range objs {
		if _, last, ok := sink.ParseCDCKey(o.Key); ok && done.Less(last) {
			done = last
		}
	}
	return done, nil
}

// seal closes a table's open file and queues it for the next batch.
func (r *reader) seal(t *table) error {
	o := t.open
	if o == nil {
		return nil
	}
	t.open = nil
	if err := o.w.Close(); err != nil {
		o.f.Close()
		os.Remove(o.f.Name())
		return err
	}
	if err := o.f.Close(); err != nil {
		os.Remove(o.f.Name())
		return fmt.Errorf("close %s: %w", o.f.Name(), err)
	}
	st := o.w.Stats()
	warnAdapted(r.log, t.label, st)
	for col, n := range st.Nulled {
		r.cfg.Metrics.nulled.Add(float64(n), t.label, col)
	}
	for col, n := range st.Flattened {
		r.cfg.Metrics.flattened.Add(float64(n), t.label, col)
	}
	r.sealed = append(r.sealed, sealedFile{
		key: sink.CDCKey(t.schema, t.name, o.first, o.last), path: o.f.Name(), rows: st.Rows, table: t.label,
	})
	t.done = o.last
	return nil
}

// warnAdapted logs, per column, the values a file holds in a form other
// than the source's: NULL for values the Parquet type cannot hold, and
// multi-dimensional arrays flattened (contract §3).
func warnAdapted(log *slog.Logger, table string, st pqfile.Stats) {
	for col, n := range st.Nulled {
		log.Warn("values not representable in the column's Parquet type were written as NULL", "table", table, "column", col, "count", n)
	}
	for col, n := range st.Flattened {
		log.Warn("multi-dimensional array values were flattened", "table", table, "column", col, "count", n)
	}
}

func (r *reader) hasPending() bool {
	if len(r.sealed) > 0 || r.lastCommit > r.handed {
		return true
	}
	for _, t := range r.tables {
		if t.open != nil || t.historyDirty {
			return true
		}
	}
	return false
}

func (r *reader) flushDue() bool {
	if r.pendingBytes >= r.cfg.FlushSize {
		return true
	}
	return time.Since(r.lastFlush) >= r.cfg.FlushInterval && r.hasPending()
}

// caughtUpFlushDue reports whether to flush before the interval ends: the
// server has nothing more to send, every transaction received is written,
// and either the batch holds at least a quarter of FlushSize or the server
// had been sending without pause for a quarter of FlushInterval (a backlog,
// now drained). Waiting would not make the files larger, only later (and
// the slot's WAL older); a trickle of small transactions still waits for
// the interval, so it does not make many small files.
func (r *reader) caughtUpFlushDue() bool {
	if r.caughtUp.Load() != r.processed || len(r.txns) > 0 {
		return false
	}
	return r.pendingBytes >= r.cfg.FlushSize/4 || (r.pendingBytes > 0 && r.backlogDone.Load() == r.processed)
}

// flush seals every open file and hands the batch to the uploader, waiting
// for room (receive keeps the walsender informed meanwhile).
func (r *reader) flush(ctx context.Context) error {
	r.lastFlush = time.Now()
	if !r.hasPending() {
		return nil
	}
	b := &batch{ack: r.lastCommit}
	for _, t := range r.tables {
		if err := r.seal(t); err != nil {
			return err
		}
		if t.historyDirty {
			b.histories = append(b.histories, t.history.Clone())
			t.historyDirty = false
		}
	}
	b.files, r.sealed = r.sealed, nil
	r.pendingBytes = 0
	select {
	case r.uploads <- b:
		r.handed = b.ack
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// shutdown drops a partly received transaction (it is sent again after a
// restart, since it is not acknowledged); write then writes and flushes
// what was received in full.
func (r *reader) shutdown(ctx context.Context) error {
	if r.spool != nil {
		r.spool.reset()
		r.spool = nil
	}
	r.inTxn = false
	for xid, st := range r.streams {
		st.spool.reset()
		delete(r.streams, xid)
	}
	r.stopped.Store(true)
	return nil
}

// ack is the LSN that may be acknowledged: everything at or below it is in
// the destination.
func (r *reader) ack() pglogrepl.LSN {
	return max(pglogrepl.LSN(r.durable.Load()), pglogrepl.LSN(r.idleAck.Load()))
}

// sendStatus reports the acknowledged position. Write, flush and apply are
// all set: pglogrepl would copy the write position into zero ones.
func (r *reader) sendStatus(reply bool) {
	ack := r.ack()
	r.lastStatus = time.Now()
	if ack == 0 {
		return
	}
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), r.repl, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: ack, WALFlushPosition: ack, WALApplyPosition: ack, ReplyRequested: reply,
	})
	if err != nil {
		r.log.Warn("send standby status", "err", err)
		return
	}
	if ack > r.lastSent {
		r.ackedAt.Store(time.Now().UnixNano())
		r.cfg.Metrics.ackLSN.Set(float64(ack))
	}
	r.lastSent = ack
}

// upload is the uploader loop: files, then histories, then the checkpoint,
// then the durable LSN the reader acknowledges.
func (r *reader) upload(ctx context.Context) error {
	st := r.state
	m := r.cfg.Metrics
	for b := range r.uploads {
		start := time.Now()
		m.uploadSince.Store(start.UnixNano())
		var rows int64
		for _, h := range b.histories {
			if err := r.retry(ctx, "save schema history", func() error { return r.states.SaveHistory(ctx, h) }); err != nil {
				return err
			}
		}
		for _, f := range b.files {
			fileStart := time.Now()
			if err := r.retry(ctx, "upload", func() error { return sink.PutFile(ctx, r.store, f.key, f.path) }); err != nil {
				return fmt.Errorf("%s: %w", f.key, err)
			}
			m.uploadSeconds.Observe(time.Since(fileStart).Seconds())
			m.files.Inc(f.table)
			os.Remove(f.path)
			rows += f.rows
		}
		faultpoint.Hit(faultpoint.AfterUpload)
		if b.ack > st.Checkpoint {
			st.Checkpoint = b.ack
			if err := r.retry(ctx, "save checkpoint", func() error { return r.states.Save(ctx, st) }); err != nil {
				return err
			}
		}
		faultpoint.Hit(faultpoint.AfterCheckpoint)
		r.durable.Store(uint64(b.ack))
		r.wake() // acknowledge now, not at the next status tick
		m.uploadSince.Store(0)
		if len(b.files) > 0 {
			r.log.Info("uploaded", "files", len(b.files), "rows", rows, "lsn", b.ack, "duration", time.Since(start).Round(time.Millisecond))
		}
	}
	return nil
}

// retry runs fn until it succeeds or ctx ends, waiting between attempts
// with capped exponential backoff and jitter. Uploads are retried without a
// limit: an S3 outage must delay the pipeline (the walsender is kept alive
// meanwhile), never lose or skip a batch. A checkpoint that would move
// backwards is not retried.
func (r *reader) retry(ctx context.Context, what string, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || errors.Is(err, lsnstore.ErrBackwards) {
			return fmt.Errorf("%s: %w", what, err)
		}
		delay := min(200*time.Millisecond<<min(attempt-1, 8), 30*time.Second)
		delay += time.Duration(rand.Int64N(int64(delay/2) + 1))
		r.log.Warn("retrying", "what", what, "attempt", attempt, "in", delay.Round(time.Millisecond), "err", err)
		r.cfg.Metrics.retries.Inc(what)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// mergeDone returns a context done when either a or b is.
func mergeDone(a, b context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(a)
	stop := context.AfterFunc(b, cancel)
	return ctx, func() { stop(); cancel() }
}
