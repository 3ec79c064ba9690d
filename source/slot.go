package source

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// CurrentLSN is the server's WAL position in SQL: the insert position on a
// primary, the replay position on a standby (where pg_current_wal_lsn
// fails).
const CurrentLSN = `(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)`

// Plugin is the output plugin of cdc2s3's slots.
const Plugin = "pgoutput"

var (
	// ErrSlotExists reports that CREATE_REPLICATION_SLOT found the name
	// taken, typically by a slot still being created by another connection
	// (a crashed predecessor's walsender finishing it).
	ErrSlotExists = errors.New("replication slot already exists")
	// ErrSlotActive reports that a slot could not be dropped because a
	// connection is using it.
	ErrSlotActive = errors.New("replication slot is active")
)

// Slot is a replication slot as pg_replication_slots shows it, with the
// distances from the server's current WAL position.
type Slot struct {
	Name      string
	Type      string // "logical" or "physical"
	Plugin    string // output plugin of a logical slot: cdc2s3's is "pgoutput"
	Database  string // database of a logical slot
	Here      bool   // the slot belongs to the connection's database
	Temporary bool
	Active    bool
	PID       int32 // the walsender using it, when Active
	// WALStatus is reserved, extended, unreserved or lost (invalidated:
	// the WAL it needed is gone).
	WALStatus  string
	RestartLSN pglogrepl.LSN // oldest WAL the slot keeps
	// ConfirmedFlushLSN is what the consumer acknowledged: for cdc2s3, the
	// position at or below which every change is uploaded.
	ConfirmedFlushLSN pglogrepl.LSN
	CurrentLSN        pglogrepl.LSN // the server's WAL position at the lookup
	LagBytes          int64         // CurrentLSN - ConfirmedFlushLSN
	RetainedBytes     int64         // CurrentLSN - RestartLSN: WAL kept for the slot
}

// Usable returns nil when cdc2s3 can stream from the slot, else an error
// that names the fix: a slot of another database, one that is not a
// pgoutput logical slot, or one invalidated (wal_status lost).
func (s *Slot) Usable() error {
	switch {
	case !s.Here && s.Database != "":
		return fmt.Errorf("replication slot %q belongs to database %q, not this one: choose another --slot (slot names are unique per server)", s.Name, s.Database)
	case s.WALStatus == "lost":
		return fmt.Errorf("replication slot %q was invalidated: it fell further behind than max_slot_wal_keep_size allows, and the WAL it needed is gone, so changes are missing. "+
			"Recover with a new full load: drop the slot (cdc2s3 drop, or SELECT pg_drop_replication_slot('%s')) and start again with a new, empty --dest; see docs/operations.md", s.Name, s.Name)
	case s.Type != "logical" || s.Plugin != Plugin || s.ConfirmedFlushLSN == 0:
		return fmt.Errorf("slot %q is not a pgoutput logical slot: choose another --slot", s.Name)
	}
	return nil
}

// LookupSlot returns the replication slot name, or nil when there is none.
// Slot names are unique per server, so it looks in every database.
func LookupSlot(ctx context.Context, conn *pgx.Conn, name string) (*Slot, error) {
	var (
		s                           = Slot{Name: name}
		pid                         *int32
		restart, confirmed, current *string
		lag, retained               *int64
		plugin, database, walStatus *string
	)
	err := conn.QueryRow(ctx, `
		SELECT slot_type, plugin::text, database::text, coalesce(database = current_database(), false), temporary,
		       active, active_pid, wal_status, restart_lsn::text, confirmed_flush_lsn::text, `+CurrentLSN+`::text,
		       pg_wal_lsn_diff(`+CurrentLSN+`, confirmed_flush_lsn)::bigint,
		       pg_wal_lsn_diff(`+CurrentLSN+`, restart_lsn)::bigint
		FROM pg_replication_slots WHERE slot_name = $1`, name).
		Scan(&s.Type, &plugin, &database, &s.Here, &s.Temporary, &s.Active, &pid, &walStatus,
			&restart, &confirmed, &current, &lag, &retained)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up slot %q: %w", name, err)
	}
	s.Plugin, s.Database, s.WALStatus = deref(plugin), deref(database), deref(walStatus)
	if pid != nil {
		s.PID = *pid
	}
	for _, l := range []struct {
		text *string
		lsn  *pglogrepl.LSN
	}{{restart, &s.RestartLSN}, {confirmed, &s.ConfirmedFlushLSN}, {current, &s.CurrentLSN}} {
		if l.text == nil {
			continue
		}
		if *l.lsn, err = pglogrepl.ParseLSN(*l.text); err != nil {
			return nil, fmt.Errorf("slot %q: %w", name, err)
		}
	}
	if lag != nil {
		s.LagBytes = *lag
	}
	if retained != nil {
		s.RetainedBytes = *retained
	}
	return &s, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// WaitSlotFree looks the slot up and, while another connection holds it,
