package validate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/source"
)

// The position. Validation compares the source and the destination at one
// LSN: the consistent point C of a temporary logical slot, whose exported
// snapshot holds exactly the transactions whose commit ends at or below C
// (source.CreateTempSlot, TestTempSlotBoundary), against the folders' rows
// with _cdc_lsn at or below C. That is exact once the destination's
// checkpoint is at or above C: every change up to it is uploaded.

// Snapshot is a read of the source at a known position.
type Snapshot struct {
	// LSN is the position: the temporary slot's consistent point.
	LSN pglogrepl.LSN
	// Tx is a read-only REPEATABLE READ transaction in the slot's
	// exported snapshot; the slot itself is gone.
	Tx   pgx.Tx
	conn *pgx.Conn
}

// OpenSnapshot creates a temporary slot with an exported snapshot on a
// replication connection to dsn, imports the snapshot into a transaction on
// a connection of its own, and closes the replication connection, which
// drops the slot: it holds back WAL only while the snapshot is taken.
func OpenSnapshot(ctx context.Context, dsn string) (*Snapshot, error) {
	repl, err := source.ConnectReplication(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer repl.Close(context.WithoutCancel(ctx))
	var b [6]byte
	rand.Read(b[:])
	created, err := source.CreateTempSlot(ctx, repl, "cdc2s3_validate_"+hex.EncodeToString(b[:]))
	if err != nil {
		return nil, err
	}
	conn, err := source.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err == nil {
		_, err = tx.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(created.Snapshot))
	}
	if err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("import the temporary slot's snapshot: %w", err)
	}
	return &Snapshot{LSN: created.ConsistentPoint, Tx: tx, conn: conn}, nil
}

// quoteLiteral quotes a string literal.
func quoteLiteral(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}

// Close ends the transaction and the connection.
func (s *Snapshot) Close(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	s.Tx.Rollback(ctx)
	s.conn.Close(ctx)
}

// Nudge writes a transactional logical message (as the daemon's heartbeat
// does) so that a running daemon moves its checkpoint past the position
// even when nothing published changes; it changes no table.
func Nudge(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, "SELECT pg_logical_emit_message(true, 'cdc2s3.validate', '')")
	return err
}

// Daemon returns the lease record of the daemon holding the destination,
// nil when none holds it (no lease, released or expired).
func Daemon(ctx context.Context, store sink.Store) (*lsnstore.LeaseRecord, error) {
	lease, err := lsnstore.ReadLease(ctx, store)
	if err != nil || lease == nil || time.Now().After(lease.ExpiresAt) {
		return nil, err
	}
	return lease, nil
}

// ErrNotCovered is returned when the destination did not reach the
// position in time.
var ErrNotCovered = errors.New("the destination did not reach the position")

// WaitCovered polls the destination's state every second until its
// checkpoint reaches at, and returns it with covered set. It returns early,
// with covered false, when no daemon holds the destination (nothing moves
// the checkpoint), and ErrNotCovered after timeout. wait is called with
// the state at each poll that does not cover at.
func WaitCovered(ctx context.Context, store sink.Store, at pglogrepl.LSN, timeout time.Duration, wait func(lsnstore.State)) (st lsnstore.State, covered bool, err error) {
	states := lsnstore.New(store)
	deadline := time.Now().Add(timeout)
	for {
		if st, _, err = states.Load(ctx); err != nil {
			return st, false, err
		}
		if st.Checkpoint >= at {
			return st, true, nil
		}
		if lease, err := Daemon(ctx, store); err != nil || lease == nil {
			return st, false, err
		}
		if time.Now().After(deadline) {
			return st, false, fmt.Errorf("%w %s within %s (its checkpoint is %s)", ErrNotCovered, at, timeout, st.Checkpoint)
		}
		wait(st)
		select {
		case <-ctx.Done():
			return st, false, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// Pending decodes, without consuming it, what the destination's slot
// holds between the checkpoint from and upto (pg_logical_slot_peek_binary_changes
// with the publication, which only an inactive slot allows) and returns, per
// published table (schema.table), how many transactions that commit after
// from changed it: the changes not yet in the destination.
func Pending(ctx context.Context, conn *pgx.Conn, slot, publication string, from, upto pglogrepl.LSN) (map[string]int, error) {
	rows, err := conn.Query(ctx, `SELECT data FROM pg_logical_slot_peek_binary_changes($1, $2::text::pg_lsn, NULL,
		'proto_version', '1', 'publication_names', $3)`, slot, upto.String(), pgx.Identifier{publication}.Sanitize())
	if err != nil {
		return nil, fmt.Errorf("decode slot %s: %w", slot, err)
	}
	defer rows.Close()
	names := map[uint32]string{}
	pending := map[string]int{}
	changed := map[string]bool{}
	var data []byte
	for rows.Next() {
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("decode slot %s: %w", slot, err)
		}
		msg, err := pglogrepl.Parse(data)
		if err != nil {
			continue // a message this count does not need
		}
		switch m := msg.(type) {
		case *pglogrepl.RelationMessage:
			names[m.RelationID] = m.Namespace + "." + m.RelationName
		case *pglogrepl.BeginMessage:
			clear(changed)
		case *pglogrepl.InsertMessage:
			changed[names[m.RelationID]] = true
		case *pglogrepl.UpdateMessage:
			changed[names[m.RelationID]] = true
		case *pglogrepl.DeleteMessage:
			changed[names[m.RelationID]] = true
		case *pglogrepl.TruncateMessage:
			for _, id := range m.RelationIDs {
				changed[names[id]] = true
			}
		case *pglogrepl.CommitMessage:
			if m.TransactionEndLSN > from {
				for t := range changed {
					pending[t]++
				}
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("decode slot %s: %w", slot, err)
	}
	return pending, nil
}
