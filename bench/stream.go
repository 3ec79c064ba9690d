package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
)

// publication is the publication cdc2s3 creates on its first start (FOR
// ALL TABLES); pg_recvlogical streams the same one.
const publication = "cdc2s3"

// drainTimeout bounds one drain of a backlog.
const drainTimeout = 20 * time.Minute

// drainRun is one consumer draining a backlog.
type drainRun struct {
	Name string
	Kind string // "pg_recvlogical", "pg_recvlogical v1", "local" or "s3"
	// Drain is from process start until it had everything: pg_recvlogical
	// reached --endpos; cdc2s3 logged the upload whose position is the
	// target (every change durable in the destination).
	Drain time.Duration
	// Acked is, for cdc2s3, from process start until the slot's
	// confirmed_flush_lsn reached the target.
	Acked   time.Duration
	Usage   usage // the whole process, start to exit (cdc2s3: including the graceful stop)
	Files   []fileInfo
	Rows    int64 // rows in the CDC files, read back from their footers
	Profile string
}

// streamResult is phase B (or D): one backlog drained by several consumers.
type streamResult struct {
	Changes, Inserts, Updates int64
	TxnSize                   int
	Generate                  time.Duration
	WALBytes                  uint64
	Target                    pglogrepl.LSN
	Options                   []string // cdc2s3's pgoutput options, which the baseline uses too
	Transport                 string   // how the clients reached PostgreSQL: "tcp" or "unix"
	Runs                      []drainRun
}

// runStream is phase B: a backlog of inserts (one transaction) and
// single-row updates (in transactions of TxnSize) drained by
// pg_recvlogical, cdc2s3 into a local directory and cdc2s3 into S3, each
// from its own slot created before the backlog.
func (b *bench) runStream(ctx context.Context) (*streamResult, error) {
	const db = "bench_stream"
	r := &streamResult{Changes: b.cfg.Changes, TxnSize: b.cfg.TxnSize, Transport: b.pg.Transport}
	r.Inserts = r.Changes * 8 / 10
	r.Updates = r.Changes - r.Inserts
	b.say("B. streaming over %s: backlog of %s changes (%s inserts in one transaction, %s single-row updates in transactions of %d)",
		r.transport(), thousands(r.Changes), thousands(r.Inserts), thousands(r.Updates), r.TxnSize)
	c, err := b.pg.createDB(ctx, db)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.WithoutCancel(ctx))

	// Each destination is drained StreamRepeat times, each time by a
	// daemon with a slot and a destination of its own.
	type consumer struct {
		slot, label string
		d           *dest
	}
	var consumers []consumer
	var locals []*dest
	for i := 1; i <= b.cfg.StreamRepeat; i++ {
		label := ""
		if b.cfg.StreamRepeat > 1 {
			label = fmt.Sprintf("(run %d)", i)
		}
		local := localDest(filepath.Join(b.cfg.Work, fmt.Sprintf("stream-local-%d", i)))
		os.RemoveAll(local.dir)
		locals = append(locals, local)
		consumers = append(consumers,
			consumer{fmt.Sprintf("bench_local_%d", i), label, local},
			consumer{fmt.Sprintf("bench_s3_%d", i), label, b.s3.dest(fmt.Sprintf("stream-%s-%d", b.pg.Transport, i))})
	}
	// First starts: each creates its slot (and the first one the
	// publication) with a full load of the still empty table.
	var same []string
	for _, x := range consumers {
		if same, err = b.firstStart(ctx, db, x.slot, x.d); err != nil {
			return nil, err
		}
	}
	r.Options = same
	// Baseline slots: pg_recvlogical with cdc2s3's pgoutput options drains
	// one first and one last, so neither order nor caching favours
	// cdc2s3; with the options (protocol 1: the server decodes a
	// large transaction to its disk and sends it at commit) one more.
	for _, slot := range []string{"bench_base_first", "bench_base_last", "bench_base_v1"} {
		if _, err := c.Exec(ctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", slot); err != nil {
			return nil, fmt.Errorf("baseline slot: %w", err)
		}
	}

	b.say("   generating the backlog")
	start := time.Now()
	from, err := currentLSN(ctx, c)
	if err != nil {
		return nil, err
	}
	if _, err := c.Exec(ctx, "INSERT INTO public.items "+rowsSQL("1", strconv.FormatInt(r.Inserts, 10))); err != nil {
		return nil, fmt.Errorf("insert backlog: %w", err)
	}
	if _, err := c.Exec(ctx, updateProc); err != nil {
		return nil, fmt.Errorf("create procedure: %w", err)
	}
	if r.Updates > 1 {
		// The last update is the marker transaction.
		if _, err := c.Exec(ctx, fmt.Sprintf("CALL bench_updates(%d, %d, %d)", r.Updates-1, r.TxnSize, max(r.Inserts, 1))); err != nil {
			return nil, fmt.Errorf("update backlog: %w", err)
		}
	}
	if err := b.endBacklog(ctx, c, r, from, start); err != nil {
		return nil, err
	}

	run, err := b.drainRecvlogical(ctx, db, "bench_base_first", "(first)", same, r.Target)
	if err != nil {
		return nil, err
	}
	r.Runs = append(r.Runs, run)
	for _, x := range consumers {
		run, err := b.drainDaemon(ctx, db, x.slot, x.d, r.Target, b.cfg.Perf && x.slot == "bench_local_1")
		if err != nil {
			return nil, err
		}
		run.Name = strings.TrimSpace(run.Name + " " + x.label)
		if run.Rows != r.Changes {
			b.warn("cdc2s3 into %s wrote %d rows to CDC files, want %d", x.d.Kind, run.Rows, r.Changes)
		}
		r.Runs = append(r.Runs, run)
	}
	run, err = b.drainRecvlogical(ctx, db, "bench_base_last", "(last)", same, r.Target)
	if err != nil {
		return nil, err
	}
	r.Runs = append(r.Runs, run)
	if !slices.Equal(same, recvlogicalV1) {
		run, err = b.drainRecvlogical(ctx, db, "bench_base_v1", "(proto_version=1)", recvlogicalV1, r.Target)
		if err != nil {
			return nil, err
		}
		run.Kind = "pg_recvlogical v1"
		r.Runs = append(r.Runs, run)
	}
	c.Close(ctx)
	if err := b.pg.dropDB(ctx, db); err != nil {
		return nil, err
	}
	for _, d := range locals {
		os.RemoveAll(d.dir)
	}
	return r, nil
}

