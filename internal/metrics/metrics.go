// Package metrics is a small Prometheus registry: counters, gauges and
// histograms, with labels, exposed in the Prometheus text format (version
// 0.0.4). The daemon needs a dozen series; this keeps the client library
// and its dependency tree out of the binary.
package metrics

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Registry holds metric families and writes them out.
type Registry struct {
	mu       sync.Mutex
	families []*family
}

type kind string

const (
	counter   kind = "counter"
	gauge     kind = "gauge"
	histogram kind = "histogram"
)

type family struct {
	name, help string
	kind       kind
	labels     []string
	buckets    []float64 // histograms
	mu         sync.Mutex
	series     map[string]*series
	fn         func() float64 // gauge read at scrape time
}

type series struct {
	labelValues []string
	value       float64
	counts      []uint64 // histograms: per bucket
	sum         float64
	count       uint64
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

func (r *Registry) add(f *family) *family {
	f.series = map[string]*series{}
	r.mu.Lock()
	r.families = append(r.families, f)
	r.mu.Unlock()
	return f
}

// Counter is a monotonically increasing value per label set.
type Counter struct{ f *family }

// Gauge is a value that goes up and down per label set.
type Gauge struct{ f *family }

// Histogram counts observations in buckets per label set.
type Histogram struct{ f *family }

// Counter registers a counter with the given label names.
func (r *Registry) Counter(name, help string, labels ...string) Counter {
	return Counter{r.add(&family{name: name, help: help, kind: counter, labels: labels})}
}

// Gauge registers a gauge with the given label names.
func (r *Registry) Gauge(name, help string, labels ...string) Gauge {
	return Gauge{r.add(&family{name: name, help: help, kind: gauge, labels: labels})}
}

// GaugeFunc registers an unlabelled gauge whose value fn gives at scrape time.
func (r *Registry) GaugeFunc(name, help string, fn func() float64) {
	r.add(&family{name: name, help: help, kind: gauge, fn: fn})
}

// Histogram registers a histogram with the given upper bounds.
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) Histogram {
	return Histogram{r.add(&family{name: name, help: help, kind: histogram, labels: labels, buckets: buckets})}
}

func (f *family) get(values []string) *series {
	if len(values) != len(f.labels) {
		panic(fmt.Sprintf("metric %s: %d label values for %d labels", f.name, len(values), len(f.labels)))
	}
	key := strings.Join(values, "\xff")
	s := f.series[key]
	if s == nil {
		s = &series{labelValues: append([]string(nil), values...)}
		if f.kind == histogram {
			s.counts = make([]uint64, len(f.buckets))
		}
		f.series[key] = s
	}
	return s
}

// Add adds v (>= 0) to the counter of the label values.
func (c Counter) Add(v float64, labelValues ...string) {
	c.f.mu.Lock()
	c.f.get(labelValues).value += v
	c.f.mu.Unlock()
}

// Inc adds 1.
func (c Counter) Inc(labelValues ...string) { c.Add(1, labelValues...) }

// Set sets the gauge of the label values.
func (g Gauge) Set(v float64, labelValues ...string) {
	g.f.mu.Lock()
	g.f.get(labelValues).value = v
	g.f.mu.Unlock()
}

// Observe records one observation.
func (h Histogram) Observe(v float64, labelValues ...string) {
	h.f.mu.Lock()
	s := h.f.get(labelValues)
	for i, b := range h.f.buckets {
		if v <= b {
			s.counts[i]++
		}
	}
	s.sum += v
	s.count++
	h.f.mu.Unlock()
}

// WriteTo writes every family in the Prometheus text format.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	r.mu.Lock()
	fams := append([]*family(nil), r.families...)
	r.mu.Unlock()
	for _, f := range fams {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.kind)
		if f.fn != nil {
			fmt.Fprintf(&b, "%s %s\n", f.name, num(f.fn()))
			continue
		}
		f.mu.Lock()
		keys := make([]string, 0, len(f.series))
		for k := range f.series {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			s := f.series[k]
			if f.kind != histogram {
				fmt.Fprintf(&b, "%s%s %s\n", f.name, labels(f.labels, s.labelValues, "", ""), num(s.value))
				continue
			}
			for i, ub := range f.buckets {
				fmt.Fprintf(&b, "%s_bucket%s %d\n", f.name, labels(f.labels, s.labelValues, "le", num(ub)), s.counts[i])
			}
			fmt.Fprintf(&b, "%s_bucket%s %d\n", f.name, labels(f.labels, s.labelValues, "le", "+Inf"), s.count)
			fmt.Fprintf(&b, "%s_sum%s %s\n", f.name, labels(f.labels, s.labelValues, "", ""), num(s.sum))
			fmt.Fprintf(&b, "%s_count%s %d\n", f.name, labels(f.labels, s.labelValues, "", ""), s.count)
		}
		f.mu.Unlock()
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// ServeHTTP serves the metrics.
func (r *Registry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	r.WriteTo(w)
}

func labels(names, values []string, extraName, extraValue string) string {
	if len(names) == 0 && extraName == "" {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n + "=" + strconv.Quote(values[i]))
	}
	if extraName != "" {
		if len(names) > 0 {
			b.WriteByte(',')
		}
		b.WriteString(extraName + "=" + strconv.Quote(extraValue))
	}
	b.WriteByte('}')
	return b.String()
}

func num(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
