package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdc2s3/cdc2s3/internal/faultpoint"
	"github.com/cdc2s3/cdc2s3/internal/logkey"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/source"
)

// UnitOptions configures a worker of a distributed load.
type UnitOptions struct {
	// PlanID names the plan; empty: the destination's current plan. A
	// named plan that is no longer current is refused (ErrPlanReplaced).
	PlanID  string
	TempDir string
	Log     *slog.Logger
}

// UnitResult reports what a worker did.
type UnitResult struct {
	Plan  string
	Unit  int
	Units int // units in the plan
	Table string
	Rows  int64
	Files int
	// Skipped is why nothing was copied: "done" (an earlier attempt
	// recorded the unit) or "committed" (the plan is); "" otherwise.
	Skipped string
}

// RunUnit is a worker of a distributed load: it copies unit n of the plan
// in the plan's snapshot into staged files, then records the unit done
// (distplan.go). Running it again is safe at any point: a unit already
// recorded is skipped, and of two attempts at once the first record wins.
// Errors: ErrNoPlan, ErrUnitRange, ErrPlanReplaced, ErrSnapshotGone (the
// coordinator stopped: plan again), ErrTableChanged (recorded for the
// coordinator, which then stops: plan again), or what the copy met after
// its retries.
func RunUnit(ctx context.Context, dsn string, store sink.Store, n int, o UnitOptions) (UnitResult, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	p, err := ReadPlan(ctx, store, o.PlanID)
	if err != nil {
		return UnitResult{Unit: n}, err
	}
	res := UnitResult{Plan: p.ID, Unit: n, Units: len(p.Units)}
	if err := checkUnit(ctx, store, p, n, o.PlanID != ""); err != nil {
		return res, err
	}
	u := p.Units[n-1]
	res.Table = p.Tables[u.Table].Table.String()
	if ok, err := isCommitted(ctx, store, p.ID); err != nil || ok {
		res.Skipped = "committed"
		return res, err
	}
	if d, err := readDone(ctx, store, p.ID, n); err != nil || d != nil {
		res.Skipped = "done"
		return res, err
	}
	jobs, err := p.jobs()
	if err != nil {
		return res, err
	}
	if err := probeSnapshot(ctx, dsn, p); err != nil {
		return res, err
	}
	start := time.Now()
	attempt := randomID(8)
	out, staged, err := copyUnit(ctx, dsn, store, p, u, jobs[u.Table], attempt, o)
	defer out.remove()
	if err != nil {
		return res, unitError(ctx, store, dsn, p, n, err)
	}
	d := UnitDone{Plan: p.ID, Unit: n, Attempt: attempt, Files: staged, Rows: out.rows, Bytes: out.bytes,
		Nulled: out.nulled, Flattened: out.flattened, Host: hostname(), Duration: time.Since(start).Seconds(), Finished: time.Now().UTC()}
	faultpoint.Hit(faultpoint.BeforeUnitDone)
	won, err := recordDone(ctx, store, d)
	if err != nil {
		return res, err
	}
	if !won {
		// Another attempt recorded the unit first: its files count, these
		// never will.
		for _, f := range staged {
			store.Delete(ctx, f.Key)
		}
		res.Skipped = "done"
		return res, nil
	}
	res.Rows, res.Files = out.rows, len(staged)
	return res, nil
}

// checkUnit refuses a unit number the plan does not have, and a named plan
// that a newer one replaced.
func checkUnit(ctx context.Context, store sink.Store, p *Plan, n int, named bool) error {
	if n < 1 || n > len(p.Units) {
		if len(p.Units) == 0 {
			return fmt.Errorf("%w: unit %d: plan %s has no units (nothing to copy): there is nothing to run", ErrUnitRange, n, p.ID)
		}
		return fmt.Errorf("%w: unit %d: plan %s has units 1 to %d: run one of those (cdc2s3 snapshot --list-units prints them)", ErrUnitRange, n, p.ID, len(p.Units))
	}
	if !named {
		return nil
	}
	cur, err := currentPlan(ctx, store)
	if err != nil {
		return err
	}
	if cur != "" && cur != p.ID {
		return fmt.Errorf("%w: plan %s was replaced by plan %s: this unit belongs to a load that was abandoned; run the units of plan %s", ErrPlanReplaced, p.ID, cur, cur)
	}
	return nil
}

// probeSnapshot checks, on a connection of its own, that dsn is the plan's
// database and that the plan's snapshot can still be imported.
func probeSnapshot(ctx context.Context, dsn string, p *Plan) error {
	conn, err := source.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		return fmt.Errorf("current database: %w", err)
	}
	if db != p.Database {
		return fmt.Errorf("plan %s reads database %q, but --source connects to %q: point the worker at the coordinator's database", p.ID, p.Database, db)
	}
	if err := beginSnapshot(ctx, conn, p.Snapshot); err != nil {
		if snapshotGone(err) {
			return goneError(p)
		}
		return err
	}
	_, err = conn.Exec(ctx, "ROLLBACK")
	return err
}

