package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cdc2s3/cdc2s3/internal/generate"
	"github.com/cdc2s3/cdc2s3/internal/logkey"
	"github.com/cdc2s3/cdc2s3/internal/scratch"
	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/pipeline"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/dest"
	"github.com/cdc2s3/cdc2s3/sink/pqfile"
	"github.com/cdc2s3/cdc2s3/snapshot"
	"github.com/cdc2s3/cdc2s3/source"
)

func env(name string) []string { return []string{"CDC2S3_" + name} }

// Flags shared by run and snapshot.
func sourceFlag() cli.Flag {
	return &cli.StringFlag{Name: "source", Usage: "PostgreSQL connection string (URL or key=value; PG* variables and ~/.pgpass apply)", EnvVars: env("SOURCE")}
}

func destFlags() []cli.Flag {
	return append(sseFlags(),
		&cli.StringFlag{Name: "dest", Usage: "destination: s3://bucket/prefix, file:///abs/path or a local path", EnvVars: env("DEST")},
		&cli.BoolFlag{Name: "s3-path-style", Usage: "use path-style S3 addressing (implied by a custom endpoint)", EnvVars: env("S3_PATH_STYLE")},
		&cli.StringFlag{Name: "compression", Value: "zstd", Usage: "Parquet compression: zstd, snappy or none", EnvVars: env("COMPRESSION")},
		&cli.StringFlag{Name: "max-file-size", Value: "256MB", Usage: "split LOAD files at this many uncompressed bytes", EnvVars: env("MAX_FILE_SIZE")},
		&cli.IntFlag{Name: "snapshot-workers", Value: snapshot.DefaultWorkers, Usage: "chunks copied at once during the full load, each on its own connection", EnvVars: env("SNAPSHOT_WORKERS")},
		&cli.StringFlag{Name: "snapshot-chunk-size", Value: "64MB", Usage: "split tables into chunks of about this much heap and TOAST on disk, copied in parallel and retried one by one", EnvVars: env("SNAPSHOT_CHUNK_SIZE")},
		&cli.StringFlag{Name: "tables", Usage: "comma-separated schema.table list (default: all tables)", EnvVars: env("TABLES")},
		&cli.BoolFlag{Name: "arrays-as-text", Usage: "write array columns as PostgreSQL's array text instead of LIST", EnvVars: env("ARRAYS_AS_TEXT")},
		&cli.StringFlag{Name: "temp-dir", Usage: "directory for files being built; each process works in a directory of its own under it and removes those of cdc2s3 processes that died (default: the system temp dir)", EnvVars: env("TEMP_DIR")},
		// Hidden: the same files either way; for comparisons and as a
		// fallback should a server refuse the binary COPY's output functions.
		&cli.BoolFlag{Name: "snapshot-text-copy", Hidden: true, Usage: "read the full load with COPY's text format instead of its binary format (the same files, at more CPU)", EnvVars: env("SNAPSHOT_TEXT_COPY")},
	)
}

// sseFlags are the server-side encryption flags of the commands that
// write objects.
func sseFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "s3-sse", Usage: "server-side encryption of every object written: AES256 (SSE-S3) or aws:kms (SSE-KMS); empty: the bucket's default encryption", EnvVars: env("S3_SSE")},
		&cli.StringFlag{Name: "s3-sse-kms-key-id", Usage: "with --s3-sse aws:kms: the KMS key (id, ARN or alias ARN); empty: the account's aws/s3 key", EnvVars: env("S3_SSE_KMS_KEY_ID")},
		&cli.BoolFlag{Name: "s3-bucket-key", Value: true, Usage: "with --s3-sse aws:kms: use an S3 Bucket Key, which cuts the KMS requests (and their cost) to a few", EnvVars: env("S3_BUCKET_KEY")},
	}
}

