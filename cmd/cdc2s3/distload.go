package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cdc2s3/cdc2s3/internal/logkey"
	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/pipeline"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/pqfile"
	"github.com/cdc2s3/cdc2s3/snapshot"
	"github.com/cdc2s3/cdc2s3/source"
)

// distFlags are the flags of a distributed load (docs/deploy.md).
func distFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "plan", Usage: "coordinator of a distributed load: take the snapshot, write the plan of units into the destination, hold the snapshot until every unit is done, then commit the LOAD files"},
		&cli.BoolFlag{Name: "for-run", Usage: "with --plan: the first load of cdc2s3 run: create the slot --slot (and the publication --publication) as run would, so that run started afterwards streams from the snapshot on"},
		&cli.StringFlag{Name: "slot", Value: pipeline.DefaultSlot, Usage: "with --plan --for-run: the replication slot run will stream from", EnvVars: env("SLOT")},
		&cli.StringFlag{Name: "publication", Value: pipeline.DefaultPublication, Usage: "with --plan --for-run: the publication run will stream; created (all tables or --tables) when missing", EnvVars: env("PUBLICATION")},
		&cli.StringFlag{Name: "plan-id", Usage: "with --plan: the plan's name (default: the time and a random suffix); with --unit or --list-units: the plan to use (default: the destination's current plan)", EnvVars: env("PLAN_ID")},
		&cli.IntFlag{Name: "unit", Usage: "worker of a distributed load: copy this unit (1, 2, ...) of the plan, then exit; safe to run again", EnvVars: env("UNIT")},
		&cli.BoolFlag{Name: "list-units", Usage: "print the unit numbers of the plan, one a line, and exit"},
		&cli.DurationFlag{Name: "lease-ttl", Value: pipeline.DefaultLeaseTTL, Usage: "with --plan: lifetime of the destination's lease the coordinator holds", EnvVars: env("LEASE_TTL")},
	}
}

// roleFlags say what one process of a distributed load is: given on its
// command line (or in its environment), never in a shared config file.
var roleFlags = map[string]bool{"plan": true, "for-run": true, "plan-id": true, "unit": true, "list-units": true}

// distributed reports whether the command line asks for a part of a
// distributed load, and refuses combinations that mean nothing.
func distributed(c *cli.Context) (bool, error) {
	n := 0
	for _, set := range []bool{c.Bool("plan"), c.IsSet("unit"), c.Bool("list-units")} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return false, cli.Exit("--plan, --unit and --list-units are different roles: give one (the coordinator runs --plan, each worker --unit N)", 2)
	case c.Bool("for-run") && !c.Bool("plan"):
		return false, cli.Exit("--for-run goes with --plan (the coordinator of run's first load)", 2)
	case c.IsSet("unit") && c.Int("unit") < 1:
		return false, cli.Exit(fmt.Sprintf("invalid --unit %d: units are numbered from 1 (cdc2s3 snapshot --list-units prints them)", c.Int("unit")), 2)
	case c.String("plan-id") != "":
		if err := snapshot.CheckPlanID(c.String("plan-id")); err != nil {
			return false, cli.Exit(err, 2)
		}
	}
	return n == 1, nil
}

// runDistributed runs the role the flags name.
func runDistributed(c *cli.Context, stop context.Context, log *slog.Logger) error {
	if c.Bool("list-units") {
		return listUnits(c)
	}
	if c.String("source") == "" {
		return cli.Exit("no source: set --source or CDC2S3_SOURCE to a PostgreSQL connection string", 2)
	}
	store, err := openDest(c)
	if err != nil {
		return err
	}
	tmp, err := openScratch(c, log)
	if err != nil {
		return err
	}
	defer tmp.Close()
	if c.IsSet("unit") {
		return runUnit(c, store, tmp.Path, log)
	}
	o, err := planOptions(c, tmp.Path, log)
	if err != nil {
		return err
	}
	// The first SIGTERM stops a coordinator: its snapshot, and so its
	// plan, end with it.
	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	defer context.AfterFunc(stop, cancel)()
	start := time.Now()
	var results []snapshot.Result
	err = lsnstore.WithLease(ctx, store, c.Duration("lease-ttl"), func(h lsnstore.LeaseRecord) {
		log.Warn("another cdc2s3 holds this destination; waiting for its lease", logkey.Holder, h.Owner, logkey.Expires, h.ExpiresAt)
	}, func(ctx context.Context, fenced sink.Store) error {
		var err error
		results, err = coordinate(ctx, c, fenced, o, log)
		return err
	})
	if stop.Err() != nil && err != nil {
		return fmt.Errorf("stopped: the plan is abandoned (its snapshot ended with this process); run the coordinator again for a new plan: %w", err)
	}
	if err != nil {
		return err
	}
	printLoaded(c, results, start)
	return nil
}

