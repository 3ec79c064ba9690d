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
package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdc2s3/cdc2s3/internal/pgcat"
	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/pqfile"
	"github.com/cdc2s3/cdc2s3/snapshot"
)

// Defaults of Config, after AWS DMS's CdcMaxBatchInterval and
// CdcMinFileSize.
const (
	DefaultSlot           = "cdc2s3"
	DefaultPublication    = "cdc2s3"
	DefaultFlushInterval  = 60 * time.Second
	DefaultFlushSize      = 32 << 20
	DefaultStatusInterval = 10 * time.Second
	spoolMemory           = 8 << 20
)

// Config configures the daemon.
type Config struct {
	Source      string   // PostgreSQL connection string
	Slot        string   // replication slot
	Publication string   // publication, created when missing
	Tables      []string // tables of a new publication; empty means all
	// FlushInterval and FlushSize seal the open files at the first commit
	// after either is reached; FlushSize counts uncompressed value bytes.
	FlushInterval   time.Duration
	FlushSize       int64
	StatusInterval  time.Duration
	Compression     string
	SnapshotWorkers int
	MaxFileSize     int64
	TempDir         string
	ArraysAsText    bool
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
func Run(ctx, stop context.Context, cfg Config, store sink.Store, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	conn, err := pgcat.Connect(ctx, cfg.Source)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := checkServer(ctx, conn); err != nil {
		return err
	}
	if err := ensurePublication(ctx, conn, cfg, log); err != nil {
		return err
	}
	states := lsnstore.New(store)
	st, haveState, err := states.Load(ctx)
	if err != nil {
		return err
	}
	slot, err := lookupSlot(ctx, conn, cfg.Slot)
	if err != nil {
		return err
	}
	repl, err := pgcat.ConnectReplication(ctx, cfg.Source)
	if err != nil {
		return err
	}
	defer repl.Close(context.WithoutCancel(ctx))

	switch {
	case slot != nil && haveState && st.SnapshotDone && st.Slot == cfg.Slot:
		log.Info("resuming", "slot", cfg.Slot, "confirmed_flush_lsn", slot.confirmed, "checkpoint", st.Checkpoint)
		if st.Checkpoint < slot.confirmed {
			st.Checkpoint = slot.confirmed
		}
	case slot != nil && haveState && !st.SnapshotDone && st.Slot == cfg.Slot:
		// The exported snapshot died with the connection that made it: the
		// full load cannot be finished in it. Start over, from a new slot.
		log.Warn("previous full load did not finish; dropping the slot and starting over", "slot", cfg.Slot)
		if err := dropSlot(ctx, conn, cfg.Slot); err != nil {
			return err
		}
		fallthrough
	case slot == nil && (!haveState || !st.SnapshotDone):
		if st, err = initialLoad(ctx, conn, repl, cfg, store, log); err != nil {
			return err
		}
	case slot == nil:
		return fmt.Errorf("replication slot %q does not exist but %s holds a finished load (checkpoint %s): changes since then are gone from the WAL. "+
			"To start over with a new full load, remove %s from the destination (or use a new --dest); see docs/operations.md",
			cfg.Slot, store, st.Checkpoint, sink.StatePrefix)
	default:
		return fmt.Errorf("replication slot %q exists but %s has no cdc2s3 state for it: choose another --slot, or drop the slot (SELECT pg_drop_replication_slot('%s')) if nothing else uses it",
			cfg.Slot, store, cfg.Slot)
	}

	r := newReader(cfg, conn, repl, store, states, st, log)
	return r.run(ctx, stop)
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
			schema, name := pgcat.SplitName(strings.TrimSpace(t))
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
}

func lookupSlot(ctx context.Context, conn *pgx.Conn, name string) (*slotInfo, error) {
	var confirmed *string
	var plugin *string
	var active bool
	err := conn.QueryRow(ctx, `
		SELECT confirmed_flush_lsn::text, plugin, active FROM pg_replication_slots
		WHERE slot_name = $1 AND database = current_database()`, name).Scan(&confirmed, &plugin, &active)
	if err == pgx.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up slot %q: %w", name, err)
	}
	if plugin == nil || *plugin != "pgoutput" || confirmed == nil {
		return nil, fmt.Errorf("slot %q is not a pgoutput logical slot: choose another --slot", name)
	}
	lsn, err := pglogrepl.ParseLSN(*confirmed)
	if err != nil {
		return nil, fmt.Errorf("slot %q: %w", name, err)
	}
	return &slotInfo{confirmed: lsn, active: active}, nil
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
func initialLoad(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn, cfg Config, store sink.Store, log *slog.Logger) (lsnstore.State, error) {
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, cfg.Slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{SnapshotAction: "EXPORT_SNAPSHOT", Mode: pglogrepl.LogicalReplication})
	if err != nil {
		return lsnstore.State{}, pgcat.Explain(fmt.Errorf("create replication slot %q: %w", cfg.Slot, err), nil)
	}
	taken := time.Now().UTC()
	lsn, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return lsnstore.State{}, fmt.Errorf("slot consistent point: %w", err)
	}
	st := lsnstore.State{Slot: cfg.Slot, Publication: cfg.Publication, SnapshotLSN: lsn, SnapshotTime: taken, Checkpoint: lsn}
	states := lsnstore.New(store)
	// Forget any older state first: a crash from here on must start over.
	if err := states.Delete(ctx); err != nil {
		return st, err
	}
	if err := states.Save(ctx, st); err != nil {
		return st, err
	}
	tables, err := pgcat.PublishedTables(ctx, conn, cfg.Publication)
	if err != nil {
		return st, err
	}
	resolver := pgcat.NewResolver(conn)
	resolver.ArraysAsText = cfg.ArraysAsText
	jobs, err := snapshot.Resolve(ctx, resolver, tables)
	if err != nil {
		return st, err
	}
	log.Info("full load starting", "tables", len(jobs), "snapshot", res.SnapshotName, "consistent_point", lsn)
	for _, j := range jobs {
		h := &lsnstore.History{Version: 1, Schema: j.Table.Schema, Table: j.Table.Name}
		names := make([]string, len(j.Columns))
		for i, c := range j.Columns {
			names[i] = c.Name
		}
		h.Observe(names, 0, nil)
		if err := states.SaveHistory(ctx, h); err != nil {
			return st, err
		}
	}
	start := time.Now()
	results, err := snapshot.Copy(ctx, cfg.Source, store, jobs, snapshot.Options{
		Snapshot: res.SnapshotName, LSN: lsn, Time: taken, Workers: cfg.SnapshotWorkers,
		MaxFileSize: cfg.MaxFileSize, Compression: cfg.Compression, TempDir: cfg.TempDir, Log: log,
	})
	if err != nil {
		return st, err
	}
	var rows int64
	for _, r := range results {
		rows += r.Rows
	}
	st.SnapshotDone = true
	if err := states.Save(ctx, st); err != nil {
		return st, err
	}
	log.Info("full load done", "tables", len(results), "rows", rows, "duration", time.Since(start).Round(time.Millisecond))
	return st, nil
}
