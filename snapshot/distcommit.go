package snapshot

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cdc2s3/cdc2s3/internal/logkey"
	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink"
)

// commitCopies is how many staged files a commit copies at once.
const commitCopies = 8

// commit makes a plan's units the LOAD files: the schema histories first,
// then table by table the LOAD files numbered from the plan (distplan.go),
// then o.Committed, the committed record, and the staged files removed.
// Every step can be done again, so a commit that fails may be run again.
func commit(ctx context.Context, store sink.Store, p *Plan, jobs []Job, o PlanOptions) ([]Result, error) {
	start := time.Now()
	done, err := readAllDone(ctx, store, p)
	if err != nil {
		return nil, err
	}
	if err := SaveHistories(ctx, lsnstore.New(store), jobs); err != nil {
		return nil, err
	}
	results := make([]Result, len(p.Tables))
	c := Committed{Plan: p.ID, Tables: len(p.Tables)}
	for i := range p.Tables {
		if results[i], err = publishTable(ctx, store, p, i, jobs[i], done, o); err != nil {
			return nil, err
		}
		results[i].Duration = time.Since(p.Created)
		c.Files += results[i].Files
		c.Rows += results[i].Rows
	}
	if o.Committed != nil {
		if err := o.Committed(ctx); err != nil {
			return nil, err
		}
	}
	c.Time = time.Now().UTC()
	if err := sink.PutJSON(ctx, store, committedKey(p.ID), c); err != nil {
		return nil, err
	}
	for _, dir := range []string{planDir(p.ID) + "files/", doneDir(p.ID), failedDir(p.ID)} {
		if err := removePrefix(ctx, store, dir); err != nil {
			o.Log.Warn("staged files of a committed plan left behind; the next plan removes them", logkey.Plan, p.ID, logkey.Error, err)
			break
		}
	}
	o.Log.Info("distributed load committed", logkey.Plan, p.ID, logkey.Tables, c.Tables, logkey.Files, c.Files,
		logkey.Rows, c.Rows, logkey.Duration, time.Since(start).Round(time.Millisecond))
	return results, nil
}

// readAllDone reads every unit's done record, indexed by unit number - 1.
func readAllDone(ctx context.Context, store sink.Store, p *Plan) ([]*UnitDone, error) {
	done := make([]*UnitDone, len(p.Units))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, u := range p.Units {
		g.Go(func() error {
			d, err := readDone(gctx, store, p.ID, u.N)
			if err == nil && d == nil {
				err = fmt.Errorf("plan %s: unit %d has no done record", p.ID, u.N)
			}
			done[i] = d
			return err
		})
	}
	return done, g.Wait()
}

// publishTable replaces table i's LOAD files by its units' staged files,
// numbered from 1 in plan order, or one empty file when they hold no row.
func publishTable(ctx context.Context, store sink.Store, p *Plan, i int, job Job, done []*UnitDone, o PlanOptions) (Result, error) {
	t := job.Table
	res := Result{Table: t.String(), Nulled: map[string]int64{}, Flattened: map[string]int64{}}
	var staged []string
	for _, u := range p.unitsOf(i) {
		d := done[u.N-1]
		for _, f := range d.Files {
			staged = append(staged, f.Key)
		}
		res.Rows += d.Rows
		res.Bytes += d.Bytes
		for k, v := range d.Nulled {
			res.Nulled[k] += v
		}
		for k, v := range d.Flattened {
			res.Flattened[k] += v
		}
	}
	// Any LOAD file there is of an earlier load (or of this commit, run
	// before): none may stay beside this load's.
	if err := removeLoadFiles(ctx, store, job); err != nil {
		return res, err
	}
	if len(staged) == 0 {
		res.Files = 1
		return res, putEmpty(ctx, store, job, o)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(commitCopies)
	for k, key := range staged {
		g.Go(func() error {
			dst := sink.LoadKey(t.Schema, t.Name, k+1)
			return withRetry(gctx, o.Log, []any{logkey.Table, t.String(), logkey.Plan, p.ID}, func() error {
				if err := sink.Copy(gctx, store, key, dst); err != nil {
					return fmt.Errorf("copy %s to %s: %w", key, dst, err)
				}
				return nil
			})
		})
	}
	if err := g.Wait(); err != nil {
		return res, err
	}
	res.Files = len(staged)
	logLoaded(o.Log, res, logkey.Chunks, p.Tables[i].Units)
	return res, nil
}

// putEmpty writes the one empty LOAD file of a table without rows, so its
// folder and schema exist for readers.
func putEmpty(ctx context.Context, store sink.Store, job Job, o PlanOptions) error {
	return withRetry(ctx, o.Log, []any{logkey.Table, job.Table.String(), logkey.Chunk, "empty file"}, func() error {
		e := &chunkOutput{job: job, o: o.Options}
		defer e.remove()
		if err := e.open(); err != nil {
			return err
		}
		if err := e.seal(); err != nil {
			return err
		}
		return putFile(ctx, store, sink.LoadKey(job.Table.Schema, job.Table.Name, 1), e.files[0].path)
	})
}
