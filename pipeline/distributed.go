package pipeline

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdc2s3/cdc2s3/internal/logkey"
	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/snapshot"
	"github.com/cdc2s3/cdc2s3/source"
)

// PlanFirstLoad is the coordinator of the daemon's first load done as a
// distributed load (cdc2s3 snapshot --plan --for-run): it makes sure the
// publication exists, creates the slot with an exported snapshot exactly
// as the daemon's first start does, holds that snapshot while workers copy
// the plan's units (snapshot.Distribute), and commits what a first start
// would have left: the schema histories, the LOAD files, and the state
// with the slot's consistent point as checkpoint and snapshot_done. A
// cdc2s3 run started afterwards resumes streaming from the slot, so every
// change committed after the snapshot, during the load or later, reaches
// it once. store must be held under the destination's lease
// (lsnstore.WithLease), which also keeps a run waiting meanwhile.
func PlanFirstLoad(ctx context.Context, cfg Config, store sink.Store, o snapshot.PlanOptions, log *slog.Logger) ([]snapshot.Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	conn, err := source.Connect(ctx, cfg.Source)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := source.CheckServer(ctx, conn); err != nil {
		return nil, err
	}
	repl, err := source.ConnectReplication(ctx, cfg.Source)
	if err != nil {
		return nil, err
	}
	defer repl.Close(context.WithoutCancel(ctx))
	if err := ensurePublication(ctx, conn, cfg, log); err != nil {
		return nil, err
	}
	states := lsnstore.New(store)
	st, have, err := states.Load(ctx)
	if err != nil {
		return nil, err
	}
	slot, err := lookupSlot(ctx, conn, cfg.Slot, log)
	if err != nil {
		return nil, err
	}
	ours := have && st.Slot == cfg.Slot
	switch {
	case ours && st.SnapshotDone && slot != nil:
		return nil, fmt.Errorf("%s already holds the finished first load of slot %q: nothing to plan; start cdc2s3 run, which resumes from the slot", store, cfg.Slot)
	case ours && st.SnapshotDone:
		return nil, fmt.Errorf("replication slot %q does not exist but %s holds a finished load (checkpoint %s): a new full load goes into a new, empty --dest; see docs/operations.md, \"The slot is lost\"",
			cfg.Slot, store, st.Checkpoint)
	case slot != nil && ours:
		log.Warn("previous full load did not finish; dropping the slot and starting over", logkey.Slot, cfg.Slot)
		if err := source.DropSlot(ctx, conn, cfg.Slot); err != nil {
			return nil, err
		}
	case slot != nil:
		return nil, fmt.Errorf("replication slot %q exists but %s has no cdc2s3 state for it: choose another --slot, or drop the slot (SELECT pg_drop_replication_slot('%s')) if nothing else uses it",
			cfg.Slot, store, cfg.Slot)
	}
	return distributeOnce(ctx, conn, repl, cfg, store, o, log)
}

// distributeOnce is loadOnce with the copy done by workers: state, slot,
// snapshot, plan, and the state finished at the commit.
func distributeOnce(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn, cfg Config, store sink.Store, o snapshot.PlanOptions, log *slog.Logger) ([]snapshot.Result, error) {
	states := lsnstore.New(store)
	if err := checkNames(ctx, conn, cfg.Publication); err != nil {
		return nil, err
	}
	st, res, snap, err := newSlot(ctx, repl, cfg, states)
	if err != nil {
		return nil, err
	}
	defer snap.Close(context.WithoutCancel(ctx))
	published, err := source.PublishedTables(ctx, conn, cfg.Publication)
	if err != nil {
		return nil, err
	}
	resolver := source.NewResolver(conn)
	resolver.ArraysAsText = cfg.ArraysAsText
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&o.Database); err != nil {
		return nil, fmt.Errorf("current database: %w", err)
	}
	o.Snapshot, o.LSN, o.Time, o.Slot, o.Publication = res.Snapshot, st.SnapshotLSN, st.SnapshotTime, cfg.Slot, cfg.Publication
	o.Committed = func(ctx context.Context) error {
		st.SnapshotDone = true
		return states.Save(ctx, st)
	}
	return snapshot.Distribute(ctx, snap, resolver, published, store, o)
}