// planOptions reads the coordinator's settings.
func planOptions(c *cli.Context, tempDir string, log *slog.Logger) (snapshot.PlanOptions, error) {
	maxFile, err := parseSize(c.String("max-file-size"))
	if err != nil {
		return snapshot.PlanOptions{}, cli.Exit(fmt.Errorf("invalid --max-file-size: %w", err), 2)
	}
	chunkSize, err := parseSize(c.String("snapshot-chunk-size"))
	if err != nil {
		return snapshot.PlanOptions{}, cli.Exit(fmt.Errorf("invalid --snapshot-chunk-size: %w", err), 2)
	}
	if err := pqfile.ValidCompression(c.String("compression")); err != nil {
		return snapshot.PlanOptions{}, cli.Exit(fmt.Errorf("invalid --compression: %w", err), 2)
	}
	o := snapshot.PlanOptions{ID: c.String("plan-id")}
	o.MaxFileSize, o.ChunkSize, o.Compression, o.TempDir, o.Log = maxFile, chunkSize, c.String("compression"), tempDir, log
	o.Planned = func(p *snapshot.Plan) {
		fmt.Fprintf(c.App.Writer, "plan %s: %d units over %d tables; run each with cdc2s3 snapshot --unit N (N from 1 to %d)\n", p.ID, len(p.Units), len(p.Tables), len(p.Units))
	}
	return o, nil
}

// coordinate plans, waits and commits: run's first load with --for-run,
// else a one-off snapshot in a transaction of its own.
func coordinate(ctx context.Context, c *cli.Context, store sink.Store, o snapshot.PlanOptions, log *slog.Logger) ([]snapshot.Result, error) {
	if c.Bool("for-run") {
		cfg := pipeline.Config{
			Source: c.String("source"), Slot: c.String("slot"), Publication: c.String("publication"),
			Tables: splitList(c.String("tables")), ArraysAsText: c.Bool("arrays-as-text"),
		}
		return pipeline.PlanFirstLoad(ctx, cfg, store, o, log)
	}
	conn, err := source.Connect(ctx, c.String("source"))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	exp, err := snapshot.Export(ctx, c.String("source"))
	if err != nil {
		return nil, err
	}
	defer exp.Close(context.WithoutCancel(ctx))
	listed, err := source.UserTables(ctx, conn, splitList(c.String("tables")))
	if err != nil {
		return nil, err
	}
	if len(listed) == 0 {
		return nil, snapshot.ErrNoTables
	}
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&o.Database); err != nil {
		return nil, fmt.Errorf("current database: %w", err)
	}
	resolver := source.NewResolver(conn)
	resolver.ArraysAsText = c.Bool("arrays-as-text")
	o.Snapshot, o.LSN, o.Time = exp.Name, exp.LSN, exp.Time
	return snapshot.Distribute(ctx, exp.Conn(), resolver, listed, store, o)
}

// runUnit is a worker: one unit, then exit. Bad input exits 2, a snapshot
// that is gone 1, each with the fix.
func runUnit(c *cli.Context, store sink.Store, tempDir string, log *slog.Logger) error {
	n := c.Int("unit")
	res, err := snapshot.RunUnit(c.Context, c.String("source"), store, n, snapshot.UnitOptions{PlanID: c.String("plan-id"), TempDir: tempDir, Log: log})
	switch {
	case errors.Is(err, snapshot.ErrNoPlan), errors.Is(err, snapshot.ErrUnitRange), errors.Is(err, snapshot.ErrPlanReplaced), errors.Is(err, snapshot.ErrPlanID):
		return cli.Exit(err, 2)
	case err != nil:
		return err
	}
	switch res.Skipped {
	case "committed":
		fmt.Fprintf(c.App.Writer, "unit %d of %d (plan %s): the plan is already committed; nothing to do\n", n, res.Units, res.Plan)
	case "done":
		fmt.Fprintf(c.App.Writer, "unit %d of %d (plan %s, %s): already done; nothing to do\n", n, res.Units, res.Plan, res.Table)
	default:
		fmt.Fprintf(c.App.Writer, "unit %d of %d (plan %s, %s): %d rows, %d files\n", n, res.Units, res.Plan, res.Table, res.Rows, res.Files)
	}
	return nil
}

// listUnits prints the plan's unit numbers, one a line, for a script that
// starts the workers (xargs -P).
func listUnits(c *cli.Context) error {
	store, err := openDest(c)
	if err != nil {
		return err
	}
	p, err := snapshot.ReadPlan(c.Context, store, c.String("plan-id"))
	if errors.Is(err, snapshot.ErrNoPlan) {
		return cli.Exit(err, 1)
	}
	if err != nil {
		return err
	}
	for _, u := range p.Units {
		fmt.Fprintln(c.App.Writer, u.N)
	}
	return nil
}

// printLoaded prints rows and files per table, as an embedded load does.
func printLoaded(c *cli.Context, results []snapshot.Result, start time.Time) {
	var rows int64
	for _, r := range results {
		rows += r.Rows
		fmt.Fprintf(c.App.Writer, "%-40s %10d rows %4d files\n", r.Table, r.Rows, r.Files)
	}
	fmt.Fprintf(c.App.Writer, "%d tables, %d rows in %s\n", len(results), rows, time.Since(start).Round(time.Millisecond))
}

// workersAlias lets the snapshot command take --workers for
// --snapshot-workers: the in-process load's worker count.
func workersAlias(flags []cli.Flag) []cli.Flag {
	for _, f := range flags {
		if w, ok := f.(*cli.IntFlag); ok && w.Name == "snapshot-workers" {
			w.Aliases = append(w.Aliases, "workers")
		}
	}
	return flags
}
