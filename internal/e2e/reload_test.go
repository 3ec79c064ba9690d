package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"

	"github.com/cdc2s3/cdc2s3/internal/faultpoint"
	"github.com/cdc2s3/cdc2s3/internal/oracle"
	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink/localfs"
)

// reloadSchema creates the tables of the reload tests: a keyed table with
// a TOASTed column (updates that leave it out send it as unchanged), a
// table without a key (REPLICA IDENTITY FULL, so it can be updated while
// published), and a small table the publication starts with.
func reloadSchema(t *testing.T, conn *pgx.Conn, rows int) {
	t.Helper()
	_, err := conn.Exec(context.Background(), fmt.Sprintf(`
		CREATE TABLE a (id int PRIMARY KEY, v int);
		INSERT INTO a SELECT g, g FROM generate_series(1, 100) g;
		CREATE TABLE b (id int PRIMARY KEY, v int, note text, big text);
		INSERT INTO b SELECT g, g, 'n' || g,
		       CASE WHEN g %% 50 = 0 THEN (SELECT string_agg(md5(g::text || x::text), '') FROM generate_series(1, 200) x) END
		FROM generate_series(1, %d) g;
		CREATE TABLE k (v int, w text);
		ALTER TABLE k REPLICA IDENTITY FULL;
		INSERT INTO k SELECT g %% 700, 'w' || (g %% 300) FROM generate_series(1, %d) g;
		CREATE TABLE pt (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
		CREATE TABLE pt_a PARTITION OF pt FOR VALUES FROM (0) TO (1000);
		CREATE TABLE pt_b PARTITION OF pt FOR VALUES FROM (1000) TO (2000);
		INSERT INTO pt SELECT g, 'v' || g FROM generate_series(1, 1999) g;
		CREATE PUBLICATION p FOR TABLE a, pt WITH (publish_via_partition_root = true);`, rows, rows/4))
	if err != nil {
		t.Fatal(err)
	}
}

// reloadLoad changes b, k and a in small transactions until stop is
// closed: updates that leave the TOASTed column out, updates of it,
// key changes, deletes, inserts, and deletes and updates of the keyless
// table, until the function it returns is called (or the test ends); that
// returns the number of transactions.
func reloadLoad(t *testing.T, dsn string, seed uint64) func() int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer conn.Close(ctx)
		rng := rand.New(rand.NewPCG(seed, seed))
		next := 10_000_000
		for {
			select {
			case <-stop:
				return
			default:
			}
			id := 1 + rng.IntN(40_000)
			var sql string
			switch rng.IntN(10) {
			case 0, 1, 2:
				sql = fmt.Sprintf("UPDATE b SET v = v + 1 WHERE id = %d", id)
			case 3:
				sql = fmt.Sprintf("UPDATE b SET big = repeat(md5(random()::text), 80), note = 'toast' WHERE id = %d", id)
			case 4:
				sql = fmt.Sprintf("DELETE FROM b WHERE id = %d", id)
			case 5:
				next++
				sql = fmt.Sprintf("INSERT INTO b VALUES (%d, 1, 'new', NULL)", next)
			case 6:
				next++
				sql = fmt.Sprintf("UPDATE b SET id = %d WHERE id = %d", next, id)
			case 7:
				sql = fmt.Sprintf("DELETE FROM k WHERE ctid = (SELECT ctid FROM k WHERE v = %d LIMIT 1)", rng.IntN(700))
			case 8:
				sql = fmt.Sprintf("UPDATE k SET w = 'u' WHERE ctid = (SELECT ctid FROM k WHERE v = %d LIMIT 1); INSERT INTO k VALUES (%d, 'i')", rng.IntN(700), rng.IntN(700))
			default:
				sql = fmt.Sprintf("UPDATE a SET v = v + 1 WHERE id = %d; UPDATE b SET note = 'both' WHERE id = %d", 1+rng.IntN(100), id)
			}
			if _, err := conn.Exec(ctx, sql); err != nil {
				t.Errorf("load: %s: %v", sql, err)
				return
			}
			n.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	return stopper(t, stop, &wg, &n)
}

