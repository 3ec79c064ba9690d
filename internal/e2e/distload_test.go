package e2e

import (
	"context"
	"errors"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdc2s3/cdc2s3/internal/faultpoint"
	"github.com/cdc2s3/cdc2s3/internal/testenv"
)

// distSchema is what the distributed load copies: a table of many units,
// a partitioned one, one without a key, an empty one and an odd name.
const distSchema = `
CREATE TABLE big (id bigint PRIMARY KEY, v text, n numeric(12,2));
INSERT INTO big SELECT g, md5(g::text), g / 7.0 FROM generate_series(1, 120000) g;
CREATE TABLE parted (id int, region text, v text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE parted_eu PARTITION OF parted FOR VALUES IN ('eu');
CREATE TABLE parted_us PARTITION OF parted FOR VALUES IN ('us');
INSERT INTO parted SELECT g, (ARRAY['eu', 'us'])[g % 2 + 1], repeat(md5(g::text), 3) FROM generate_series(1, 20000) g;
CREATE TABLE nopk (a int, b text);
ALTER TABLE nopk REPLICA IDENTITY FULL;
INSERT INTO nopk SELECT g % 100, 'dup' FROM generate_series(1, 20000) g;
CREATE TABLE empty (id int PRIMARY KEY, v text);
CREATE SCHEMA "My Schema";
CREATE TABLE "My Schema"."Odd %/Name" (id int PRIMARY KEY, "Col Name" text);
INSERT INTO "My Schema"."Odd %/Name" SELECT g, E'tab\there ' || g FROM generate_series(1, 5000) g;
`

var distTables = [][2]string{{"public", "big"}, {"public", "parted"}, {"public", "nopk"}, {"public", "empty"}, {"My Schema", "Odd %/Name"}}

// TestDistributedLoad runs run's first load as a distributed load on this
// machine: one coordinator (snapshot --plan --for-run) and worker
// processes (snapshot --unit N), three at a time, some killed with
// SIGKILL at random moments, one killed by a fault point between staging
// its files and recording the unit, one unit run twice at once; killed
// units are run again. Changes made during the load and after it must
// reach the destination through cdc2s3 run, started (and waiting for the
// coordinator's lease) while the load goes on: every table must match the
// source, its LOAD files numbered without gaps, no row twice.
func TestDistributedLoad(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, distSchema); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		t.Fatal(err)
	}
	if err := s3srv.CreateBucket(ctx, "e2e-distload"); err != nil {
		t.Fatal(err)
	}
	dest := []string{"--source", dsn, "--dest", "s3://e2e-distload/d"}
	coord := start(t, append([]string{"snapshot", "--plan", "--for-run", "--slot", "distload", "--publication", "distload",
		"--snapshot-chunk-size", "512kB", "--max-file-size", "512kB", "--plan-id", "e2e-plan-1"}, dest...)...)
	units := waitUnits(t, coord, dest)
	t.Logf("plan of %d units", len(units))
	if len(units) < 8 {
		t.Fatalf("only %d units: the tables were not split", len(units))
	}
	// After the snapshot: these come from the stream, not the load.
	if _, err := conn.Exec(ctx, `
		UPDATE big SET v = 'during' WHERE id % 1000 = 0;
		DELETE FROM big WHERE id BETWEEN 500 AND 700;
		INSERT INTO nopk VALUES (1, 'during');
		INSERT INTO empty VALUES (1, 'during');`); err != nil {
		t.Fatal(err)
	}
	// The daemon may start now: it waits for the coordinator's lease.
	runArgs := append([]string{"run", "--slot", "distload", "--publication", "distload", "--flush-interval", "500ms", "--status-interval", "500ms"}, dest...)
	d := start(t, runArgs...)
	killed := runWorkers(t, units, dest, 3)
	t.Logf("workers killed and run again: %d", killed)
	coord.wait(t)
	if !strings.Contains(coord.out.String(), "distributed load committed") {
		t.Fatalf("the coordinator did not commit\n%s", tail(coord.out.String(), 20))
	}
	if _, err := conn.Exec(ctx, `
		UPDATE big SET v = 'after' WHERE id % 997 = 0;
		DELETE FROM parted WHERE id < 100;
		UPDATE "My Schema"."Odd %/Name" SET "Col Name" = 'after' WHERE id < 50;
		DELETE FROM nopk WHERE b = 'during';`); err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, conn, "distload", currentLSN(t, conn), d, 3*time.Minute)
	d.stop(t)
	if out := d.out.String(); !strings.Contains(out, "resuming") || strings.Contains(out, "full load starting") {
		t.Errorf("run did not resume from the distributed load's slot\n%s", tail(out, 30))
	}
	if keys := s3Keys(t, "e2e-distload", "d/_cdc2s3/load/e2e-plan-1/files/"); len(keys) > 0 {
		t.Errorf("staged files left after the commit: %v", keys[:min(len(keys), 5)])
	}
	out := t.TempDir()
	download(t, "e2e-distload", "d/", out)
	for _, tb := range distTables {
		loadFiles(t, out, tb[0], tb[1]) // LOAD00000001... without gaps
	}
	compareTables(t, conn, out, distTables)
	checkNoDuplicates(t, out, distTables)
}

// waitUnits waits until the coordinator's plan is in the destination and
// returns its units (cdc2s3 snapshot --list-units).
func waitUnits(t *testing.T, coord *daemon, dest []string) []int {
	t.Helper()
	var units []int
	testenv.WaitFor(t, 2*time.Minute, func() (bool, error) {
		if done, err := coord.exited(); done {
			t.Fatalf("the coordinator exited (%v) before planning\n%s", err, tail(coord.out.String(), 30))
		}
		stdout, _, code := runOps(t, append([]string{"snapshot", "--list-units"}, dest[2:]...)...)
		if code != 0 {
			return false, nil
		}
		for _, f := range strings.Fields(stdout) {
			n, err := strconv.Atoi(f)
			if err != nil {
				return false, err
			}
			units = append(units, n)
		}
		return true, nil
	})
	return units
}

