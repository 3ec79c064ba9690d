package metrics

import (
	"strings"
	"testing"
)

func TestExposition(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("x_total", "Things.", "table", "op")
	c.Add(2, `public."t"`, "I")
	c.Inc(`public."t"`, "I")
	g := r.Gauge("lag_bytes", "Lag.")
	g.Set(42)
	h := r.Histogram("up_seconds", "Uploads.", []float64{0.1, 1})
	h.Observe(0.05)
	h.Observe(0.5)
	h.Observe(5)
	r.GaugeFunc("age_seconds", "Age.", func() float64 { return 1.5 })
	var b strings.Builder
	r.WriteTo(&b)
	out := b.String()
	for _, want := range []string{
		"# TYPE x_total counter\n",
		`x_total{table="public.\"t\"",op="I"} 3` + "\n",
		"lag_bytes 42\n",
		`up_seconds_bucket{le="0.1"} 1` + "\n",
		`up_seconds_bucket{le="1"} 2` + "\n",
		`up_seconds_bucket{le="+Inf"} 3` + "\n",
		"up_seconds_sum 5.55\n",
		"up_seconds_count 3\n",
		"age_seconds 1.5\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}