// stopper returns a function that stops a load goroutine (closing stop),
// waits for it and returns its count; the test's end calls it too, so a
// failing test never leaves the goroutine running.
func stopper(t *testing.T, stop chan struct{}, wg *sync.WaitGroup, n *atomic.Int64) func() int64 {
	var once sync.Once
	f := func() int64 {
		once.Do(func() { close(stop) })
		wg.Wait()
		return n.Load()
	}
	t.Cleanup(func() { f() })
	return f
}

// waitLog waits until the daemon's output matches re count times.
func waitLog(t *testing.T, d *daemon, re *regexp.Regexp, count int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for len(re.FindAllStringIndex(d.out.String(), -1)) < count {
		if done, err := d.exited(); done {
			t.Fatalf("cdc2s3 exited (%v) before logging %q %d times\n%s", err, re, count, tail(d.out.String(), 40))
		}
		if time.Now().After(deadline) {
			t.Fatalf("cdc2s3 did not log %q %d times within %s; its lines about reloads, warnings and errors:\n%s", re, count, timeout, reloadLines(d.out.String()))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// reloadLines returns the lines of a daemon's output about reloads and
// its warnings and errors, for a failure message.
func reloadLines(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "reload") || strings.Contains(l, "join") || strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			keep = append(keep, l)
		}
	}
	return tail(strings.Join(keep, "\n"), 80)
}

var reloadTables = [][2]string{{"public", "a"}, {"public", "b"}, {"public", "k"}, {"public", "pt"}}

// TestReloadAddedTables adds two populated tables to the publication of a
// running pipeline, which reloads them by itself when their first changes
// arrive, truncates one partition of a partitioned table published through
// its root (which pgoutput does not send; the daemon's check of the
// partition tree catches it), and reloads a table on request with
// `cdc2s3 reload`, all while a load changes them: afterwards every folder
// holds the source's rows, checked by the independent reader. Without the
// reloads the added tables' existing rows are missing, their updated rows
// lack the unchanged TOASTed values, and the truncated partition's rows
// stay.
func TestReloadAddedTables(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	reloadSchema(t, conn, 40_000)
	out := t.TempDir()
	d := start(t, "run", "--source", dsn, "--dest", out, "--slot", "reload", "--publication", "p",
		"--flush-interval", "500ms", "--status-interval", "500ms", "--reload-chunk-size", "256kB")
	// After the full load (the slot confirms its consistent point before
	// it), so that b and k join a streaming pipeline.
	waitLog(t, d, regexp.MustCompile(`msg=streaming`), 1, 2*time.Minute)
	if _, err := conn.Exec(ctx, "ALTER PUBLICATION p ADD TABLE b, k; TRUNCATE pt_a; INSERT INTO pt VALUES (5, 'after')"); err != nil {
		t.Fatal(err)
	}
	loaded := reloadLoad(t, dsn, 7)
	time.Sleep(2 * time.Second) // changes of b and k before the reload
	stdout, stderr, code := runOps(t, "reload", "--dest", out, "--tables", "public.a")
	if code != 0 || !strings.Contains(stdout, "reload requested") || !strings.Contains(stdout, "the daemon holding") {
		t.Fatalf("cdc2s3 reload: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, table := range []string{"a", "b", "k", "pt"} {
		waitLog(t, d, regexp.MustCompile(`reload complete.* table=public.`+table+" "), 1, 3*time.Minute)
	}
	if n := len(regexp.MustCompile(`reason="the folder does not hold the table's existing rows`).FindAllString(d.out.String(), -1)); n != 2 {
		t.Errorf("%d tables joined the pipeline, want b and k:\n%s", n, reloadLines(d.out.String()))
	}
	time.Sleep(time.Second) // changes after the reload
	txns := loaded()
	waitConfirmed(t, conn, "reload", currentLSN(t, conn), d, 2*time.Minute)
	d.stop(t)
	chunks := len(regexp.MustCompile(`msg="reload chunk"`).FindAllString(d.out.String(), -1))
	t.Logf("%d transactions of load; %d chunks", txns, chunks)
	if chunks < 10 {
		t.Errorf("the keyed reload read %d chunks, want many at --reload-chunk-size 256kB", chunks)
	}
	compareTables(t, conn, out, reloadTables)
	compareCatalog(t, conn, out, reloadTables)
	checkNoDuplicates(t, out, reloadTables)
}

// updateLoad updates random rows of big (no inserts or deletes: its row
// count stays n) and replaces rows of the keyless kk by a delete and an
// insert in one transaction (its count stays too), at about rate
// transactions per second over four connections, until the function it
// returns is called.
func updateLoad(t *testing.T, dsn string, n, rate int) func() int64 {
	t.Helper()
	ctx := context.Background()
	const conns = 4
	var done atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < conns; w++ {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			defer conn.Close(ctx)
			rng := rand.New(rand.NewPCG(seed, seed))
			tick := time.NewTicker(time.Second * conns / time.Duration(rate))
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				sql := fmt.Sprintf("UPDATE big SET v = v + 1, pad = md5(random()::text) WHERE id = %d", 1+rng.IntN(n))
				if rng.IntN(5) == 0 {
					// One row out, one in, in one statement: the insert
					// happens only if the delete did, so the table keeps
					// its row count when two connections pick the same row
					// (the second's delete finds it gone and removes none).
					sql = fmt.Sprintf("WITH d AS (DELETE FROM kk WHERE ctid = (SELECT ctid FROM kk WHERE v = %d LIMIT 1) RETURNING 1) INSERT INTO kk SELECT %d, 'x' FROM d", rng.IntN(100), rng.IntN(100))
				}
				if _, err := conn.Exec(ctx, sql); err != nil {
					t.Errorf("load: %s: %v", sql, err)
					return
				}
				done.Add(1)
			}
		}(uint64(5 + w))
	}
	return stopper(t, stop, &wg, &done)
}