// endBacklog ends a backlog begun at from (at time start) with the marker
// transaction, records its target, size and generation time in r, and
// checkpoints, so no measured drain pays for the checkpoint.
func (b *bench) endBacklog(ctx context.Context, c *pgx.Conn, r *streamResult, from pglogrepl.LSN, start time.Time) error {
	target, err := markerTxn(ctx, c, publication)
	if err != nil {
		return err
	}
	r.Target, r.Generate, r.WALBytes = target, time.Since(start), uint64(target-from)
	b.say("   generated in %s: %s of WAL, target LSN %s", r.Generate.Round(time.Second), bytesIEC(int64(r.WALBytes)), r.Target)
	_, err = c.Exec(ctx, "CHECKPOINT")
	return err
}

// runBigTxn is phase D: one transaction of BigTxnRows inserts, drained by
// pg_recvlogical and by cdc2s3 into a local directory, for cdc2s3's peak
// memory on a transaction far larger than its in-memory spool.
func (b *bench) runBigTxn(ctx context.Context) (*streamResult, error) {
	const db = "bench_bigtxn"
	r := &streamResult{Changes: b.cfg.BigTxnRows + 1, Inserts: b.cfg.BigTxnRows, Updates: 1, TxnSize: int(b.cfg.BigTxnRows), Transport: b.pg.Transport}
	b.say("D. one transaction of %s inserted rows", thousands(r.Inserts))
	c, err := b.pg.createDB(ctx, db)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	local := localDest(filepath.Join(b.cfg.Work, "bigtxn-local"))
	os.RemoveAll(local.dir)
	same, err := b.firstStart(ctx, db, "bench_big", local)
	if err != nil {
		return nil, err
	}
	r.Options = same
	if _, err := c.Exec(ctx, "SELECT pg_create_logical_replication_slot('bench_big_base', 'pgoutput')"); err != nil {
		return nil, fmt.Errorf("baseline slot: %w", err)
	}
	start := time.Now()
	from, err := currentLSN(ctx, c)
	if err != nil {
		return nil, err
	}
	if _, err := c.Exec(ctx, "INSERT INTO public.items "+rowsSQL("1", strconv.FormatInt(r.Inserts, 10))); err != nil {
		return nil, fmt.Errorf("insert: %w", err)
	}
	if err := b.endBacklog(ctx, c, r, from, start); err != nil {
		return nil, err
	}
	run, err := b.drainRecvlogical(ctx, db, "bench_big_base", "", same, r.Target)
	if err != nil {
		return nil, err
	}
	r.Runs = append(r.Runs, run)
	run, err = b.drainDaemon(ctx, db, "bench_big", local, r.Target, false)
	if err != nil {
		return nil, err
	}
	if run.Rows != r.Changes {
		b.warn("cdc2s3 wrote %d rows to CDC files, want %d", run.Rows, r.Changes)
	}
	r.Runs = append(r.Runs, run)
	c.Close(ctx)
	if err := b.pg.dropDB(ctx, db); err != nil {
		return nil, err
	}
	os.RemoveAll(local.dir)
	return r, nil
}

