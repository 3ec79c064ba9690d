package pipeline

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgproto3"
)

// newTestStages are a receiver and a writer joined by a handoff, with what
// the receiver's message handling and the writer's flush rules need, no
// connections.
func newTestStages(t *testing.T, flushInterval time.Duration) (*receiver, *writer) {
	cfg := Config{FlushInterval: flushInterval, FlushSize: 32 << 20, TempDir: t.TempDir()}
	h := newHandoff(0, 0)
	return newReceiver(cfg, nil, h, nil), newWriter(cfg, nil, nil, nil, 0, h, nil)
}

func xlog(msg []byte) *pgproto3.CopyData {
	return &pgproto3.CopyData{Data: append(append([]byte{'w'}, make([]byte, 24)...), msg...)}
}

// txn sends one empty transaction, Begin and Commit, and takes it from the
// queue as the writer would.
func txn(t *testing.T, r *receiver, end uint64) {
	begin := append([]byte{'B'}, make([]byte, 20)...)
	commit := make([]byte, 26)
	commit[0] = 'C'
	binary.BigEndian.PutUint64(commit[10:], end)
	for _, m := range [][]byte{begin, commit} {
		if err := r.handle(context.Background(), xlog(m)); err != nil {
			t.Fatal(err)
		}
	}
	if c := <-r.h.txns; c.end != pglogrepl.LSN(end) {
		t.Fatalf("queued commit at %s, want %d", c.end, end)
	}
}

// keepalive sends the keepalive the walsender sends when it has caught up.
func keepalive(t *testing.T, r *receiver) {
	if err := r.handle(context.Background(), &pgproto3.CopyData{Data: append([]byte{'k'}, make([]byte, 17)...)}); err != nil {
		t.Fatal(err)
	}
}

// TestCaughtUpFlush checks when the writer flushes before the interval: at a
// catch-up after a backlog (the server sent without pause for a quarter of
// the interval), or with a quarter of FlushSize pending; not for a trickle.
func TestCaughtUpFlush(t *testing.T) {
	// A trickle: each transaction is followed at once by a catch-up.
	r, w := newTestStages(t, time.Minute)
	for i := range 3 {
		txn(t, r, uint64(100+i))
		keepalive(t, r)
	}
	w.processed, w.pendingBytes = 3, 1000
	if r.h.caughtUp.Load() != 3 {
		t.Fatalf("caughtUp = %d, want 3", r.h.caughtUp.Load())
	}
	if w.caughtUpFlushDue() {
		t.Error("a trickle of small transactions flushed before the interval")
	}
	w.pendingBytes = w.cfg.FlushSize / 4
	if !w.caughtUpFlushDue() {
		t.Error("a quarter of FlushSize pending at a catch-up did not flush")
	}

	// A backlog: the server sends for longer than a quarter of the
	// interval before it catches up.
	r, w = newTestStages(t, 40*time.Millisecond)
	txn(t, r, 100)
	time.Sleep(15 * time.Millisecond)
	txn(t, r, 200)
	w.processed, w.pendingBytes = 1, 1000
	if w.caughtUpFlushDue() {
		t.Error("flushed before the server caught up")
	}
	keepalive(t, r)
	if r.h.backlogDone.Load() != 2 {
		t.Fatalf("backlogDone = %d, want 2", r.h.backlogDone.Load())
	}
	if w.caughtUpFlushDue() {
		t.Error("flushed before the writer had written every transaction received")
	}
	w.processed = 2
	if !w.caughtUpFlushDue() {
		t.Error("a drained backlog was not flushed at the catch-up")
	}
	w.pendingBytes = 0
	if w.caughtUpFlushDue() {
		t.Error("flush due with nothing pending")
	}
	// The next transaction, alone, is a trickle again.
	txn(t, r, 300)
	keepalive(t, r)
	w.processed, w.pendingBytes = 3, 1000
	if w.caughtUpFlushDue() {
		t.Error("a transaction after the backlog flushed before the interval")
	}
}
