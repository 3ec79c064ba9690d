package e2e

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cdc2s3/cdc2s3/internal/oracle"
)

// demoTables are the tables of the bundled generator.
var demoTables = [][2]string{{"demo", "customers"}, {"demo", "orders"}, {"demo", "order_lines"}, {"demo", "events"}}

// TestLocalDestination runs the scripted workload through the daemon into
// a local directory and compares every table with the source.
func TestLocalDestination(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if err := Setup(ctx, conn); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	d := start(t, "run", "--source", dsn, "--dest", out, "--slot", "local", "--flush-interval", "1s", "--status-interval", "1s")
	waitConfirmed(t, conn, "local", 1, d, 2*time.Minute)
	if err := Changes(ctx, conn); err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, conn, "local", currentLSN(t, conn), d, 3*time.Minute)
	d.stop(t)
	compareTables(t, conn, out, Tables)
	checkNoDuplicates(t, out, Tables)
}

// TestS3WithGenerator runs the generator and the scripted workload together
// against the daemon writing to the S3 server over HTTP, then judges the
// bucket.
func TestS3WithGenerator(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if err := Setup(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if err := s3srv.CreateBucket(ctx, "e2e-gen"); err != nil {
		t.Fatal(err)
	}
	gen := start(t, "generate", "--source", dsn, "--rate", "200", "--seed", "7")
	time.Sleep(2 * time.Second) // the generator's schema and seed rows go into the full load
	d := start(t, "run", "--source", dsn, "--dest", "s3://e2e-gen/lake/v1", "--slot", "gen", "--flush-interval", "1s", "--status-interval", "1s")
	waitConfirmed(t, conn, "gen", 1, d, 2*time.Minute)
	if err := Changes(ctx, conn); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	gen.stop(t)
	waitConfirmed(t, conn, "gen", currentLSN(t, conn), d, 3*time.Minute)
	d.stop(t)

	out := t.TempDir()
	download(t, "e2e-gen", "lake/v1/", out)
	all := append(append([][2]string{}, Tables...), demoTables...)
	compareTables(t, conn, out, all)
	checkNoDuplicates(t, out, all)
}

// TestKillRestart kills the daemon with SIGKILL at random moments while the
// generator runs, restarts it each time, and checks that nothing is lost
// and nothing is written twice.
func TestKillRestart(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if err := s3srv.CreateBucket(ctx, "e2e-kill"); err != nil {
		t.Fatal(err)
	}
	gen := start(t, "generate", "--source", dsn, "--rate", "300", "--seed", "11")
	time.Sleep(2 * time.Second)
	args := []string{"run", "--source", dsn, "--dest", "s3://e2e-kill/k", "--slot", "kill", "--flush-interval", "500ms", "--status-interval", "500ms"}
	rng := rand.New(rand.NewPCG(42, 42))
	const kills = 6
	for i := 0; i < kills; i++ {
		d := start(t, args...)
		// Kill anywhere from mid-snapshot (first round) to mid-stream.
		time.Sleep(time.Duration(300+rng.IntN(2500)) * time.Millisecond)
		d.kill()
	}
	gen.stop(t)
	d := start(t, args...)
	waitConfirmed(t, conn, "kill", currentLSN(t, conn), d, 3*time.Minute)
	d.stop(t)

	out := t.TempDir()
	download(t, "e2e-kill", "k/", out)
	compareTables(t, conn, out, demoTables)
	checkNoDuplicates(t, out, demoTables)
}

// checkNoDuplicates asserts guarantee 3: no (_cdc_lsn, _cdc_seq) twice
// among a table's CDC rows.
func checkNoDuplicates(t *testing.T, dir string, tables [][2]string) {
	t.Helper()
	for _, st := range tables {
		dups, n, err := oracle.Duplicates(context.Background(), oracle.TableDir(dir, st[0], st[1]))
		if err != nil {
			t.Errorf("%s.%s: %v", st[0], st[1], err)
			continue
		}
		if len(dups) > 0 {
			t.Errorf("%s.%s: (_cdc_lsn, _cdc_seq) written more than once among %d CDC rows: %v", st[0], st[1], n, dups)
		}
	}
}
