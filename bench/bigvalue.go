package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// bigValueRun is one full load of a table holding one large value.
type bigValueRun struct {
	Type  string // the column's type: jsonb, text or bytea
	Copy  string // "default", or "text" with --snapshot-text-copy
	Value int64  // bytes of the value as PostgreSQL prints it in binary
	Usage usage
}

// bigValueResult is phase F.
type bigValueResult struct {
	MiB  int64
	Runs []bigValueRun
}

// targetBigValue is issue 16's bound on the peak RSS of a full load of one
// large value: this many times the value's size.
const targetBigValue = 3

// bigValueSQL returns the INSERT of row 2 of a table whose column v is of
// type typ, a value of mib MiB (md5 digests: text that compresses little).
func bigValueSQL(typ string, mib int64) string {
	n := strconv.FormatInt(mib<<20/32, 10)
	agg := "(SELECT string_agg(md5(g::text), '') FROM generate_series(1, " + n + ") g)"
	switch typ {
	case "jsonb":
		// 32 bytes a digest, less the few of {"blob": ""}.
		return "INSERT INTO t VALUES (2, jsonb_build_object('blob', " + agg + "))"
	case "bytea":
		n2 := strconv.FormatInt(mib<<20/16, 10)
		return "INSERT INTO t VALUES (2, (SELECT decode(string_agg(md5(g::text), ''), 'hex') FROM generate_series(1, " + n2 + ") g))"
	}
	return "INSERT INTO t VALUES (2, " + agg + ")"
}

// runBigValue is phase F: for each type, a table of three rows whose
// middle one holds a value of BENCH_BIGVALUE_MB MiB, copied by `cdc2s3
// snapshot` (one worker), by the binary COPY and, when the binary knows the
// flag, by the text COPY; the figure is the peak RSS of the process.
func (b *bench) runBigValue(ctx context.Context) (*bigValueResult, error) {
	const db = "bench_bigvalue"
	r := &bigValueResult{MiB: b.cfg.BigValueMiB}
	copies := []string{"default"}
	if b.knowsTextCopy(ctx) {
		copies = append(copies, "text")
	}
	for _, typ := range b.cfg.BigValueTypes {
		b.say("F. one value of %d MiB: %s", r.MiB, typ)
		c, err := b.pg.createDB(ctx, db)
		if err != nil {
			return nil, err
		}
		for _, q := range []string{
			"CREATE TABLE t (id int PRIMARY KEY, v " + typ + ")",
			"ALTER TABLE t ALTER COLUMN v SET STORAGE EXTERNAL", // no compression: the value is its size on disk too
			"INSERT INTO t VALUES (1, NULL), (3, NULL)",
			bigValueSQL(typ, r.MiB),
			"VACUUM (FREEZE, ANALYZE) t",
			"CHECKPOINT",
		} {
			if _, err := c.Exec(ctx, q); err != nil {
				c.Close(ctx)
				return nil, fmt.Errorf("%.60s: %w", q, err)
			}
		}
		var size int64
		if err := c.QueryRow(ctx, "SELECT octet_length(v::text)::int8 FROM t WHERE id = 2").Scan(&size); err != nil {
			c.Close(ctx)
			return nil, err
		}
		if typ == "bytea" {
			size = (size - 2) / 2 // the hex text's size, less "\x"
		}
		c.Close(ctx)
		for _, cp := range copies {
			run, err := b.bigValueRun(ctx, db, typ, cp)
			if err != nil {
				return nil, err
			}
			run.Value = size
			r.Runs = append(r.Runs, run)
			b.say("   %-5s %-7s COPY: peak RSS %s, %.1f× the value (%s), %.2f s", typ, cp, bytesIEC(run.Usage.MaxRSS),
				float64(run.Usage.MaxRSS)/float64(size), bytesIEC(size), run.Usage.Wall.Seconds())
		}
		if err := b.pg.dropDB(ctx, db); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// bigValueRun runs one `cdc2s3 snapshot` of the big-value table.
func (b *bench) bigValueRun(ctx context.Context, db, typ, cp string) (bigValueRun, error) {
	tag := "bigvalue-" + typ + "-" + cp
	dir := filepath.Join(b.cfg.Work, tag)
	defer os.RemoveAll(dir)
	args := []string{b.cfg.CDC2S3, "snapshot", "--source", b.pg.DSN(db), "--snapshot-workers", "1",
		"--temp-dir", b.tempDir(), "--dest", dir, "--tables", "public.t"}
	if cp == "text" {
		args = append(args, "--snapshot-text-copy")
	}
	var out strings.Builder
	u, err := b.measure(ctx, tag, func() (usage, error) {
		os.RemoveAll(dir)
		out.Reset()
		return runProc(ctx, tag, b.logPath(tag), nil, &out, args...)
	})
	if err != nil {
		return bigValueRun{}, err
	}
	if m := snapshotTotal.FindStringSubmatch(out.String()); m == nil || m[2] != "3" {
		return bigValueRun{}, fmt.Errorf("%s did not copy 3 rows; it printed:\n%s", tag, out.String())
	}
	return bigValueRun{Type: typ, Copy: cp, Usage: u}, nil
}

// knowsTextCopy reports whether the binary under test has the flag that
// forces the text COPY (builds before it read text only).
func (b *bench) knowsTextCopy(ctx context.Context) bool {
	out, _ := exec.CommandContext(ctx, b.cfg.CDC2S3, "snapshot", "--snapshot-text-copy", "--source", "", "--dest", "").CombinedOutput()
	return !strings.Contains(string(out), "not defined")
}

// table renders phase F.
func (r *bigValueResult) table() *table {
	t := &table{head: []string{"type", "COPY format", "value", "peak RSS", "× value", "seconds", "process CPU s", "other load CPU s"}}
	for _, run := range r.Runs {
		t.add(run.Type, run.Copy, bytesIEC(run.Value), bytesIEC(run.Usage.MaxRSS),
			fmt.Sprintf("%.2f", float64(run.Usage.MaxRSS)/float64(run.Value)), secsOf(run.Usage), secs(run.Usage.CPU()), secs(run.Usage.Other))
	}
	return t
}

// verdicts are phase F's targets: the default COPY of each type.
func (r *bigValueResult) verdicts() []verdict {
	var v []verdict
	for _, run := range r.Runs {
		if run.Copy != "default" {
			continue
		}
		x := float64(run.Usage.MaxRSS) / float64(run.Value)
		v = append(v, verdict{x <= targetBigValue, fmt.Sprintf("full load of one %s value of %s: peak RSS ≤ %d× its size: %.2f× (%s)",
			run.Type, bytesIEC(run.Value), targetBigValue, x, bytesIEC(run.Usage.MaxRSS))})
	}
	return v
}
