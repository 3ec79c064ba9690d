package e2e

import (
	"context"
	"testing"
	"time"
)

// TestPartitionedAddColumnDefault adds a column with a default to a
// partitioned table while the daemon streams it. PostgreSQL keeps the
// value that existing rows take (attmissingval) on the partitions, never
// on the root whose folder the rows are in: the schema history must record
// it from the partitions, or rows written before the column merge to NULL
// instead of the default.
func TestPartitionedAddColumnDefault(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, `
		CREATE TABLE parted (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
		CREATE TABLE parted_a PARTITION OF parted FOR VALUES FROM (0) TO (500);
		CREATE TABLE parted_b PARTITION OF parted FOR VALUES FROM (500) TO (2000);
		INSERT INTO parted SELECT g, 'v' || g FROM generate_series(1, 1000) g`); err != nil {
		t.Fatal(err)
	}
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
