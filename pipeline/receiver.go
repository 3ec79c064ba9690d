package pipeline

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/cdc2s3/cdc2s3/decoder"
	"github.com/cdc2s3/cdc2s3/internal/logkey"
)

// receiver owns the replication connection: it reads messages, stages each
// transaction in a spool, hands committed transactions to the writer, and
// sends the standby status (the acknowledged position). Receiving does not
// wait for decoding and encoding, so the walsender keeps sending while a
// large transaction is written.
type receiver struct {
	cfg  Config
	repl *pgconn.PgConn
	log  *slog.Logger
	h    *handoff

	spool      *spool // the transaction being received, between Begin and Commit
	inTxn      bool
	xid        uint32               // its transaction id
	inStream   bool                 // between Stream Start and Stream Stop
	streamXid  uint32               // the transaction being streamed
	streams    map[uint32]*streamed // large transactions streamed, not yet committed
	handed     int64                // transactions handed to the writer
	lastSent   pglogrepl.LSN        // position last acknowledged
	limitAsked time.Time            // when a higher AckLimit was last asked for
	// lastStatus is when the standby status was last sent.
	lastStatus time.Time
	// sendingSince is when the server started sending after it last
	// caught up; zero while it has nothing to send.
	sendingSince time.Time
}

func newReceiver(cfg Config, repl *pgconn.PgConn, h *handoff, log *slog.Logger) *receiver {
	r := &receiver{cfg: cfg, repl: repl, h: h, log: log, streams: map[uint32]*streamed{}}
	if repl != nil {
		h.wake = r.wake
	}
	return r
}

