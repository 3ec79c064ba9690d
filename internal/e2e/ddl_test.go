package e2e

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// createParted creates parted, partitioned in two, with 1000 rows.
func createParted(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), `
		CREATE TABLE parted (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
		CREATE TABLE parted_a PARTITION OF parted FOR VALUES FROM (0) TO (500);
		CREATE TABLE parted_b PARTITION OF parted FOR VALUES FROM (500) TO (2000);
		INSERT INTO parted SELECT g, 'v' || g FROM generate_series(1, 1000) g`); err != nil {
		t.Fatal(err)
	}
}

// TestPartitionedAddColumnDefault adds a column with a default to a
// partitioned table while the daemon streams it. PostgreSQL keeps the
// value that existing rows take (attmissingval) on the partitions, never
// on the root whose folder the rows are in: the schema history must record
// it from the partitions, or rows written before the column merge to NULL
// instead of the default.
func TestPartitionedAddColumnDefault(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	createParted(t, conn)
	out := t.TempDir()
	d := start(t, "run", "--source", dsn, "--dest", out, "--slot", "partdefault", "--flush-interval", "300ms")
	waitConfirmed(t, conn, "partdefault", 1, d, 2*time.Minute)
	if _, err := conn.Exec(ctx, `INSERT INTO parted VALUES (1001, 'before')`); err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, conn, "partdefault", currentLSN(t, conn), d, time.Minute)
	if _, err := conn.Exec(ctx, `
		ALTER TABLE parted ADD COLUMN c int DEFAULT 7;
		UPDATE parted SET v = 'after' WHERE id IN (2, 600)`); err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, conn, "partdefault", currentLSN(t, conn), d, time.Minute)
	d.stop(t)
	compareTables(t, conn, out, [][2]string{{"public", "parted"}})
}

// TestAlterMidTransaction adds a column between two updates of one
// transaction. Both rows have the transaction's _cdc_lsn; the first was
// written without the column, and its row in the source has the default:
// the column's start must be the position (lsn, seq) of the first row with
// it, or the first row merges to NULL.
func TestAlterMidTransaction(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' FROM generate_series(1, 10) g`); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	d := start(t, "run", "--source", dsn, "--dest", out, "--slot", "midtxn", "--flush-interval", "300ms")
	waitConfirmed(t, conn, "midtxn", 1, d, 2*time.Minute)
	if _, err := conn.Exec(ctx, `
		BEGIN;
		UPDATE t SET v = 'before' WHERE id = 1;
		ALTER TABLE t ADD COLUMN c int DEFAULT 5;
		UPDATE t SET v = 'after' WHERE id = 2;
		INSERT INTO t VALUES (11, 'new');
		COMMIT`); err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, conn, "midtxn", currentLSN(t, conn), d, time.Minute)
	d.stop(t)
	compareTables(t, conn, out, [][2]string{{"public", "t"}})
}

// TestCatalogReadAfterVisible makes a transaction's commit reach the
// stream long before the transaction is visible: a synchronous standby
// that never confirms holds the committing backend after its commit record
// is written and flushed, which logical decoding has already sent. The
// transaction adds a column with a default to a partitioned table; the
// writer reads the column's missing value from the catalog and must wait
// until the transaction is visible, or it records none and every older
// row merges to NULL instead of the default (the race that made
// TestPartitionedAddColumnDefault fail once under load, made certain).
func TestCatalogReadAfterVisible(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	createParted(t, conn)
	out := t.TempDir()
	// The daemon's own commits (heartbeats) must not wait for the standby.
	d := startEnv(t, []string{"PGOPTIONS=-c synchronous_commit=local"}, "run", "--source", dsn, "--dest", out, "--slot", "visible", "--flush-interval", "300ms")
	waitLog(t, d, regexp.MustCompile(`msg=streaming`), 1, 2*time.Minute)
	syncStandby := func(ctx context.Context, setting string) error {
		for _, q := range []string{"ALTER SYSTEM " + setting, "SELECT pg_reload_conf()"} {
			if err := pg.Exec(ctx, "postgres", q); err != nil {
				return err
			}
		}
		return nil
	}
	if err := syncStandby(ctx, "SET synchronous_standby_names = 'nobody'"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := syncStandby(context.Background(), "RESET synchronous_standby_names"); err != nil {
			t.Error(err)
		}
	})
	time.Sleep(500 * time.Millisecond) // the reload reaches the backends
	ddl, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer ddl.Close(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := ddl.Exec(ctx, `ALTER TABLE parted ADD COLUMN c int DEFAULT 7; UPDATE parted SET v = 'after' WHERE id IN (2, 600)`)
		done <- err
	}()
	// The commit record is in the WAL and sent; the backend waits for the
	// standby, the transaction invisible to everyone else.
	var pid int
	deadline := time.Now().Add(30 * time.Second)
	for pid == 0 {
		err := conn.QueryRow(ctx, "SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE wait_event = 'SyncRep' AND datname = current_database()").Scan(&pid)
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the DDL transaction did not wait for the synchronous standby")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // long enough for the daemon to read the catalog if it does not wait
	if _, err := conn.Exec(ctx, "SELECT pg_cancel_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the DDL transaction: %v", err) // a cancelled wait commits with a warning, not an error
	}
	if err := syncStandby(ctx, "RESET synchronous_standby_names"); err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, conn, "visible", currentLSN(t, conn), d, time.Minute)
	d.stop(t)
	compareTables(t, conn, out, [][2]string{{"public", "parted"}})
}