// bigSchema creates big (a keyed table of n rows) and kk (keyless, n/10
// rows), both published by the daemon's own publication.
func bigSchema(t *testing.T, conn *pgx.Conn, n int) {
	t.Helper()
	_, err := conn.Exec(context.Background(), fmt.Sprintf(`
		CREATE TABLE big (id int PRIMARY KEY, v int, pad text);
		INSERT INTO big SELECT g, g, md5(g::text) FROM generate_series(1, %d) g;
		CREATE TABLE kk (v int, w text);
		ALTER TABLE kk REPLICA IDENTITY FULL;
		INSERT INTO kk SELECT g %% 100, 'w' FROM generate_series(1, %d) g;`, n, n/10))
	if err != nil {
		t.Fatal(err)
	}
}

var bigTables = [][2]string{{"public", "big"}, {"public", "kk"}}

// chunkRows sums the rows of the "reload chunk" lines of a daemon's output.
func chunkRows(out string) int {
	n := 0
	for _, m := range regexp.MustCompile(`msg="reload chunk".* rows=(\d+)`).FindAllStringSubmatch(out, -1) {
		var r int
		fmt.Sscan(m[1], &r)
		n += r
	}
	return n
}

// TestReloadKilled reloads a keyed table of 1M rows (and a keyless one)
// while 500 updates per second hit them, killing the daemon with SIGKILL
// twice mid-reload: each restart goes on from the last chunk the
// checkpoint covers, and the result, in an S3 destination, is exact.
func TestReloadKilled(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	const n = 1_000_000
	bigSchema(t, conn, n)
	if err := s3srv.CreateBucket(ctx, "e2e-reload"); err != nil {
		t.Fatal(err)
	}
	dest := "s3://e2e-reload/r"
	args := []string{"run", "--source", dsn, "--dest", dest, "--slot", "reloadkill",
		"--flush-interval", "500ms", "--status-interval", "500ms", "--reload-chunk-size", "2MB", "--lease-ttl", "3s"}
	d := start(t, args...)
	waitConfirmed(t, conn, "reloadkill", 1, d, 3*time.Minute)
	loaded := updateLoad(t, dsn, n, 500)
	began := time.Now()
	if _, stderr, code := runOps(t, "reload", "--dest", dest, "--tables", "public.big,public.kk"); code != 0 {
		t.Fatalf("cdc2s3 reload: exit %d\n%s", code, stderr)
	}
	chunk := regexp.MustCompile(`msg="reload chunk"`)
	read := 0
	for kill := 0; kill < 2; kill++ {
		waitLog(t, d, chunk, 3, 3*time.Minute)
		d.kill()
		read += chunkRows(d.out.String())
		t.Logf("killed the daemon after %d chunks (%d rows read so far)", len(chunk.FindAllString(d.out.String(), -1)), read)
		d = start(t, args...)
	}
	// Done when the saved state holds no reload: the small keyless table's
	// may be done before a kill, also without its "reload complete" line
	// (its marker checkpointed, the process killed before it logged).
	waitLog(t, d, regexp.MustCompile(`reload complete.*table=public.big `), 1, 5*time.Minute)
	waitNoReloads(t, "e2e-reload", "r/", time.Minute)
	read += chunkRows(d.out.String())
	txns := loaded()
	waitConfirmed(t, conn, "reloadkill", currentLSN(t, conn), d, 2*time.Minute)
	d.stop(t)
	t.Logf("%d update transactions during the reload (%.0f/s); %d rows read by the reload in all (%d in the tables)", txns, float64(txns)/time.Since(began).Seconds(), read, n+n/10)
	// A restart goes on from the last chunk done: all three runs together
	// read the tables about once, not once per run. (The count is of the
	// chunks the engine logged: one written just before a kill is done
	// but not logged.)
	if read > (n+n/10)*3/2 {
		t.Errorf("the reload read %d rows for %d: the restarts began again instead of going on", read, n+n/10)
	}
	out := t.TempDir()
	download(t, "e2e-reload", "r/", out)
	compareTables(t, conn, out, bigTables)
	checkNoDuplicates(t, out, bigTables)
}