func openDest(c *cli.Context) (sink.Store, error) {
	if c.String("dest") == "" {
		return nil, cli.Exit("no destination: set --dest or CDC2S3_DEST (s3://bucket/prefix or a local directory)", 2)
	}
	return dest.Open(c.Context, c.String("dest"), dest.Options{
		PathStyle: c.Bool("s3-path-style"),
		SSE:       c.String("s3-sse"), KMSKeyID: c.String("s3-sse-kms-key-id"), BucketKey: c.Bool("s3-bucket-key"),
	})
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// runFlags are run's flags: its own, then the destination's.
func runFlags() []cli.Flag {
	return append([]cli.Flag{
		sourceFlag(),
		&cli.StringFlag{Name: "publication", Value: pipeline.DefaultPublication, Usage: "publication to use; created (all tables or --tables) when missing", EnvVars: env("PUBLICATION")},
		&cli.StringFlag{Name: "slot", Value: pipeline.DefaultSlot, Usage: "logical replication slot; created with a full load when missing", EnvVars: env("SLOT")},
		&cli.DurationFlag{Name: "flush-interval", Value: pipeline.DefaultFlushInterval, Usage: "seal and upload open files at least this often (sooner when the stream catches up after a backlog)", EnvVars: env("FLUSH_INTERVAL")},
		&cli.StringFlag{Name: "flush-size", Value: "32MB", Usage: "seal and upload once this many uncompressed bytes are pending (a quarter of it once the stream is caught up)", EnvVars: env("FLUSH_SIZE")},
		&cli.DurationFlag{Name: "status-interval", Value: pipeline.DefaultStatusInterval, Usage: "how often to report the acknowledged LSN to PostgreSQL", EnvVars: env("STATUS_INTERVAL")},
		&cli.DurationFlag{Name: "heartbeat-interval", Value: pipeline.DefaultHeartbeatInterval, Usage: "how often to write a heartbeat message in the source so an idle publication still advances the slot (0: off)", EnvVars: env("HEARTBEAT_INTERVAL")},
		&cli.BoolFlag{Name: "reconcile-publication", Usage: "when the publication exists and publishes other tables than --tables, change it to publish exactly --tables (ALTER PUBLICATION ... SET TABLE) instead of refusing to start", EnvVars: env("RECONCILE_PUBLICATION")},
		&cli.BoolFlag{Name: "stream-large-transactions", Value: true, Usage: "on PostgreSQL 14+, receive large transactions while they run (pgoutput protocol 2) and stage them on local disk until commit", EnvVars: env("STREAM_LARGE_TRANSACTIONS")},
		&cli.StringFlag{Name: "metrics-addr", Usage: "serve Prometheus /metrics, /healthz and /readyz on this address (e.g. :9187); off when empty", EnvVars: env("METRICS_ADDR")},
		&cli.BoolFlag{Name: "metrics-emf", Usage: "write the key metrics (lag, readiness, starts, throughput) to stdout as CloudWatch embedded metric format lines, which CloudWatch Logs turns into metrics with no agent (docs/deploy.md)", EnvVars: env("METRICS_EMF")},
		&cli.DurationFlag{Name: "metrics-emf-interval", Value: time.Minute, Usage: "how often --metrics-emf writes a line", EnvVars: env("METRICS_EMF_INTERVAL")},
		&cli.BoolFlag{Name: "pprof", Usage: "also serve Go's pprof profiles under /debug/pprof/ on --metrics-addr (off by default: they show the process's internals, and taking one costs CPU)", EnvVars: env("PPROF")},
		&cli.DurationFlag{Name: "dest-refused-timeout", Value: pipeline.DefaultRefusedTimeout, Usage: "how long to retry a destination that refuses writes (access denied, bucket gone, bad credentials) before stopping with the fix; outages are retried without limit", EnvVars: env("DEST_REFUSED_TIMEOUT")},
		&cli.DurationFlag{Name: "lease-ttl", Value: pipeline.DefaultLeaseTTL, Usage: "lifetime of the destination's single-writer lease; a successor on another host waits this long after a crash", EnvVars: env("LEASE_TTL")},
		&cli.StringFlag{Name: "initial-load", Value: pipeline.InitialLoadAuto, Usage: "how the first start loads the tables: auto (the largest tables with a key in short chunks while streaming, until what is left for the new slot's exported snapshot is at most --initial-load-snapshot-max), snapshot (all in the exported snapshot, one transaction held until the last is copied) or chunks (every table with a key in chunks, resumable after a crash; tables without one still in the snapshot); docs/reload.md", EnvVars: env("INITIAL_LOAD")},
		&cli.StringFlag{Name: "initial-load-snapshot-max", Value: "32GB", Usage: "with --initial-load auto: at most this much table data on disk (pg_table_size) is copied in the exported snapshot; larger tables with a key load in chunks", EnvVars: env("INITIAL_LOAD_SNAPSHOT_MAX")},
		&cli.StringFlag{Name: "reload-chunk-size", Value: "16MB", Usage: "a reload of a table with a key reads chunks of about this many bytes of values, each in its own short transaction", EnvVars: env("RELOAD_CHUNK_SIZE")},
		&cli.IntFlag{Name: "reload-workers", Value: pipeline.DefaultReloadWorkers, Usage: "tables reloaded at a time (also those of --initial-load chunks), each on two connections of its own and a temporary slot per chunk", EnvVars: env("RELOAD_WORKERS")},
		&cli.BoolFlag{Name: "reload-on-slot-replaced", Usage: "when the slot was dropped and created again (changes in between are in neither the destination nor the new slot), stream from the new slot and reload every table instead of refusing to start", EnvVars: env("RELOAD_ON_SLOT_REPLACED")},
		&cli.StringFlag{Name: "reload-rate", Value: "0", Usage: "cap a reload's reading at this many bytes per second (e.g. 20MB), so it cannot starve the stream; 0: no cap", EnvVars: env("RELOAD_RATE")},
		&cli.BoolFlag{Name: "date-partition", Usage: "put change files in date folders inside each table folder by commit date (DMS's DatePartitionEnabled; LOAD files stay at the top); readers read table folders recursively", EnvVars: env("DATE_PARTITION")},
		&cli.StringFlag{Name: "date-partition-sequence", Value: sink.DefaultDateSequence, Usage: "with --date-partition: the date folders' parts, YYYYMMDD, YYYYMMDDHH, YYYYMM, MMYYYYDD or DDMMYYYY (DMS's DatePartitionSequence)", EnvVars: env("DATE_PARTITION_SEQUENCE")},
		&cli.StringFlag{Name: "date-partition-delimiter", Value: sink.DefaultDateDelimiter, Usage: "with --date-partition: between the parts, SLASH, UNDERSCORE, DASH or NONE (DMS's DatePartitionDelimiter)", EnvVars: env("DATE_PARTITION_DELIMITER")},
		&cli.StringFlag{Name: "date-partition-timezone", Value: sink.DefaultDateTimeZone, Usage: "with --date-partition: the time zone the commit date is taken in, UTC or an IANA name such as Asia/Seoul (DMS's DatePartitionTimezone)", EnvVars: env("DATE_PARTITION_TIMEZONE")},
		&cli.StringFlag{Name: "glue-database", Usage: "keep the change tables and Athena views of every table in this Glue Data Catalog database, updated when a schema changes (an s3:// --dest; docs/analysts.md)", EnvVars: env("GLUE_DATABASE")},
		&cli.DurationFlag{Name: "shutdown-timeout", Value: 25 * time.Second, Usage: "after SIGTERM, abort if flushing takes longer than this (ECS waits 30s by default)", EnvVars: env("SHUTDOWN_TIMEOUT")},
	}, destFlags()...)
}

func runCommand(stop context.Context) *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "full load (first start only), then stream changes until SIGTERM",
		Flags: runFlags(),
		Action: func(c *cli.Context) error {
			log, err := newLogger(c)
			if err != nil {
				return cli.Exit(err, 2)
			}
			if c.Bool("pprof") && c.String("metrics-addr") == "" {
				return cli.Exit("--pprof serves the profiles on --metrics-addr: set it too", 2)
			}
			cfg, err := streamConfig(c)
			if err != nil {
				return cli.Exit(err, 2)
			}
			if err := cfg.Validate(); err != nil {
				return cli.Exit(err, 2)
			}
			store, err := openDest(c)
			if err != nil {
				return err
			}
			tmp, err := openScratch(c, log)
			if err != nil {
				return err
			}
			defer tmp.Close()
			cfg.TempDir = tmp.Path
			// The first signal flushes; past the timeout the flush is
			// abandoned, and a restart continues exactly all the same.
			ctx, cancel := context.WithCancel(c.Context)
			defer cancel()
			stopTimer := context.AfterFunc(stop, func() {
				time.AfterFunc(c.Duration("shutdown-timeout"), func() {
					log.Warn("shutdown timeout reached; aborting the flush", logkey.Timeout, c.Duration("shutdown-timeout"))
					cancel()
				})
			})
			defer stopTimer()
			cfg.Metrics = pipeline.NewMetrics()
			if addr := c.String("metrics-addr"); addr != "" {
				srv, err := serveMetrics(addr, metricsHandler(c, cfg.Metrics), log)
				if err != nil {
					return cli.Exit(err, 2)
				}
				defer srv.Close()
			}
			if c.Bool("metrics-emf") {
				if c.Duration("metrics-emf-interval") <= 0 {
					return cli.Exit("invalid --metrics-emf-interval: use a positive duration, e.g. 1m", 2)
				}
				go cfg.Metrics.EMF(ctx, c.App.Writer, c.Duration("metrics-emf-interval"), cfg.Slot)
			}
			if db := c.String("glue-database"); db != "" {
				keeper, err := glueKeeper(c, db, store, log)
				if err != nil {
					return err
				}
				cfg.HistoriesSaved = keeper.Changed
				go keeper.Run(ctx)
			}
			return pipeline.Run(ctx, stop, cfg, store, log)
		},
	}
}

