package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
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
	d := start(t, "run", "--source", dsn, "--dest", out, "--slot", "local", "--flush-interval", "1s", "--status-interval", "1s",
		"--stream-large-transactions=false") // protocol version 1; the other tests stream
	// The changes (DDL among them) after the full load, so that columns
	// are added to tables already loaded: the missing-value path.
	waitLog(t, d, regexp.MustCompile(`msg=streaming`), 1, 2*time.Minute)
	if err := Changes(ctx, conn); err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, conn, "local", currentLSN(t, conn), d, 3*time.Minute)
	d.stop(t)
	compareTables(t, conn, out, Tables)
	checkNoDuplicates(t, out, Tables)
	compareCatalog(t, conn, out, Tables)
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
	if !strings.Contains(d.out.String(), "streamed transaction committed") {
		t.Error("no large transaction was streamed (protocol version 2): the streamed path went untested")
	}

	out := t.TempDir()
	download(t, "e2e-gen", "lake/v1/", out)
	all := append(append([][2]string{}, Tables...), demoTables...)
	compareTables(t, conn, out, all)
	checkNoDuplicates(t, out, all)
}

// TestKillRestart kills the daemon with SIGKILL at random moments while the
// generator runs, and at fault points between an upload and its checkpoint
// and between the checkpoint and the acknowledgement, restarts it each
// time, and checks that nothing is lost and nothing is written twice.
func TestKillRestart(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if err := s3srv.CreateBucket(ctx, "e2e-kill"); err != nil {
		t.Fatal(err)
	}
	gen := start(t, "generate", "--source", dsn, "--rate", "300", "--seed", "11")
	time.Sleep(2 * time.Second)
	args := []string{"run", "--source", dsn, "--dest", "s3://e2e-kill/k", "--slot", "kill", "--flush-interval", "300ms", "--status-interval", "300ms"}
	rng := rand.New(rand.NewPCG(42, 42))
	const kills = 12
	faults := 0
	for i := 0; i < kills; i++ {
		var env []string
		switch i % 3 {
		case 1:
			env = []string{fmt.Sprintf("CDC2S3_FAULTPOINT=after-upload:%d", 1+rng.IntN(3))}
		case 2:
			env = []string{fmt.Sprintf("CDC2S3_FAULTPOINT=after-checkpoint:%d", 1+rng.IntN(3))}
		}
		d := startEnv(t, env, args...)
		if env == nil {
			// Kill anywhere from mid-snapshot (first round) to mid-stream.
			time.Sleep(time.Duration(300+rng.IntN(2500)) * time.Millisecond)
			d.kill()
			continue
		}
		// The fault point kills the process itself.
		select {
		case err := <-d.done:
			d.done <- err
			faults++
		case <-time.After(60 * time.Second):
			t.Fatalf("fault point %s was not reached within 60s (fault points need a -tags faultpoints build, as TestMain makes)\n%s", env[0], tail(d.out.String(), 20))
		}
	}
	gen.stop(t)
	d := start(t, args...)
	waitConfirmed(t, conn, "kill", currentLSN(t, conn), d, 3*time.Minute)
	d.stop(t)
	t.Logf("%d kills, %d of them at fault points", kills, faults)

	out := t.TempDir()
	download(t, "e2e-kill", "k/", out)
	compareTables(t, conn, out, demoTables)
	checkNoDuplicates(t, out, demoTables)
}

// TestPostgresRestart restarts PostgreSQL while the daemon streams: the
// daemon reconnects by itself and resumes without loss or duplicates.
func TestPostgresRestart(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	dbName := conn.Config().Database
	out := t.TempDir()
	gen := start(t, "generate", "--source", dsn, "--rate", "300", "--seed", "5", "--duration", "3s")
	gen.wait(t)
	d := start(t, "run", "--source", dsn, "--dest", out, "--slot", "restart", "--flush-interval", "500ms", "--status-interval", "500ms")
	waitConfirmed(t, conn, "restart", 1, d, 2*time.Minute)
	gen = start(t, "generate", "--source", dsn, "--rate", "300", "--seed", "6", "--duration", "3s")
	gen.wait(t)
	if err := pg.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := pg.Connect(ctx, dbName)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	gen = start(t, "generate", "--source", dsn, "--rate", "300", "--seed", "7", "--duration", "3s")
	gen.wait(t)
	waitConfirmed(t, conn, "restart", currentLSN(t, conn), d, 3*time.Minute)
	d.stop(t)
	if !strings.Contains(d.out.String(), "reconnecting") {
		t.Errorf("the daemon did not report reconnecting:\n%s", tail(d.out.String(), 20))
	}
	compareTables(t, conn, out, demoTables)
	checkNoDuplicates(t, out, demoTables)
}

// TestHeartbeatAdvancesIdleSlot writes 50 MB of WAL in another database
// while no published table changes: the heartbeat must move the slot's
// confirmed_flush_lsn past it, so the slot does not hold that WAL.
func TestHeartbeatAdvancesIdleSlot(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, "CREATE TABLE quiet (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	d := start(t, "run", "--source", dsn, "--dest", out, "--slot", "idle", "--heartbeat-interval", "5s", "--flush-interval", "1s", "--status-interval", "1s")
	waitConfirmed(t, conn, "idle", 1, d, 2*time.Minute)

	if err := pg.CreateDatabase(ctx, "busy_elsewhere"); err != nil {
		t.Fatal(err)
	}
	busy, err := pg.Connect(ctx, "busy_elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close(ctx)
	start := currentLSN(t, conn)
	for _, q := range []string{
		"CREATE TABLE filler (id int, pad text)",
		"INSERT INTO filler SELECT i, repeat(md5(i::text), 8) FROM generate_series(1, 200000) i",
	} {
		if _, err := busy.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	target := currentLSN(t, conn)
	if target-start < 50<<20 {
		t.Fatalf("wrote only %d bytes of WAL, want 50 MB", target-start)
	}
	began := time.Now()
	waitConfirmed(t, conn, "idle", target, d, time.Minute)
	t.Logf("confirmed_flush_lsn passed %d MB of foreign WAL after %s", (target-start)>>20, time.Since(began).Round(time.Second))
	d.stop(t)
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
