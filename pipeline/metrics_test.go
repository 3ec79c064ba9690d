package pipeline

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// get requests path from h and returns the status and the body.
func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, err := io.ReadAll(rec.Result().Body)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Code, string(b)
}

// TestMetricsSeries checks every cdc2s3_ series' name, type, help text and
// label names (dashboards and alarms depend on them), and that the Go
// runtime's and the process's series are there, and nothing else.
func TestMetricsSeries(t *testing.T) {
	m := NewMetrics()
	m.changes.WithLabelValues("demo.orders", "I").Add(2)
	m.bytes.WithLabelValues("demo.orders").Add(3)
	m.files.WithLabelValues("demo.orders").Inc()
	m.uploadSeconds.Observe(0.3)
	m.retries.WithLabelValues("upload").Inc()
	m.lagBytes.Set(5)
	m.lagSeconds.Set(1.5)
	m.ackLSN.Set(123456789012)
	m.nulled.WithLabelValues("demo.orders", "c").Inc()
	m.flattened.WithLabelValues("demo.orders", "c").Inc()
	m.reconnects.Inc()
	m.snapshotRows.WithLabelValues("demo.orders").Add(7)
	m.streamedTxns.Inc()
	m.reloads.Set(1)
	m.reloadChunks.WithLabelValues("demo.orders").Inc()

	code, body := get(t, m.Handler(HandlerOptions{}), "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	for _, w := range []struct {
		name string
		typ  dto.MetricType
		help string
		// labels are the label names, sorted (a histogram's le aside).
		labels []string
	}{
		{"cdc2s3_changes_total", dto.MetricType_COUNTER, "Rows written to change files, by table and operation.", []string{"op", "table"}},
		{"cdc2s3_change_bytes_total", dto.MetricType_COUNTER, "Uncompressed value bytes written to change files, by table.", []string{"table"}},
		{"cdc2s3_files_uploaded_total", dto.MetricType_COUNTER, "Change files uploaded, by table.", []string{"table"}},
		{"cdc2s3_upload_seconds", dto.MetricType_HISTOGRAM, "Time to upload one change file, retries included.", nil},
		{"cdc2s3_retries_total", dto.MetricType_COUNTER, "Retried destination operations, by operation.", []string{"what"}},
		{"cdc2s3_lag_bytes", dto.MetricType_GAUGE, "WAL bytes between the server's current position and the acknowledged one, at the last heartbeat.", nil},
		{"cdc2s3_lag_seconds", dto.MetricType_GAUGE, "Seconds since the acknowledged position last moved while the server was ahead, at the last heartbeat.", nil},
		{"cdc2s3_acknowledged_lsn", dto.MetricType_GAUGE, "The LSN acknowledged to PostgreSQL (every change at or below it is uploaded).", nil},
		{"cdc2s3_values_nulled_total", dto.MetricType_COUNTER, "Values written as NULL because the column's Parquet type cannot hold them, by table and column.", []string{"column", "table"}},
		{"cdc2s3_arrays_flattened_total", dto.MetricType_COUNTER, "Multi-dimensional array values written flattened, by table and column.", []string{"column", "table"}},
		{"cdc2s3_reconnects_total", dto.MetricType_COUNTER, "Reconnections to PostgreSQL after a lost connection.", nil},
		{"cdc2s3_snapshot_rows_total", dto.MetricType_COUNTER, "Rows written to LOAD files by the full load, by table.", []string{"table"}},
		{"cdc2s3_streamed_transactions_total", dto.MetricType_COUNTER, "Large transactions received while they ran (protocol version 2) and written at commit.", nil},
		{"cdc2s3_reloads_running", dto.MetricType_GAUGE, "Table reloads begun and not yet complete (docs/reload.md); their rows count in cdc2s3_changes_total with op L.", nil},
		{"cdc2s3_reload_chunks_total", dto.MetricType_COUNTER, "Chunks of reloaded rows written, by table.", []string{"table"}},
		{"cdc2s3_heartbeat_age_seconds", dto.MetricType_GAUGE, "Seconds since the last heartbeat was written in the source (-1: none yet).", nil},
		{"cdc2s3_snapshot_rows", dto.MetricType_GAUGE, "Rows copied so far by the running full load.", nil},
		{"cdc2s3_snapshot_progress_ratio", dto.MetricType_GAUGE, "Estimated fraction of the running full load done (0..1; 1 when none runs).", nil},
		{"cdc2s3_streaming", dto.MetricType_GAUGE, "1 while the daemon streams changes.", nil},
		{"cdc2s3_ready", dto.MetricType_GAUGE, "1 while /readyz answers ok: streaming, and neither the stream nor an upload stuck for two minutes.", nil},
		{"cdc2s3_starts_total", dto.MetricType_COUNTER, "Starts of the daemon: 1 from the start of the process (summed over a window, as CloudWatch does with the EMF metric Starts, it counts restarts).", nil},
	} {
		f := fams[w.name]
		if f == nil {
			t.Errorf("%s missing", w.name)
			continue
		}
		if f.GetType() != w.typ || f.GetHelp() != w.help {
			t.Errorf("%s: %v %q, want %v %q", w.name, f.GetType(), f.GetHelp(), w.typ, w.help)
		}
		var labels []string
		for _, l := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		if !slices.Equal(labels, w.labels) {
			t.Errorf("%s: labels %v, want %v", w.name, labels, w.labels)
		}
		delete(fams, w.name)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("%s missing", name)
		}
	}
	for name := range fams {
		if !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("unexpected series %s", name)
		}
	}
	// The exposition itself, as scrapers and the end-to-end tests read it.
	for _, want := range []string{
		`cdc2s3_changes_total{op="I",table="demo.orders"} 2` + "\n",
		`cdc2s3_upload_seconds_bucket{le="0.5"} 1` + "\n",
		`cdc2s3_upload_seconds_bucket{le="+Inf"} 1` + "\n",
		"cdc2s3_upload_seconds_sum 0.3\n",
		"cdc2s3_acknowledged_lsn 1.23456789012e+11\n",
		"cdc2s3_heartbeat_age_seconds -1\n",
		"cdc2s3_snapshot_progress_ratio 1\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %q in:\n%s", want, body)
		}
	}
}

