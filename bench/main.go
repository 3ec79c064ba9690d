// Command bench measures cdc2s3 against its baselines on this machine:
// the full load against psql's COPY, draining a replication backlog
// against pg_recvlogical, and commit-to-visible latency at a steady load.
// It prints a summary and writes the results into docs/benchmarks.md.
//
// It expects a running PostgreSQL with wal_level = logical and a local S3
// server: scripts/bench.sh (make bench) starts both, builds bin/cdc2s3 and
// this program, and runs it. Sizes come from BENCH_* environment
// variables; see docs/benchmarks.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is what to measure and where.
type config struct {
	Work   string // scratch directory: outputs, logs, temp files
	CDC2S3 string // the binary under test
	Doc    string // docs/benchmarks.md; "" to write nothing
	Phases map[string]bool

	SnapshotRows    int64
	SnapshotWorkers []int
	// LoadRepeat is how many times each full-load measurement (the COPY
	// baseline and every cdc2s3 snapshot) runs; the fastest is reported.
	LoadRepeat int
	// SnapshotCompressions are --compression values other than the
	// default to run with the first worker count.
	SnapshotCompressions []string
	// DistWorkers are the worker process counts of the distributed load
	// (snapshot --plan and --unit processes) in phase A; none: skipped.
	DistWorkers []int
	// DistChunk is its --snapshot-chunk-size: the size of a unit.
	DistChunk string

	Changes int64
	TxnSize int
	// StreamRepeat is how many times cdc2s3 drains the backlog into each
	// destination (each from a slot of its own); the fastest is the figure.
	StreamRepeat int
	// Transports are how the clients reach PostgreSQL ("tcp", "unix"):
	// phase B runs once over each, every other phase over the first.
	Transports []string

	LatencyRate     int
	LatencyTxnRows  int
	LatencyDuration time.Duration
	LatencyFlush    time.Duration

	BigTxnRows int64
	// ReloadRows is the size of the table phase E reloads, under
	// ReloadUpdateRate single-row updates per second.
	ReloadRows       int64
	ReloadUpdateRate int
	// BigValueMiB is the size of the one value of phase F, copied once
	// per type of BigValueTypes.
	BigValueMiB   int64
	BigValueTypes []string
	Perf          bool
	// QuietWait bounds the wait for other load on the machine to stop
	// before each measurement.
	QuietWait time.Duration
	// Custom names the BENCH_* size variables that were set.
	Custom []string
}

// bench is one run.
type bench struct {
	cfg      config
	pg       pgEnv
	s3       s3Env
	psql     string
	start    time.Time
	warnings []string
}

