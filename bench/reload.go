package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// reloadResult is phase E: an online reload of the bench table while the
// daemon streams and updates hit the table.
type reloadResult struct {
	Rows   int64
	Copy   loadRun       // psql's text COPY of the same table, same run
	Wall   time.Duration // from the request to the reload's completion
	Chunks int
	// LongestXact is the oldest transaction seen open on the database
	// during the reload (pg_stat_activity.xact_start), the monitor's own
	// left out.
	LongestXact time.Duration
	// MaxLag is the largest slot lag seen during it:
	// pg_current_wal_lsn() - confirmed_flush_lsn.
	MaxLag  int64
	Updates int64 // update transactions committed during it
	Rate    int   // updates per second asked for
	RSS     int64 // the daemon's peak RSS, start to exit (full load included)
}

// runReload is phase E: `cdc2s3 run` streams the bench table into a local
// destination, then `cdc2s3 reload` reloads it while single-row updates
// hit it at BENCH_RELOAD_UPDATE_RATE per second; a monitor samples the
// longest open transaction and the slot's lag every 100 ms. The baseline
// is psql's COPY of the same table in the same run.
func (b *bench) runReload(ctx context.Context) (*reloadResult, error) {
	const db, slot = "bench_reload", "bench_reload"
	r := &reloadResult{Rows: b.cfg.ReloadRows, Rate: b.cfg.ReloadUpdateRate}
	b.say("E. reload: filling %s rows", thousands(r.Rows))
	c, err := b.pg.createDB(ctx, db)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	if _, err := c.Exec(ctx, "INSERT INTO public.items "+rowsSQL("1", strconv.FormatInt(r.Rows, 10))); err != nil {
		return nil, fmt.Errorf("fill: %w", err)
	}
	for _, q := range []string{"VACUUM (FREEZE, ANALYZE) public.items", "CHECKPOINT"} {
		if _, err := c.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("%s: %w", q, err)
		}
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	sql := "COPY public.items TO STDOUT"
	u, walls, err := b.measureBest(ctx, "COPY", func() (usage, error) {
		return runProc(ctx, "psql COPY", b.logPath("reload-copy"), nil, devnull, b.psql, "-X", "-q", "-d", b.pg.DSN(db), "-c", sql)
	})
	if err != nil {
		return nil, err
	}
	r.Copy = loadRun{Name: `psql -c "COPY ... TO STDOUT" > /dev/null`, Rows: r.Rows, Usage: u, Walls: walls}
	b.say("   %-28s %7.2fs", "COPY", u.Wall.Seconds())

	d := localDest(filepath.Join(b.cfg.Work, "reload-local"))
	os.RemoveAll(d.dir)
	defer os.RemoveAll(d.dir)
	p, err := b.daemon("reload-daemon", db, slot, d, time.Second)
	if err != nil {
		return nil, err
	}
	defer p.kill()
	if err := p.waitLog(ctx, "msg=streaming", 5*time.Minute); err != nil {
		return nil, err
	}
	b.waitQuiet(ctx, "the reload")

	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	var updates atomic.Int64
	var loadErr, monErr error
	wg.Add(2)
	go func() { // the updates
		defer wg.Done()
		uc, err := b.pg.connect(lctx, db)
		if err != nil {
			loadErr = err
			return
		}
		defer uc.Close(context.WithoutCancel(lctx))
		tick := time.NewTicker(time.Second / time.Duration(max(r.Rate, 1)))
		defer tick.Stop()
		for i := int64(0); ; i++ {
			select {
			case <-lctx.Done():
				return
			case <-tick.C:
			}
			if _, err := uc.Exec(lctx, "UPDATE public.items SET qty = qty + 1 WHERE id = $1", 1+(i*7919)%r.Rows); err != nil {
				if lctx.Err() == nil {
					loadErr = err
				}
				return
			}
			updates.Add(1)
		}
	}()
	var longest, lag atomic.Int64
	go func() { // the monitor
		defer wg.Done()
		mc, err := b.pg.connect(lctx, db)
		if err != nil {
			monErr = err
			return
		}
		defer mc.Close(context.WithoutCancel(lctx))
		for {
			select {
			case <-lctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			var xact float64
			var l *int64
			err := mc.QueryRow(lctx, `
				SELECT coalesce((SELECT max(extract(epoch FROM clock_timestamp() - xact_start))::float8 FROM pg_stat_activity
				                 WHERE datname = current_database() AND pid <> pg_backend_pid()
				                   AND backend_type = 'client backend' AND xact_start IS NOT NULL), 0),
				       (SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::int8 FROM pg_replication_slots WHERE slot_name = $1)`, slot).Scan(&xact, &l)
			if err != nil {
				if lctx.Err() == nil {
					monErr = err
				}
				return
			}
			if us := int64(xact * 1e6); us > longest.Load() {
				longest.Store(us)
			}
			if l != nil && *l > lag.Load() {
				lag.Store(*l)
			}
		}
	}()
	start := time.Now()
	if _, err := runProc(ctx, "cdc2s3 reload", b.logPath("reload-request"), nil, nil,
		b.cfg.CDC2S3, "reload", "--dest", d.URL, "--tables", "public.items"); err != nil {
		return nil, err
	}
	werr := p.waitLog(ctx, `msg="reload complete"`, 30*time.Minute)
	r.Wall = time.Since(start)
	before := updates.Load()
	stopLoad()
	wg.Wait()
	if werr != nil {
		return nil, werr
	}
	if loadErr != nil || monErr != nil {
		return nil, fmt.Errorf("during the reload: updates: %v; monitor: %v", loadErr, monErr)
	}
	r.Updates, r.LongestXact, r.MaxLag = before, time.Duration(longest.Load())*time.Microsecond, lag.Load()
	if err := p.stop(ctx, syscall.SIGTERM, time.Minute); err != nil {
		return nil, err
	}
	r.RSS = p.usage.MaxRSS
	if log, err := os.ReadFile(p.logPath); err == nil {
		r.Chunks = strings.Count(string(log), `msg="reload chunk"`)
	}
	b.say("   %-28s %7.2fs  %.2fx COPY; %d chunks; longest transaction %s; slot lag at most %s; %d updates",
		"cdc2s3 reload", r.Wall.Seconds(), r.Wall.Seconds()/r.Copy.Usage.Wall.Seconds(), r.Chunks,
		r.LongestXact.Round(time.Millisecond), bytesIEC(r.MaxLag), r.Updates)
	c.Close(ctx)
	if err := b.pg.dropDB(ctx, db); err != nil {
		return nil, err
	}
	return r, nil
}

// reloadTable renders phase E.
func (r *reloadResult) table() *table {
	t := &table{head: []string{"run", "seconds", "rows/s", "× COPY", "chunks", "longest transaction", "slot lag at most", "updates during it", "daemon peak RSS"}}
	t.add("psql COPY > /dev/null", secsOf(r.Copy.Usage), rate(r.Rows, r.Copy.Usage.Wall), "1.00", "-", "-", "-", "-", "-")
	t.add("cdc2s3 reload (request to completion)", secs(r.Wall), rate(r.Rows, r.Wall), ratio(r.Wall, r.Copy.Usage.Wall), strconv.Itoa(r.Chunks),
		ms(r.LongestXact), bytesIEC(r.MaxLag), thousands(r.Updates), bytesIEC(r.RSS))
	return t
}