// waitNoReloads waits until the state of the S3 destination bucket/prefix
// records no running reload.
func waitNoReloads(t *testing.T, bucket, prefix string, timeout time.Duration) {
	t.Helper()
	var st lsnstore.State
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		out, err := s3srv.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(prefix + lsnstore.StateKey)})
		if err != nil {
			continue
		}
		err = json.NewDecoder(out.Body).Decode(&st)
		out.Body.Close()
		if err == nil && len(st.Reloads) == 0 {
			return
		}
	}
	t.Fatalf("s3://%s/%s still records reloads after %s: %+v", bucket, prefix, timeout, st.Reloads)
}

// TestReloadReaderSees polls a folder every second while a keyed and a
// keyless table are reloaded under updates that keep their row counts: the
// independent reader's current state never has a row too many (L rows
// counted before their reload's marker) or too few (the marker visible
// before every L row, or the cut taking rows with it).
func TestReloadReaderSees(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	const n = 50_000
	bigSchema(t, conn, n)
	out := t.TempDir()
	d := start(t, "run", "--source", dsn, "--dest", out, "--slot", "reloadpoll",
		"--flush-interval", "300ms", "--status-interval", "300ms", "--reload-chunk-size", "64kB", "--reload-rate", "120kB")
	waitConfirmed(t, conn, "reloadpoll", 1, d, 3*time.Minute)
	tables := map[string]oracle.Table{}
	for _, st := range bigTables {
		ot, err := oracle.TableFromCatalog(ctx, conn, st[0], st[1])
		if err != nil {
			t.Fatal(err)
		}
		tables[st[1]] = ot
	}
	loaded := updateLoad(t, dsn, n, 300)
	if _, stderr, code := runOps(t, "reload", "--dest", out, "--tables", "public.big,public.kk"); code != 0 {
		t.Fatalf("cdc2s3 reload: exit %d\n%s", code, stderr)
	}
	complete := regexp.MustCompile(`reload complete`)
	polls := 0
	want := map[string]int{"big": n, "kk": n / 10}
	for len(complete.FindAllString(d.out.String(), -1)) < 2 {
		if polls > 300 {
			t.Fatalf("the reloads did not complete within %d polls\n%s", polls, tail(d.out.String(), 30))
		}
		for name, ot := range tables {
			rows, err := oracle.State(ctx, oracle.TableDir(out, ot.Schema, ot.Name), ot)
			if err != nil {
				t.Fatalf("poll %d: %s: %v", polls, name, err)
			}
			if len(rows) != want[name] {
				t.Fatalf("poll %d during the reload: %s has %d rows in the folder's current state, the source always %d", polls, name, len(rows), want[name])
			}
		}
		polls++
		time.Sleep(time.Second)
	}
	txns := loaded()
	waitConfirmed(t, conn, "reloadpoll", currentLSN(t, conn), d, 2*time.Minute)
	d.stop(t)
	t.Logf("%d polls during the reloads, %d update transactions", polls, txns)
	// Two workers (the default): the keyless table's read began (its cut)
	// while the keyed one was still being reloaded.
	kkCut := regexp.MustCompile(`reload started" table=public.kk reload=\S+ lsn=0/[1-9A-F]`).FindStringIndex(d.out.String())
	bigDone := regexp.MustCompile(`reload complete.*table=public.big`).FindStringIndex(d.out.String())
	if kkCut == nil || bigDone == nil || kkCut[0] > bigDone[0] {
		t.Errorf("the two tables were not reloaded at the same time (kk's cut at %v, big complete at %v)", kkCut, bigDone)
	}
	if polls < 3 {
		t.Errorf("only %d polls during the reloads: too short to tell", polls)
	}
	compareTables(t, conn, out, bigTables)
}