func main() {
	if err := run(); err != nil {
		killAll()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	b := &bench{start: time.Now()}
	flag.StringVar(&b.pg.TCP, "pg-tcp", "127.0.0.1", "PostgreSQL's TCP address (password: PGPASSWORD)")
	flag.StringVar(&b.pg.Socket, "pg-socket", "", "PostgreSQL's unix socket directory")
	flag.StringVar(&b.pg.Port, "pg-port", "5432", "PostgreSQL port")
	flag.StringVar(&b.pg.User, "pg-user", "postgres", "PostgreSQL superuser")
	flag.StringVar(&b.pg.BinDir, "pg-bin", "/usr/lib/postgresql/15/bin", "directory of psql and pg_recvlogical")
	flag.StringVar(&b.s3.Endpoint, "s3-endpoint", "", "local S3 server, http://127.0.0.1:PORT (credentials: BENCH_S3_ACCESS_KEY, BENCH_S3_SECRET_KEY)")
	flag.StringVar(&b.s3.Bucket, "s3-bucket", "bench", "bucket to create and write")
	flag.IntVar(&accounted.s3, "s3-pid", 0, "process id of the S3 server, for CPU accounting")
	flag.StringVar(&b.cfg.Work, "work", "", "scratch directory")
	flag.StringVar(&b.cfg.CDC2S3, "cdc2s3", "bin/cdc2s3", "the cdc2s3 binary")
	flag.StringVar(&b.cfg.Doc, "doc", "docs/benchmarks.md", `file to write the results into ("" for none)`)
	flag.Parse()
	b.s3.Access, b.s3.Secret = os.Getenv("BENCH_S3_ACCESS_KEY"), os.Getenv("BENCH_S3_SECRET_KEY")
	if err := b.cfg.fromEnv(); err != nil {
		return err
	}
	if b.pg.Socket == "" || b.cfg.Work == "" {
		return errors.New("-pg-socket and -work are required: run it through scripts/bench.sh (make bench)")
	}
	b.pg.Transport = b.cfg.Transports[0]
	if b.cfg.Phases["stream"] || b.cfg.Phases["latency"] {
		if b.s3.Endpoint == "" || b.s3.Access == "" {
			return errors.New("-s3-endpoint, BENCH_S3_ACCESS_KEY and BENCH_S3_SECRET_KEY are required for the stream and latency phases")
		}
	}
	var err error
	if b.cfg.CDC2S3, err = filepath.Abs(b.cfg.CDC2S3); err != nil {
		return err
	}
	b.psql = filepath.Join(b.pg.BinDir, "psql")
	for _, d := range []string{"logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(b.cfg.Work, d), 0o755); err != nil {
			return err
		}
	}

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	defer killAll()

	res := &results{Config: b.cfg}
	if res.Machine, err = b.machine(ctx); err != nil {
		return err
	}
	b.say("machine: %s", res.Machine.summary())
	if b.cfg.Phases["stream"] || b.cfg.Phases["latency"] {
		if err := b.s3.createBucket(ctx); err != nil {
			return err
		}
	}
	if b.cfg.Phases["load"] {
		if res.Load, err = b.runLoad(ctx); err != nil {
			return fmt.Errorf("full load: %w", err)
		}
	}
	if b.cfg.Phases["stream"] {
		for _, t := range b.cfg.Transports {
			b.pg.Transport = t
			s, err := b.runStream(ctx)
			if err != nil {
				return fmt.Errorf("streaming over %s: %w", transports[t], err)
			}
			res.Stream = append(res.Stream, s)
		}
		b.pg.Transport = b.cfg.Transports[0]
	}
	if b.cfg.Phases["latency"] {
		for _, d := range []*dest{localDest(filepath.Join(b.cfg.Work, "latency-local")), b.s3.dest("latency")} {
			var r *latencyRun
			for attempt := 1; ; attempt++ {
				if r, err = b.runLatency(ctx, d); err != nil {
					return fmt.Errorf("latency: %w", err)
				}
				if !contended(r.Usage) || attempt == 2 || b.cfg.Perf {
					break
				}
				b.say("   other processes used %.1f CPU s during it; measuring again", r.Usage.Other.Seconds())
			}
			res.Latency = append(res.Latency, r)
		}
	}
	if b.cfg.Phases["bigtxn"] && b.cfg.BigTxnRows > 0 {
		if res.BigTxn, err = b.runBigTxn(ctx); err != nil {
			return fmt.Errorf("large transaction: %w", err)
		}
	}
	if b.cfg.Phases["reload"] && b.cfg.ReloadRows > 0 {
		if res.Reload, err = b.runReload(ctx); err != nil {
			return fmt.Errorf("reload: %w", err)
		}
	}
	if b.cfg.Phases["bigvalue"] && b.cfg.BigValueMiB > 0 {
		if res.BigValue, err = b.runBigValue(ctx); err != nil {
			return fmt.Errorf("big value: %w", err)
		}
	}
	res.Elapsed = time.Since(b.start)
	res.Warnings = b.warnings

	fmt.Println()
	fmt.Print(res.text())
	if b.cfg.Doc != "" {
		if err := writeDoc(b.cfg.Doc, res.markdown()); err != nil {
			return err
		}
		fmt.Printf("\nresults written into %s\n", b.cfg.Doc)
	}
	return nil
}

