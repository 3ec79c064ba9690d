package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
// table. It returns the number of transactions once stopped.
func reloadLoad(t *testing.T, dsn string, seed uint64, stop <-chan struct{}) func() int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	var wg sync.WaitGroup
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
	return func() int64 { wg.Wait(); return n.Load() }
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
			t.Fatalf("cdc2s3 did not log %q %d times within %s\n%s", re, count, timeout, tail(d.out.String(), 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var reloadTables = [][2]string{{"public", "a"}, {"public", "b"}, {"public", "k"}, {"public", "pt"}}

// TestReloadAddedTables adds two populated tables to the publication of a
// running pipeline, which then streams only their changes, and truncates
// one partition of a partitioned table published through its root (which
// pgoutput does not send), then reloads the three with `cdc2s3 reload`
// while a load changes them: afterwards every folder holds the source's
// rows, checked by the independent reader. Without the reload the added
// tables' existing rows are missing, their updated rows lack the
// unchanged TOASTed values, and the truncated partition's rows stay.
func TestReloadAddedTables(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	reloadSchema(t, conn, 40_000)
	out := t.TempDir()
	d := start(t, "run", "--source", dsn, "--dest", out, "--slot", "reload", "--publication", "p",
		"--flush-interval", "500ms", "--status-interval", "500ms", "--reload-chunk-size", "256kB")
	waitConfirmed(t, conn, "reload", 1, d, 2*time.Minute)
	if _, err := conn.Exec(ctx, "ALTER PUBLICATION p ADD TABLE b, k; TRUNCATE pt_a; INSERT INTO pt VALUES (5, 'after')"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	loaded := reloadLoad(t, dsn, 7, stop)
	time.Sleep(2 * time.Second) // changes of b and k before the reload
	stdout, stderr, code := runOps(t, "reload", "--dest", out, "--tables", "public.b,public.k,public.pt")
	if code != 0 || !strings.Contains(stdout, "reload requested") {
		t.Fatalf("cdc2s3 reload: exit %d\n%s%s", code, stdout, stderr)
	}
	waitLog(t, d, regexp.MustCompile(`reload complete`), 3, 3*time.Minute)
	time.Sleep(time.Second) // changes after the reload
	close(stop)
	txns := loaded()
	waitConfirmed(t, conn, "reload", currentLSN(t, conn), d, 2*time.Minute)
	d.stop(t)
	chunks := len(regexp.MustCompile(`msg="reload chunk"`).FindAllString(d.out.String(), -1))
	t.Logf("%d transactions of load; %d chunks", txns, chunks)
	if chunks < 10 {
		t.Errorf("the keyed reload read %d chunks, want many at --reload-chunk-size 256kB", chunks)
	}
	compareTables(t, conn, out, reloadTables)
	checkNoDuplicates(t, out, reloadTables)
}
