package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// distRun is one distributed full load: a coordinator process and worker
// processes, Workers at a time, each copying one unit and exiting.
type distRun struct {
	Workers int
	Units   int
	Rows    int64
	Wall    time.Duration   // coordinator start to its exit (commit included)
	Walls   []time.Duration // every run's
	Output  int64
	Files   int
	// UnitAvg is the mean wall time of one worker process: start, plan
	// read, snapshot import, copy, staging, record.
	UnitAvg time.Duration
}

var plannedUnits = regexp.MustCompile(`plan (\S+): (\d+) units`)

// runDistLoad measures `cdc2s3 snapshot --plan` with --unit processes on
// this machine, for each BENCH_DISTLOAD_WORKERS count, on phase A's table
// (the same process-per-unit shape as the Step Functions Map, without the
// task start-up of a container).
func (b *bench) runDistLoad(ctx context.Context, db string, rows int64) ([]distRun, error) {
	var out []distRun
	for _, w := range b.cfg.DistWorkers {
		var best distRun
		for i := range b.cfg.LoadRepeat {
			b.waitQuiet(ctx, "distributed load")
			r, err := b.distLoadOnce(ctx, db, w, i)
			if err != nil {
				return nil, err
			}
			if r.Rows != rows {
				return nil, fmt.Errorf("distributed load with %d workers copied %d rows, want %d", w, r.Rows, rows)
			}
			best.Walls = append(best.Walls, r.Wall)
			if i == 0 || r.Wall < best.Wall {
				r.Walls = best.Walls
				best = r
			}
		}
		best.Walls = append([]time.Duration(nil), best.Walls...)
		out = append(out, best)
		b.say("   %-28s %7.2fs  %d units, %.2fs per unit process%s", fmt.Sprintf("snapshot --plan, %d worker proc.", w),
			best.Wall.Seconds(), best.Units, best.UnitAvg.Seconds(), runsOf(best.Walls))
	}
	return out, nil
}

// distLoadOnce runs one coordinator and its units, workers at a time.
func (b *bench) distLoadOnce(ctx context.Context, db string, workers, attempt int) (distRun, error) {
	tag := fmt.Sprintf("dist-w%d-%d", workers, attempt)
	dir := filepath.Join(b.cfg.Work, "load-"+tag)
	defer os.RemoveAll(dir)
	common := []string{"--source", b.pg.DSN(db), "--dest", dir, "--temp-dir", b.tempDir()}
	planOut := &syncWriter{}
	start := time.Now()
	coord, err := startProc("coordinator", b.logPath(tag+"-coordinator"), nil, planOut,
		append([]string{b.cfg.CDC2S3, "snapshot", "--plan", "--snapshot-chunk-size", b.cfg.DistChunk}, common...)...)
	if err != nil {
		return distRun{}, err
	}
	var units int
	for units == 0 {
		if m := plannedUnits.FindStringSubmatch(planOut.String()); m != nil {
			units, _ = strconv.Atoi(m[2])
			break
		}
		if time.Since(start) > 5*time.Minute {
			return distRun{}, fmt.Errorf("the coordinator wrote no plan within 5 minutes: %s", b.logPath(tag+"-coordinator"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	unitTime, err := b.runUnitProcs(ctx, tag, units, workers, common)
	if err != nil {
		return distRun{}, err
	}
	if err := coord.wait(ctx, 10*time.Minute); err != nil {
		return distRun{}, fmt.Errorf("coordinator: %w", err)
	}
	r := distRun{Workers: workers, Units: units, Wall: time.Since(start), UnitAvg: unitTime / time.Duration(max(units, 1))}
	if m := snapshotTotal.FindStringSubmatch(planOut.String()); m != nil {
		r.Rows, _ = strconv.ParseInt(m[2], 10, 64)
	}
	files, err := listFiles(filepath.Join(dir, "public", "items"), "LOAD")
	if err != nil {
		return r, err
	}
	r.Files = len(files)
	for _, f := range files {
		r.Output += f.Size
	}
	return r, nil
}

// runUnitProcs runs units 1..n as worker processes, parallel at a time,
// and returns the sum of their wall times.
func (b *bench) runUnitProcs(ctx context.Context, tag string, n, parallel int, common []string) (time.Duration, error) {
	type done struct {
		wall time.Duration
		err  error
	}
	results := make(chan done, n)
	sem := make(chan struct{}, parallel)
	for u := 1; u <= n; u++ {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			t0 := time.Now()
			_, err := runProc(ctx, fmt.Sprintf("unit %d", u), b.logPath(fmt.Sprintf("%s-unit%d", tag, u)), nil, nil,
				append([]string{b.cfg.CDC2S3, "snapshot", "--unit", strconv.Itoa(u)}, common...)...)
			results <- done{time.Since(t0), err}
		}()
	}
	var sum time.Duration
	var first error
	for range n {
		d := <-results
		sum += d.wall
		if d.err != nil && first == nil {
			first = d.err
		}
	}
	return sum, first
}

// syncWriter is a strings.Builder a process's output goroutine writes
// while the bench reads it.
type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
