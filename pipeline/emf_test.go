package pipeline

import (
	"encoding/json"
	"testing"
	"time"
)

// TestEMFLine checks the embedded metric format document: the metric
// definitions under _aws, a value for each, counters as their increase
// since the last line.
func TestEMFLine(t *testing.T) {
	m := NewMetrics()
	m.lagBytes.Set(4096)
	m.changes.WithLabelValues("public.a", "I").Add(5)
	m.changes.WithLabelValues("public.b", "U").Add(2)
	prev := map[string]float64{}
	decode := func() map[string]any {
		t.Helper()
		line, err := m.emfLine(time.UnixMilli(1700000000000), "cdc2s3", prev)
		if err != nil {
			t.Fatal(err)
		}
		if line[len(line)-1] != '\n' {
			t.Fatalf("line %q does not end with a newline", line)
		}
		var doc map[string]any
		if err := json.Unmarshal(line, &doc); err != nil {
			t.Fatal(err)
		}
		return doc
	}
	doc := decode()
	aws := doc["_aws"].(map[string]any)
	if aws["Timestamp"].(float64) != 1700000000000 {
		t.Errorf("Timestamp %v", aws["Timestamp"])
	}
	cw := aws["CloudWatchMetrics"].([]any)[0].(map[string]any)
	if cw["Namespace"] != EMFNamespace || len(cw["Metrics"].([]any)) != len(EMFMetrics) {
		t.Errorf("CloudWatchMetrics %v", cw)
	}
	for name, want := range map[string]float64{"LagBytes": 4096, "Changes": 7, "Starts": 1, "Ready": 0, "Streaming": 0} {
		if doc[name] != want {
			t.Errorf("first line: %s = %v, want %v", name, doc[name], want)
		}
	}
	if doc[EMFDimension] != "cdc2s3" {
		t.Errorf("dimension %s = %v", EMFDimension, doc[EMFDimension])
	}
	m.changes.WithLabelValues("public.a", "D").Add(3)
	m.streaming.Store(true)
	doc = decode()
	for name, want := range map[string]float64{"Changes": 3, "Starts": 0, "Ready": 1, "Streaming": 1} {
		if doc[name] != want {
			t.Errorf("second line: %s = %v, want %v", name, doc[name], want)
		}
	}
}