// metricsHandler is what --metrics-addr serves: metrics and health, and
// the profiles with --pprof.
func metricsHandler(c *cli.Context, m *pipeline.Metrics) http.Handler {
	return m.Handler(pipeline.HandlerOptions{Pprof: c.Bool("pprof")})
}

func streamConfig(c *cli.Context) (pipeline.Config, error) {
	flushSize, err := parseSize(c.String("flush-size"))
	if err != nil {
		return pipeline.Config{}, fmt.Errorf("invalid --flush-size: %w", err)
	}
	maxFile, err := parseSize(c.String("max-file-size"))
	if err != nil {
		return pipeline.Config{}, fmt.Errorf("invalid --max-file-size: %w", err)
	}
	chunkSize, err := parseSize(c.String("snapshot-chunk-size"))
	if err != nil {
		return pipeline.Config{}, fmt.Errorf("invalid --snapshot-chunk-size: %w", err)
	}
	reloadChunk, err := parseSize(c.String("reload-chunk-size"))
	if err != nil {
		return pipeline.Config{}, fmt.Errorf("invalid --reload-chunk-size: %w", err)
	}
	var reloadRate int64
	if r := c.String("reload-rate"); r != "0" && r != "" {
		if reloadRate, err = parseSize(r); err != nil {
			return pipeline.Config{}, fmt.Errorf("invalid --reload-rate: %w (or 0 for no cap)", err)
		}
	}
	snapMax, err := parseSize(c.String("initial-load-snapshot-max"))
	if err != nil {
		return pipeline.Config{}, fmt.Errorf("invalid --initial-load-snapshot-max: %w", err)
	}
	var datePart *sink.DatePartition
	if c.Bool("date-partition") {
		if datePart, err = sink.ParseDatePartition(c.String("date-partition-sequence"), c.String("date-partition-delimiter"), c.String("date-partition-timezone")); err != nil {
			return pipeline.Config{}, fmt.Errorf("invalid --date-partition-*: %w", err)
		}
	}
	return pipeline.Config{
		DatePartition:          datePart,
		ReloadChunkSize:        reloadChunk,
		ReloadRate:             reloadRate,
		ReloadOnSlotReplaced:   c.Bool("reload-on-slot-replaced"),
		InitialLoad:            c.String("initial-load"),
		InitialLoadSnapshotMax: snapMax,
		ReloadWorkers:          c.Int("reload-workers"),
		Source:                 c.String("source"),
		Slot:                   c.String("slot"),
		Publication:            c.String("publication"),
		Tables:                 splitList(c.String("tables")),
		FlushInterval:          c.Duration("flush-interval"),
		FlushSize:              flushSize,
		StatusInterval:         c.Duration("status-interval"),
		HeartbeatInterval:      c.Duration("heartbeat-interval"),
		LeaseTTL:               c.Duration("lease-ttl"),
		RefusedTimeout:         c.Duration("dest-refused-timeout"),
		StreamLarge:            c.Bool("stream-large-transactions"),
		ReconcilePublication:   c.Bool("reconcile-publication"),
		Compression:            c.String("compression"),
		SnapshotWorkers:        c.Int("snapshot-workers"),
		SnapshotChunkSize:      chunkSize,
		MaxFileSize:            maxFile,
		TempDir:                c.String("temp-dir"),
		ArraysAsText:           c.Bool("arrays-as-text"),
		SnapshotTextCopy:       c.Bool("snapshot-text-copy"),
	}, nil
}