// fromEnv reads the sizes from BENCH_* variables.
func (c *config) fromEnv() error {
	var errs []error
	num := func(name string, def int64) int64 {
		s := os.Getenv(name)
		if s == "" {
			return def
		}
		n, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a whole number, at least 0", name, s))
		}
		return n
	}
	dur := func(name string, def time.Duration) time.Duration {
		s := os.Getenv(name)
		if s == "" {
			return def
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			if n, err2 := strconv.Atoi(s); err2 == nil {
				return time.Duration(n) * time.Second
			}
			errs = append(errs, fmt.Errorf("%s=%q: want a duration such as 30s", name, s))
		}
		return d
	}
	for _, name := range []string{"BENCH_SNAPSHOT_ROWS", "BENCH_SNAPSHOT_WORKERS", "BENCH_SNAPSHOT_COMPRESSIONS", "BENCH_CHANGES", "BENCH_TXN_SIZE", "BENCH_LATENCY_RATE",
		"BENCH_LATENCY_TXN_ROWS", "BENCH_LATENCY_SECONDS", "BENCH_LATENCY_FLUSH", "BENCH_BIGTXN_ROWS", "BENCH_PHASES", "BENCH_PERF", "BENCH_LOAD_REPEAT", "BENCH_STREAM_REPEAT", "BENCH_TRANSPORTS", "BENCH_RELOAD_ROWS", "BENCH_RELOAD_UPDATE_RATE", "BENCH_BIGVALUE_MB", "BENCH_BIGVALUE_TYPES"} {
		if os.Getenv(name) != "" {
			c.Custom = append(c.Custom, name)
		}
	}
	c.SnapshotRows = num("BENCH_SNAPSHOT_ROWS", 5_000_000)
	c.LoadRepeat = int(num("BENCH_LOAD_REPEAT", 3))
	c.StreamRepeat = int(num("BENCH_STREAM_REPEAT", 2))
	c.Changes = num("BENCH_CHANGES", 1_000_000)
	c.TxnSize = int(num("BENCH_TXN_SIZE", 100))
	c.LatencyRate = int(num("BENCH_LATENCY_RATE", 1000))
	c.LatencyTxnRows = int(num("BENCH_LATENCY_TXN_ROWS", 10))
	c.LatencyDuration = dur("BENCH_LATENCY_SECONDS", 30*time.Second)
	c.LatencyFlush = dur("BENCH_LATENCY_FLUSH", time.Second)
	c.BigTxnRows = num("BENCH_BIGTXN_ROWS", 5_000_000)
	c.ReloadRows = num("BENCH_RELOAD_ROWS", 1_000_000)
	c.ReloadUpdateRate = int(num("BENCH_RELOAD_UPDATE_RATE", 200))
	c.BigValueMiB = num("BENCH_BIGVALUE_MB", 100)
	for _, t := range strings.Split(envOr("BENCH_BIGVALUE_TYPES", "jsonb,text,bytea"), ",") {
		switch t = strings.TrimSpace(t); t {
		case "jsonb", "text", "bytea":
			c.BigValueTypes = append(c.BigValueTypes, t)
		default:
			errs = append(errs, fmt.Errorf("BENCH_BIGVALUE_TYPES: %q is not jsonb, text or bytea", t))
		}
	}
	c.Perf = os.Getenv("BENCH_PERF") == "1"
	c.QuietWait = dur("BENCH_QUIET_WAIT", 20*time.Second)
	for _, s := range strings.Split(envOr("BENCH_SNAPSHOT_WORKERS", "1,2,4"), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("BENCH_SNAPSHOT_WORKERS: %q is not a positive number", s))
			continue
		}
		c.SnapshotWorkers = append(c.SnapshotWorkers, n)
	}
	for _, s := range strings.Split(envOr("BENCH_DISTLOAD_WORKERS", "1,2,4"), ",") {
		if s = strings.TrimSpace(s); s == "-" {
			break
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("BENCH_DISTLOAD_WORKERS: %q is not a positive number (or - for none)", s))
			continue
		}
		c.DistWorkers = append(c.DistWorkers, n)
	}
	c.DistChunk = envOr("BENCH_DISTLOAD_CHUNK", "64MB")
	for _, s := range strings.Split(envOr("BENCH_SNAPSHOT_COMPRESSIONS", "snappy,none"), ",") {
		if s = strings.TrimSpace(s); s != "" && s != "-" {
			c.SnapshotCompressions = append(c.SnapshotCompressions, s)
		}
	}
	for _, t := range strings.Split(envOr("BENCH_TRANSPORTS", "tcp,unix"), ",") {
		if t = strings.TrimSpace(t); transports[t] == "" || slices.Contains(c.Transports, t) {
			errs = append(errs, fmt.Errorf("BENCH_TRANSPORTS: %q is not tcp or unix, or is named twice", t))
			continue
		}
		c.Transports = append(c.Transports, t)
	}
	c.Phases = map[string]bool{}
	for _, p := range strings.Split(envOr("BENCH_PHASES", "load,stream,latency,bigtxn,reload,bigvalue"), ",") {
		switch p = strings.TrimSpace(p); p {
		case "load", "stream", "latency", "bigtxn", "reload", "bigvalue":
			c.Phases[p] = true
		default:
			errs = append(errs, fmt.Errorf("BENCH_PHASES: unknown phase %q (load, stream, latency, bigtxn, reload, bigvalue)", p))
		}
	}
	if c.LoadRepeat < 1 || c.StreamRepeat < 1 {
		errs = append(errs, errors.New("BENCH_LOAD_REPEAT and BENCH_STREAM_REPEAT >= 1, please"))
	}
	if c.SnapshotRows < 1 || c.Changes < 10 || c.TxnSize < 1 || c.LatencyRate < 1 || c.LatencyTxnRows < 1 || c.LatencyDuration < time.Second {
		errs = append(errs, errors.New("BENCH_SNAPSHOT_ROWS >= 1, BENCH_CHANGES >= 10, BENCH_TXN_SIZE, BENCH_LATENCY_RATE and BENCH_LATENCY_TXN_ROWS >= 1 and BENCH_LATENCY_SECONDS >= 1s, please"))
	}
	if os.Getenv("BENCH_DOC") != "" {
		c.Doc = os.Getenv("BENCH_DOC")
		if c.Doc == "none" {
			c.Doc = ""
		}
	}
	return errors.Join(errs...)
}

