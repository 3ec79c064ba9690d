package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

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
	if err := checkServer(ctx, conn); err != nil {
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
		var slot *slotInfo
		if slot, err = waitSlotFree(ctx, conn, cfg.Slot, slotWait, log); err != nil {
			return fail(err)
		}
		st, err = prepareSlot(ctx, conn, s.repl, cfg, store, states, st, haveState, slot, log)
		if !errors.Is(err, errSlotCreating) || attempt == 10 {
			break
		}
		log.Warn("replication slot is being created by another connection; waiting", "slot", cfg.Slot)
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
	s.state = st
	return s, nil
}

// prepareSlot decides, from the slot and the destination's state, whether
// to resume streaming or to (re)start the full load, and returns the state
// to stream from.
func prepareSlot(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn, cfg Config, store sink.Store,
	states *lsnstore.Store, st lsnstore.State, haveState bool, slot *slotInfo, log *slog.Logger) (lsnstore.State, error) {
	ours := haveState && st.Slot == cfg.Slot
	switch {
	case slot != nil && ours && st.SnapshotDone:
		log.Info("resuming", "slot", cfg.Slot, "confirmed_flush_lsn", slot.confirmed, "checkpoint", st.Checkpoint)
		if st.Checkpoint < slot.confirmed {
			st.Checkpoint = slot.confirmed
		}
		return st, nil
	case slot != nil && ours:
		// A full load did not finish: its exported snapshot died with the
		// connection that made it. Start over from a new slot.
		log.Warn("previous full load did not finish; dropping the slot and starting over", "slot", cfg.Slot)
		if err := dropSlot(ctx, conn, cfg.Slot); err != nil {
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
	rows, err := conn.Query(ctx, `
		SELECT slot_name, coalesce(database, ''), pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint
		FROM pg_replication_slots
		WHERE NOT active AND slot_name <> $1 AND restart_lsn IS NOT NULL`, ours)
	if err != nil {
		return // only a warning: the checks that matter come next
	}
	defer rows.Close()
	for rows.Next() {
		var name, db string
		var retained int64
		if rows.Scan(&name, &db, &retained) == nil {
			log.Warn("an inactive replication slot holds WAL on the server; drop it if nothing uses it",
				"slot", name, "database", db, "retained_bytes", retained, "fix", fmt.Sprintf("SELECT pg_drop_replication_slot('%s')", name))
		}
	}
}

// checkServer verifies wal_level and the REPLICATION privilege up front,
// so the user gets one clear message instead of a protocol error.
func checkServer(ctx context.Context, conn *pgx.Conn) error {
	var walLevel string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel); err != nil {
		return fmt.Errorf("read wal_level: %w", err)
	}
	if walLevel != "logical" {
		return fmt.Errorf("wal_level is %s: set wal_level = logical in postgresql.conf (on RDS: rds.logical_replication = 1) and restart PostgreSQL", walLevel)
	}
	var user string
	var ok bool
	err := conn.QueryRow(ctx, `
		SELECT current_user, rolsuper OR rolreplication OR
		       EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = 'rds_replication' AND pg_has_role(current_user, r.oid, 'member'))
		FROM pg_roles WHERE rolname = current_user`).Scan(&user, &ok)
	if err != nil {
		return fmt.Errorf("read role: %w", err)
	}
	if !ok {
		return fmt.Errorf("user %q lacks the REPLICATION attribute: ALTER ROLE %s REPLICATION (on RDS: GRANT rds_replication TO %s)",
			user, pgx.Identifier{user}.Sanitize(), pgx.Identifier{user}.Sanitize())
	}
	return nil
}

func ensurePublication(ctx context.Context, conn *pgx.Conn, cfg Config, log *slog.Logger) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", cfg.Publication).Scan(&exists); err != nil {
		return fmt.Errorf("look up publication: %w", err)
	}
	if exists {
		return nil
	}
	target := "ALL TABLES"
	if len(cfg.Tables) > 0 {
		names := make([]string, len(cfg.Tables))
		for i, t := range cfg.Tables {
			schema, name := source.SplitName(strings.TrimSpace(t))
			names[i] = pgx.Identifier{schema, name}.Sanitize()
		}
		target = "TABLE " + strings.Join(names, ", ")
	}
	sql := fmt.Sprintf("CREATE PUBLICATION %s FOR %s WITH (publish_via_partition_root = true)",
		pgx.Identifier{cfg.Publication}.Sanitize(), target)
	if _, err := conn.Exec(ctx, sql); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" {
			return fmt.Errorf("cannot create publication %q: %s; create it as a superuser (CREATE PUBLICATION %s FOR ALL TABLES WITH (publish_via_partition_root = true)) or pass --tables for tables you own",
				cfg.Publication, pgErr.Message, cfg.Publication)
		}
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
			return fmt.Errorf("cannot create publication: %s: fix --tables", pgErr.Message)
		}
		return fmt.Errorf("create publication %q: %w", cfg.Publication, err)
	}
	log.Info("created publication", "publication", cfg.Publication, "for", target)
	return nil
}

type slotInfo struct {
	confirmed pglogrepl.LSN
	active    bool
	pid       int32
}