// waits up to wait for it to be released (after a crash the old walsender
// holds the slot until it notices its client is gone). waiting is called
// once, with the slot, when the wait begins. It returns nil when there is
// no slot.
func WaitSlotFree(ctx context.Context, conn *pgx.Conn, name string, wait time.Duration, waiting func(*Slot)) (*Slot, error) {
	deadline := time.Now().Add(wait)
	called := false
	for {
		slot, err := LookupSlot(ctx, conn, name)
		if err != nil || slot == nil || !slot.Active {
			return slot, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: replication slot %q is in use by another connection (PID %d): another cdc2s3 may be running on it; stop it or choose another --slot", ErrSlotActive, name, slot.PID)
		}
		if !called && waiting != nil {
			waiting(slot)
			called = true
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// CreatedSlot is what creating a slot with an exported snapshot returns.
type CreatedSlot struct {
	// Snapshot is the exported snapshot's name, valid while the
	// replication connection that created it stays idle.
	Snapshot string
	// ConsistentPoint is the slot's first position: every change after it
	// is streamed, everything before it is in the snapshot.
	ConsistentPoint pglogrepl.LSN
}

// CreateSlot creates the pgoutput slot name on the replication connection
// repl with an exported snapshot. A name already taken gives ErrSlotExists.
func CreateSlot(ctx context.Context, repl *pgconn.PgConn, name string) (CreatedSlot, error) {
	return createSlot(ctx, repl, name, false)
}

// CreateTempSlot creates a temporary pgoutput slot name on the
// replication connection repl with an exported snapshot, for one read that
// must meet the stream exactly (a reload's chunk): a transaction whose
// commit record ends at or below the returned ConsistentPoint is visible in
// the snapshot, one that ends above it is not. The snapshot is built by
// decoding the WAL, so this holds in commit-record order even where
// PostgreSQL makes transactions visible in another order (a backend that
// wrote its commit record and has not yet left the process array, as
// under synchronous replication); a snapshot of pg_current_snapshot() gives
// no such guarantee. The slot goes when repl closes; it holds back WAL only
// while it exists.
func CreateTempSlot(ctx context.Context, repl *pgconn.PgConn, name string) (CreatedSlot, error) {
	return createSlot(ctx, repl, name, true)
}

func createSlot(ctx context.Context, repl *pgconn.PgConn, name string, temporary bool) (CreatedSlot, error) {
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, name, Plugin,
		pglogrepl.CreateReplicationSlotOptions{Temporary: temporary, SnapshotAction: "EXPORT_SNAPSHOT", Mode: pglogrepl.LogicalReplication})
	if err != nil {
		if sqlState(err) == "42710" {
			return CreatedSlot{}, fmt.Errorf("%w: slot %q (a crashed cdc2s3's walsender may still be finishing it): start again in a few seconds", ErrSlotExists, name)
		}
		return CreatedSlot{}, Explain(fmt.Errorf("create replication slot %q: %w", name, err), nil)
	}
	lsn, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return CreatedSlot{}, fmt.Errorf("slot %q consistent point: %w", name, err)
	}
	return CreatedSlot{Snapshot: res.SnapshotName, ConsistentPoint: lsn}, nil
}

// DropSlot drops the replication slot name. A slot in use gives
// ErrSlotActive.
func DropSlot(ctx context.Context, conn *pgx.Conn, name string) error {
	if _, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", name); err != nil {
		if sqlState(err) == "55006" {
			return fmt.Errorf("%w: replication slot %q is in use by another connection", ErrSlotActive, name)
		}
		return Explain(fmt.Errorf("drop replication slot %q: %w", name, err), nil)
	}
	return nil
}

// IdleSlot is an inactive replication slot and the WAL it keeps.
type IdleSlot struct {
	Name, Type, Database string
	Here                 bool  // the slot belongs to the connection's database (or is physical)
	RetainedBytes        int64 // WAL from its restart_lsn on
}

// IdleSlots returns the inactive replication slots other than except,
// the ones keeping the most WAL first. Each holds WAL from its restart_lsn
// on until the disk fills (AWS DMS leaves them behind when a task is
// deleted).
func IdleSlots(ctx context.Context, conn *pgx.Conn, except string) ([]IdleSlot, error) {
	rows, err := conn.Query(ctx, `
		SELECT slot_name::text, slot_type, coalesce(database::text, ''), coalesce(database = current_database(), true),
		       coalesce(pg_wal_lsn_diff(`+CurrentLSN+`, restart_lsn), 0)::bigint
		FROM pg_replication_slots WHERE NOT active AND slot_name <> $1
		ORDER BY 5 DESC, 1`, except)
	if err != nil {
		return nil, fmt.Errorf("list inactive replication slots: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (IdleSlot, error) {
		var s IdleSlot
		err := r.Scan(&s.Name, &s.Type, &s.Database, &s.Here, &s.RetainedBytes)
		return s, err
	})
}

// SlotNames lists the server's replication slots, for a message.
func SlotNames(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	rows, err := conn.Query(ctx, "SELECT slot_name::text FROM pg_replication_slots ORDER BY 1")
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// sqlState returns err's SQLSTATE, or "" when it is not a server error.
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}
