package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// loadRun is one full-load measurement.
type loadRun struct {
	Name    string
	Workers int // 0 for the COPY baseline
	// Compression is --compression when not the default (zstd).
	Compression string
	Rows        int64
	Usage       usage           // of the fastest run
	Walls       []time.Duration // every run's wall time, in order
	Output      int64           // bytes of LOAD files; 0 for COPY
	Files       int
}

// loadResult is phase A.
type loadResult struct {
	Rows       int64
	TableBytes int64 // pg_total_relation_size
	Fill       time.Duration
	Copy       loadRun // text COPY, the format cdc2s3's full load asks for
	CopyBinary loadRun // binary COPY: what the server can hand out at least cost, the limit
	Snapshots  []loadRun
	// Distributed are the multi-process loads (snapshot --plan, --unit).
	Distributed []distRun
}

var snapshotTotal = regexp.MustCompile(`(\d+) tables, (\d+) rows in`)

// runLoad is phase A: a full load of one table with `cdc2s3 snapshot` at
// several --snapshot-workers, against psql's COPY of the same table in
// text format (what cdc2s3 asks for) and in binary format (the limit).
func (b *bench) runLoad(ctx context.Context) (*loadResult, error) {
	const db = "bench_load"
	r := &loadResult{Rows: b.cfg.SnapshotRows}
	b.say("A. full load: filling %s rows", thousands(r.Rows))
	c, err := b.pg.createDB(ctx, db)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	start := time.Now()
	if _, err := c.Exec(ctx, "INSERT INTO public.items "+rowsSQL("1", strconv.FormatInt(r.Rows, 10))); err != nil {
		return nil, fmt.Errorf("fill: %w", err)
	}
	// Set hint bits and the visibility map now, so no measured reader
	// pays for them; then flush dirty pages.
	if _, err := c.Exec(ctx, "VACUUM (FREEZE, ANALYZE) public.items"); err != nil {
		return nil, fmt.Errorf("vacuum: %w", err)
	}
	if _, err := c.Exec(ctx, "CHECKPOINT"); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	r.Fill = time.Since(start)
	if err := c.QueryRow(ctx, "SELECT pg_total_relation_size('public.items')").Scan(&r.TableBytes); err != nil {
		return nil, err
	}
	b.say("   filled in %s: %s on disk", r.Fill.Round(time.Second), bytesIEC(r.TableBytes))

	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	copyArgs := func(sql string) []string { return []string{b.psql, "-X", "-q", "-d", b.pg.DSN(db), "-c", sql} }
	baselines := []struct {
		run  *loadRun
		tag  string
		name string
		sql  string
	}{
		{&r.Copy, "copy", "COPY", "COPY public.items TO STDOUT"},
		{&r.CopyBinary, "copy-binary", "COPY (FORMAT binary)", "COPY public.items TO STDOUT (FORMAT binary)"},
	}
	// One untimed pass brings the table into the page cache for everyone.
	if _, err := runProc(ctx, "psql COPY (warm-up)", b.logPath("copy-warmup"), nil, devnull, copyArgs(baselines[0].sql)...); err != nil {
		return nil, err
	}
	for _, c := range baselines {
		u, walls, err := b.measureBest(ctx, c.name, func() (usage, error) {
			return runProc(ctx, "psql "+c.name, b.logPath(c.tag), nil, devnull, copyArgs(c.sql)...)
		})
		if err != nil {
			return nil, err
		}
		*c.run = loadRun{Name: `psql -c "` + strings.Replace(c.sql, "public.items", "...", 1) + `" > /dev/null`, Rows: r.Rows, Usage: u, Walls: walls}
		b.say("   %-28s %7.2fs%s", c.name, u.Wall.Seconds(), runsOf(walls))
	}

	// Each --snapshot-workers value with the default compression (zstd),
	// then the first one with each other compression: how much of the
	// time is compression.
	type variant struct {
		workers     int
		compression string
	}
	var variants []variant
	for _, w := range b.cfg.SnapshotWorkers {
		variants = append(variants, variant{w, ""})
	}
	for _, comp := range b.cfg.SnapshotCompressions {
		variants = append(variants, variant{b.cfg.SnapshotWorkers[0], comp})
	}
	for i, v := range variants {
		w := v.workers
		tag := fmt.Sprintf("w%d", w)
		args := []string{b.cfg.CDC2S3, "snapshot", "--source", b.pg.DSN(db), "--snapshot-workers", strconv.Itoa(w), "--temp-dir", b.tempDir()}
		name := fmt.Sprintf("cdc2s3 snapshot --snapshot-workers %d", w)
		if v.compression != "" {
			tag += "-" + v.compression
			args = append(args, "--compression", v.compression)
			name += " --compression " + v.compression
		}
		dir := filepath.Join(b.cfg.Work, "load-"+tag)
		args = append(args, "--dest", dir)
		var out strings.Builder
		u, walls, err := b.measureBest(ctx, name, func() (usage, error) {
			os.RemoveAll(dir)
			out.Reset()
			p, err := startProc(name, b.logPath("snapshot-"+tag), nil, &out, args...)
			if err != nil {
				return usage{}, err
			}
			var perf *proc
			if b.cfg.Perf && i == 0 {
				perf = b.startPerf(p, "snapshot-"+tag)
			}
			err = p.wait(ctx, 0)
			if perf != nil {
				b.stopPerf(ctx, perf, "snapshot-"+tag)
			}
			return p.usage, err
		})
		if err != nil {
			return nil, err
		}
		run := loadRun{Name: name, Workers: w, Compression: v.compression, Usage: u, Walls: walls}
		if m := snapshotTotal.FindStringSubmatch(out.String()); m != nil {
			run.Rows, _ = strconv.ParseInt(m[2], 10, 64)
		}
		if run.Rows != r.Rows {
			return nil, fmt.Errorf("%s copied %d rows, want %d; it printed:\n%s", run.Name, run.Rows, r.Rows, out.String())
		}
		files, err := listFiles(filepath.Join(dir, "public", "items"), "LOAD")
		if err != nil {
			return nil, err
		}
		run.Files = len(files)
		for _, f := range files {
			run.Output += f.Size
		}
		r.Snapshots = append(r.Snapshots, run)
		b.say("   %-28s %7.2fs  %.2fx COPY, %.2fx binary COPY%s", strings.TrimPrefix(name, "cdc2s3 "), u.Wall.Seconds(),
			u.Wall.Seconds()/r.Copy.Usage.Wall.Seconds(), u.Wall.Seconds()/r.CopyBinary.Usage.Wall.Seconds(), runsOf(walls))
		os.RemoveAll(dir)
	}
	if len(b.cfg.DistWorkers) > 0 {
		if r.Distributed, err = b.runDistLoad(ctx, db, r.Rows); err != nil {
			return nil, fmt.Errorf("distributed: %w", err)
		}
	}
	c.Close(ctx)
	if err := b.pg.dropDB(ctx, db); err != nil {
		return nil, err
	}
	return r, nil
}

