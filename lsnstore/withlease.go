package lsnstore

import (
	"context"
	"time"

	"github.com/cdc2s3/cdc2s3/sink"
)

// WithLease runs fn as the destination's one writer: it takes the lease
// (waiting while another process holds it, calling waiting once with the
// holder), renews it while fn runs, hands fn a store whose every write
// checks it (Lease.Fence), and releases it when fn returns. When the lease
// is lost, fn's context is cancelled and the error is the loss
// (ErrLeaseLost). A coordinator of a distributed load holds the lease this
// way, so a cdc2s3 run started meanwhile waits for it.
func WithLease(ctx context.Context, s sink.Store, ttl time.Duration, waiting func(LeaseRecord), fn func(ctx context.Context, fenced sink.Store) error) error {
	l := NewLease(s, ttl)
	if err := l.Acquire(ctx, waiting); err != nil {
		return err
	}
	defer func() {
		// Bounded: a stalled store must not hold up the exit (the lease
		// then expires by itself).
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		l.Release(rctx)
	}()
	hctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		if err := l.Hold(hctx); err != nil {
			cancel(err)
		}
	}()
	err := fn(hctx, l.Fence(s))
	if hctx.Err() != nil && context.Cause(hctx) != hctx.Err() {
		return context.Cause(hctx)
	}
	return err
}