// snapshotGone reports the error SET TRANSACTION SNAPSHOT gives for a
// snapshot no transaction exports any more (22023, invalid_parameter_value).
func snapshotGone(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "22023"
}

func goneError(p *Plan) error {
	return fmt.Errorf("%w: snapshot %s of plan %s: its coordinator (cdc2s3 snapshot --plan) has stopped, or PostgreSQL restarted; run the coordinator again (a new plan from a new snapshot), then the new plan's units",
		ErrSnapshotGone, p.Snapshot, p.ID)
}

// unitError classifies a failed copy: a snapshot gone, or a table changed
// (recorded, so that the coordinator stops instead of waiting).
func unitError(ctx context.Context, store sink.Store, dsn string, p *Plan, n int, err error) error {
	if snapshotGone(err) || errors.Is(probeSnapshot(ctx, dsn, p), ErrSnapshotGone) {
		return goneError(p)
	}
	if errors.Is(err, ErrTableChanged) {
		if rerr := sink.PutJSON(ctx, store, failedKey(p.ID, n), UnitFailed{Unit: n, Error: err.Error()}); rerr != nil {
			return errors.Join(err, rerr)
		}
		return fmt.Errorf("%w; recorded for the coordinator, which stops: run it again (a new plan from a new snapshot)", err)
	}
	return err
}

// copyUnit copies unit u into local files and stages them under the
// attempt's names, retrying either step (withRetry, as an embedded load
// does for a chunk).
func copyUnit(ctx context.Context, dsn string, store sink.Store, p *Plan, u Unit, job Job, attempt string, o UnitOptions) (*chunkOutput, []StagedFile, error) {
	opts := p.options(o.TempDir)
	opts.Log, opts.Progress = o.Log, &Progress{}
	c := unitChunk(u, job)
	w := &worker{dsn: dsn, store: store, o: opts}
	defer w.close(context.WithoutCancel(ctx))
	var out *chunkOutput
	var staged []StagedFile
	attrs := []any{logkey.Plan, p.ID, logkey.Unit, u.N, logkey.Table, job.Table.String()}
	err := withRetry(ctx, o.Log, attrs, func() error {
		if out == nil {
			var err error
			if out, err = w.copy(ctx, c); err != nil {
				w.close(context.WithoutCancel(ctx)) // its state is unknown
				return err
			}
		}
		for len(staged) < len(out.files) {
			k := len(staged) + 1
			path := out.files[k-1].path
			info, err := os.Stat(path)
			if err != nil {
				return errPermanent{err}
			}
			key := stagedKey(p.ID, u.N, attempt, k)
			if err := putFile(ctx, store, key, path); err != nil {
				return err
			}
			staged = append(staged, StagedFile{Key: key, Size: info.Size()})
		}
		return nil
	})
	return out, staged, err
}

// unitChunk is the chunk that unit u of job's table reads.
func unitChunk(u Unit, job Job) *chunk {
	t := &tableState{job: job, prog: &tableProgress{name: job.Table.String(), chunks: 1}}
	c := &chunk{table: t, seq: u.Seq, disk: u.DiskBytes}
	for _, pt := range u.Parts {
		rel := &relation{Schema: pt.Schema, Name: pt.Name, Pages: pt.Pages, Bytes: pt.Bytes, Heap: pt.Heap, Splittable: pt.Splittable}
		c.parts = append(c.parts, part{rel: rel, rng: blockRange{Start: pt.Start, End: pt.End}})
	}
	return c
}

// recordDone creates the unit's done record; false when another attempt's
// record was there first. A record found that names this attempt is a
// retried request whose first try did succeed.
func recordDone(ctx context.Context, store sink.Store, d UnitDone) (bool, error) {
	b, err := sink.MarshalJSON(d)
	if err != nil {
		return false, err
	}
	key := doneKey(d.Plan, d.Unit)
	err = withRetry(ctx, slog.New(slog.DiscardHandler), nil, func() error {
		err := store.PutIfAbsent(ctx, key, bytes.NewReader(b), int64(len(b)))
		if errors.Is(err, sink.ErrPreconditionFailed) {
			return errPermanent{err}
		}
		return err
	})
	if !errors.Is(err, sink.ErrPreconditionFailed) {
		return err == nil, err
	}
	there, rerr := readDone(ctx, store, d.Plan, d.Unit)
	if rerr != nil {
		return false, rerr
	}
	return there != nil && there.Attempt == d.Attempt, nil
}
