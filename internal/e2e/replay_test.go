package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/jackc/pglogrepl"
)

// TestReplayAfterKeyDropped crashes the daemon after it uploaded a
// transaction of key-preserving updates but before it acknowledged it,
// then drops the table's primary key, then restarts. The transaction is
// replayed; whether each update is written as U or as D and I must be
// decided as it was the first time (from the stream, which logical
// decoding builds from the catalog as of the change), not from the catalog
// of the restart, or the replayed rows get other _cdc_seq and are written
// a second time.
func TestReplayAfterKeyDropped(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	// REPLICA IDENTITY FULL: the stream marks every column as identity,
	// so only the catalog tells the key.
	if _, err := conn.Exec(ctx, `CREATE TABLE t (id int PRIMARY KEY, v text); ALTER TABLE t REPLICA IDENTITY FULL;
		INSERT INTO t SELECT g, 'v' FROM generate_series(1, 5) g`); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	args := []string{"run", "--source", dsn, "--dest", out, "--slot", "replaykey", "--flush-interval", "300ms", "--heartbeat-interval", "0"}
	d := startEnv(t, []string{"CDC2S3_FAULTPOINT=after-upload"}, args...)
	waitConfirmed(t, conn, "replaykey", 1, d, 2*time.Minute)
	if _, err := conn.Exec(ctx, `UPDATE t SET v = 'x' WHERE id <= 3`); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
	case <-time.After(time.Minute):
		t.Fatalf("the fault point after the upload was not reached\n%s", tail(d.out.String(), 20))
	}
	if _, err := conn.Exec(ctx, `ALTER TABLE t DROP CONSTRAINT t_pkey`); err != nil {
		t.Fatal(err)
	}
	d = start(t, args...)
	waitConfirmed(t, conn, "replaykey", currentLSN(t, conn), d, time.Minute)
	d.stop(t)

	// The update's rows: three U rows at one LSN, seq 0, 1, 2, once each.
	rows := cdcRows(t, filepath.Join(out, "public", "t"))
	byLSN := map[pglogrepl.LSN][]cdcRow{}
	for _, r := range rows {
		byLSN[r.lsn] = append(byLSN[r.lsn], r)
	}
	if len(byLSN) != 1 {
		t.Fatalf("CDC rows at %d LSNs, want the one transaction: %+v", len(byLSN), rows)
	}
	for lsn, rs := range byLSN {
		if len(rs) != 3 {
			t.Errorf("%d rows at %s, want 3 (the replay wrote rows again): %+v", len(rs), lsn, rs)
		}
		for _, r := range rs {
			if r.op != "U" {
				t.Errorf("row %+v: want U", r)
			}
		}
	}
}

type cdcRow struct {
	op  string
	lsn pglogrepl.LSN
	seq int64
	ts  int64 // _cdc_commit_ts, microseconds since the epoch
}

// cdcRows reads Op, _cdc_commit_ts, _cdc_lsn and _cdc_seq of every CDC
// file in dir with arrow-go's column readers (none of them is ever NULL).
func cdcRows(t *testing.T, dir string) []cdcRow {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "CDC-*.parquet"))
	var out []cdcRow
	for _, f := range files {
		out = append(out, fileRows(t, f)...)
	}
	return out
}

// fileRows reads Op, _cdc_commit_ts, _cdc_lsn and _cdc_seq of one file.
func fileRows(t *testing.T, f string) []cdcRow {
	t.Helper()
	pf, err := file.OpenParquetFile(f, false)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	sc := pf.MetaData().Schema
	idx := func(name string) int {
		i := sc.ColumnIndexByName(name)
		if i < 0 {
			t.Fatalf("%s has no column %s", f, name)
		}
		return i
	}
	var out []cdcRow
	for g := 0; g < pf.NumRowGroups(); g++ {
		rg := pf.RowGroup(g)
		n := rg.NumRows()
		def := make([]int16, n)
		opR, err := rg.Column(idx("Op"))
		if err != nil {
			t.Fatal(err)
		}
		ops := make([]parquet.ByteArray, n)
		if _, _, err := opR.(*file.ByteArrayColumnChunkReader).ReadBatch(n, ops, def, nil); err != nil {
			t.Fatal(err)
		}
		ints := func(name string) []int64 {
			r, err := rg.Column(idx(name))
			if err != nil {
				t.Fatal(err)
			}
			v := make([]int64, n)
			if _, _, err := r.(*file.Int64ColumnChunkReader).ReadBatch(n, v, def, nil); err != nil {
				t.Fatal(err)
			}
			return v
		}
		lsns, seqs, tss := ints("_cdc_lsn"), ints("_cdc_seq"), ints("_cdc_commit_ts")
		for i := range ops {
			out = append(out, cdcRow{op: string(ops[i]), lsn: pglogrepl.LSN(lsns[i]), seq: seqs[i], ts: tss[i]})
		}
	}
	return out
}
