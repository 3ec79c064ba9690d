package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/cdc2s3/cdc2s3/internal/logkey"
)

// A transaction's commit record reaches the stream before the transaction
// is visible to other sessions: PostgreSQL writes and flushes the record
// (and waits for synchronous standbys) before it takes the transaction out
// of its process array. A catalog read that the stream's transaction
// calls for (an added column's missing value, a primary key, a type, the
// current row for an unchanged TOASTed value) could run in that gap and
// see the catalog or the row as before the transaction. So before the
// first such read of a transaction the writer waits until the transaction
// is visible in a snapshot of its catalog connection.

// visibleSQL reports whether the transaction with 32-bit id $1 is visible
// in a snapshot taken now. The snapshot's xmax gives the epoch: the
// transaction began before it, in its epoch or, if the 32-bit id is not
// below xmax's, in the one before.
const visibleSQL = `
	SELECT txid_visible_in_snapshot(
	         (CASE WHEN $1::int8 < (x & 4294967295) THEN x >> 32 ELSE (x >> 32) - 1 END) << 32 | $1::int8,
	         txid_current_snapshot())
	FROM (SELECT txid_snapshot_xmax(txid_current_snapshot()) AS x) s`

// visibleWarnAfter is how long the wait goes on before it is logged.
const visibleWarnAfter = 10 * time.Second

// catalogReady waits, once per transaction, until the transaction being
// written is visible to the catalog connection.
func (w *writer) catalogReady(ctx context.Context) error {
	if w.visible || w.conn == nil {
		return nil
	}
	start := time.Now()
	warned := false
	for delay := 100 * time.Microsecond; ; delay = min(delay*2, 100*time.Millisecond) {
		var ok bool
		if err := w.conn.QueryRow(ctx, visibleSQL, int64(w.xid)).Scan(&ok); err != nil {
			return fmt.Errorf("is transaction %d visible: %w", w.xid, err)
		}
		if ok {
			w.visible = true
			return nil
		}
		if !warned && time.Since(start) >= visibleWarnAfter {
			warned = true
			w.log.Warn("waiting for a transaction received from the stream to become visible in the source (a synchronous standby that does not confirm?) before reading the catalog for it",
				logkey.Xid, w.xid, logkey.Waited, time.Since(start).Round(time.Second))
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