// TestReloadJoinedWhileDown adds a populated table to the publication
// while the daemon is stopped and changes nothing in it: the next start
// finds a published table the destination has never seen and reloads it.
// A reload requested meanwhile says that no daemon runs, and the next
// start does it.
func TestReloadJoinedWhileDown(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, `
		CREATE TABLE a (id int PRIMARY KEY, v int);
		INSERT INTO a SELECT g, g FROM generate_series(1, 10) g;
		CREATE TABLE c (id bigint PRIMARY KEY, v text);
		INSERT INTO c SELECT g, 'c' || g FROM generate_series(1, 5000) g;
		CREATE PUBLICATION p FOR TABLE a;`); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	args := []string{"run", "--source", dsn, "--dest", out, "--slot", "joindown", "--publication", "p", "--flush-interval", "300ms"}
	d := start(t, args...)
	waitLog(t, d, regexp.MustCompile(`msg=streaming`), 1, 2*time.Minute)
	d.stop(t)
	if _, err := conn.Exec(ctx, "ALTER PUBLICATION p ADD TABLE c"); err != nil {
		t.Fatal(err)
	}
	// A request while no daemon runs says so, and waits for one.
	stdout, stderr, code := runOps(t, "reload", "--dest", out, "--tables", "public.a")
	if code != 0 || !strings.Contains(stdout, "no cdc2s3 run holds") {
		t.Fatalf("cdc2s3 reload with no daemon: exit %d\n%s%s", code, stdout, stderr)
	}
	d = start(t, args...)
	waitLog(t, d, regexp.MustCompile(`reload complete.* table=public.c `), 1, 2*time.Minute)
	waitLog(t, d, regexp.MustCompile(`reload complete.* table=public.a `), 1, 2*time.Minute)
	waitConfirmed(t, conn, "joindown", currentLSN(t, conn), d, time.Minute)
	d.stop(t)
	compareTables(t, conn, out, [][2]string{{"public", "a"}, {"public", "c"}})
}