func reloadCommand() *cli.Command {
	return &cli.Command{
		Name:  "reload",
		Usage: "reload tables from the source into the same destination while the stream goes on: through the running daemon, or, with --source and no daemon, by running one until they are done (docs/reload.md)",
		Description: "Writes a request object under _cdc2s3/reload/requests/ in the destination; the daemon that holds the\n" +
			"destination picks it up within seconds and reloads each table in chunks. With no daemon running and --source\n" +
			"given, reload runs the daemon itself (slot and publication from the destination's state) until the tables are\n" +
			"reloaded, then stops it gracefully. --wait waits for a running daemon to finish them. Progress: cdc2s3 status.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "dest", Usage: "destination: s3://bucket/prefix, file:///abs/path or a local path", EnvVars: env("DEST")},
			&cli.BoolFlag{Name: "s3-path-style", Usage: "use path-style S3 addressing (implied by a custom endpoint)", EnvVars: env("S3_PATH_STYLE")},
			&cli.StringFlag{Name: "tables", Usage: "comma-separated schema.table list of the tables to reload (required)", EnvVars: env("TABLES")},
			&cli.StringFlag{Name: "source", Usage: "PostgreSQL connection string: when no daemon holds the destination, run one until the reloads are done", EnvVars: env("SOURCE")},
			&cli.BoolFlag{Name: "wait", Usage: "with a daemon running, wait until it has done the reloads, printing their progress"},
			&cli.StringFlag{Name: "temp-dir", Usage: "with --source and no daemon: directory for files being built (default: the system temp dir)", EnvVars: env("TEMP_DIR")},
		}, sseFlags()...),
		Action: func(c *cli.Context) error {
			tables := splitList(c.String("tables"))
			if len(tables) == 0 {
				return cli.Exit("no tables: name the tables to reload with --tables schema.table,...", 2)
			}
			store, err := openDest(c)
			if err != nil {
				return err
			}
			lease, err := lsnstore.ReadLease(c.Context, store)
			if err != nil {
				return err
			}
			idle := lease == nil || time.Now().After(lease.ExpiresAt)
			var st lsnstore.State
			if idle && c.String("source") != "" {
				var ok bool
				if st, ok, err = lsnstore.New(store).Load(c.Context); err != nil {
					return err
				} else if !ok || !st.SnapshotDone {
					return cli.Exit(fmt.Sprintf("%s holds no finished cdc2s3 load: a reload goes into a pipeline that exists; start it with cdc2s3 run --dest %s", store, store), 2)
				}
			}
			key, err := pipeline.PutReloadRequest(c.Context, store, tables)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "reload requested: %s (%s)\n", strings.Join(tables, ", "), key)
			switch {
			case idle && c.String("source") != "":
				fmt.Fprintf(c.App.Writer, "no cdc2s3 run holds %s: running the daemon here (slot %s, publication %s) until the reloads are done\n", store, st.Slot, st.Publication)
				return reloadHere(c, store, key, st)
			case idle:
				fmt.Fprintf(c.App.Writer, "no cdc2s3 run holds %s now: the request waits until one starts (cdc2s3 run --dest %s ...), which picks it up within seconds; or give --source to run it now\n", store, store)
				return nil
			}
			fmt.Fprintf(c.App.Writer, "the daemon holding %s (%s, PID %d) picks it up within seconds; follow it with cdc2s3 status\n", store, lease.Host, lease.PID)
			if c.Bool("wait") {
				view := newReloadView(c.App.Writer)
				defer view.close()
				return waitReloads(c.Context, view, store, key, nil)
			}
			return nil
		},
	}
}

