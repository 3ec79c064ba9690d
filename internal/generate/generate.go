// Package generate is the bundled data generator behind "cdc2s3 generate".
// It creates a small demo schema in PostgreSQL and keeps a realistic mix of
// inserts, updates and deletes running against it, so that snapshots and
// logical replication have something to carry: enums, arrays, numerics of
// fixed and unconstrained scale, a TOASTed jsonb column that most updates
// leave untouched, a composite primary key and a partitioned table.
package generate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/cdc2s3/cdc2s3/internal/logkey"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Defaults for Options.
const (
	// DefaultRate is the number of operations per second.
	DefaultRate = 50
	// DefaultBatch is the largest number of operations in one transaction.
	DefaultBatch = 5
)

const (
	// progressEvery is how often Run logs its counters.
	progressEvery = 5 * time.Second
	// txnTimeout bounds a transaction, which runs to completion even after
	// the caller's context is cancelled.
	txnTimeout = 30 * time.Second
	// maxBurst is how far behind schedule the pacer may fall before it stops
	// trying to catch up.
	maxBurst = time.Second
	// maxAttempts bounds retries of a transaction that hit a deadlock or a
	// serialization failure (possible when generators run concurrently).
	maxAttempts = 3
)

// Options configures Run. The zero value runs at DefaultRate until the
// context is cancelled.
type Options struct {
	// Rate is the number of operations per second; DefaultRate if zero.
	// An operation is one logical change, e.g. an order with its lines.
	Rate int
	// Duration stops Run after this long; zero runs until the context is
	// cancelled.
	Duration time.Duration
	// Seed makes the sequence of operations deterministic when non-zero.
	Seed int64
	// Batch is the largest number of operations per transaction; each
	// transaction holds between 1 and Batch. DefaultBatch if zero.
	Batch int
}

// Stats counts committed changes. Inserts, Updates and Deletes count rows,
// so over a run the demo tables grow by Inserts minus Deletes rows.
type Stats struct {
	// Inserts is the number of rows inserted.
	Inserts int64
	// Updates is the number of rows updated.
	Updates int64
	// Deletes is the number of rows deleted.
	Deletes int64
	// Txns is the number of transactions committed.
	Txns int64
}

func (s *Stats) add(o Stats) {
	s.Inserts += o.Inserts
	s.Updates += o.Updates
	s.Deletes += o.Deletes
	s.Txns += o.Txns
}

// Run connects to dsn, runs Setup, and then writes to the demo schema at
// o.Rate operations per second until o.Duration has passed or ctx is
// cancelled. On cancellation it finishes the current transaction and returns
// nil. The Stats returned count what was committed, also on error.
func Run(ctx context.Context, dsn string, o Options, log *slog.Logger) (Stats, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o, err := o.withDefaults()
	if err != nil {
		return Stats{}, err
	}

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return Stats{}, stopped(ctx, fmt.Errorf("connect: %w", err))
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if err := Setup(ctx, conn); err != nil {
		return Stats{}, stopped(ctx, err)
	}
	g := newGenerator(o.Seed)
	if err := g.load(ctx, conn); err != nil {
		return Stats{}, stopped(ctx, err)
	}
	log.Info("generate started", logkey.Target, o.Rate, logkey.Seed, o.Seed, logkey.Duration, o.Duration)

	// wait ends when the caller cancels or the duration has passed;
	// transactions run on work, which is never cancelled.
	wait, cancel := ctx, context.CancelFunc(func() {})
	if o.Duration > 0 {
		wait, cancel = context.WithTimeout(ctx, o.Duration)
	}
	defer cancel()
	return g.drive(wait, context.WithoutCancel(ctx), conn, o, log)
}

// withDefaults checks o and fills in the defaults.
func (o Options) withDefaults() (Options, error) {
	if o.Rate < 0 || o.Batch < 0 || o.Duration < 0 {
		return o, fmt.Errorf("generate: rate, batch and duration must not be negative")
	}
	if o.Rate == 0 {
		o.Rate = DefaultRate
	}
	if o.Batch == 0 {
		o.Batch = DefaultBatch
	}
	if o.Seed == 0 {
		o.Seed = time.Now().UnixNano()
	}
	return o, nil
}

// drive runs paced transactions on work until wait is done, logging
// progress.
func (g *generator) drive(wait, work context.Context, conn *pgx.Conn, o Options, log *slog.Logger) (Stats, error) {
	var (
		st        Stats
		ops       int64 // operations committed
		start     = time.Now()
		p         = pacer{rate: float64(o.Rate), start: start}
		lastLog   = start
		timer     = time.NewTimer(0)
		logCounts = func(msg string) {
			log.Info(msg, logkey.Txns, st.Txns, logkey.Inserts, st.Inserts,
				logkey.Updates, st.Updates, logkey.Deletes, st.Deletes,
				logkey.Rate, math.Round(float64(ops)/time.Since(start).Seconds()*10)/10)
		}
	)
	defer timer.Stop()
	for {
		n := 1 + g.rng.IntN(o.Batch)
		timer.Reset(p.reserve(n, time.Now()))
		select {
		case <-wait.Done():
			logCounts("generate stopped")
			return st, nil
		case <-timer.C:
		}
		ts, err := g.txn(work, conn, g.plan(n))
		if err != nil {
			return st, err
		}
		st.add(ts)
		ops += int64(n)
		if wait.Err() != nil {
			logCounts("generate stopped")
			return st, nil
		}
		if time.Since(lastLog) >= progressEvery {
			lastLog = time.Now()
			logCounts("generate progress")
		}
	}
}

// stopped turns an error caused by the caller's cancellation into a clean stop.
func stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// txn runs the operations in one transaction, retrying on deadlock or
// serialization failure. It returns the counts only if it committed.
func (g *generator) txn(ctx context.Context, conn *pgx.Conn, ops []op) (Stats, error) {
	ctx, cancel := context.WithTimeout(ctx, txnTimeout)
	defer cancel()
	var err error
	for range maxAttempts {
		st := Stats{Txns: 1}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			for _, o := range ops {
				if err := o.exec(ctx, tx, &st); err != nil {
					return fmt.Errorf("%s: %w", o.kind, err)
				}
			}
			return nil
		})
		if err == nil {
			return st, nil
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || (pgErr.Code != "40001" && pgErr.Code != "40P01") {
			break
		}
	}
	return Stats{}, fmt.Errorf("transaction: %w", err)
}

// pacer is a token bucket: tokens accrue at rate per second from start, and
// at most maxBurst worth accumulate while the generator is behind.
type pacer struct {
	rate  float64
	start time.Time
	n     int64 // tokens taken
}

// reserve takes n tokens and returns how long to wait until they are due.
func (p *pacer) reserve(n int, now time.Time) time.Duration {
	due := func() time.Time {
		return p.start.Add(time.Duration(float64(p.n) / p.rate * float64(time.Second)))
	}
	if behind := now.Sub(due()); behind > maxBurst {
		p.start = p.start.Add(behind - maxBurst)
	}
	p.n += int64(n)
	return max(due().Sub(now), 0)
}