// TestMetricsInstancesIndependent checks that each Metrics has a registry
// of its own: a second one neither panics on registration nor shares
// values.
func TestMetricsInstancesIndependent(t *testing.T) {
	a, b := NewMetrics(), NewMetrics()
	a.reconnects.Inc()
	_, body := get(t, b.Handler(HandlerOptions{}), "/metrics")
	if !strings.Contains(body, "cdc2s3_reconnects_total 0\n") {
		t.Errorf("second registry sees the first's counts:\n%s", body)
	}
}

// TestPprofOnlyWhenAsked checks that the profiles are served only with
// HandlerOptions.Pprof (the --pprof flag), and health and metrics either
// way.
func TestPprofOnlyWhenAsked(t *testing.T) {
	m := NewMetrics()
	for _, pprof := range []bool{false, true} {
		h := m.Handler(HandlerOptions{Pprof: pprof})
		want := http.StatusNotFound
		if pprof {
			want = http.StatusOK
		}
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/goroutine?debug=1"} {
			if code, _ := get(t, h, path); code != want {
				t.Errorf("pprof %v: %s: %d, want %d", pprof, path, code, want)
			}
		}
		if code, _ := get(t, h, "/debug/pprof/cmdline"); code == http.StatusOK {
			t.Errorf("pprof %v: /debug/pprof/cmdline served (it may show the source's password)", pprof)
		}
		for _, path := range []string{"/metrics", "/healthz"} {
			if code, _ := get(t, h, path); code != http.StatusOK {
				t.Errorf("pprof %v: %s: %d", pprof, path, code)
			}
		}
	}
}
