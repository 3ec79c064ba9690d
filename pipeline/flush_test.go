package pipeline

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgproto3"
)

// newTestReader is a reader with what receive's message handling needs,
// no connections.
func newTestReader(t *testing.T, flushInterval time.Duration) *reader {
	r := &reader{
		cfg:      Config{FlushInterval: flushInterval, FlushSize: 32 << 20, TempDir: t.TempDir()},
		streams:  map[uint32]*streamed{},
		txns:     make(chan *committed, 16),
		free:     make(chan *spool, 1),
		progress: make(chan struct{}, 1),
		nudge:    make(chan struct{}, 1),
	}
	r.wstate.Store(&writerState{})
	r.caughtUp.Store(-1)
	r.backlogDone.Store(-1)
	return r
}

func xlog(msg []byte) *pgproto3.CopyData {
	return &pgproto3.CopyData{Data: append(append([]byte{'w'}, make([]byte, 24)...), msg...)}
}

// txn sends one empty transaction, Begin and Commit, and takes it from the
// queue as write would.
func txn(t *testing.T, r *reader, end uint64) {
	begin := append([]byte{'B'}, make([]byte, 20)...)
	commit := make([]byte, 26)
	commit[0] = 'C'
	binary.BigEndian.PutUint64(commit[10:], end)
	for _, m := range [][]byte{begin, commit} {
		if err := r.handle(context.Background(), xlog(m)); err != nil {
			t.Fatal(err)
		}
	}
	if c := <-r.txns; c.end != pglogrepl.LSN(end) {
		t.Fatalf("queued commit at %s, want %d", c.end, end)
	}
}

// keepalive sends the keepalive the walsender sends when it has caught up.
func keepalive(t *testing.T, r *reader) {
	if err := r.handle(context.Background(), &pgproto3.CopyData{Data: append([]byte{'k'}, make([]byte, 17)...)}); err != nil {
		t.Fatal(err)
	}
}

// TestCaughtUpFlush checks when write flushes before the interval: at a
// catch-up after a backlog (the server sent without pause for a quarter of
// the interval), or with a quarter of FlushSize pending; not for a trickle.
func TestCaughtUpFlush(t *testing.T) {
	// A trickle: each transaction is followed at once by a catch-up.
	r := newTestReader(t, time.Minute)
	for i := range 3 {
		txn(t, r, uint64(100+i))
		keepalive(t, r)
	}
	r.processed, r.pendingBytes = 3, 1000
	if r.caughtUp.Load() != 3 {
		t.Fatalf("caughtUp = %d, want 3", r.caughtUp.Load())
	}
	if r.caughtUpFlushDue() {
		t.Error("a trickle of small transactions flushed before the interval")
	}
	r.pendingBytes = r.cfg.FlushSize / 4
	if !r.caughtUpFlushDue() {
		t.Error("a quarter of FlushSize pending at a catch-up did not flush")
	}

	// A backlog: the server sends for longer than a quarter of the
	// interval before it catches up.
	r = newTestReader(t, 40*time.Millisecond)
	txn(t, r, 100)
	time.Sleep(15 * time.Millisecond)
	txn(t, r, 200)
	r.processed, r.pendingBytes = 1, 1000
	if r.caughtUpFlushDue() {
		t.Error("flushed before the server caught up")
	}
	keepalive(t, r)
	if r.backlogDone.Load() != 2 {
		t.Fatalf("backlogDone = %d, want 2", r.backlogDone.Load())
	}
	if r.caughtUpFlushDue() {
		t.Error("flushed before write had written every transaction received")
	}
	r.processed = 2
	if !r.caughtUpFlushDue() {
		t.Error("a drained backlog was not flushed at the catch-up")
	}
	r.pendingBytes = 0
	if r.caughtUpFlushDue() {
		t.Error("flush due with nothing pending")
	}
	// The next transaction, alone, is a trickle again.
	txn(t, r, 300)
	keepalive(t, r)
	r.processed, r.pendingBytes = 3, 1000
	if r.caughtUpFlushDue() {
		t.Error("a transaction after the backlog flushed before the interval")
	}
}
