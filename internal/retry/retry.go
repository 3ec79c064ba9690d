// Package retry runs an operation again after failures that may pass, with
// capped exponential backoff and jitter: the one retry loop of cdc2s3 (the
// daemon's uploads and reconnects, the full load's chunks).
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy says how long to wait between attempts and when to give up.
type Policy struct {
	// Base is the wait before the first retry; each later wait doubles,
	// up to Max.
	Base, Max time.Duration
	// Jitter adds up to this fraction of the wait at random (0.25: up to
	// a quarter more), so that many processes failing together do not
	// retry in step.
	Jitter float64
	// Retries is how many times to try again after the first attempt;
	// 0 means without limit (until the operation succeeds, fails
	// permanently or the context ends).
	Retries int
	// Permanent reports an error that no retry can fix; nil: none is.
	Permanent func(error) bool
	// OnRetry, when set, is told of each failure that will be retried,
	// before the wait (to log it or count it).
	OnRetry func(attempt int, wait time.Duration, err error)
}

// Delay returns the wait before retry n (1-based).
func (p Policy) Delay(n int) time.Duration {
	d := p.Base << min(max(n-1, 0), 30)
	if d <= 0 || (p.Max > 0 && d > p.Max) {
		d = p.Max
	}
	if p.Jitter > 0 && d > 0 {
		d += time.Duration(rand.Int64N(int64(float64(d)*p.Jitter) + 1))
	}
	return d
}

// Do runs fn until it returns nil, an error Permanent accepts, the retries
// are used up, or ctx ends; it returns fn's last error (nil on success).
func (p Policy) Do(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || ctx.Err() != nil || (p.Retries > 0 && attempt > p.Retries) || (p.Permanent != nil && p.Permanent(err)) {
			return err
		}
		wait := p.Delay(attempt)
		if p.OnRetry != nil {
			p.OnRetry(attempt, wait, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}
