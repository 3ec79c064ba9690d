package pipeline

import (
	"context"
	"encoding/json"
	"io"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// EMFNamespace is the CloudWatch namespace of the daemon's embedded-format
// metrics (run --metrics-emf); their one dimension is EMFDimension, the
// slot.
const (
	EMFNamespace = "cdc2s3"
	EMFDimension = "Slot"
)

// EMFMetric is one metric of the embedded format: its name in CloudWatch,
// its unit, the Prometheus series it is read from, and whether it is the
// increase of a counter since the last line rather than a gauge's value.
type EMFMetric struct {
	Name, Unit, Series string
	Delta              bool
}

// EMFMetrics are the metrics each EMF line carries: what the alarms of
// deploy/cloudformation.yaml watch, and the throughput beside them.
var EMFMetrics = []EMFMetric{
	{Name: "LagBytes", Unit: "Bytes", Series: "cdc2s3_lag_bytes"},
	{Name: "LagSeconds", Unit: "Seconds", Series: "cdc2s3_lag_seconds"},
	{Name: "Ready", Unit: "Count", Series: "cdc2s3_ready"},
	{Name: "Streaming", Unit: "Count", Series: "cdc2s3_streaming"},
	{Name: "Starts", Unit: "Count", Series: "cdc2s3_starts_total", Delta: true},
	{Name: "Changes", Unit: "Count", Series: "cdc2s3_changes_total", Delta: true},
	{Name: "FilesUploaded", Unit: "Count", Series: "cdc2s3_files_uploaded_total", Delta: true},
	{Name: "Retries", Unit: "Count", Series: "cdc2s3_retries_total", Delta: true},
	{Name: "Reconnects", Unit: "Count", Series: "cdc2s3_reconnects_total", Delta: true},
}

// EMF writes one line of CloudWatch embedded metric format to w at once and
// then every interval until ctx is done: on ECS with the awslogs driver,
// CloudWatch Logs turns each line into metrics, with no agent or sidecar.
// slot is the value of the Slot dimension.
func (m *Metrics) EMF(ctx context.Context, w io.Writer, interval time.Duration, slot string) {
	prev := map[string]float64{}
	for {
		if line, err := m.emfLine(time.Now(), slot, prev); err == nil {
			w.Write(line)
		}
		select {
		case <-time.After(interval):
		case <-ctx.Done():
			return
		}
	}
}

// emfLine is one EMF document (newline-terminated) of the metrics now;
// prev holds the counters' values at the last line and is updated.
func (m *Metrics) emfLine(now time.Time, slot string, prev map[string]float64) ([]byte, error) {
	families, err := m.reg.Gather()
	if err != nil {
		return nil, err
	}
	sums := map[string]float64{}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			sums[f.GetName()] += value(s)
		}
	}
	type def struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	}
	doc := map[string]any{EMFDimension: slot}
	var defs []def
	for _, e := range EMFMetrics {
		v := sums[e.Series]
		if e.Delta {
			v, prev[e.Series] = v-prev[e.Series], v
		}
		doc[e.Name] = v
		defs = append(defs, def{e.Name, e.Unit})
	}
	doc["_aws"] = map[string]any{
		"Timestamp": now.UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  EMFNamespace,
			"Dimensions": [][]string{{EMFDimension}},
			"Metrics":    defs,
		}},
	}
	b, err := json.Marshal(doc)
	return append(b, '\n'), err
}

// value is a sample's value, whatever its kind.
func value(s *dto.Metric) float64 {
	switch {
	case s.Counter != nil:
		return s.Counter.GetValue()
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	case s.Untyped != nil:
		return s.Untyped.GetValue()
	}
	return 0
}
