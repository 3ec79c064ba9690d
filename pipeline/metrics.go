package pipeline

import (
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cdc2s3/cdc2s3/snapshot"
)

// Metrics are the daemon's Prometheus series and health state. The zero
// value is not usable; create one with NewMetrics.
type Metrics struct {
	reg           *prometheus.Registry
	changes       *prometheus.CounterVec // table, op
	bytes         *prometheus.CounterVec // table
	files         *prometheus.CounterVec // table
	uploadSeconds prometheus.Histogram
	retries       *prometheus.CounterVec // what
	lagBytes      prometheus.Gauge
	lagSeconds    prometheus.Gauge
	ackLSN        prometheus.Gauge
	nulled        *prometheus.CounterVec // table, column
	flattened     *prometheus.CounterVec // table, column
	reconnects    prometheus.Counter
	snapshotRows  *prometheus.CounterVec // table
	streamedTxns  prometheus.Counter
	reloads       prometheus.Gauge
	reloadChunks  *prometheus.CounterVec // table

	snapshot      atomic.Pointer[snapshot.Progress] // the running full load
	streaming     atomic.Bool
	lastReceive   atomic.Int64 // unix nanos
	uploadSince   atomic.Int64 // unix nanos of the batch being uploaded, 0 when idle
	lastHeartbeat atomic.Int64 // unix nanos
	stallAfter    time.Duration
}

// NewMetrics registers the daemon's series, with the Go runtime's (go_*)
// and the process's (process_*), in a registry of its own: each Metrics
// is independent of the others and of the global default registry.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	f := promFactory{r}
	m := &Metrics{
		reg:           r,
		changes:       f.counterVec("cdc2s3_changes_total", "Rows written to change files, by table and operation.", "table", "op"),
		bytes:         f.counterVec("cdc2s3_change_bytes_total", "Uncompressed value bytes written to change files, by table.", "table"),
		files:         f.counterVec("cdc2s3_files_uploaded_total", "Change files uploaded, by table.", "table"),
		uploadSeconds: f.histogram("cdc2s3_upload_seconds", "Time to upload one change file, retries included.", []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
		retries:       f.counterVec("cdc2s3_retries_total", "Retried destination operations, by operation.", "what"),
		lagBytes:      f.gauge("cdc2s3_lag_bytes", "WAL bytes between the server's current position and the acknowledged one, at the last heartbeat."),
		lagSeconds:    f.gauge("cdc2s3_lag_seconds", "Seconds since the acknowledged position last moved while the server was ahead, at the last heartbeat."),
		ackLSN:        f.gauge("cdc2s3_acknowledged_lsn", "The LSN acknowledged to PostgreSQL (every change at or below it is uploaded)."),
		nulled:        f.counterVec("cdc2s3_values_nulled_total", "Values written as NULL because the column's Parquet type cannot hold them, by table and column.", "table", "column"),
		flattened:     f.counterVec("cdc2s3_arrays_flattened_total", "Multi-dimensional array values written flattened, by table and column.", "table", "column"),
		reconnects:    f.counter("cdc2s3_reconnects_total", "Reconnections to PostgreSQL after a lost connection."),
		snapshotRows:  f.counterVec("cdc2s3_snapshot_rows_total", "Rows written to LOAD files by the full load, by table.", "table"),
		streamedTxns:  f.counter("cdc2s3_streamed_transactions_total", "Large transactions received while they ran (protocol version 2) and written at commit."),
		reloads:       f.gauge("cdc2s3_reloads_running", "Table reloads begun and not yet complete (docs/reload.md); their rows count in cdc2s3_changes_total with op L."),
		reloadChunks:  f.counterVec("cdc2s3_reload_chunks_total", "Chunks of reloaded rows written, by table.", "table"),
		stallAfter:    2 * time.Minute,
	}
	f.gaugeFunc("cdc2s3_heartbeat_age_seconds", "Seconds since the last heartbeat was written in the source (-1: none yet).", func() float64 {
		if t := m.lastHeartbeat.Load(); t != 0 {
			return time.Since(time.Unix(0, t)).Seconds()
		}
		return -1
	})
	f.gaugeFunc("cdc2s3_snapshot_rows", "Rows copied so far by the running full load.", func() float64 {
		if p := m.snapshot.Load(); p != nil {
			return float64(p.Rows())
		}
		return 0
	})
	f.gaugeFunc("cdc2s3_snapshot_progress_ratio", "Estimated fraction of the running full load done (0..1; 1 when none runs).", func() float64 {
		if p := m.snapshot.Load(); p != nil {
			return p.Total().Fraction()
		}
		return 1
	})
	f.gaugeFunc("cdc2s3_ready", "1 while /readyz answers ok: streaming, and neither the stream nor an upload stuck for two minutes.", func() float64 {
		if m.notReady() == "" {
			return 1
		}
		return 0
	})
	f.counter("cdc2s3_starts_total", "Starts of the daemon: 1 from the start of the process (summed over a window, as CloudWatch does with the EMF metric Starts, it counts restarts).").Inc()
	f.gaugeFunc("cdc2s3_streaming", "1 while the daemon streams changes.", func() float64 {
		if m.streaming.Load() {
			return 1
		}
		return 0
	})
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// promFactory creates collectors and registers them in one registry.
type promFactory struct{ r *prometheus.Registry }

func (f promFactory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.r.MustRegister(c)
	return c
}

func (f promFactory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.r.MustRegister(c)
	return c
}

func (f promFactory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.r.MustRegister(g)
	return g
}

func (f promFactory) gaugeFunc(name, help string, fn func() float64) {
	f.r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}

func (f promFactory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	f.r.MustRegister(h)
	return h
}

// HandlerOptions choose what Handler serves besides metrics and health.
type HandlerOptions struct {
	// Pprof serves Go's profiles under /debug/pprof/ (net/http/pprof).
	// Off by default: profiles show the program's internals and a CPU
	// profile or trace costs CPU while it runs.
	Pprof bool
}

// Handler serves /metrics (Prometheus), /healthz (the process is alive)
// and /readyz (streaming, and neither the stream nor an upload has been
// stuck for two minutes), for ECS and load-balancer health checks, and
// /debug/pprof/ when o.Pprof is set.
func (m *Metrics) Handler(o HandlerOptions) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	if o.Pprof {
		// Profiles on demand (go tool pprof http://host:port/debug/pprof/profile).
		// Not /debug/pprof/cmdline: the command line may hold --source
		// with its password.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if reason := m.notReady(); reason != "" {
			http.Error(w, reason, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	return mux
}

func (m *Metrics) notReady() string {
	if !m.streaming.Load() {
		return "not streaming (starting, full load, reconnecting or stopping)"
	}
	if t := m.lastReceive.Load(); t != 0 && time.Since(time.Unix(0, t)) > m.stallAfter {
		return "nothing received from PostgreSQL for " + time.Since(time.Unix(0, t)).Round(time.Second).String()
	}
	if t := m.uploadSince.Load(); t != 0 && time.Since(time.Unix(0, t)) > m.stallAfter {
		return "an upload has been retrying for " + time.Since(time.Unix(0, t)).Round(time.Second).String()
	}
	return ""
}
