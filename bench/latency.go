package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// pollInterval is how often the destination is listed for new files.
const pollInterval = 50 * time.Millisecond

// latencyRun is phase C for one destination.
type latencyRun struct {
	Kind     string
	Flush    time.Duration
	Duration time.Duration // of the load
	Rate     float64       // changes per second achieved
	Changes  int64         // committed by the generator
	Seen     int64         // rows seen in new CDC files
	Files    int
	P50      time.Duration
	P90      time.Duration
	P99      time.Duration
	Max      time.Duration
	Usage    usage // cdc2s3, start to exit
}

// runLatency is phase C: cdc2s3 with --flush-interval under a steady
// load, while the destination is listed every 50ms; each row of a new CDC
// file counts the time from its commit (_cdc_commit_ts) to the listing that
// first showed the file.
func (b *bench) runLatency(ctx context.Context, d *dest) (*latencyRun, error) {
	db := "bench_latency_" + d.Kind
	r := &latencyRun{Kind: d.Kind, Flush: b.cfg.LatencyFlush}
	b.say("C. latency into %s: %d changes/s for %s, --flush-interval %s", d.Kind, b.cfg.LatencyRate, b.cfg.LatencyDuration, r.Flush)
	c, err := b.pg.createDB(ctx, db)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	b.waitQuiet(ctx, "the latency test")
	p, err := b.daemon("latency-"+d.Kind, db, "bench_latency_"+d.Kind, d, r.Flush)
	if err != nil {
		return nil, err
	}
	defer p.kill()
	if err := p.waitLog(ctx, "msg=streaming", 2*time.Minute); err != nil {
		return nil, err
	}

	pctx, stopPoll := context.WithCancel(ctx)
	poll := &poller{d: d}
	pollDone := make(chan error, 1)
	go func() { pollDone <- poll.run(pctx) }()

	start := time.Now()
	r.Changes, err = generate(ctx, c, b.cfg.LatencyRate, b.cfg.LatencyTxnRows, b.cfg.LatencyDuration)
	r.Duration = time.Since(start)
	if err != nil {
		stopPoll()
		return nil, err
	}
	r.Rate = float64(r.Changes) / r.Duration.Seconds()
	// Wait for the last flush to show up.
	for deadline := time.Now().Add(r.Flush + 30*time.Second); poll.count() < r.Changes && time.Now().Before(deadline); {
		if p.exited() {
			break
		}
		time.Sleep(pollInterval)
	}
	stopPoll()
	if err := <-pollDone; err != nil {
		return nil, err
	}
	if err := p.stop(ctx, syscall.SIGTERM, time.Minute); err != nil {
		return nil, err
	}
	r.Usage = p.usage
	lat := poll.latencies()
	r.Seen, r.Files = int64(len(lat)), poll.files
	if r.Seen < r.Changes {
		b.warn("latency into %s: saw %d of %d changes in CDC files", d.Kind, r.Seen, r.Changes)
	}
	if len(lat) == 0 {
		return nil, fmt.Errorf("latency into %s: no CDC file appeared%s", d.Kind, p.logTail())
	}
	r.P50, r.P90, r.P99, r.Max = percentile(lat, 50), percentile(lat, 90), percentile(lat, 99), lat[len(lat)-1]
	b.say("   %s: p50 %s  p99 %s  max %s over %d rows in %d files (%.0f changes/s achieved)",
		d.Kind, ms(r.P50), ms(r.P99), ms(r.Max), r.Seen, r.Files, r.Rate)
	c.Close(ctx)
	if err := b.pg.dropDB(ctx, db); err != nil {
		return nil, err
	}
	return r, nil
}

// generate commits transactions of txnRows changes (about four fifths
// inserts of new rows, the rest updates of earlier ones) at rate changes
// per second for d, each transaction as one round trip. It returns the
// number of changes committed.
func generate(ctx context.Context, c *pgx.Conn, rate, txnRows int, d time.Duration) (int64, error) {
	interval := time.Duration(float64(time.Second) * float64(txnRows) / float64(rate))
	rng := rand.New(rand.NewPCG(1, 2))
	ins := "INSERT INTO public.items " + rowsSQL("$1", "$2")
	const upd = "UPDATE public.items SET qty = qty + 1, amount = amount + 0.01 WHERE id = ANY($1)"
	var last, changes int64
	start := time.Now()
	for k := 0; ; k++ {
		next := start.Add(time.Duration(k) * interval)
		if next.Sub(start) >= d {
			return changes, nil
		}
		if wait := time.Until(next); wait > 0 {
			select {
			case <-ctx.Done():
				return changes, ctx.Err()
			case <-time.After(wait):
			}
		}
		nUpd := int64(txnRows / 5)
		if last < 2 {
			nUpd = 0
		}
		nIns := int64(txnRows) - nUpd
		batch := &pgx.Batch{}
		batch.Queue(ins, last+1, last+nIns)
		if nUpd > 0 {
			ids := make([]int64, 0, nUpd)
			first := 1 + rng.Int64N(last)
			for i := int64(0); i < nUpd; i++ {
				ids = append(ids, 1+(first-1+i)%last) // distinct while nUpd <= last
			}
			batch.Queue(upd, ids)
		}
		// One Sync for the whole batch: the statements commit as one
		// implicit transaction.
		if err := c.SendBatch(ctx, batch).Close(); err != nil {
			return changes, fmt.Errorf("load generator: %w", err)
		}
		last += nIns
		changes += nIns + nUpd
	}
}

// poller lists a destination every pollInterval and records, for each
// row of each new CDC file, the time from its commit to the listing that
// first showed the file.
type poller struct {
	d     *dest
	mu    sync.Mutex
	seen  map[string]bool
	lat   []time.Duration
	files int
}

func (p *poller) run(ctx context.Context) error {
	p.seen = map[string]bool{}
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		files, err := p.d.files(ctx, "CDC-")
		visible := time.Now()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		for _, f := range files {
			if p.seen[f.Key] {
				continue
			}
			p.seen[f.Key] = true
			ts, err := p.d.commitTimes(ctx, f)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", f.Key, err)
			}
			p.mu.Lock()
			for _, t := range ts {
				p.lat = append(p.lat, visible.Sub(t))
			}
			p.files++
			p.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (p *poller) count() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int64(len(p.lat))
}

// latencies returns the latencies seen, sorted.
func (p *poller) latencies() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := slices.Clone(p.lat)
	slices.Sort(out)
	return out
}

// percentile returns the q-th percentile of sorted values, by the
// nearest-rank method.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q/100*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}