// TestReloadPartitionTree changes the partition tree of a table published
// through its root, none of which the stream carries as changes of the
// root's rows: a partition detached (its rows leave the root; with FOR ALL
// TABLES it becomes a published table of its own, which joins), a
// populated table attached, a partition dropped, one truncated. The
// daemon's check of the tree reloads the root after each, and the root's
// folder (and the detached table's) match the source throughout the
// changes of a load.
func TestReloadPartitionTree(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, `
		CREATE TABLE pt (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
		CREATE TABLE p1 PARTITION OF pt FOR VALUES FROM (0) TO (1000);
		CREATE TABLE p2 PARTITION OF pt FOR VALUES FROM (1000) TO (2000);
		CREATE TABLE p3 PARTITION OF pt FOR VALUES FROM (2000) TO (3000);
		INSERT INTO pt SELECT g, 'v' || g FROM generate_series(0, 2999) g;
		CREATE TABLE p4 (id int PRIMARY KEY, v text);
		INSERT INTO p4 SELECT g, 'p4-' || g FROM generate_series(3000, 3999) g;`); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	d := start(t, "run", "--source", dsn, "--dest", out, "--slot", "tree", "--flush-interval", "300ms", "--status-interval", "300ms")
	waitLog(t, d, regexp.MustCompile(`msg=streaming`), 1, 2*time.Minute)
	// Changes of p1's rows all along (p1 is never detached or dropped).
	lconn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var updates atomic.Int64
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer lconn.Close(ctx)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if _, err := lconn.Exec(ctx, fmt.Sprintf("UPDATE pt SET v = 'u%d' WHERE id = %d", i, i%1000)); err != nil {
				t.Errorf("load: %v", err)
				return
			}
			updates.Add(1)
		}
	}()
	loaded := stopper(t, stop, &wg, &updates)
	reloads := regexp.MustCompile(`reload complete.* table=public.pt `)
	steps := []struct{ what, sql string }{
		{"detach p2", "ALTER TABLE pt DETACH PARTITION p2"},
		{"attach p4", "ALTER TABLE pt ATTACH PARTITION p4 FOR VALUES FROM (3000) TO (4000)"},
		{"drop p3", "DROP TABLE p3"},
		{"truncate p1", "TRUNCATE p1; INSERT INTO pt VALUES (1, 'after the truncate')"},
	}
	for i, step := range steps {
		if _, err := conn.Exec(ctx, step.sql); err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		changed := time.Now()
		waitLog(t, d, reloads, i+1, 2*time.Minute)
		t.Logf("%s: root reloaded %s later", step.what, time.Since(changed).Round(100*time.Millisecond))
	}
	// How the changes were found: the stream sends the root's relation
	// again after each (the updates go on through the root), which checks
	// at once, unless the timed check came first.
	t.Logf("%d of the tree changes were found when the stream sent the relation again",
		strings.Count(d.out.String(), "seen when the stream sent the relation again"))
	waitLog(t, d, regexp.MustCompile(`reload complete.* table=public.p2 `), 1, 2*time.Minute)
	t.Logf("%d updates during the changes of the tree", loaded())
	waitConfirmed(t, conn, "tree", currentLSN(t, conn), d, time.Minute)
	d.stop(t)
	compareTables(t, conn, out, [][2]string{{"public", "pt"}, {"public", "p2"}})
	compareCatalog(t, conn, out, [][2]string{{"public", "pt"}, {"public", "p2"}})
}

// TestInitialLoadChunks runs the first load with --initial-load chunks
// under updates, killing the daemon once mid-load: the keyless table loads
// in the slot's snapshot (LOAD files), the keyed one through the reload
// engine's chunks once streaming (no LOAD file, L rows), the restart goes
// on from the last chunk done, and both folders match the source.
func TestInitialLoadChunks(t *testing.T) {
	dsn, conn := newDatabase(t)
	const n = 300_000
	bigSchema(t, conn, n)
	out := t.TempDir()
	args := []string{"run", "--source", dsn, "--dest", out, "--slot", "firstchunks", "--initial-load", "chunks",
		"--flush-interval", "300ms", "--status-interval", "300ms", "--reload-chunk-size", "512kB", "--lease-ttl", "3s"}
	loaded := updateLoad(t, dsn, n, 300)
	d := start(t, args...)
	chunk := regexp.MustCompile(`msg="reload chunk".*table=public.big`)
	waitLog(t, d, chunk, 3, 3*time.Minute)
	waitChunksSaved(t, out, "big", 2*time.Minute)
	d.kill()
	first := chunkRows(d.out.String())
	if !strings.Contains(d.out.String(), "load in chunks once streaming") {
		t.Errorf("the first run did not say that the keyed table loads in chunks:\n%s", tail(d.out.String(), 30))
	}
	d = start(t, args...)
	waitLog(t, d, regexp.MustCompile(`reload complete.*table=public.big`), 1, 5*time.Minute)
	second := chunkRows(d.out.String())
	txns := loaded()
	waitConfirmed(t, conn, "firstchunks", currentLSN(t, conn), d, 2*time.Minute)
	d.stop(t)
	t.Logf("%d rows read in chunks before the kill, %d after; %d update transactions", first, second, txns)
	if first == 0 || second >= n {
		t.Errorf("the restart read %d of %d rows (%d before the kill): it began again instead of going on", second, n, first)
	}
	if strings.Contains(d.out.String(), "reload complete table=public.kk") {
		t.Errorf("the keyless table was reloaded: it belongs in the snapshot")
	}
	loads := map[string]int{}
	for _, name := range []string{"big", "kk"} {
		entries, err := os.ReadDir(oracle.TableDir(out, "public", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "LOAD") {
				loads[name]++
			}
		}
	}
	if loads["big"] != 0 || loads["kk"] == 0 {
		t.Errorf("LOAD files: %v; want none of big (loaded in chunks) and some of kk (in the snapshot)", loads)
	}
	compareTables(t, conn, out, bigTables)
	checkNoDuplicates(t, out, bigTables)
}

