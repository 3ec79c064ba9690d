// Package stream is the cdc2s3 daemon: it takes the full load from the
// replication slot's exported snapshot, then consumes the pgoutput stream,
// batches rows per table into Parquet files, uploads them, and acknowledges
// an LSN to PostgreSQL only once every change at or below it is uploaded.
//
// Data flows one way: a reader goroutine owns the replication connection
// (receive → spool → decode at commit → append to the table's open file →
// seal when due); one bounded channel hands sealed batches to the uploader;
// the uploader puts the files, saves the checkpoint, and publishes the
// durable LSN that the reader acknowledges.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/pqfile"
	"github.com/cdc2s3/cdc2s3/snapshot"
	"github.com/cdc2s3/cdc2s3/source"
)

// Defaults of Config, after AWS DMS's CdcMaxBatchInterval and
// CdcMinFileSize.
const (
	DefaultSlot           = "cdc2s3"
	DefaultPublication    = "cdc2s3"
	DefaultFlushInterval  = 60 * time.Second
	DefaultFlushSize      = 32 << 20
	DefaultStatusInterval = 10 * time.Second
	// DefaultHeartbeatInterval is how often a heartbeat message is written
	// in the source, so an idle publication still advances the slot.
	DefaultHeartbeatInterval = 30 * time.Second
	// DefaultLeaseTTL is how long a writer's lease on a destination lasts
	// without renewal: how long a successor waits after a crash on
	// another host.
	DefaultLeaseTTL = 30 * time.Second
	spoolMemory     = 8 << 20
)

// Config configures the daemon.
type Config struct {
	Source      string   // PostgreSQL connection string
	Slot        string   // replication slot
	Publication string   // publication, created when missing
	Tables      []string // tables of a new publication; empty means all
	// FlushInterval and FlushSize seal the open files at the first commit
	// after either is reached; FlushSize counts uncompressed value bytes.
	FlushInterval  time.Duration
	FlushSize      int64
	StatusInterval time.Duration
	// StreamLarge asks PostgreSQL 14+ to stream large transactions as they
	// happen (pgoutput protocol version 2, streaming = on) instead of
	// decoding them to its own disk and sending them at commit.
	StreamLarge bool
	// Metrics receives the daemon's metrics and health; nil: not exported.
	Metrics *Metrics
	// LeaseTTL is how long the destination's writer lease lasts without
	// renewal (renewed every third of it).
	LeaseTTL time.Duration
	// HeartbeatInterval is how often to write a heartbeat (a transactional
	// pg_logical_emit_message) in the source; 0 turns it off.
	HeartbeatInterval time.Duration
	Compression       string
	SnapshotWorkers   int
	// SnapshotChunkSize splits large tables into chunks of about this many
	// bytes on disk for the full load (0: the snapshot package's default).
	SnapshotChunkSize int64
	MaxFileSize       int64
	TempDir           string
	ArraysAsText      bool
}

var slotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// Validate checks the settings that can be checked without connecting.
func (c *Config) Validate() error {
	if c.Source == "" {
		return errors.New("no source: set --source or CDC2S3_SOURCE to a PostgreSQL connection string")
	}
	if c.Slot == "" {
		c.Slot = DefaultSlot
	}
	if !slotName.MatchString(c.Slot) {
		return fmt.Errorf("invalid --slot %q: use 1 to 63 lower-case letters, digits and underscores", c.Slot)
	}
	if c.Publication == "" {
		c.Publication = DefaultPublication
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.FlushInterval < 0 {
		return fmt.Errorf("invalid --flush-interval %s: must be positive", c.FlushInterval)
	}
	if c.FlushSize == 0 {
		c.FlushSize = DefaultFlushSize
	}
	if c.FlushSize < 0 {
		return fmt.Errorf("invalid --flush-size %d: must be positive", c.FlushSize)
	}
	if c.StatusInterval <= 0 {
		c.StatusInterval = DefaultStatusInterval
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics()
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.LeaseTTL < 3*time.Second {
		return fmt.Errorf("invalid --lease-ttl %s: use at least 3s", c.LeaseTTL)
	}
	if c.HeartbeatInterval < 0 {
		return fmt.Errorf("invalid --heartbeat-interval %s: use 0 to turn it off or a positive duration", c.HeartbeatInterval)
	}
	if err := pqfile.ValidCompression(c.Compression); err != nil {
		return fmt.Errorf("invalid --compression: %w", err)
	}
	for _, t := range c.Tables {
		if strings.TrimSpace(t) == "" {
			return errors.New("invalid --tables: empty table name")
		}
	}
	return nil
}

// Run runs the daemon until stop is done (graceful: finish the current
// batch, upload, acknowledge, return nil) or ctx is cancelled (abort at
// once; a restart continues from the last acknowledged position).
//
// A start with bad settings fails at once. Once streaming, a lost
// connection (a PostgreSQL restart or failover, a network cut) is retried
// with backoff until it works again or the daemon is stopped: the new
// session resumes from the slot, and replayed rows already in the
// destination are skipped.
func Run(ctx, stop context.Context, cfg Config, store sink.Store, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	states := lsnstore.New(store)

	// One writer per destination: wait for the lease (a deploy may start
	// this process before the old one has gone), hold it while running,
	// and stop at once if another process takes it.
	lease := lsnstore.NewLease(store, cfg.LeaseTTL)
	waitCtx, cancelWait := mergeDone(ctx, stop)
	err := lease.Acquire(waitCtx, func(h lsnstore.LeaseRecord) {
		log.Warn("another cdc2s3 holds this destination; waiting for its lease", "holder", h.Owner, "expires", h.ExpiresAt)
	})
	cancelWait()
	if err != nil {
		if stop.Err() != nil && ctx.Err() == nil {
			return nil
		}
		return err
	}
	defer func() {
		// Best effort and bounded: a stalled store must not hold up the exit
		// (the lease then expires by itself).
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		lease.Release(rctx)
	}()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		if err := lease.Hold(ctx); err != nil {
			log.Error("stopping: lost the destination's lease", "err", err)
			cancel(err)
		}
	}()
	err = run(ctx, stop, cfg, store, states, log)
	if ctx.Err() != nil && context.Cause(ctx) != ctx.Err() {
		return context.Cause(ctx)
	}
	return err
}

// run is Run once the lease is held.
func run(ctx, stop context.Context, cfg Config, store sink.Store, states *lsnstore.Store, log *slog.Logger) error {
	s, err := open(ctx, cfg, store, states, log)
	for attempt := 0; ; attempt++ {
		if err != nil {
			if attempt == 0 || !transient(err) || stop.Err() != nil || ctx.Err() != nil {
				return err
			}
		} else {
			r := newReader(cfg, s.conn, s.repl, store, states, s.state, log)
			err = r.run(ctx, stop)
			s.close(ctx)
			if err == nil || !transient(err) || ctx.Err() != nil {
				return err
			}
			if stop.Err() != nil {
				return nil // stopping anyway: what was uploaded is acknowledged at the next start
			}
			attempt = 1
			cfg.Metrics.reconnects.Inc()
		}
		delay := backoff(attempt)
		log.Warn("connection to PostgreSQL lost; reconnecting", "err", err, "in", delay)
		select {
		case <-time.After(delay):
		case <-stop.Done():
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
		s, err = open(ctx, cfg, store, states, log)
	}
}

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

// backoff is the wait before reconnect attempt n (1-based): exponential
// from 1 s, capped at 30 s, with up to 25% jitter so that many daemons
// restarted together do not reconnect in step.
func backoff(n int) time.Duration {
	d := time.Second << min(n-1, 5)
	d = min(d, 30*time.Second)
	return d + time.Duration(rand.Int64N(int64(d/4)+1))
}

// transient reports whether err is a lost or refused connection, which a
// reconnect may cure, as opposed to a configuration or data error.
func transient(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// 08: connection exception; 57P01-57P05: shutdown, crash,
		// cannot connect now, idle timeouts; 53300: too many connections.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P") || pgErr.Code == "53300"
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "unexpected EOF") || strings.Contains(msg, "broken pipe")
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
	tables, err := snapshot.Prepare(ctx, snap, published)
	if err != nil {
		return st, err
	}
	resolver := source.NewResolver(conn)
	resolver.ArraysAsText = cfg.ArraysAsText
	jobs, err := snapshot.Resolve(ctx, resolver, tables)
	if err != nil {
		return st, err
	}
	log.Info("full load starting", "tables", len(jobs), "snapshot", res.SnapshotName, "consistent_point", lsn)
	if err := snapshot.SaveHistories(ctx, states, jobs); err != nil {
		return st, err
	}
	start := time.Now()
	progress := &snapshot.Progress{}
	cfg.Metrics.snapshot.Store(progress)
	defer cfg.Metrics.snapshot.Store(nil)
	results, err := snapshot.Copy(ctx, cfg.Source, store, jobs, snapshot.Options{
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
		cfg.Metrics.snapshotRows.Add(float64(r.Rows), r.Table)
	}
	st.SnapshotDone = true
	if err := states.Save(ctx, st); err != nil {
		return st, err
	}
	log.Info("full load done", "tables", len(results), "rows", rows, "duration", time.Since(start).Round(time.Millisecond))
	return st, nil
}