// daemon starts `cdc2s3 run`.
func (b *bench) daemon(name, db, slot string, d *dest, flush time.Duration) (*proc, error) {
	return startProc(name, b.logPath(name), d.Env, nil,
		b.cfg.CDC2S3, "run", "--source", b.pg.DSN(db), "--slot", slot, "--dest", d.URL,
		"--flush-interval", flush.String(), "--temp-dir", b.tempDir())
}

// firstStart runs cdc2s3 until it streams (it has created the publication
// if missing, its slot, and the full load), then stops it with SIGTERM. It
// returns the pgoutput options cdc2s3 asked for, as pg_recvlogical -o
// arguments, so that a baseline can ask the server for the same work.
func (b *bench) firstStart(ctx context.Context, db, slot string, d *dest) ([]string, error) {
	p, err := b.daemon(slot+"-first-start", db, slot, d, time.Second)
	if err != nil {
		return nil, err
	}
	if err := p.waitLog(ctx, "msg=streaming", 2*time.Minute); err != nil {
		p.kill()
		return nil, err
	}
	if err := p.stop(ctx, syscall.SIGTERM, time.Minute); err != nil {
		return nil, err
	}
	log, _ := os.ReadFile(p.logPath)
	// cdc2s3 logs protocol="proto_version '2'" when it has PostgreSQL
	// stream large transactions as they run (streaming 'on').
	if strings.Contains(string(log), "proto_version '2'") {
		return []string{"proto_version=2", "streaming=on", "messages=true"}, nil
	}
	return []string{"proto_version=1", "messages=true"}, nil
}

// recvlogicalV1 are the pgoutput options of the baseline command.
var recvlogicalV1 = []string{"proto_version=1"}

// drainRecvlogical times pg_recvlogical from its start until it has
// received the target position (--endpos: it exits there), the ceiling
// for any pgoutput consumer asking for the same options.
func (b *bench) drainRecvlogical(ctx context.Context, db, slot, label string, opts []string, target pglogrepl.LSN) (drainRun, error) {
	run := drainRun{Name: strings.TrimSpace("pg_recvlogical " + label), Kind: "pg_recvlogical"}
	b.say("   draining with pg_recvlogical -o %s", strings.Join(opts, " -o "))
	b.waitQuiet(ctx, "pg_recvlogical")
	args := []string{filepath.Join(b.pg.BinDir, "pg_recvlogical"), "-d", b.pg.DSN(db), "--slot", slot, "--start"}
	for _, o := range append(slices.Clone(opts), "publication_names="+publication) {
		args = append(args, "-o", o)
	}
	args = append(args, "-P", "pgoutput", "-f", os.DevNull, "--no-loop", "-E", target.String())
	p, err := startProc("pg_recvlogical", b.logPath(slot+"-recvlogical"), nil, nil, args...)
	if err != nil {
		return run, err
	}
	if err := p.wait(ctx, drainTimeout); err != nil {
		return run, err
	}
	run.Drain, run.Usage = p.usage.Wall, p.usage
	b.say("   %-28s %7.2fs", run.Name, run.Drain.Seconds())
	return run, nil
}

