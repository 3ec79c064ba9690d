package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
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
		"--status-interval", "500ms", "--heartbeat-interval", "1s", "--metrics-addr", fmt.Sprintf("127.0.0.1:%d", port),
		"--metrics-emf", "--metrics-emf-interval", "500ms")
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
	checkEMF(t, d.out.String())
}

// checkEMF checks the CloudWatch embedded metric format lines of a run
// with --metrics-emf: every line is one EMF document naming the metrics
// it carries; Starts sums to 1 over the run, Changes to more than none,
// and the last lines while streaming say Ready.
func checkEMF(t *testing.T, out string) {
	t.Helper()
	var starts, changes float64
	ready, lines := false, 0
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, `{"`) || !strings.Contains(line, `"_aws"`) {
			continue
		}
		lines++
		var doc struct {
			AWS struct {
				Timestamp         int64
				CloudWatchMetrics []struct {
					Namespace  string
					Dimensions [][]string
					Metrics    []struct{ Name, Unit string }
				}
			} `json:"_aws"`
			Slot                             string
			Starts, Changes, Ready, LagBytes *float64
		}
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			t.Fatalf("EMF line %q: %v", line, err)
		}
		cw := doc.AWS.CloudWatchMetrics
		if len(cw) != 1 || cw[0].Namespace != "cdc2s3" || len(cw[0].Dimensions) != 1 || cw[0].Dimensions[0][0] != "Slot" ||
			doc.Slot != "metrics" || doc.AWS.Timestamp == 0 || doc.Starts == nil || doc.Changes == nil || doc.Ready == nil || doc.LagBytes == nil {
			t.Fatalf("EMF line does not follow the format: %s", line)
		}
		starts += *doc.Starts
		changes += *doc.Changes
		ready = ready || *doc.Ready == 1
	}
	if lines < 3 || starts != 1 || changes <= 0 || !ready {
		t.Errorf("%d EMF lines: Starts summed to %v (want 1), Changes to %v, Ready seen: %v", lines, starts, changes, ready)
	}
}