// fileInfo is one output file.
type fileInfo struct {
	Key  string
	Size int64
}

// listFiles lists a local table folder's Parquet files whose names start
// with prefix ("LOAD" or "CDC-"), in name order.
func listFiles(dir, prefix string) ([]fileInfo, error) {
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []fileInfo
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), prefix) || !strings.HasSuffix(e.Name(), ".parquet") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed since the listing
		}
		out = append(out, fileInfo{Key: filepath.Join(dir, e.Name()), Size: info.Size()})
	}
	return out, nil
}

// measureBest runs a measurement LoadRepeat times and returns the fastest
// run's usage with every run's wall time. The same rule applies to the
// baseline and to cdc2s3: on a shared machine the fastest of a few runs is
// the one least disturbed.
func (b *bench) measureBest(ctx context.Context, what string, fn func() (usage, error)) (usage, []time.Duration, error) {
	var best usage
	var walls []time.Duration
	for i := range b.cfg.LoadRepeat {
		u, err := b.measure(ctx, what, fn)
		if err != nil {
			return u, walls, err
		}
		walls = append(walls, u.Wall)
		if i == 0 || u.Wall < best.Wall {
			best = u
		}
	}
	return best, walls, nil
}

// runsOf lists the wall times of repeated runs for the progress lines.
func runsOf(walls []time.Duration) string {
	if len(walls) < 2 {
		return ""
	}
	return "  (runs: " + wallsOf(walls, ", ") + " s)"
}

// measure runs one measurement on a quiet machine: it waits for other load
// to stop, runs fn, and runs it again (twice at most) when other
// processes disturbed it. With BENCH_PERF the profiler itself is other
// load, so there are no repeats.
func (b *bench) measure(ctx context.Context, what string, fn func() (usage, error)) (usage, error) {
	for attempt := 1; ; attempt++ {
		b.waitQuiet(ctx, what)
		u, err := fn()
		if err != nil || !contended(u) || attempt == 2 || b.cfg.Perf {
			return u, err
		}
		b.say("   %s: other processes used %.1f CPU s during it; measuring again", what, u.Other.Seconds())
	}
}