// TestInitialLoadAuto runs the first load with the default --initial-load
// auto and a small --initial-load-snapshot-max: the largest table with a
// key loads in chunks once streaming (no LOAD file), a small keyed table
// and the keyless one in the slot's snapshot, and every folder matches the
// source, under updates.
func TestInitialLoadAuto(t *testing.T) {
	dsn, conn := newDatabase(t)
	const n = 100_000
	bigSchema(t, conn, n)
	if _, err := conn.Exec(context.Background(), `
		CREATE TABLE small (id int PRIMARY KEY, v text);
		INSERT INTO small SELECT g, md5(g::text) FROM generate_series(1, 1000) g`); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	loaded := updateLoad(t, dsn, n, 200)
	d := start(t, "run", "--source", dsn, "--dest", out, "--slot", "firstauto", "--initial-load-snapshot-max", "2MB",
		"--flush-interval", "300ms", "--status-interval", "300ms", "--reload-chunk-size", "1MB")
	waitLog(t, d, regexp.MustCompile(`reload complete.*table=public.big`), 1, 5*time.Minute)
	txns := loaded()
	waitConfirmed(t, conn, "firstauto", currentLSN(t, conn), d, 2*time.Minute)
	d.stop(t)
	t.Logf("%d update transactions during the load", txns)
	if !regexp.MustCompile(`load in chunks once streaming.*initial_load=auto chunked_tables="?\[public.big\]`).MatchString(d.out.String()) {
		t.Errorf("the daemon did not say that public.big alone loads in chunks:\n%s", tail(d.out.String(), 30))
	}
	loads := map[string]int{}
	for _, name := range []string{"big", "kk", "small"} {
		entries, err := os.ReadDir(oracle.TableDir(out, "public", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "LOAD") {
				loads[name]++
			}
		}
	}
	if loads["big"] != 0 || loads["kk"] == 0 || loads["small"] == 0 {
		t.Errorf("LOAD files: %v; want none of big (loaded in chunks) and some of kk and small (in the snapshot)", loads)
	}
	tables := append([][2]string{{"public", "small"}}, bigTables...)
	compareTables(t, conn, out, tables)
	checkNoDuplicates(t, out, tables)
}

