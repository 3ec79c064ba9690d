package e2e

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/cdc2s3/cdc2s3/internal/testenv"
)

// TestMetricsAndHealth runs the daemon with --metrics-addr under generator
// load and checks /healthz, /readyz, the Prometheus series and that the
// profiles are not served without --pprof.
func TestMetricsAndHealth(t *testing.T) {
	dsn, conn := newDatabase(t)
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	gen := start(t, "generate", "--source", dsn, "--rate", "200", "--seed", "12", "--duration", "2s")
	gen.wait(t)
	d := start(t, "run", "--source", dsn, "--dest", t.TempDir(), "--slot", "metrics", "--flush-interval", "500ms",
		"--status-interval", "500ms", "--heartbeat-interval", "1s", "--metrics-addr", fmt.Sprintf("127.0.0.1:%d", port))
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if code, _ := get("/readyz"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			code, body := get("/readyz")
			t.Fatalf("/readyz never became ready: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	gen = start(t, "generate", "--source", dsn, "--rate", "200", "--seed", "13", "--duration", "2s")
	gen.wait(t)
	waitConfirmed(t, conn, "metrics", currentLSN(t, conn), d, time.Minute)
	time.Sleep(1500 * time.Millisecond) // a heartbeat after the catch-up
	_, body := get("/metrics")
	value := func(series string) float64 {
		m := regexp.MustCompile("(?m)^" + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
		if m == nil {
			t.Errorf("series %s missing from /metrics", series)
			return 0
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	// Labels print sorted by name, as the Prometheus client writes them.
	if v := value(`cdc2s3_changes_total{op="I",table="demo.orders"}`); v <= 0 {
		t.Errorf("no order inserts counted: %v", v)
	}
	if v := value(`cdc2s3_files_uploaded_total{table="demo.orders"}`); v <= 0 {
		t.Errorf("no uploads counted: %v", v)
	}
	if v := value(`cdc2s3_acknowledged_lsn`); v <= 0 {
		t.Errorf("acknowledged LSN: %v", v)
	}
	if v := value(`cdc2s3_heartbeat_age_seconds`); v < 0 || v > 5 {
		t.Errorf("heartbeat age %v, want 0..5s", v)
	}
	if v := value(`cdc2s3_upload_seconds_count`); v <= 0 {
		t.Errorf("upload latency histogram empty: %v", v)
	}
	value(`cdc2s3_lag_bytes`)
	value(`cdc2s3_streaming`)
	// The Go runtime's and the process's series.
	if v := value(`go_goroutines`); v <= 0 {
		t.Errorf("goroutines: %v", v)
	}
	if v := value(`process_resident_memory_bytes`); v <= 0 {
		t.Errorf("resident memory: %v", v)
	}
	// Profiles only with --pprof.
	if code, _ := get("/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ without --pprof: %d, want 404", code)
	}
	d.stop(t)
}