// reloadHere runs the daemon on the destination's slot and publication
// until the reloads of request key are done, then stops it as SIGTERM
// would.
func reloadHere(c *cli.Context, store sink.Store, key string, st lsnstore.State) error {
	view := newReloadView(c.App.Writer)
	defer view.close()
	// The daemon's log lines print above the bars on a terminal.
	log, err := newLoggerTo(c, view.writer(os.Stderr))
	if err != nil {
		return cli.Exit(err, 2)
	}
	tmp, err := openScratch(c, log)
	if err != nil {
		return err
	}
	defer tmp.Close()
	cfg := pipeline.Config{Source: c.String("source"), Slot: st.Slot, Publication: st.Publication, FlushInterval: reloadFlushInterval, TempDir: tmp.Path,
		DatePartition: st.DatePartition}
	stop, done := context.WithCancel(c.Context)
	defer done()
	waited := make(chan error, 1)
	go func() { waited <- waitReloads(stop, view, store, key, done) }()
	err = pipeline.Run(c.Context, stop, cfg, store, log)
	if err == nil {
		if err = <-waited; errors.Is(err, context.Canceled) {
			err = nil
		}
	}
	view.close() // the last bars, then the line below
	if err != nil {
		return err
	}
	if c.Context.Err() == nil && stop.Err() != nil {
		fmt.Fprintln(c.App.Writer, "reloads done; the daemon stopped")
	}
	return nil
}