// waitChunksSaved waits until the checkpoint in the local destination dir
// records chunks done of a running reload of public.table, so a restart
// has something to go on from.
func waitChunksSaved(t *testing.T, dir, table string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var st lsnstore.State
		if b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(lsnstore.StateKey))); err == nil && json.Unmarshal(b, &st) == nil {
			for _, r := range st.Reloads {
				if r.Table == table && len(r.LastKey) > 0 {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the checkpoint of %s recorded no chunk of %s within %s", dir, table, timeout)
}

// TestReloadDuringDDL changes a table's columns while the first load reads
// it in chunks (--initial-load chunks), each DDL followed by updates of
// rows across every chunk's range: a column added with a default, one
// dropped, a type changed (a rewrite), one added without a default. A
// fault delay holds each chunk between its read and its high watermark,
// which is where a DDL waiting for the chunk's lock lands: the writer must
// drop such a chunk and the engine read it again, or its rows miss the
// new column's values. The folder matches the source after. (ADD COLUMN
// ... DEFAULT random() is left out: it writes values no change in the WAL
// carries, for the stream as for a reload; docs/reload.md section 3.)
func TestReloadDuringDDL(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	const n = 100_000
	bigSchema(t, conn, n)
	out := t.TempDir()
	d := startEnv(t, []string{faultpoint.DelayEnvVar + "=" + faultpoint.ReloadBeforeHigh + ":700ms"},
		"run", "--source", dsn, "--dest", out, "--slot", "chunkddl", "--initial-load", "chunks",
		"--flush-interval", "300ms", "--status-interval", "300ms", "--reload-chunk-size", "256kB")
	chunk := regexp.MustCompile(`msg="reload chunk".*table=public.big`)
	waitLog(t, d, chunk, 2, 3*time.Minute)
	for _, sql := range []string{
		"ALTER TABLE big ADD COLUMN extra int DEFAULT 7",
		"UPDATE big SET extra = id % 13 WHERE id % 100 = 0",
		"ALTER TABLE big DROP COLUMN pad",
		"UPDATE big SET v = v + 1 WHERE id % 97 = 0",
		"ALTER TABLE big ALTER COLUMN v TYPE bigint",
		"UPDATE big SET v = v * 2 WHERE id % 89 = 0",
		"ALTER TABLE big ADD COLUMN r float8",
		"UPDATE big SET r = 0.5 WHERE id % 83 = 0",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		if strings.HasPrefix(sql, "UPDATE") {
			time.Sleep(1500 * time.Millisecond)
		}
	}
	waitLog(t, d, regexp.MustCompile(`reload complete.*table=public.big`), 1, 5*time.Minute)
	waitConfirmed(t, conn, "chunkddl", currentLSN(t, conn), d, 2*time.Minute)
	d.stop(t)
	dropped := strings.Count(d.out.String(), "reload chunk dropped")
	t.Logf("%d chunks dropped and read again", dropped)
	if dropped == 0 {
		t.Errorf("no chunk was dropped: the DDL never landed in a chunk's window, so the test proved nothing")
	}
	compareTables(t, conn, out, bigTables)
	checkNoDuplicates(t, out, bigTables)
	compareCatalog(t, conn, out, bigTables)
}

// TestReloadWithoutDaemon reloads tables whose folders lost their LOAD
// files while no daemon runs: cdc2s3 reload --source runs the daemon itself
// (the destination's slot and publication), waits until the reloads are
// done, stops it gracefully and exits 0, and the folders are exact again.
func TestReloadWithoutDaemon(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	bigSchema(t, conn, 20_000)
	out := t.TempDir()
	d := start(t, "run", "--source", dsn, "--dest", out, "--slot", "nodaemon", "--flush-interval", "300ms")
	waitLog(t, d, regexp.MustCompile(`msg=streaming`), 1, 2*time.Minute)
	if _, err := conn.Exec(ctx, "UPDATE big SET v = -v WHERE id % 10 = 0"); err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, conn, "nodaemon", currentLSN(t, conn), d, time.Minute)
	d.stop(t)
	for _, table := range []string{"big", "kk"} {
		loads, _ := filepath.Glob(filepath.Join(oracle.TableDir(out, "public", table), "LOAD*.parquet"))
		for _, f := range loads {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
		if len(loads) == 0 {
			t.Fatalf("public.%s has no LOAD file to remove", table)
		}
	}
	if _, err := conn.Exec(ctx, "UPDATE big SET v = v + 1 WHERE id % 7 = 0"); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runOps(t, "reload", "--source", dsn, "--dest", out, "--tables", "public.big,public.kk")
	if code != 0 || !strings.Contains(stdout, "running the daemon here (slot nodaemon") || !strings.Contains(stdout, "reloads done") {
		t.Fatalf("cdc2s3 reload --source with no daemon: exit %d\n%s%s", code, stdout, tail(stderr, 20))
	}
	if rec, err := lsnstore.ReadLease(ctx, mustLocal(t, out)); err != nil || rec != nil {
		t.Errorf("after the reload the destination's lease is %+v (%v), want released", rec, err)
	}
	compareTables(t, conn, out, bigTables)
	checkNoDuplicates(t, out, bigTables)
}

// mustLocal opens a local destination directory as a store.
func mustLocal(t *testing.T, dir string) *localfs.Store {
	t.Helper()
	s, err := localfs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
