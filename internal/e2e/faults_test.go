package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdc2s3/cdc2s3/internal/faultpoint"
	"github.com/cdc2s3/cdc2s3/internal/preflight"
	"github.com/cdc2s3/cdc2s3/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// TestS3Faults runs the pipeline through a proxy that injects S3 errors,
// throttling, latency, connection resets (before and after the server
// acts) and a stall, and checks the result is exact.
func TestS3Faults(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if err := s3srv.CreateBucket(ctx, "e2e-faults"); err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewFaultProxy(t, s3srv.Endpoint())
	gen := start(t, "generate", "--source", dsn, "--rate", "200", "--seed", "3", "--duration", "20s")
	time.Sleep(2 * time.Second)
	proxy.SetFaults(testenv.Faults{
		InternalError: 0.05, SlowDown: 0.1, Reset: 0.05, Drop: 0.05,
		Delay: 0.3, Latency: 30 * time.Millisecond, Jitter: 100 * time.Millisecond, Seed: 9,
	})
	d := startEnv(t, proxy.Env(s3srv), "run", "--source", dsn, "--dest", "s3://e2e-faults/f", "--slot", "faults",
		"--flush-interval", "500ms", "--status-interval", "500ms")
	waitConfirmed(t, conn, "faults", 1, d, 2*time.Minute)

	// A stall: S3 answers nothing for a while; the daemon must keep its
	// replication connection alive and carry on afterwards.
	time.Sleep(4 * time.Second)
	proxy.Stall()
	time.Sleep(8 * time.Second)
	proxy.Release()

	gen.wait(t)
	proxy.SetFaults(testenv.Faults{})
	waitConfirmed(t, conn, "faults", currentLSN(t, conn), d, 3*time.Minute)
	d.stop(t)
	c := proxy.Counts()
	t.Logf("proxy: %+v", c)
	if c.SlowDown+c.InternalError+c.Reset+c.Drop == 0 || c.Stall == 0 {
		t.Errorf("no faults were injected: %+v", c)
	}
	out := t.TempDir()
	download(t, "e2e-faults", "f/", out)
	compareTables(t, conn, out, demoTables)
	checkNoDuplicates(t, out, demoTables)
}