// drainDaemon restarts cdc2s3 on its slot and times it until the slot's
// confirmed position reaches the target: every change is in the
// destination and acknowledged. Then it stops it with SIGTERM.
func (b *bench) drainDaemon(ctx context.Context, db, slot string, d *dest, target pglogrepl.LSN, profile bool) (drainRun, error) {
	run := drainRun{Name: "cdc2s3 run --dest " + d.Kind, Kind: d.Kind}
	b.say("   draining with cdc2s3 into %s", d.Kind)
	b.waitQuiet(ctx, run.Name)
	w, err := watchSlot(ctx, b.pg, db, slot, target, 50*time.Millisecond)
	if err != nil {
		return run, err
	}
	p, err := b.daemon(slot+"-drain", db, slot, d, time.Second)
	if err != nil {
		w.finish()
		return run, err
	}
	var perf *proc
	if profile {
		perf = b.startPerf(p, slot)
	}
	at, err := w.waitReached(ctx, p, drainTimeout)
	if perf != nil {
		run.Profile = b.stopPerf(ctx, perf, slot)
	}
	if err != nil {
		w.finish()
		p.kill()
		return run, err
	}
	run.Acked = at.Sub(p.start)
	run.Drain = run.Acked
	if t, ok := uploadedAt(p.logPath, target); ok {
		run.Drain = t.Sub(p.start)
	} else {
		b.warn("%s: no \"uploaded\" log line with lsn >= %s; drain time is the slot's confirmation instead", run.Name, target)
	}
	err = p.stop(ctx, syscall.SIGTERM, time.Minute)
	w.finish()
	if err != nil {
		return run, err
	}
	run.Usage = p.usage
	if run.Files, err = d.files(ctx, "CDC-"); err != nil {
		return run, err
	}
	for _, f := range run.Files {
		n, err := d.rowCount(ctx, f)
		if err != nil {
			return run, err
		}
		run.Rows += n
	}
	b.say("   %-28s %7.2fs  (slot confirmed at %.2fs)  %d files", run.Name, run.Drain.Seconds(), run.Acked.Seconds(), len(run.Files))
	return run, nil
}

// perfData is where perf record writes the profile of process name (named
// like its log, with the transport).
func (b *bench) perfData(name string) string {
	return filepath.Join(b.cfg.Work, name+"-"+b.pg.Transport+".perf.data")
}

// startPerf samples a process's stacks with perf, when perf is installed.
func (b *bench) startPerf(p *proc, name string) *proc {
	perf, err := exec.LookPath("perf")
	if err != nil {
		b.warn("BENCH_PERF: perf is not installed; no profile")
		return nil
	}
	pp, err := startProc("perf record", b.logPath(name+"-perf"), nil, nil,
		perf, "record", "-F", "499", "-g", "-p", strconv.Itoa(p.pid()), "-o", b.perfData(name))
	if err != nil {
		b.warn("BENCH_PERF: %v", err)
		return nil
	}
	return pp
}

// stopPerf stops perf record and writes the flat profile next to the
// bench's logs, returning its path.
func (b *bench) stopPerf(ctx context.Context, pp *proc, name string) string {
	if !pp.exited() {
		pp.cmd.Process.Signal(syscall.SIGINT)
	}
	// perf record ends by the SIGINT it was sent: not an error.
	if err := pp.wait(ctx, time.Minute); err != nil && !strings.Contains(err.Error(), "signal: interrupt") {
		b.warn("BENCH_PERF: %v", err)
		return ""
	}
	out := filepath.Join(b.cfg.Work, name+".perf.txt")
	f, err := os.Create(out)
	if err != nil {
		b.warn("BENCH_PERF: %v", err)
		return ""
	}
	defer f.Close()
	if _, err := runProc(ctx, "perf report", b.logPath(name+"-perf-report"), nil, f,
		pp.cmd.Path, "report", "--stdio", "--no-children", "--sort", "symbol", "--percent-limit", "0.5",
		"-g", "none", "-i", b.perfData(name)); err != nil {
		b.warn("BENCH_PERF: %v", err)
		return ""
	}
	b.say("   CPU profile of %s: %s; the top of it:", name, out)
	if text, err := os.ReadFile(out); err == nil {
		n := 0
		for _, line := range strings.Split(string(text), "\n") {
			if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
				continue
			}
			fmt.Println("      " + strings.TrimSpace(line))
			if n++; n == 25 {
				break
			}
		}
	}
	return out
}

// uploadedAt returns the time of the first "uploaded" line in a cdc2s3 log
// (text format) whose lsn is at or past target: when the uploader had
// saved the checkpoint covering every change up to it.
func uploadedAt(logPath string, target pglogrepl.LSN) (time.Time, bool) {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return time.Time{}, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, "msg=uploaded ") {
			continue
		}
		var ts, lsn string
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "time="); ok {
				ts = v
			} else if v, ok := strings.CutPrefix(f, "lsn="); ok {
				lsn = v
			}
		}
		l, err := pglogrepl.ParseLSN(lsn)
		if err != nil || l < target {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return time.Time{}, false
		}
		return t, true
	}
	return time.Time{}, false
}