// committed is a transaction received in full, handed from the receiver to
// the writer.
type committed struct {
	// message, when set, is a reload watermark at end instead of a
	// transaction (spool is nil).
	message  []byte
	spool    *spool
	mem      int64           // bytes of memory the spool holds
	streamed bool            // spool records carry the (sub)transaction id
	aborted  map[uint32]bool // streamed: rolled-back subtransactions
	xid      uint32          // the transaction's id
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

// streamed is a large transaction that PostgreSQL streams before it
// commits (protocol version 2, streaming = on): its changes are staged on
// disk by transaction, each tagged with the (sub)transaction that made it,
// and written at its commit like any other transaction.
type streamed struct {
	spool   *spool
	aborted map[uint32]bool // rolled-back subtransactions
}

// run is the receiving loop. It returns nil after a graceful stop, once
// every transaction received in full is handed to the writer.
func (r *receiver) run(ctx, stop context.Context) error {
	r.lastStatus = time.Now()
	// Reads wait on the socket's deadline rather than on a context: a
	// context per message costs a watcher goroutine each time (about a
	// seventh of the daemon's CPU in the drain benchmark). A stop, an
	// abort or a new durable position (the uploader calls wake) interrupts
	// the read by moving the deadline to now.
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
			return r.shutdown()
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
		if r.h.ack() > r.lastSent {
			r.sendStatus(false)
		}
		msg, err := r.repl.ReceiveMessage(context.Background())
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if stop.Err() != nil {
				return r.shutdown()
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
		if now.Sub(r.lastStatus) >= r.cfg.StatusInterval || r.h.ack() > r.lastSent {
			r.sendStatus(false)
		}
	}
}

// wake interrupts a read in progress; safe from any goroutine.
func (r *receiver) wake() {
	r.repl.Conn().SetReadDeadline(time.Now())
}

// handle handles one message of the replication protocol.
func (r *receiver) handle(ctx context.Context, msg pgproto3.BackendMessage) error {
	switch m := msg.(type) {
	case *pgproto3.CopyData:
		switch m.Data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
			if err != nil {
				return fmt.Errorf("parse keepalive: %w", err)
			}
			r.keepalive(ka)
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

// keepalive handles the walsender's keepalive. The walsender sends one
// when it has sent everything and waits for WAL: tell the writer, which
// may flush at once. With nothing pending, every change up to the server's
// WAL end is in the destination: acknowledge it, so an idle publication
// does not hold WAL back.
func (r *receiver) keepalive(ka pglogrepl.PrimaryKeepaliveMessage) {
	between := !r.inTxn && len(r.streams) == 0
	if between {
		r.h.caughtUp.Store(r.handed)
		if !r.sendingSince.IsZero() && time.Since(r.sendingSince) >= r.cfg.FlushInterval/4 {
			r.h.backlogDone.Store(r.handed)
		}
		r.sendingSince = time.Time{}
		select {
		case r.h.caughtUpSignal <- struct{}{}:
		default:
		}
	}
	ws := r.h.written.Load()
	if between && ws.processed == r.handed && !ws.pending && r.h.durable.Load() >= ws.handed {
		r.h.idleAck.raise(ka.ServerWALEnd)
		// The state must record an idle position before it is
		// acknowledged: ask for that at most once per status interval, so
		// an idle publication on a busy server costs one state write per
		// interval, not one per keepalive.
		if ka.ServerWALEnd > r.h.ackLimit.Load() && time.Since(r.limitAsked) >= r.cfg.StatusInterval && r.h.limitWanted.raise(ka.ServerWALEnd) {
			r.limitAsked = time.Now()
			select {
			case r.h.limitSignal <- struct{}{}:
			default:
			}
		}
	}
	if ka.ReplyRequested {
		r.sendStatus(false)
	}
}

// wal handles one pgoutput message.
func (r *receiver) wal(ctx context.Context, data []byte) error {
	f, err := decoder.ReadFrame(data, r.inStream, r.inTxn)
	if err != nil {
		return err
	}
	switch f.Kind {
	case decoder.KindBegin:
		if r.spool == nil {
			r.spool = r.takeSpool()
		}
		r.inTxn, r.xid = true, f.Xid
		r.spool.reset()
	case decoder.KindCommit:
		if !r.inTxn || r.spool == nil {
			return fmt.Errorf("commit at %s without a begin", f.End)
		}
		s := r.spool
		r.spool, r.inTxn = nil, false
		return r.hand(ctx, &committed{spool: s, xid: r.xid, end: f.End, at: f.CommitTime})
	case decoder.KindStreamStart:
		r.inStream, r.streamXid = true, f.Xid
		if r.streams[f.Xid] == nil {
			r.streams[f.Xid] = &streamed{spool: newSpool(r.cfg.TempDir, spoolMemory), aborted: map[uint32]bool{}}
		}
	case decoder.KindStreamStop:
		r.inStream = false
	case decoder.KindStreamAbort:
		st := r.streams[f.Xid]
		if st == nil {
			return nil
		}
		if f.SubXid == f.Xid {
			st.spool.reset()
			delete(r.streams, f.Xid)
		} else {
			st.aborted[f.SubXid] = true
		}
	case decoder.KindStreamCommit:
		st := r.streams[f.Xid]
		if st == nil {
			return fmt.Errorf("stream commit of transaction %d that was never streamed", f.Xid)
		}
		delete(r.streams, f.Xid)
		r.log.Info("streamed transaction committed", logkey.Xid, f.Xid, logkey.Messages, st.spool.count, logkey.Bytes, st.spool.size,
			logkey.AbortedSubtransactions, len(st.aborted), logkey.LSN, f.End)
		r.cfg.Metrics.streamedTxns.Inc()
		return r.hand(ctx, &committed{spool: st.spool, xid: f.Xid, streamed: true, aborted: st.aborted, end: f.End, at: f.CommitTime})
	case decoder.KindMessage:
		if f.Prefix != reloadPrefix {
			return nil
		}
		return r.hand(ctx, &committed{message: bytes.Clone(f.Body), end: f.End, at: time.Now()})
	case decoder.KindData:
		if !r.inStream {
			return r.spool.add(f.Body)
		}
		// A streamed record is the (sub)transaction id, then the message
		// as protocol version 1 sends it.
		st := r.streams[r.streamXid]
		if st == nil {
			return fmt.Errorf("streamed message %q outside a stream", data[0])
		}
		return st.spool.addParts(data[1:5], f.Type, f.Rest)
	}
	return nil
}

// hand passes a committed transaction to the writer. While the queue is
// full it waits for the writer, keeping the walsender informed.
func (r *receiver) hand(ctx context.Context, c *committed) error {
	if c.spool != nil {
		c.mem = int64(cap(c.spool.mem))
	}
	var tick *time.Ticker
	defer func() {
		if tick != nil {
			tick.Stop()
		}
	}()
	for {
		if r.h.queued.Load() < maxQueuedMemory {
			select {
			case r.h.txns <- c:
				r.h.queued.Add(c.mem)
				r.handed++
				return nil
			default:
			}
		}
		if tick == nil {
			tick = time.NewTicker(r.cfg.StatusInterval)
		}
		select {
		case <-r.h.released:
		case <-tick.C:
			r.sendStatus(false)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// takeSpool returns a spool for a transaction that begins.
func (r *receiver) takeSpool() *spool {
	select {
	case s := <-r.h.free:
		return s
	default:
		return newSpool(r.cfg.TempDir, spoolMemory)
	}
}

// shutdown drops a partly received transaction (it is sent again after a
// restart, since it is not acknowledged); the writer then writes and
// flushes what was received in full.
func (r *receiver) shutdown() error {
	r.dropPartial()
	r.h.stopped.Store(true)
	return nil
}

// dropPartial drops the transactions not received in full.
func (r *receiver) dropPartial() {
	if r.spool != nil {
		r.spool.reset()
		r.spool = nil
	}
	r.inTxn = false
	for xid, st := range r.streams {
		st.spool.reset()
		delete(r.streams, xid)
	}
}

// discard removes every spool's temporary file once the stream is over:
// partial transactions, the ones queued for the writer that it did not
// take, and the free ones. Only after every stage has returned.
func (r *receiver) discard() {
	r.dropPartial()
	for c := range r.h.txns { // closed by the receiver's return
		c.spool.reset()
	}
	for {
		select {
		case s := <-r.h.free:
			s.reset()
		default:
			return
		}
	}
}

// sendStatus reports the acknowledged position. Write, flush and apply are
// all set: pglogrepl would copy the write position into zero ones.
func (r *receiver) sendStatus(reply bool) {
	ack := r.h.ack()
	r.lastStatus = time.Now()
	if ack == 0 {
		return
	}
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), r.repl, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: ack, WALFlushPosition: ack, WALApplyPosition: ack, ReplyRequested: reply,
	})
	if err != nil {
		r.log.Warn("send standby status", logkey.Error, err)
		return
	}
	if ack > r.lastSent {
		r.h.ackedAt.Store(time.Now().UnixNano())
		r.cfg.Metrics.ackLSN.Set(float64(ack))
	}
	r.lastSent = ack
}