// TestColumnAddedAgainUnchanged drops a column and adds it again under the
// same name and type, with a default, with no change of the table in
// between (and again inside one transaction): the stream sends the same
// relation as before, so only the column's new number (attnum) tells that
// every row not changed since now holds the default. Before the writer
// compared the numbers, the old values stayed in the merged state. The
// snapshot's histories record the numbers too, so a re-add between the
// full load and the first change is caught the same way. (u is re-added
// before its first change; t in two transactions with none between, and
// once in the transaction of a change.)
func TestColumnAddedAgainUnchanged(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, `
		CREATE TABLE t (id int PRIMARY KEY, c int, v text);
		INSERT INTO t SELECT g, g, 'v' FROM generate_series(1, 20) g;
		CREATE TABLE u (id int PRIMARY KEY, c text);
		INSERT INTO u SELECT g, 'old' FROM generate_series(1, 20) g`); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	d := start(t, "run", "--source", dsn, "--dest", out, "--slot", "readd", "--flush-interval", "300ms", "--status-interval", "300ms")
	waitConfirmed(t, conn, "readd", 1, d, 2*time.Minute)
	// u: re-added before any change of it reached the stream.
	if _, err := conn.Exec(ctx, `ALTER TABLE u DROP COLUMN c`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `ALTER TABLE u ADD COLUMN c text DEFAULT 'new'`); err != nil {
		t.Fatal(err)
	}
	// t: changed, then re-added in two transactions, then changed.
	for _, q := range []string{
		`UPDATE t SET v = 'before' WHERE id = 1`,
		`ALTER TABLE t DROP COLUMN c`,
		`ALTER TABLE t ADD COLUMN c int DEFAULT 7`,
		`UPDATE t SET v = 'after' WHERE id = 2`,
		`UPDATE u SET c = 'changed' WHERE id = 3`,
		// Once more in the transaction of the next change, once the daemon
		// has written the first: the writer reads the numbers from the
		// catalog as it is when it meets the relation, so a second re-add
		// already committed by then would be taken for the first
		// (docs/operations.md).
		"wait",
		`BEGIN; ALTER TABLE t DROP COLUMN c; ALTER TABLE t ADD COLUMN c int DEFAULT 9; UPDATE t SET v = 'last' WHERE id = 4; COMMIT`,
	} {
		if q == "wait" {
			waitConfirmed(t, conn, "readd", currentLSN(t, conn), d, time.Minute)
			continue
		}
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	waitConfirmed(t, conn, "readd", currentLSN(t, conn), d, time.Minute)
	d.stop(t)
	if n := strings.Count(d.out.String(), "a column was dropped and added again under its name"); n != 3 {
		t.Errorf("the daemon noticed %d columns added again, want 3", n)
	}
	compareTables(t, conn, out, [][2]string{{"public", "t"}, {"public", "u"}})
	compareCatalog(t, conn, out, [][2]string{{"public", "t"}, {"public", "u"}})
}