// reloadFlushInterval is how often the daemon that reload runs itself
// seals its files: often, since it runs for the reloads' sake.
const reloadFlushInterval = 2 * time.Second

// waitReloads polls the destination until the reloads of request key are
// done: the request picked up and none of its reloads left in the saved
// state. It shows each reload's progress (bars on a terminal, a line per
// change otherwise), and calls finish (when not nil) once they are done.
func waitReloads(ctx context.Context, view reloadView, store sink.Store, key string, finish func()) error {
	prefix := strings.TrimSuffix(path.Base(key), ".json") + "."
	states := lsnstore.New(store)
	for {
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
		pending, err := store.List(ctx, key)
		if err != nil {
			return err
		}
		st, _, err := states.Load(ctx)
		if err != nil {
			return err
		}
		var running []lsnstore.Reload
		for _, r := range st.Reloads {
			if strings.HasPrefix(r.ID, prefix) {
				running = append(running, r)
			}
		}
		view.show(running)
		if len(pending) == 0 && len(running) == 0 {
			if finish != nil {
				finish()
			}
			return nil
		}
	}
}

func snapshotCommand(stop context.Context) *cli.Command {
	return &cli.Command{
		Name:  "snapshot",
		Usage: "full load only: copy every table from one consistent snapshot into LOAD files, then exit; in-process (--snapshot-workers), or distributed over processes on any host (--plan, --unit N)",
		Flags: append(append([]cli.Flag{sourceFlag()}, workersAlias(destFlags())...), distFlags()...),
		Action: func(c *cli.Context) error {
			log, err := newLogger(c)
			if err != nil {
				return cli.Exit(err, 2)
			}
			if dist, err := distributed(c); err != nil {
				return err
			} else if dist {
				return runDistributed(c, stop, log)
			}
			if c.String("source") == "" {
				return cli.Exit("no source: set --source or CDC2S3_SOURCE to a PostgreSQL connection string", 2)
			}
			maxFile, err := parseSize(c.String("max-file-size"))
			if err != nil {
				return cli.Exit(fmt.Errorf("invalid --max-file-size: %w", err), 2)
			}
			chunkSize, err := parseSize(c.String("snapshot-chunk-size"))
			if err != nil {
				return cli.Exit(fmt.Errorf("invalid --snapshot-chunk-size: %w", err), 2)
			}
			if err := pqfile.ValidCompression(c.String("compression")); err != nil {
				return cli.Exit(fmt.Errorf("invalid --compression: %w", err), 2)
			}
			store, err := openDest(c)
			if err != nil {
				return err
			}
			tmp, err := openScratch(c, log)
			if err != nil {
				return err
			}
			defer tmp.Close()
			o := snapshot.Options{MaxFileSize: maxFile, ChunkSize: chunkSize, TempDir: tmp.Path, TextCopy: c.Bool("snapshot-text-copy")}
			if isTerminal(os.Stderr) {
				// A redrawn display instead of progress log lines; other
				// log lines print above it.
				o.Progress, o.ProgressInterval = &snapshot.Progress{}, -1
				display := startProgress(os.Stderr, o.Progress)
				defer display.Stop()
				if log, err = newLoggerTo(c, display.writer(os.Stderr)); err != nil {
					return cli.Exit(err, 2)
				}
				c.App.Writer = display.writer(c.App.Writer)
			}
			return runSnapshot(c.Context, c, store, o, log)
		},
	}
}

