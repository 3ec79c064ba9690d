package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"

	"github.com/cdc2s3/cdc2s3/internal/logkey"
	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/source"
)

// Limits of the queue between receiver and writer: while the writer is
// busy (a large transaction, a slow upload), the receiver goes on reading
// until the transactions waiting for the writer hold maxQueuedMemory bytes
// of memory (a spool keeps at most spoolMemory in memory, the rest on disk)
// or number maxQueuedTxns. freeSpools spools are kept for reuse.
const (
	maxQueuedMemory = 64 << 20
	maxQueuedTxns   = 4096
	freeSpools      = 16
)

// handoff is everything the three stages of a stream share: the channels
// data flows through, one way, and the few values one stage publishes for
// another. Each field says which stage writes it; every other piece of
// state belongs to one stage alone (the fields of receiver, writer and
// uploader).
type handoff struct {
	// Receiver → writer.
	txns chan *committed // transactions received in full, in commit order
	// queued is the memory held by the transactions in txns: the receiver
	// adds a transaction's, the writer takes it off when done with it.
	queued atomic.Int64
	// caughtUp is the number of transactions handed to the writer when the
	// server last reported, between transactions, that it had nothing more
	// to send; -1 before that. caughtUpSignal wakes the writer then.
	caughtUp       atomic.Int64
	caughtUpSignal chan struct{}
	// backlogDone is the number of transactions handed to the writer when
	// the server last caught up after sending without pause for at least a
	// quarter of FlushInterval (a backlog drained); -1 before that.
	backlogDone atomic.Int64
	// stopped: the receiver stopped gracefully; the writer writes what is
	// queued, flushes and returns.
	stopped atomic.Bool
	// idleAck is the server's WAL end, acknowledged while nothing was
	// pending; ackedAt is when the acknowledged position last moved (Unix
	// ns). The writer's heartbeat reports the lag from them.
	idleAck lsnValue
	ackedAt atomic.Int64

	// Writer → receiver.
	free     chan *spool                 // spools the writer is done with, for reuse
	released chan struct{}               // the writer took a transaction off the queue
	written  atomic.Pointer[writerState] // how far the writer has got

	// Writer → uploader.
	batches chan *batch

	// Uploader → receiver.
	durable lsnValue // every change at or below it is in the destination
	// ackLimit is the destination's saved AckLimit: the receiver never
	// acknowledges beyond it. limitWanted and limitSignal (receiver →
	// uploader) ask for it to be raised, to acknowledge an idle position.
	ackLimit    lsnValue
	limitWanted lsnValue
	limitSignal chan struct{}
	// wake interrupts the receiver's read so that it acknowledges a new
	// durable position at once; the receiver provides it.
	wake func()
}

func newHandoff(durable, ackLimit pglogrepl.LSN) *handoff {
	h := &handoff{
		txns:           make(chan *committed, maxQueuedTxns),
		caughtUpSignal: make(chan struct{}, 1),
		free:           make(chan *spool, freeSpools),
		released:       make(chan struct{}, 1),
		batches:        make(chan *batch, 1),
		limitSignal:    make(chan struct{}, 1),
		wake:           func() {},
	}
	h.durable.Store(durable)
	h.ackLimit.Store(max(ackLimit, durable))
	h.written.Store(&writerState{handed: durable})
	h.caughtUp.Store(-1)
	h.backlogDone.Store(-1)
	return h
}

// ack is the LSN that may be acknowledged: everything at or below it is in
// the destination, and the destination's state records that it may be.
func (h *handoff) ack() pglogrepl.LSN {
	return max(h.durable.Load(), min(h.idleAck.Load(), h.ackLimit.Load()))
}

// lsnValue is an LSN read and written atomically.
type lsnValue struct{ v atomic.Uint64 }

func (l *lsnValue) Load() pglogrepl.LSN     { return pglogrepl.LSN(l.v.Load()) }
func (l *lsnValue) Store(lsn pglogrepl.LSN) { l.v.Store(uint64(lsn)) }
func (l *lsnValue) raise(lsn pglogrepl.LSN) bool { // to lsn if higher; reports a change
	for {
		old := l.v.Load()
		if uint64(lsn) <= old {
			return false
		}
		if l.v.CompareAndSwap(old, uint64(lsn)) {
			return true
		}
	}
}