func envOr(name, def string) string {
	if s := os.Getenv(name); s != "" {
		return s
	}
	return def
}

// say prints a progress line with the time since the start.
func (b *bench) say(format string, args ...any) {
	fmt.Printf("[%6.1fs] %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
}

// warn prints a warning and keeps it for the report.
func (b *bench) warn(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	b.warnings = append(b.warnings, s)
	b.say("WARNING: %s", s)
}

// logPath is where process name logs; the name carries the transport,
// since phase B runs once per transport with the same process names.
func (b *bench) logPath(name string) string {
	return filepath.Join(b.cfg.Work, "logs", name+"-"+b.pg.Transport+".log")
}

// tempDir is cdc2s3's --temp-dir: spooled transactions and files being
// built.
func (b *bench) tempDir() string { return filepath.Join(b.cfg.Work, "tmp") }

// machine describes where the run happens.
type machine struct {
	Date       time.Time
	CPUs       int
	CPUModel   string
	Memory     int64
	Kernel     string
	Postgres   string
	PGSettings string
	CDC2S3     string
	Go         string
}

func (m machine) summary() string {
	return fmt.Sprintf("%d CPUs (%s), %s RAM, Linux %s; %s; cdc2s3 %s",
		m.CPUs, m.CPUModel, bytesIEC(m.Memory), m.Kernel, m.Postgres, m.CDC2S3)
}

func (b *bench) machine(ctx context.Context) (machine, error) {
	m := machine{Date: time.Now(), CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if s, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(s), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if s, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(s), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				m.Memory = kb * 1024
			}
		}
	}
	if s, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(s))
	}
	if out, err := exec.CommandContext(ctx, b.cfg.CDC2S3, "--version").Output(); err == nil {
		m.CDC2S3 = strings.TrimPrefix(strings.TrimSpace(string(out)), "cdc2s3 version ")
	}
	c, err := b.pg.connect(ctx, "postgres")
	if err != nil {
		return m, err
	}
	defer c.Close(ctx)
	if err := c.QueryRow(ctx, "SELECT split_part(version(), ' on ', 1)").Scan(&m.Postgres); err != nil {
		return m, err
	}
	var wal string
	var backend int
	if err := c.QueryRow(ctx, "SELECT current_setting('wal_level'), pg_backend_pid()").Scan(&wal, &backend); err != nil {
		return m, err
	}
	// The backend's parent is the postmaster: the cluster's CPU time is
	// the postmaster's with its children's.
	if st, ok := readStat(strconv.Itoa(backend)); ok {
		accounted.postmaster = st.ppid
	} else {
		b.warn("cannot read /proc/%d/stat (is PostgreSQL on another machine?): no server CPU figures", backend)
	}
	if wal != "logical" {
		return m, fmt.Errorf("the server's wal_level is %s; the bench needs logical", wal)
	}
	var settings []string
	for _, name := range []string{"shared_buffers", "logical_decoding_work_mem", "max_wal_size", "fsync", "synchronous_commit", "autovacuum"} {
		var v string
		if err := c.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
			return m, err
		}
		settings = append(settings, name+" = "+v)
	}
	m.PGSettings = strings.Join(settings, ", ")
	return m, nil
}