// openScratch gives the process a directory of its own under --temp-dir,
// after removing those of cdc2s3 processes that died without cleaning up.
func openScratch(c *cli.Context, log *slog.Logger) (*scratch.Dir, error) {
	d, removed, err := scratch.Open(c.String("temp-dir"))
	for _, r := range removed {
		log.Info("removed the temp files of a cdc2s3 process that ended without cleaning up", logkey.Dir, r.Path, logkey.Bytes, r.Bytes)
	}
	if err != nil {
		return nil, cli.Exit(fmt.Errorf("%w: set --temp-dir to a directory this user may write", err), 2)
	}
	return d, nil
}

func runSnapshot(ctx context.Context, c *cli.Context, store sink.Store, o snapshot.Options, log *slog.Logger) error {
	conn, err := source.Connect(ctx, c.String("source"))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	exp, err := snapshot.Export(ctx, c.String("source"))
	if err != nil {
		return err
	}
	defer exp.Close(context.WithoutCancel(ctx))
	listed, err := source.UserTables(ctx, conn, splitList(c.String("tables")))
	if err != nil {
		return err
	}
	if len(listed) == 0 {
		return snapshot.ErrNoTables
	}
	resolver := source.NewResolver(conn)
	resolver.ArraysAsText = c.Bool("arrays-as-text")
	start := time.Now()
	o.Snapshot, o.LSN, o.Time, o.Workers = exp.Name, exp.LSN, exp.Time, c.Int("snapshot-workers")
	o.Compression, o.Log = c.String("compression"), log
	results, err := snapshot.Load(ctx, c.String("source"), exp.Conn(), resolver, listed, store, o)
	if err != nil {
		return err
	}
	printLoaded(c, results, start)
	return nil
}

func generateCommand(stop context.Context) *cli.Command {
	return &cli.Command{
		Name:  "generate",
		Usage: "create a demo schema and keep inserting, updating and deleting rows in it",
		Flags: []cli.Flag{
			sourceFlag(),
			&cli.IntFlag{Name: "rate", Value: generate.DefaultRate, Usage: "operations per second", EnvVars: env("GENERATE_RATE")},
			&cli.DurationFlag{Name: "duration", Usage: "stop after this long (default: until SIGTERM)", EnvVars: env("GENERATE_DURATION")},
			&cli.Int64Flag{Name: "seed", Usage: "random seed for a repeatable workload (0: random)", EnvVars: env("GENERATE_SEED")},
		},
		Action: func(c *cli.Context) error {
			log, err := newLogger(c)
			if err != nil {
				return cli.Exit(err, 2)
			}
			if c.String("source") == "" {
				return cli.Exit("no source: set --source or CDC2S3_SOURCE to a PostgreSQL connection string", 2)
			}
			if c.Int("rate") <= 0 {
				return cli.Exit(fmt.Sprintf("invalid --rate %d: must be positive", c.Int("rate")), 2)
			}
			st, err := generate.Run(stop, c.String("source"), generate.Options{
				Rate: c.Int("rate"), Duration: c.Duration("duration"), Seed: c.Int64("seed"),
			}, log)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "generated %d transactions: %d inserts, %d updates, %d deletes\n", st.Txns, st.Inserts, st.Updates, st.Deletes)
			return nil
		},
	}
}
