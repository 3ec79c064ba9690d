//go:build soak

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/cdc2s3/cdc2s3/internal/testenv"
)

// TestSoak runs the daemon for CDC2S3_SOAK_DURATION (default 5m) under a
// steady generator load while, at random, it is killed (SIGKILL and at
// fault points), stopped with SIGTERM, PostgreSQL is restarted, and S3
// misbehaves; then it checks the bucket against the source. Run it with
// `make soak` (SOAK=10m make soak).
func TestSoak(t *testing.T) {
	dur := 5 * time.Minute
	if v := os.Getenv("CDC2S3_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("CDC2S3_SOAK_DURATION: %v", err)
		}
		dur = d
	}
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	dbName := conn.Config().Database
	if err := s3srv.CreateBucket(ctx, "soak"); err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewFaultProxy(t, s3srv.Endpoint())
	args := []string{"run", "--source", dsn, "--dest", "s3://soak/s", "--slot", "soak", "--flush-interval", "1s", "--status-interval", "1s", "--lease-ttl", "5s"}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	counts := map[string]int{}
	began := time.Now()
	gen := start(t, "generate", "--source", dsn, "--rate", "300")
	time.Sleep(2 * time.Second)
	for time.Since(began) < dur {
		var env []string
		event := []string{"kill", "kill", "after-upload", "after-checkpoint", "sigterm", "s3-faults", "pg-restart"}[rng.IntN(7)]
		switch event {
		case "after-upload", "after-checkpoint":
			env = []string{fmt.Sprintf("CDC2S3_FAULTPOINT=%s:%d", event, 1+rng.IntN(5))}
		case "s3-faults":
			proxy.SetFaults(testenv.Faults{SlowDown: 0.1, Reset: 0.05, Drop: 0.05, Delay: 0.2, Latency: 50 * time.Millisecond, Seed: rng.Uint64()})
		}
		d := startEnv(t, append(proxy.Env(s3srv), env...), args...)
		select {
		case <-d.done:
			d.done <- nil
		case <-time.After(time.Duration(2+rng.IntN(10)) * time.Second):
		}
		switch event {
		case "sigterm", "s3-faults":
			d.stop(t)
		case "pg-restart":
			if err := pg.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Second)
			d.stop(t)
			// The generator loses its connection on a restart; start a new one.
			gen.kill()
			gen = start(t, "generate", "--source", dsn, "--rate", "300")
		default:
			if done, _ := d.exited(); !done {
				d.kill()
			}
		}
		proxy.SetFaults(testenv.Faults{})
		counts[event]++
	}
	gen.stop(t)
	c, err := pg.Connect(ctx, dbName)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	d := startEnv(t, proxy.Env(s3srv), args...)
	waitConfirmed(t, c, "soak", currentLSN(t, c), d, 5*time.Minute)
	d.stop(t)
	t.Logf("soak: %s, events %v, proxy %+v", time.Since(began).Round(time.Second), counts, proxy.Counts())
	out := t.TempDir()
	download(t, "soak", "s/", out)
	compareTables(t, c, out, demoTables)
	checkNoDuplicates(t, out, demoTables)
}
