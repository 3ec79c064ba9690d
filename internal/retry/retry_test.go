package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	p := Policy{Base: time.Second, Max: 30 * time.Second}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second, 6: 30 * time.Second, 100: 30 * time.Second} {
		if got := p.Delay(n); got != want {
			t.Errorf("Delay(%d) = %s, want %s", n, got, want)
		}
	}
	p.Jitter = 0.25
	for range 100 {
		if d := p.Delay(3); d < 4*time.Second || d > 5*time.Second {
			t.Fatalf("Delay(3) with 25%% jitter = %s, want 4s..5s", d)
		}
	}
}

func TestDo(t *testing.T) {
	boom, fatal := errors.New("boom"), errors.New("fatal")
	var retried []int
	p := Policy{Base: time.Millisecond, Retries: 3, Permanent: func(err error) bool { return errors.Is(err, fatal) },
		OnRetry: func(attempt int, _ time.Duration, _ error) { retried = append(retried, attempt) }}

	calls := 0
	err := p.Do(context.Background(), func() error { calls++; return boom })
	if !errors.Is(err, boom) || calls != 4 || len(retried) != 3 {
		t.Errorf("always failing: err %v after %d calls, %d retries told; want boom after 4 calls, 3 told", err, calls, len(retried))
	}
	calls = 0
	if err := p.Do(context.Background(), func() error { calls++; return fatal }); !errors.Is(err, fatal) || calls != 1 {
		t.Errorf("permanent error: %v after %d calls, want 1 call", err, calls)
	}
	calls = 0
	if err := p.Do(context.Background(), func() error {
		if calls++; calls < 3 {
			return boom
		}
		return nil
	}); err != nil || calls != 3 {
		t.Errorf("passing failure: %v after %d calls, want nil after 3", err, calls)
	}

	// Without a limit, only the context ends it.
	ctx, cancel := context.WithCancel(context.Background())
	calls = 0
	err = Policy{Base: time.Millisecond, Max: 2 * time.Millisecond}.Do(ctx, func() error {
		if calls++; calls == 50 {
			cancel()
		}
		return boom
	})
	if !errors.Is(err, boom) || calls != 50 {
		t.Errorf("unlimited: %v after %d calls, want boom after 50", err, calls)
	}
}
