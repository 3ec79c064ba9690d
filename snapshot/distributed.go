package snapshot

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdc2s3/cdc2s3/internal/logkey"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/source"
)

// DefaultPoll is how often a coordinator looks for finished units.
const DefaultPoll = 2 * time.Second

// PlanOptions configures the coordinator of a distributed load. The
// embedded Options give the snapshot (Snapshot, LSN, Time), the chunk and
// file sizes, the compression, TempDir (for a table's empty file) and Log.
type PlanOptions struct {
	Options
	// ID names the plan (NewPlanID when empty): the state machine gives
	// its execution's name.
	ID string
	// Database is the source database the snapshot belongs to.
	Database string
	// Slot and Publication are recorded for the daemon's first load.
	Slot, Publication string
	// Poll is how often finished units are counted (DefaultPoll).
	Poll time.Duration
	// Planned, when set, is called once the plan is in the destination.
	Planned func(*Plan)
	// Committed, when set, is called once the LOAD files and histories are
	// in place, before the plan is recorded committed: the daemon's first
	// load saves its finished state there. An error fails the commit,
	// which may then be run again.
	Committed func(ctx context.Context) error
}

// Distribute is the coordinator of a distributed full load: it describes
// tables as snap (a connection inside the exported snapshot o.Snapshot)
// sees them, plans their units, writes the plan into store, then waits
// while workers (RunUnit, in other processes) copy the units, holding
// nothing but the snapshot the caller keeps open, and commits once every
// unit is done: the schema histories, the LOAD files, numbered, and
// o.Committed. It returns ErrTableChanged when a unit found a table
// changed since the snapshot (plan again, from a new one), and ctx's error
// when stopped: the snapshot then dies with the caller, and the plan with
// it.
func Distribute(ctx context.Context, snap *pgx.Conn, resolver *source.Resolver, tables []source.Table, store sink.Store, o PlanOptions) ([]Result, error) {
	o.defaults()
	if err := CheckPlanID(o.ID); err != nil {
		return nil, err
	}
	jobs, err := prepareJobs(ctx, snap, resolver, tables)
	if err != nil {
		return nil, err
	}
	rels, err := planRelations(ctx, snap, jobs)
	if err != nil {
		return nil, err
	}
	states, chunks, err := planChunks(jobs, rels, o.ChunkSize)
	if err != nil {
		return nil, err
	}
	p := newPlan(o, jobs, states, chunks)
	if err := removeOtherPlans(ctx, store, p.ID); err != nil {
		return nil, err
	}
	if err := writePlan(ctx, store, p); err != nil {
		return nil, err
	}
	o.Log.Info("distributed load planned", logkey.Plan, p.ID, logkey.Units, len(p.Units), logkey.Tables, len(p.Tables),
		logkey.Snapshot, p.Snapshot, logkey.LSN, p.LSN, logkey.Dest, store.String())
	if o.Planned != nil {
		o.Planned(p)
	}
	start := time.Now()
	if err := waitUnits(ctx, store, p, o); err != nil {
		return nil, err
	}
	o.Log.Info("every unit is done; committing", logkey.Plan, p.ID, logkey.Units, len(p.Units), logkey.Duration, time.Since(start).Round(time.Millisecond))
	return commit(ctx, store, p, jobs, o)
}

func (o *PlanOptions) defaults() {
	o.Options.defaults()
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.ID == "" {
		o.ID = NewPlanID()
	}
}

// newPlan turns planned chunks into a plan: every chunk is a unit,
// numbered in the order planChunks lists them (table by table).
func newPlan(o PlanOptions, jobs []Job, states []*tableState, chunks []*chunk) *Plan {
	p := &Plan{
		Format: planFormat, ID: o.ID, Snapshot: o.Snapshot, LSN: o.LSN, Time: o.Time.UTC(), Database: o.Database,
		Slot: o.Slot, Publication: o.Publication, Compression: o.Compression, MaxFileSize: o.MaxFileSize,
		ChunkSize: o.ChunkSize, Created: time.Now().UTC(),
	}
	index := map[*tableState]int{}
	for i, j := range jobs {
		index[states[i]] = i
		cols := make([]PlanColumn, len(j.Columns))
		for k, c := range j.Columns {
			cols[k] = PlanColumn{Name: c.Name, Type: c.Type.String()}
		}
		p.Tables = append(p.Tables, PlanTable{Table: j.Table, Columns: cols, Partitions: j.Partitions,
			DiskBytes: states[i].prog.disk, Units: int(states[i].prog.chunks)})
	}
	for k, c := range chunks {
		u := Unit{N: k + 1, Table: index[c.table], Seq: c.seq, DiskBytes: c.disk}
		for _, pt := range c.parts {
			r := pt.rel
			u.Parts = append(u.Parts, UnitPart{Schema: r.Schema, Name: r.Name, Pages: r.Pages, Bytes: r.Bytes,
				Heap: r.Heap, Splittable: r.Splittable, Start: pt.rng.Start, End: pt.rng.End})
		}
		p.Units = append(p.Units, u)
	}
	return p
}

// waitUnits returns once every unit of p has its done record, or with an
// error once a unit recorded a failure no retry can cure. A destination
// that fails to answer is asked again at the next poll.
func waitUnits(ctx context.Context, store sink.Store, p *Plan, o PlanOptions) error {
	total, last := len(p.Units), -1
	var told time.Time
	for {
		n, err := countKeys(ctx, store, doneDir(p.ID))
		if err == nil && n >= total {
			return nil
		}
		var failed *UnitFailed
		if err == nil {
			failed, err = firstFailure(ctx, store, p.ID)
		}
		switch {
		case failed != nil:
			return fmt.Errorf("%w: unit %d: %s; run the coordinator again (a new plan from a new snapshot)", ErrTableChanged, failed.Unit, failed.Error)
		case err != nil && ctx.Err() == nil:
			o.Log.Warn("retrying", logkey.What, "count finished units", logkey.Error, err)
		case n != last || time.Since(told) >= DefaultProgressInterval:
			o.Log.Info("distributed load progress", logkey.Plan, p.ID, logkey.Units, n, logkey.Of, total)
			last, told = n, time.Now()
		}
		select {
		case <-time.After(o.Poll):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// hostname names this process's host in records.
func hostname() string {
	h, _ := os.Hostname()
	return h
}
