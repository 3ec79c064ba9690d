package pipeline

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/cdc2s3/cdc2s3/internal/logkey"
	"github.com/cdc2s3/cdc2s3/internal/retry"
	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/jackc/pgx/v5/pgconn"
)

// Run runs the daemon until stop is done (graceful: finish the current
// batch, upload, acknowledge, return nil) or ctx is cancelled (abort at
// once; a restart continues from the last acknowledged position).
//
// A start with bad settings fails at once. Once streaming, a lost
// connection (a PostgreSQL restart or failover, a network cut) is retried
// with backoff until it works again or the daemon is stopped: the new
// session resumes from the slot, and replayed rows already in the
// destination are skipped.
func Run(ctx, stop context.Context, cfg Config, store sink.Store, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	states := lsnstore.New(store)

	// One writer per destination: wait for the lease (a deploy may start
	// this process before the old one has gone), hold it while running,
	// and stop at once if another process takes it.
	lease := lsnstore.NewLease(store, cfg.LeaseTTL)
	waitCtx, cancelWait := mergeDone(ctx, stop)
	err := lease.Acquire(waitCtx, func(h lsnstore.LeaseRecord) {
		log.Warn("another cdc2s3 holds this destination; waiting for its lease", logkey.Holder, h.Owner, logkey.Expires, h.ExpiresAt)
	})
	cancelWait()
	if err != nil {
		if stop.Err() != nil && ctx.Err() == nil {
			return nil
		}
		return err
	}
	defer func() {
		// Best effort and bounded: a stalled store must not hold up the exit
		// (the lease then expires by itself).
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if _, wrote, err := states.Load(rctx); err == nil && !wrote {
			lease.ReleaseUnused(rctx) // a start that failed leaves the destination as it was
			return
		}
		lease.Release(rctx)
	}()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		if err := lease.Hold(ctx); err != nil {
			log.Error("stopping: lost the destination's lease", logkey.Error, err)
			cancel(err)
		}
	}()
	// Every write from here on checks the lease first (Lease.Check): a
	// process paused past its lease's expiry finds out before writing.
	fenced := lease.Fence(store)
	err = run(ctx, stop, cfg, fenced, lsnstore.New(fenced), log)
	if ctx.Err() != nil && context.Cause(ctx) != ctx.Err() {
		return context.Cause(ctx)
	}
	return err
}

// run is Run once the lease is held.
func run(ctx, stop context.Context, cfg Config, store sink.Store, states *lsnstore.Store, log *slog.Logger) error {
	s, err := open(ctx, cfg, store, states, log)
	for attempt := 0; ; attempt++ {
		if err != nil {
			if attempt == 0 || !transient(err) || stop.Err() != nil || ctx.Err() != nil {
				return err
			}
		} else {
			err = newStream(cfg, s.conn, s.repl, store, states, s.state, log).run(ctx, stop)
			s.close(ctx)
			if err == nil || !transient(err) || ctx.Err() != nil {
				return err
			}
			if stop.Err() != nil {
				return nil // stopping anyway: what was uploaded is acknowledged at the next start
			}
			attempt = 1
			cfg.Metrics.reconnects.Inc()
		}
		delay := reconnectRetry.Delay(attempt)
		log.Warn("connection to PostgreSQL lost; reconnecting", logkey.Error, err, logkey.Delay, delay)
		select {
		case <-time.After(delay):
		case <-stop.Done():
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
		s, err = open(ctx, cfg, store, states, log)
	}
}

// reconnectRetry is the wait before reconnect attempt n (1-based):
// exponential from 1 s, capped at 30 s, with up to 25% jitter so that many
// daemons restarted together do not reconnect in step.
var reconnectRetry = retry.Policy{Base: time.Second, Max: 30 * time.Second, Jitter: 0.25}

// transient reports whether err is a lost or refused connection, which a
// reconnect may cure, as opposed to a configuration or data error.
func transient(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// 08: connection exception; 57P01-57P05: shutdown, crash,
		// cannot connect now, idle timeouts; 53300: too many connections.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P") || pgErr.Code == "53300"
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "unexpected EOF") || strings.Contains(msg, "broken pipe")
}

// mergeDone returns a context done when either a or b is.
func mergeDone(a, b context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(a)
	stop := context.AfterFunc(b, cancel)
	return ctx, func() { stop(); cancel() }
}