// runWorkers runs a worker for every unit, parallel at a time, until each
// has exited 0. About a third are killed with SIGKILL after a random
// moment, the first one at the fault point before its done record, and the
// second unit is run twice at once; a killed unit is run again. It returns
// how many were killed.
func runWorkers(t *testing.T, units []int, dest []string, parallel int) int {
	t.Helper()
	type job struct {
		unit int
		d    *daemon
	}
	queue := append([]int{units[1]}, units...) // unit 2 twice, at once
	var running []job
	killed, started := 0, 0
	deadline := time.Now().Add(5 * time.Minute)
	for len(queue) > 0 || len(running) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("workers not done within 5 minutes; %d units left", len(queue)+len(running))
		}
		for len(queue) > 0 && len(running) < parallel {
			n := queue[0]
			queue = queue[1:]
			var env []string
			if started == 0 {
				env = []string{faultpoint.EnvVar + "=" + faultpoint.BeforeUnitDone}
			}
			started++
			w := startEnv(t, env, append([]string{"snapshot", "--unit", strconv.Itoa(n), "--plan-id", "e2e-plan-1"}, dest...)...)
			if started > 2 && rand.IntN(3) == 0 {
				time.AfterFunc(time.Duration(50+rand.IntN(700))*time.Millisecond, func() { w.cmd.Process.Signal(syscall.SIGKILL) })
			}
			running = append(running, job{n, w})
		}
		time.Sleep(50 * time.Millisecond)
		kept := running[:0]
		for _, j := range running {
			done, err := j.d.exited()
			switch {
			case !done:
				kept = append(kept, j)
			case err == nil:
			case signalled(err):
				killed++
				queue = append(queue, j.unit)
			default:
				t.Fatalf("unit %d failed: %v\n%s", j.unit, err, tail(j.d.out.String(), 20))
			}
		}
		running = kept
	}
	return killed
}

// signalled reports an exit by SIGKILL.
func signalled(err error) bool {
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return false
	}
	ws, ok := exit.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// TestDistributedBadInput: a worker without a plan, with a unit the plan
// does not have, with a plan id that is not there, and after the
// coordinator was killed (its snapshot gone) exits non-zero with one line
// naming the fix and no secret. Then a new coordinator (a one-off
// snapshot into a local directory) and its units, run one after the other,
// make the table exact.
func TestDistributedBadInput(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, `CREATE TABLE t (id int PRIMARY KEY, v text);
		INSERT INTO t SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 20000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE t"); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	dest := []string{"--source", dsn, "--dest", out}
	secrets := []string{pg.Password(), s3srv.SecretKey()}
	bad := func(name string, wantCode int, want string, args ...string) {
		t.Helper()
		_, stderr, code := runOps(t, append([]string{"snapshot"}, append(args, dest...)...)...)
		// The error is the one line "cdc2s3: ..." (log lines may come
		// before it).
		var msgs []string
		for _, l := range strings.Split(stderr, "\n") {
			if strings.HasPrefix(l, "cdc2s3: ") {
				msgs = append(msgs, l)
			}
		}
		switch {
		case code != wantCode:
			t.Errorf("%s: exit %d, want %d\n%s", name, code, wantCode, stderr)
		case len(msgs) != 1 || !strings.Contains(msgs[0], want):
			t.Errorf("%s: want one line with %q, got:\n%s", name, want, stderr)
		}
		for _, s := range secrets {
			if strings.Contains(stderr, s) {
				t.Errorf("%s: a secret in the message:\n%s", name, stderr)
			}
		}
	}
	bad("no plan", 2, "run the coordinator first (cdc2s3 snapshot --plan)", "--unit", "1")
	bad("unit 0", 2, "units are numbered from 1", "--unit", "0")
	bad("two roles", 2, "give one", "--unit", "1", "--plan")
	coord := start(t, append([]string{"snapshot", "--plan", "--plan-id", "bad-1", "--snapshot-chunk-size", "128kB"}, dest...)...)
	units := waitUnits(t, coord, dest)
	bad("out of range", 2, "has units 1 to "+strconv.Itoa(len(units)), "--unit", strconv.Itoa(len(units)+1))
	bad("unknown plan", 2, `no distributed load plan "nope"`, "--unit", "1", "--plan-id", "nope")
	coord.kill()
	bad("coordinator gone", 1, "run the coordinator again", "--unit", "1")

	coord = start(t, append([]string{"snapshot", "--plan", "--snapshot-chunk-size", "128kB"}, dest...)...)
	testenv.WaitFor(t, time.Minute, func() (bool, error) {
		return strings.Contains(coord.out.String(), "units over"), nil // the new plan is written
	})
	_, stderr, code := runOps(t, append([]string{"snapshot", "--unit", "1", "--plan-id", "bad-1"}, dest...)...)
	if code != 2 || !strings.Contains(stderr, "the current plan is") {
		t.Errorf("a unit of the replaced plan: exit %d\n%s", code, stderr)
	}
	units = waitUnits(t, coord, dest)
	for _, n := range units {
		stdout, stderr, code := runOps(t, append([]string{"snapshot", "--unit", strconv.Itoa(n)}, dest...)...)
		if code != 0 {
			t.Fatalf("unit %d: exit %d\n%s", n, code, stderr)
		}
		if n == 1 {
			t.Log(strings.TrimSpace(stdout))
		}
	}
	coord.wait(t)
	loadFiles(t, out, "public", "t")
	compareTables(t, conn, out, [][2]string{{"public", "t"}})
}