func lookupSlot(ctx context.Context, conn *pgx.Conn, name string) (*slotInfo, error) {
	var confirmed *string
	var plugin *string
	var active bool
	var pid *int32
	var db, walStatus *string
	var here bool
	// Slot names are cluster-wide: look in every database.
	err := conn.QueryRow(ctx, `
		SELECT confirmed_flush_lsn::text, plugin, active, active_pid, database, database = current_database(), wal_status
		FROM pg_replication_slots WHERE slot_name = $1`, name).Scan(&confirmed, &plugin, &active, &pid, &db, &here, &walStatus)
	if err == pgx.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up slot %q: %w", name, err)
	}
	if !here && db != nil {
		return nil, fmt.Errorf("replication slot %q belongs to database %q, not this one: choose another --slot (slot names are unique per server)", name, *db)
	}
	if walStatus != nil && *walStatus == "lost" {
		return nil, fmt.Errorf("replication slot %q was invalidated: it fell further behind than max_slot_wal_keep_size allows, and the WAL it needed is gone, so changes are missing. "+
			"Recover with a new full load: drop the slot (cdc2s3 drop, or SELECT pg_drop_replication_slot('%s')) and start again with a new, empty --dest; see docs/operations.md", name, name)
	}
	if plugin == nil || *plugin != "pgoutput" || confirmed == nil {
		return nil, fmt.Errorf("slot %q is not a pgoutput logical slot: choose another --slot", name)
	}
	lsn, err := pglogrepl.ParseLSN(*confirmed)
	if err != nil {
		return nil, fmt.Errorf("slot %q: %w", name, err)
	}
	info := &slotInfo{confirmed: lsn, active: active}
	if pid != nil {
		info.pid = *pid
	}
	return info, nil
}

// errSlotCreating reports that CREATE_REPLICATION_SLOT found the name
// taken by a slot that was not visible yet: one still being created.
var errSlotCreating = errors.New("replication slot is being created by another connection")

// slotWait bounds how long a start waits for a slot still held by another
// connection: after a crash (SIGKILL) the old walsender holds it until it
// notices its client is gone.
const slotWait = 30 * time.Second

// waitSlotFree looks the slot up and, while another connection holds it,
// waits up to wait for it to be released.
func waitSlotFree(ctx context.Context, conn *pgx.Conn, name string, wait time.Duration, log *slog.Logger) (*slotInfo, error) {
	deadline := time.Now().Add(wait)
	logged := false
	for {
		slot, err := lookupSlot(ctx, conn, name)
		if err != nil || slot == nil || !slot.active {
			return slot, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("replication slot %q is in use by another connection (PID %d): another cdc2s3 may be running on it; stop it or choose another --slot", name, slot.pid)
		}
		if !logged {
			log.Warn("replication slot in use; waiting for it to be released", "slot", name, "pid", slot.pid)
			logged = true
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func dropSlot(ctx context.Context, conn *pgx.Conn, name string) error {
	if _, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", name); err != nil {
		return fmt.Errorf("drop slot %q: %w", name, err)
	}
	return nil
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
		log.Warn("a table changed during the full load; starting over from a new snapshot", "err", err)
		if err := dropSlot(ctx, conn, cfg.Slot); err != nil {
			return st, err
		}
	}
}

func loadOnce(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn, cfg Config, store sink.Store, log *slog.Logger) (lsnstore.State, error) {
	states := lsnstore.New(store)
	// Record the slot before creating it: if the process dies between the
	// two, the next start knows the slot is its own to drop and redo.
	st := lsnstore.State{Slot: cfg.Slot, Publication: cfg.Publication}
	if err := states.Delete(ctx); err != nil {
		return st, err
	}
	if err := states.Save(ctx, st); err != nil {
		return st, err
	}
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, cfg.Slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{SnapshotAction: "EXPORT_SNAPSHOT", Mode: pglogrepl.LogicalReplication})
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42710" {
			return st, fmt.Errorf("%w: slot %q (a crashed cdc2s3's walsender may still be finishing it): start again in a few seconds", errSlotCreating, cfg.Slot)
		}
		return st, source.Explain(fmt.Errorf("create replication slot %q: %w", cfg.Slot, err), nil)
	}
	taken := time.Now().UTC()
	lsn, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return st, fmt.Errorf("slot consistent point: %w", err)
	}
	st.SnapshotLSN, st.SnapshotTime, st.Checkpoint = lsn, taken, lsn
	if err := states.Save(ctx, st); err != nil {
		return st, err
	}
	snap, err := snapshot.OpenSnapshot(ctx, cfg.Source, res.SnapshotName)
	if err != nil {
		return st, err
	}
	defer snap.Close(context.WithoutCancel(ctx))
	published, err := source.PublishedTables(ctx, conn, cfg.Publication)
	if err != nil {
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
		Snapshot: res.SnapshotName, LSN: lsn, Time: taken, Workers: cfg.SnapshotWorkers, ChunkSize: cfg.SnapshotChunkSize,
		MaxFileSize: cfg.MaxFileSize, Compression: cfg.Compression, TempDir: cfg.TempDir, Log: log,
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
	log.Info("full load done", "tables", len(results), "rows", rows, "duration", time.Since(start).Round(time.Millisecond))
	return st, nil
}