// TestSingleWriter starts a second daemon on a destination in use: it
// waits for the lease without writing, and takes over when the first one
// stops.
func TestSingleWriter(t *testing.T) {
	dsn, conn := newDatabase(t)
	out := t.TempDir()
	gen := start(t, "generate", "--source", dsn, "--rate", "200", "--seed", "4", "--duration", "3s")
	gen.wait(t)
	args := []string{"run", "--source", dsn, "--dest", out, "--slot", "single", "--flush-interval", "500ms", "--status-interval", "500ms", "--lease-ttl", "3s"}
	a := start(t, args...)
	waitConfirmed(t, conn, "single", 1, a, 2*time.Minute)
	b := start(t, args...)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(b.out.String(), "waiting for its lease") {
		if time.Now().After(deadline) {
			t.Fatalf("second daemon did not wait for the lease:\n%s", tail(b.out.String(), 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // well past a renewal: b must still be waiting
	if strings.Contains(b.out.String(), "streaming") {
		t.Fatalf("second daemon streamed while the first held the lease:\n%s", tail(b.out.String(), 20))
	}
	a.stop(t)
	// b takes over (a released the lease) and streams what follows.
	deadline = time.Now().Add(30 * time.Second)
	for !strings.Contains(b.out.String(), "msg=streaming") {
		if time.Now().After(deadline) {
			t.Fatalf("second daemon did not take over after the first stopped:\n%s", tail(b.out.String(), 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	gen = start(t, "generate", "--source", dsn, "--rate", "200", "--seed", "5", "--duration", "2s")
	gen.wait(t)
	waitConfirmed(t, conn, "single", currentLSN(t, conn), b, 2*time.Minute)
	b.stop(t)
	compareTables(t, conn, out, demoTables)
	checkNoDuplicates(t, out, demoTables)
}

// TestShutdownTimeout stops the daemon while S3 stalls: the first SIGTERM
// must end the process within --shutdown-timeout (non-zero: the flush was
// abandoned), and a restart must continue exactly.
func TestShutdownTimeout(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if err := s3srv.CreateBucket(ctx, "e2e-shutdown"); err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewFaultProxy(t, s3srv.Endpoint())
	gen := start(t, "generate", "--source", dsn, "--rate", "200", "--seed", "8", "--duration", "2s")
	gen.wait(t)
	args := []string{"run", "--source", dsn, "--dest", "s3://e2e-shutdown/s", "--slot", "shutdown", "--flush-interval", "500ms", "--status-interval", "500ms", "--shutdown-timeout", "3s"}
	d := startEnv(t, proxy.Env(s3srv), args...)
	waitConfirmed(t, conn, "shutdown", 1, d, 2*time.Minute)
	gen = start(t, "generate", "--source", dsn, "--rate", "200", "--seed", "9", "--duration", "2s")
	proxy.Stall()
	gen.wait(t)
	time.Sleep(time.Second)
	began := time.Now()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		d.done <- err
		if err == nil {
			t.Errorf("exit status 0 although the flush could not finish")
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no exit within 15s of SIGTERM with --shutdown-timeout 3s\n%s", tail(d.out.String(), 20))
	}
	t.Logf("exited %s after SIGTERM", time.Since(began).Round(100*time.Millisecond))
	proxy.Release()
	d = startEnv(t, proxy.Env(s3srv), args...)
	waitConfirmed(t, conn, "shutdown", currentLSN(t, conn), d, 2*time.Minute)
	d.stop(t)
	out := t.TempDir()
	download(t, "e2e-shutdown", "s/", out)
	compareTables(t, conn, out, demoTables)
	checkNoDuplicates(t, out, demoTables)
}

// TestSlotLost drops the slot behind a stopped daemon: the next start must
// refuse with a message that says how to recover, and change nothing.
func TestSlotLost(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	out := t.TempDir()
	gen := start(t, "generate", "--source", dsn, "--rate", "100", "--seed", "2", "--duration", "1s")
	gen.wait(t)
	args := []string{"run", "--source", dsn, "--dest", out, "--slot", "lost", "--flush-interval", "500ms"}
	d := start(t, args...)
	waitConfirmed(t, conn, "lost", 1, d, 2*time.Minute)
	d.stop(t)
	if _, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot('lost')"); err != nil {
		t.Fatal(err)
	}
	d = start(t, args...)
	d.waitFailure(t, 30*time.Second, "it must refuse to start without its slot")
	msg := d.out.String()
	for _, want := range []string{`replication slot "lost" does not exist`, "new --dest"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'lost'").Scan(&n); err != nil || n != 0 {
		t.Errorf("a slot was created after all (%d, %v)", n, err)
	}
}

// TestTempDirAfterKill kills the daemon with SIGKILL while it spools a
// large transaction still in progress: the next start removes the dead
// process's temp files and logs it, and a graceful stop leaves --temp-dir
// empty.
func TestTempDirAfterKill(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, `CREATE TABLE big (id integer PRIMARY KEY, v text)`); err != nil {
		t.Fatal(err)
	}
	out, tmp := t.TempDir(), filepath.Join(t.TempDir(), "tmp")
	args := []string{"run", "--source", dsn, "--dest", out, "--slot", "tmpkill", "--flush-interval", "300ms", "--temp-dir", tmp}
	d := start(t, args...)
	waitConfirmed(t, conn, "tmpkill", 1, d, 2*time.Minute)

	// A transaction left open: the server streams it (the test cluster's
	// logical_decoding_work_mem is 64kB) and the daemon spools it to disk.
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO big SELECT i, repeat(md5(i::text), 4) FROM generate_series(1, 100000) i`); err != nil {
		t.Fatal(err)
	}
	var spools []string
	for deadline := time.Now().Add(time.Minute); len(spools) == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no spool file under %s within a minute\n%s", tmp, tail(d.out.String(), 20))
		}
		spools, _ = filepath.Glob(filepath.Join(tmp, "cdc2s3-scratch-*", "cdc2s3-spool-*"))
	}
	dead := filepath.Dir(spools[0])
	d.kill()
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	d = start(t, args...)
	waitConfirmed(t, conn, "tmpkill", currentLSN(t, conn), d, 2*time.Minute)
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the killed process's temp directory %s is still there (%v)", dead, err)
	}
	if !strings.Contains(d.out.String(), "removed the temp files of a cdc2s3 process") {
		t.Errorf("the removal was not logged:\n%s", tail(d.out.String(), 20))
	}
	d.stop(t)
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("files left in --temp-dir after a graceful stop: %v", left)
	}
	compareTables(t, conn, out, [][2]string{{"public", "big"}})
	checkNoDuplicates(t, out, [][2]string{{"public", "big"}})
}

// TestTempFilesAfterReconnect cuts the replication connection while the
// daemon spools a large transaction still in progress: the session that
// failed must remove its spool file when the daemon reconnects, not leave
// it until the process ends (a daemon that reconnects often would
// otherwise fill --temp-dir).
func TestTempFilesAfterReconnect(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, `CREATE TABLE big (id integer PRIMARY KEY, v text)`); err != nil {
		t.Fatal(err)
	}
	out, tmp := t.TempDir(), filepath.Join(t.TempDir(), "tmp")
	d := start(t, "run", "--source", dsn, "--dest", out, "--slot", "tmprecon", "--flush-interval", "300ms", "--temp-dir", tmp)
	waitConfirmed(t, conn, "tmprecon", 1, d, 2*time.Minute)

	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO big SELECT i, repeat(md5(i::text), 4) FROM generate_series(1, 100000) i`); err != nil {
		t.Fatal(err)
	}
	spoolGlob := filepath.Join(tmp, "cdc2s3-scratch-*", "cdc2s3-spool-*")
	var spools []string
	for deadline := time.Now().Add(time.Minute); len(spools) == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no spool file under %s within a minute\n%s", tmp, tail(d.out.String(), 20))
		}
		spools, _ = filepath.Glob(spoolGlob)
	}

	// Cut the stream from the server side; the daemon reconnects.
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'tmprecon' AND active`); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); strings.Count(d.out.String(), "msg=streaming") < 2; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not stream again within a minute\n%s", tail(d.out.String(), 20))
		}
	}
	for _, p := range spools {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("the failed session's spool %s is still there after the reconnect (%v)", p, err)
		}
	}

	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, conn, "tmprecon", currentLSN(t, conn), d, 2*time.Minute)
	d.stop(t)
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("files left in --temp-dir after a graceful stop: %v", left)
	}
	compareTables(t, conn, out, [][2]string{{"public", "big"}})
	checkNoDuplicates(t, out, [][2]string{{"public", "big"}})
}

// TestSlotReplaced drops the daemon's slot while it is stopped and creates
// one of the same name again (an operator "fixing" a stuck slot, a
// failover to a server without it): the changes in between are in neither
// the destination nor the new slot, so the next start must refuse to
// stream, say why and how out, and status and check must show it. Before
// that, restarts after the slot advanced by idle acknowledgements alone
// must still resume: those positions are recorded before they are sent.
func TestSlotReplaced(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a')`); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	args := []string{"run", "--source", dsn, "--dest", out, "--slot", "replaced", "--flush-interval", "300ms",
		"--status-interval", "500ms", "--heartbeat-interval", "1s"}
	d := start(t, args...)
	waitConfirmed(t, conn, "replaced", 1, d, 2*time.Minute)
	if _, err := conn.Exec(ctx, `INSERT INTO t VALUES (2, 'b')`); err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, conn, "replaced", currentLSN(t, conn), d, time.Minute)
	// Idle: the heartbeats and the idle acknowledgements move the slot
	// past the last change.
	idle := currentLSN(t, conn)
	waitConfirmed(t, conn, "replaced", idle+1, d, time.Minute)
	d.stop(t)
	d = start(t, args...)
	waitConfirmed(t, conn, "replaced", currentLSN(t, conn), d, time.Minute)
	if strings.Contains(d.out.String(), "beyond anything") {
		t.Fatalf("a restart after idle acknowledgements was refused:\n%s", tail(d.out.String(), 20))
	}
	d.stop(t)

	// The slot is replaced; a change made in between is lost to it.
	for _, sql := range []string{
		`SELECT pg_drop_replication_slot('replaced')`,
		`INSERT INTO t VALUES (3, 'lost')`,
		`SELECT pg_create_logical_replication_slot('replaced', 'pgoutput')`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	d = start(t, args...)
	d.waitFailure(t, 30*time.Second, "it must not stream from a replaced slot")
	for _, want := range []string{`replication slot "replaced" was acknowledged up to`, "dropped and created again", "new, empty --dest", "cdc2s3 drop --slot replaced"} {
		if !strings.Contains(d.out.String(), want) {
			t.Errorf("message lacks %q:\n%s", want, tail(d.out.String(), 10))
		}
	}
	if st := runStatus(t, "--source", dsn, "--dest", out); st.Slot == nil || !st.Slot.Ahead {
		t.Errorf("status does not show the replaced slot: %+v", st.Slot)
	}
	res, code := runCheck(t, "--source", dsn, "--dest", out, "--slot", "replaced")
	if code != 1 {
		t.Errorf("check exited %d, want 1", code)
	}
	found := false
	for _, r := range res.Results {
		if r.Name == "next_start" {
			found = r.Status == preflight.Fail && strings.Contains(r.Detail, "beyond anything")
		}
	}
	if !found {
		t.Errorf("check's next_start does not fail on the replaced slot: %+v", res.Results)
	}

	// The way out that keeps the destination: stream from the new slot and
	// reload every table, which brings back the change the slot lost.
	if _, err := conn.Exec(ctx, `INSERT INTO t VALUES (4, 'after')`); err != nil {
		t.Fatal(err)
	}
	d = start(t, append(args, "--reload-on-slot-replaced")...)
	waitLog(t, d, regexp.MustCompile(`reload complete.* table=public.t `), 1, 2*time.Minute)
	if !strings.Contains(d.out.String(), "reloading every table") {
		t.Errorf("no warning that the slot was replaced:\n%s", tail(d.out.String(), 20))
	}
	waitConfirmed(t, conn, "replaced", currentLSN(t, conn), d, time.Minute)
	d.stop(t)
	compareTables(t, conn, out, [][2]string{{"public", "t"}})
}

// TestDestinationRefuses deletes the bucket under a running daemon: S3
// then refuses every request (NoSuchBucket), which waiting does not cure.
// The daemon must stop with the fix after --dest-refused-timeout, not
// retry silently for ever, and must not have acknowledged the change it
// could not upload.
func TestDestinationRefuses(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, `CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if err := s3srv.CreateBucket(ctx, "e2e-refused"); err != nil {
		t.Fatal(err)
	}
	d := start(t, "run", "--source", dsn, "--dest", "s3://e2e-refused/r", "--slot", "refused", "--flush-interval", "300ms",
		"--dest-refused-timeout", "3s")
	waitConfirmed(t, conn, "refused", 1, d, 2*time.Minute)
	// A change streamed first: the writer knows the table, so the next
	// one fails at its upload.
	if _, err := conn.Exec(ctx, `INSERT INTO t VALUES (0)`); err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, conn, "refused", currentLSN(t, conn), d, time.Minute)
	if err := os.RemoveAll(filepath.Join(s3srv.DataDir(), "e2e-refused")); err != nil {
		t.Fatal(err)
	}
	before := currentLSN(t, conn)
	if _, err := conn.Exec(ctx, `INSERT INTO t VALUES (2)`); err != nil {
		t.Fatal(err)
	}
	d.waitFailure(t, time.Minute, "it must not retry a deleted bucket for ever")
	for _, want := range []string{"NoSuchBucket", "does not exist", "--dest-refused-timeout"} {
		if !strings.Contains(d.out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, tail(d.out.String(), 10))
		}
	}
	var confirmed string
	if err := conn.QueryRow(ctx, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'refused'").Scan(&confirmed); err != nil {
		t.Fatal(err)
	}
	if parseLSN(t, "confirmed_flush_lsn", confirmed) > before {
		t.Errorf("the slot was acknowledged to %s, past the change that was never uploaded (WAL at %s before it)", confirmed, before)
	}
}

// TestLeaseOtherPIDNamespace starts a second daemon on the same
// destination in a PID namespace of its own (unshare --pid, as two
// containers on one host with one host name): the holder's PID does not
// exist in the second one's namespace, which must not make it judge the
// holder dead and take the lease at once.
func TestLeaseOtherPIDNamespace(t *testing.T) {
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatalf("this test needs unshare (util-linux): %v", err)
	}
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, `CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	a := start(t, "run", "--source", dsn, "--dest", out, "--slot", "nsa", "--flush-interval", "300ms")
	waitConfirmed(t, conn, "nsa", 1, a, 2*time.Minute)

	b := &daemon{out: &syncBuffer{}, done: make(chan error, 1), started: time.Now()}
	b.cmd = exec.Command(unshare, "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL",
		binary, "run", "--source", dsn, "--dest", out, "--slot", "nsb", "--flush-interval", "300ms")
	b.cmd.Env = append(os.Environ(), s3Env()...)
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.out
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	defer b.kill()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(b.out.String(), "another cdc2s3 holds this destination"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) || strings.Contains(b.out.String(), "msg=streaming") {
			t.Fatalf("the daemon in another PID namespace did not wait for the lease:\n%s", tail(b.out.String(), 20))
		}
	}
	time.Sleep(3 * time.Second)
	if done, err := a.exited(); done {
		t.Fatalf("the holder stopped (%v):\n%s", err, tail(a.out.String(), 10))
	}
	if strings.Contains(b.out.String(), "msg=streaming") {
		t.Errorf("the daemon in another PID namespace took the lease from a live holder:\n%s", tail(b.out.String(), 10))
	}
	a.stop(t)
}

// TestLeasePausedHolder freezes the daemon (SIGSTOP) past its lease while
// changes go on, lets a second daemon take the destination over, then
// thaws the first: it must find out before it writes anything more (every
// write checks the lease once half a TTL has passed since it last saw it
// held) and stop, and the folders must be exact with no row twice. A fault
// delay holds each of the first daemon's batches before its upload, so the
// freeze finds one due. (Thawed, the process's lease goroutine usually
// notices first and stops it, fence or not; lsnstore's TestLeaseFence
// shows the write the fence refuses.)
func TestLeasePausedHolder(t *testing.T) {
	dsn, conn := newDatabase(t)
	gen := start(t, "generate", "--source", dsn, "--rate", "100", "--seed", "21", "--duration", "2s")
	gen.wait(t)
	// The frozen daemon's walsender lets the slot go once it times out.
	dsn += "&options=-c%20wal_sender_timeout%3D3s"
	out := t.TempDir()
	args := []string{"run", "--source", dsn, "--dest", out, "--slot", "paused", "--flush-interval", "500ms", "--status-interval", "500ms", "--lease-ttl", "3s"}
	a := startEnv(t, []string{faultpoint.DelayEnvVar + "=" + faultpoint.BeforeUpload + ":1500ms"}, args...)
	waitLog(t, a, regexp.MustCompile(`msg=streaming`), 1, 2*time.Minute)
	load := start(t, "generate", "--source", dsn, "--rate", "100", "--seed", "22", "--duration", "40s")
	waitLog(t, a, regexp.MustCompile(`msg=uploaded`), 2, time.Minute)
	time.Sleep(700 * time.Millisecond) // into the next batch's delay
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	b := start(t, args...)
	waitLog(t, b, regexp.MustCompile(`msg=streaming`), 1, 2*time.Minute)
	waitLog(t, b, regexp.MustCompile(`msg=uploaded`), 2, time.Minute)
	thawed := len(a.out.String())
	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	a.waitFailure(t, 30*time.Second, "the thawed daemon must stop: another holds the lease")
	after := a.out.String()[thawed:]
	if !strings.Contains(after, "lease lost") {
		t.Errorf("the thawed daemon did not say it lost the lease:\n%s", tail(after, 20))
	}
	if strings.Contains(after, "msg=uploaded") {
		t.Errorf("the thawed daemon uploaded after another took its lease:\n%s", tail(after, 20))
	}
	load.wait(t)
	waitConfirmed(t, conn, "paused", currentLSN(t, conn), b, 2*time.Minute)
	b.stop(t)
	compareTables(t, conn, out, demoTables)
	checkNoDuplicates(t, out, demoTables)
}