// writerState is what the writer last published about its progress, so
// the receiver can tell when everything it received is in the destination.
type writerState struct {
	processed int64         // transactions written
	pending   bool          // rows, files or histories not yet handed over
	handed    pglogrepl.LSN // ack LSN of the last batch handed over
}

// stream is one replication session: a receiver, a writer and an
// uploader, each a goroutine, joined by a handoff. One change takes one
// path: received into a spool (receiver) → decoded at commit and appended
// to its table's open file (writer) → sealed into a batch at a flush
// (writer) → put in the destination, then the checkpoint saved (uploader)
// → its LSN acknowledged to PostgreSQL (receiver).
type stream struct {
	cfg  Config
	repl *pgconn.PgConn
	log  *slog.Logger
	h    *handoff
	rcv  *receiver
	wr   *writer
	up   *uploader
	re   *reloadEngine
}

func newStream(cfg Config, conn *pgx.Conn, repl *pgconn.PgConn, store sink.Store, states *lsnstore.Store, st lsnstore.State, log *slog.Logger) *stream {
	h := newHandoff(st.Checkpoint, st.AckLimit)
	s := &stream{cfg: cfg, repl: repl, log: log, h: h}
	s.rcv = newReceiver(cfg, repl, h, log)
	s.wr = newWriter(cfg, conn, store, states, st.Checkpoint, h, log)
	s.wr.initReloads(st.Reloads)
	shared := newReloadShared()
	s.wr.reloadShared = shared
	s.up = &uploader{cfg: cfg, store: store, states: states, state: st, h: h, log: log}
	s.re = newReloadEngine(cfg, store, h, shared, st.Reloads, log)
	return s
}

// run streams from the slot until stop is done (graceful: returns nil once
// everything received in full is uploaded and acknowledged) or ctx is
// cancelled or a stage fails.
func (s *stream) run(ctx, stop context.Context) error {
	args := pluginArgs(s.cfg, source.ServerVersion(s.wr.conn))
	err := pglogrepl.StartReplication(ctx, s.repl, s.cfg.Slot, 0, pglogrepl.StartReplicationOptions{PluginArgs: args})
	if err != nil {
		return source.Explain(fmt.Errorf("start replication on slot %q: %w", s.cfg.Slot, err), nil)
	}
	s.log.Info("streaming", logkey.Slot, s.cfg.Slot, logkey.Publication, s.cfg.Publication, logkey.From, s.up.state.Checkpoint, logkey.Protocol, args[0])
	m := s.cfg.Metrics
	m.streaming.Store(true)
	defer m.streaming.Store(false)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.up.run(gctx) })
	g.Go(func() error {
		defer close(s.h.batches)
		return s.wr.run(gctx)
	})
	g.Go(func() error {
		defer close(s.h.txns)
		return s.rcv.run(gctx, stop)
	})
	g.Go(func() error { return s.re.run(gctx, stop) })
	err = g.Wait()
	// Every stage has returned: what is left of their temporary files
	// (a failed stream's partial transactions, open and unsent files) is
	// removed now, not when the process ends; the next session receives
	// it again from the slot.
	s.rcv.discard()
	s.wr.discard()
	s.up.discard()
	if err == nil {
		// Everything handed over is uploaded: acknowledge it before leaving.
		s.rcv.sendStatus(false)
		s.log.Info("stopped", logkey.Acknowledged, s.h.ack())
	}
	return err
}

// pluginArgs are pgoutput's options: protocol version 1, or version 2 with
// streaming of large transactions on PostgreSQL 14+ when asked for (they
// then arrive as they happen, staged on our disk rather than the
// server's, and are written at commit).
func pluginArgs(cfg Config, version int) []string {
	pubs := "'" + strings.ReplaceAll(pgx.Identifier{cfg.Publication}.Sanitize(), "'", "''") + "'"
	if cfg.StreamLarge && version >= 140000 {
		return []string{"proto_version '2'", "publication_names " + pubs, "messages 'true'", "streaming 'on'"}
	}
	return []string{"proto_version '1'", "publication_names " + pubs, "messages 'true'"}
}

// earliest returns the earlier of a and b.
func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
