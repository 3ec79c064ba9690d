package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// results is everything one run measured.
type results struct {
	Config   config
	Machine  machine
	Load     *loadResult
	Stream   []*streamResult // one per transport
	Latency  []*latencyRun
	BigTxn   *streamResult
	Reload   *reloadResult
	BigValue *bigValueResult
	Elapsed  time.Duration
	Warnings []string
}

// The targets of issues 4 and 5.
const (
	targetLoadRatio  = 1.5             // single-worker full load / binary COPY
	targetLoad2Ratio = 1.25            // two-worker full load / binary COPY
	targetDrainRatio = 1.15            // cdc2s3 drain / pg_recvlogical
	targetP99        = 2 * time.Second // at --flush-interval 1s
	targetRSS        = 256 << 20       // on a 5M-row transaction
	targetRSSRows    = 5_000_000       // the size the RSS target names
	flushForP99      = 1 * time.Second // the flush interval the p99 target names
)

// table is a header and rows of cells, rendered as text or Markdown.
type table struct {
	head []string
	rows [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) text() string {
	w := make([]int, len(t.head))
	for _, r := range append([][]string{t.head}, t.rows...) {
		for i, c := range r {
			w[i] = max(w[i], len(c))
		}
	}
	var sb strings.Builder
	line := func(r []string) {
		for i, c := range r {
			if i == 0 {
				fmt.Fprintf(&sb, "  %-*s", w[i], c)
			} else {
				fmt.Fprintf(&sb, "  %*s", w[i], c)
			}
		}
		sb.WriteString("\n")
	}
	line(t.head)
	for _, r := range t.rows {
		line(r)
	}
	return sb.String()
}

func (t *table) markdown() string {
	var sb strings.Builder
	sb.WriteString("| " + strings.Join(t.head, " | ") + " |\n|")
	for i := range t.head {
		if i == 0 {
			sb.WriteString("---|")
		} else {
			sb.WriteString("---:|")
		}
	}
	sb.WriteString("\n")
	for _, r := range t.rows {
		sb.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return sb.String()
}

func (r *results) loadTable() *table {
	l := r.Load
	t := &table{head: []string{"run", "seconds (fastest)", "every run s", "rows/s", "× COPY", "× binary COPY", "output", "peak RSS", "process CPU s", "PostgreSQL CPU s", "other load CPU s"}}
	for _, c := range []struct {
		name string
		run  loadRun
	}{{"psql COPY > /dev/null", l.Copy}, {"psql COPY (FORMAT binary) > /dev/null", l.CopyBinary}} {
		t.add(c.name, secsOf(c.run.Usage), wallsOf(c.run.Walls, " / "), rate(l.Rows, c.run.Usage.Wall),
			ratio(c.run.Usage.Wall, l.Copy.Usage.Wall), ratio(c.run.Usage.Wall, l.CopyBinary.Usage.Wall),
			"-", bytesIEC(c.run.Usage.MaxRSS), secs(c.run.Usage.CPU()), secs(c.run.Usage.Server), secs(c.run.Usage.Other))
	}
	for _, s := range l.Snapshots {
		name := fmt.Sprintf("cdc2s3 snapshot, %d worker(s)", s.Workers)
		if s.Compression != "" {
			name += ", --compression " + s.Compression
		}
		t.add(name, secsOf(s.Usage), wallsOf(s.Walls, " / "), rate(s.Rows, s.Usage.Wall),
			ratio(s.Usage.Wall, l.Copy.Usage.Wall), ratio(s.Usage.Wall, l.CopyBinary.Usage.Wall), fmt.Sprintf("%s in %d file(s)", bytesIEC(s.Output), s.Files),
			bytesIEC(s.Usage.MaxRSS), secs(s.Usage.CPU()), secs(s.Usage.Server), secs(s.Usage.Other))
	}
	for _, d := range l.Distributed {
		t.add(fmt.Sprintf("cdc2s3 snapshot --plan + %d unit process(es) at a time (%d units, %.2f s each)", d.Workers, d.Units, d.UnitAvg.Seconds()),
			secs(d.Wall), wallsOf(d.Walls, " / "), rate(d.Rows, d.Wall), ratio(d.Wall, l.Copy.Usage.Wall), ratio(d.Wall, l.CopyBinary.Usage.Wall),
			fmt.Sprintf("%s in %d file(s)", bytesIEC(d.Output), d.Files), "-", "-", "-", "-")
	}
	return t
}

// contended reports whether other processes used more than a tenth of a
// CPU on average during a measurement (and more than 0.1 CPU s in all).
func contended(u usage) bool { return u.Other > u.Wall/10 && u.Other > 100*time.Millisecond }

// secsOf is the wall time of a measurement, marked † when contended.
func secsOf(u usage) string {
	if contended(u) {
		return secs(u.Wall) + " †"
	}
	return secs(u.Wall)
}

const contendedNote = "† other processes on the machine used more than a tenth of a CPU during this measurement (see the other-load column): treat it with care."

// transport describes how the clients reached PostgreSQL.
func (s *streamResult) transport() string { return transports[s.Transport] }

// baseline is the faster pg_recvlogical drain of a backlog.
func (s *streamResult) baseline() time.Duration {
	var best time.Duration
	for _, r := range s.Runs {
		if r.Kind == "pg_recvlogical" && (best == 0 || r.Drain < best) {
			best = r.Drain
		}
	}
	return best
}

func drainTable(s *streamResult) *table {
	t := &table{head: []string{"consumer", "drain s", "changes/s", "× pg_recvlogical", "slot confirmed s", "process CPU s", "CPU s per M changes", "PostgreSQL CPU s", "of it system", "peak RSS", "CDC files", "file size min / median / max", "total", "other load CPU s"}}
	base := s.baseline()
	for _, r := range s.Runs {
		files, sizes, total, acked := "-", "-", "-", "-"
		if !strings.HasPrefix(r.Kind, "pg_recvlogical") {
			files = strconv.Itoa(len(r.Files))
			sizes, total = fileSizes(r.Files)
			acked = secs(r.Acked)
		}
		drain := secs(r.Drain)
		if contended(r.Usage) {
			drain += " †"
		}
		t.add(r.Name, drain, rate(s.Changes, r.Drain), ratio(r.Drain, base), acked, secs(r.Usage.CPU()),
			fmt.Sprintf("%.2f", r.Usage.CPU().Seconds()/float64(s.Changes)*1e6), secs(r.Usage.Server), secs(r.Usage.ServerSys),
			bytesIEC(r.Usage.MaxRSS), files, sizes, total, secs(r.Usage.Other))
	}
	return t
}

func (r *results) latencyTable() *table {
	t := &table{head: []string{"destination", "flush interval", "changes/s", "rows seen", "CDC files", "p50", "p90", "p99", "max", "peak RSS", "process CPU s", "other load CPU s"}}
	for _, l := range r.Latency {
		p99 := ms(l.P99)
		if contended(l.Usage) {
			p99 += " †"
		}
		t.add(l.Kind, l.Flush.String(), fmt.Sprintf("%.0f", l.Rate), fmt.Sprintf("%d / %d", l.Seen, l.Changes), strconv.Itoa(l.Files),
			ms(l.P50), ms(l.P90), p99, ms(l.Max), bytesIEC(l.Usage.MaxRSS), secs(l.Usage.CPU()), secs(l.Usage.Other))
	}
	return t
}

func (r *results) anyContended() bool {
	var all []usage
	if l := r.Load; l != nil {
		all = append(all, l.Copy.Usage, l.CopyBinary.Usage)
		for _, s := range l.Snapshots {
			all = append(all, s.Usage)
		}
	}
	for _, s := range append(slices.Clone(r.Stream), r.BigTxn) {
		if s != nil {
			for _, d := range s.Runs {
				all = append(all, d.Usage)
			}
		}
	}
	for _, l := range r.Latency {
		all = append(all, l.Usage)
	}
	if bv := r.BigValue; bv != nil {
		for _, run := range bv.Runs {
			all = append(all, run.Usage)
		}
	}
	return slices.ContainsFunc(all, contended)
}

// verdict is one target: met or missed, with the figure.
type verdict struct {
	Met  bool
	Text string
}

func (r *results) verdicts() []verdict {
	var v []verdict
	if l := r.Load; l != nil {
		for _, s := range l.Snapshots {
			if s.Compression != "" || s.Workers > 2 {
				continue
			}
			target := targetLoadRatio
			if s.Workers == 2 {
				target = targetLoad2Ratio
			}
			x := s.Usage.Wall.Seconds() / l.CopyBinary.Usage.Wall.Seconds()
			v = append(v, verdict{x <= target, fmt.Sprintf("full load with %d worker(s) ≤ %.2f× binary COPY: %.2f× (%s s vs %s s; %.2f× text COPY, %s s; %s rows)",
				s.Workers, target, x, secs(s.Usage.Wall), secs(l.CopyBinary.Usage.Wall),
				s.Usage.Wall.Seconds()/l.Copy.Usage.Wall.Seconds(), secs(l.Copy.Usage.Wall), thousands(l.Rows))})
		}
	}
	for _, s := range r.Stream {
		base := s.baseline()
		var v1 time.Duration
		for _, d := range s.Runs {
			if d.Kind == "pg_recvlogical v1" {
				v1 = d.Drain
			}
		}
		// The fastest drain into each destination is its figure, as the
		// faster pg_recvlogical run is the baseline.
		fastest := map[string]drainRun{}
		var kinds []string
		for _, d := range s.Runs {
			if strings.HasPrefix(d.Kind, "pg_recvlogical") {
				continue
			}
			if f, ok := fastest[d.Kind]; !ok || d.Drain < f.Drain {
				if !ok {
					kinds = append(kinds, d.Kind)
				}
				fastest[d.Kind] = d
			}
		}
		for _, k := range kinds {
			d := fastest[k]
			x := d.Drain.Seconds() / base.Seconds()
			text := fmt.Sprintf("drain into %s over %s ≤ %.2f× pg_recvlogical: %.2f× (%s s vs %s s, %s changes)",
				d.Kind, s.transport(), targetDrainRatio, x, secs(d.Drain), secs(base), thousands(s.Changes))
			if v1 > 0 {
				text += fmt.Sprintf("; against the issue's proto_version=1 command (%s s): %.2f×", secs(v1), d.Drain.Seconds()/v1.Seconds())
			}
			v = append(v, verdict{x <= targetDrainRatio, text})
		}
	}
	for _, l := range r.Latency {
		if l.Flush != flushForP99 {
			continue
		}
		v = append(v, verdict{l.P99 < targetP99, fmt.Sprintf("p99 commit-to-visible into %s < %s at --flush-interval %s: %s",
			l.Kind, targetP99, flushForP99, ms(l.P99))})
	}
	if s := r.BigTxn; s != nil {
		d := s.Runs[len(s.Runs)-1]
		text := fmt.Sprintf("peak RSS < %s on a %s-row transaction: %s", bytesIEC(targetRSS), thousands(targetRSSRows), bytesIEC(d.Usage.MaxRSS))
		if s.Inserts < targetRSSRows {
			text += fmt.Sprintf(" (measured on %s rows only: not the target's size)", thousands(s.Inserts))
		}
		v = append(v, verdict{d.Usage.MaxRSS < targetRSS && s.Inserts >= targetRSSRows, text})
	} else {
		v = append(v, verdict{false, fmt.Sprintf("peak RSS < %s on a %s-row transaction: not measured in this run (phase bigtxn skipped)", bytesIEC(targetRSS), thousands(targetRSSRows))})
	}
	if bv := r.BigValue; bv != nil {
		v = append(v, bv.verdicts()...)
	}
	return v
}

// text is the summary printed at the end of a run.
func (r *results) text() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "SUMMARY (%s; %s in all)\n", r.Machine.summary(), r.Elapsed.Round(time.Second))
	if l := r.Load; l != nil {
		fmt.Fprintf(&sb, "\nA. Full load: %s rows, table %s on disk\n%s", thousands(l.Rows), bytesIEC(l.TableBytes), r.loadTable().text())
	}
	for _, s := range r.Stream {
		fmt.Fprintf(&sb, "\nB. Streaming backlog over %s: %s changes (%s inserts in 1 transaction, %s updates in transactions of %d), %s of WAL\n   pg_recvlogical with cdc2s3's options (-o %s) first and last; the faster is the baseline; cdc2s3's fastest run into each destination is its figure\n%s",
			s.transport(), thousands(s.Changes), thousands(s.Inserts), thousands(s.Updates), s.TxnSize, bytesIEC(int64(s.WALBytes)), strings.Join(s.Options, " -o "), drainTable(s).text())
	}
	if len(r.Latency) > 0 {
		fmt.Fprintf(&sb, "\nC. Commit-to-visible latency, %d changes/s for %s (listing every %s)\n%s",
			r.Config.LatencyRate, r.Config.LatencyDuration, pollInterval, r.latencyTable().text())
	}
	if s := r.BigTxn; s != nil {
		fmt.Fprintf(&sb, "\nD. One transaction of %s inserts, %s of WAL (pg_recvlogical -o %s)\n%s", thousands(s.Inserts), bytesIEC(int64(s.WALBytes)), strings.Join(s.Options, " -o "), drainTable(s).text())
	}
	if e := r.Reload; e != nil {
		fmt.Fprintf(&sb, "\nE. Online reload of %s rows under %d updates/s (the daemon streaming; sampled every 100 ms)\n%s", thousands(e.Rows), e.Rate, e.table().text())
	}
	if bv := r.BigValue; bv != nil {
		fmt.Fprintf(&sb, "\nF. Full load of one value of %d MiB (cdc2s3 snapshot, peak RSS from rusage)\n%s", bv.MiB, bv.table().text())
	}
	if r.anyContended() {
		sb.WriteString("\n" + contendedNote + "\n")
	}
	sb.WriteString("\nTargets:\n")
	for _, v := range r.verdicts() {
		fmt.Fprintf(&sb, "  %-6s %s\n", mark(v.Met), v.Text)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&sb, "  WARNING: %s\n", w)
	}
	return sb.String()
}

func mark(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// markdown is the results section of docs/benchmarks.md.
func (r *results) markdown() string {
	var sb strings.Builder
	m := r.Machine
	how := "with the defaults"
	if len(r.Config.Custom) > 0 {
		how = "with " + strings.Join(r.Config.Custom, ", ") + " set (sizes below)"
	}
	fmt.Fprintf(&sb, "Run of %s, `make bench` %s, %s in all.\n\n", m.Date.Format("2006-01-02 15:04 MST"), how, r.Elapsed.Round(time.Second))
	fmt.Fprintf(&sb, "- Machine: %d CPUs (`nproc`), CPU model %q, %s RAM, Linux %s\n", m.CPUs, m.CPUModel, bytesIEC(m.Memory), m.Kernel)
	fmt.Fprintf(&sb, "- %s; %s\n", m.Postgres, m.PGSettings)
	fmt.Fprintf(&sb, "- cdc2s3 %s, built with %s\n", m.CDC2S3, m.Go)
	c := r.Config
	fmt.Fprintf(&sb, "- Connections (BENCH_TRANSPORTS=%s): every client reaches PostgreSQL over %s", strings.Join(c.Transports, ","), transports[c.Transports[0]])
	if len(c.Transports) > 1 {
		fmt.Fprintf(&sb, "; the backlog of phase B is also drained over %s", transports[c.Transports[1]])
	}
	sb.WriteString("\n")
	fmt.Fprintf(&sb, "- Sizes: BENCH_SNAPSHOT_ROWS=%d, BENCH_SNAPSHOT_WORKERS=%s, BENCH_SNAPSHOT_COMPRESSIONS=%s, BENCH_CHANGES=%d, BENCH_TXN_SIZE=%d, BENCH_LATENCY_RATE=%d, BENCH_LATENCY_SECONDS=%s, BENCH_LATENCY_FLUSH=%s, BENCH_BIGTXN_ROWS=%d, BENCH_RELOAD_ROWS=%d, BENCH_RELOAD_UPDATE_RATE=%d, BENCH_BIGVALUE_MB=%d, BENCH_BIGVALUE_TYPES=%s\n",
		c.SnapshotRows, joinInts(c.SnapshotWorkers), strings.Join(c.SnapshotCompressions, ","), c.Changes, c.TxnSize, c.LatencyRate, c.LatencyDuration, c.LatencyFlush, c.BigTxnRows, c.ReloadRows, c.ReloadUpdateRate,
		c.BigValueMiB, strings.Join(c.BigValueTypes, ","))
	sb.WriteString("\n### Targets\n\n")
	for _, v := range r.verdicts() {
		fmt.Fprintf(&sb, "- **%s**: %s\n", mark(v.Met), v.Text)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&sb, "- Warning: %s\n", w)
	}
	if l := r.Load; l != nil {
		fmt.Fprintf(&sb, "\n### A. Full load (issue 4)\n\n%s rows, %s on disk (table and index).\n\n%s", thousands(l.Rows), bytesIEC(l.TableBytes), r.loadTable().markdown())
	}
	for _, s := range r.Stream {
		fmt.Fprintf(&sb, "\n### B. Draining a backlog over %s (issue 5)\n\n%s changes: %s inserts in one transaction, then %s single-row updates in transactions of %d; %s of WAL. "+
			"pg_recvlogical asks for the pgoutput options cdc2s3 asks for (`-o %s`), once before and once after the cdc2s3 drains; the faster of the two is the baseline. "+
			"cdc2s3 drains into each destination as many times as `BENCH_STREAM_REPEAT` says, each from a slot of its own; the fastest run into each is its figure. "+
			"The `proto_version=1` row is the issue's command as written.\n\n%s",
			s.transport(), thousands(s.Changes), thousands(s.Inserts), thousands(s.Updates), s.TxnSize, bytesIEC(int64(s.WALBytes)), strings.Join(s.Options, " -o "), drainTable(s).markdown())
	}
	if len(r.Latency) > 0 {
		fmt.Fprintf(&sb, "\n### C. Commit-to-visible latency\n\n%d changes/s in transactions of %d for %s; the destination listed every %s.\n\n%s",
			c.LatencyRate, c.LatencyTxnRows, c.LatencyDuration, pollInterval, r.latencyTable().markdown())
	}
	if s := r.BigTxn; s != nil {
		fmt.Fprintf(&sb, "\n### D. One large transaction\n\n%s rows inserted in one transaction; %s of WAL; pg_recvlogical with `-o %s`.\n\n%s",
			thousands(s.Inserts), bytesIEC(int64(s.WALBytes)), strings.Join(s.Options, " -o "), drainTable(s).markdown())
	}
	if e := r.Reload; e != nil {
		fmt.Fprintf(&sb, "\n### E. Online reload\n\n`cdc2s3 reload` of the %s-row bench table while the daemon streams it and %d single-row updates per second hit it; "+
			"the time runs from the request to the daemon's `reload complete`. The longest transaction is the oldest `xact_start` in `pg_stat_activity` "+
			"on the database during the reload, and the slot lag `pg_current_wal_lsn() - confirmed_flush_lsn`, both sampled every 100 ms. The baseline is psql's COPY of the table in the same run.\n\n%s",
			thousands(e.Rows), e.Rate, e.table().markdown())
	}
	if bv := r.BigValue; bv != nil {
		fmt.Fprintf(&sb, "\n### F. One large value\n\nA table of three rows whose middle one holds one value of %d MiB (md5 digests; stored without compression), copied by `cdc2s3 snapshot` "+
			"with one worker, with the default COPY and, where the binary has the flag, with `--snapshot-text-copy`. Peak RSS is the process's `ru_maxrss`; \"× value\" is it over the value's size.\n\n%s",
			bv.MiB, bv.table().markdown())
	}
	if r.anyContended() {
		sb.WriteString("\n" + contendedNote + "\n")
	}
	return sb.String()
}

// The results section of the doc lies between these lines; the rest of
// the file is written by hand and kept.
const (
	beginResults = "<!-- BEGIN RESULTS: written by make bench; edits here are overwritten -->"
	endResults   = "<!-- END RESULTS -->"
)

// writeDoc replaces the results section of path (creating the file with
// a stub around it when it has none).
func writeDoc(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.WriteFile(path, []byte(spliceResults(string(old), section)), 0o644)
}

func spliceResults(doc, section string) string {
	block := beginResults + "\n" + section + endResults
	i := strings.Index(doc, beginResults)
	j := strings.Index(doc, endResults)
	if i >= 0 && j > i {
		return doc[:i] + block + doc[j+len(endResults):]
	}
	if doc == "" {
		doc = "# Benchmarks\n\nWritten by `make bench` (scripts/bench.sh, bench/).\n"
	}
	return strings.TrimRight(doc, "\n") + "\n\n## Results\n\n" + block + "\n"
}

// Formatting.

func secs(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()) }

// wallsOf lists wall times in seconds, joined by sep: "8.39 / 9.08 / 8.71".
func wallsOf(walls []time.Duration, sep string) string {
	s := make([]string, len(walls))
	for i, w := range walls {
		s[i] = secs(w)
	}
	return strings.Join(s, sep)
}

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a.Seconds()/b.Seconds())
}

func rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return thousands(int64(float64(n) / d.Seconds()))
}

// thousands formats n with commas: 5,000,000.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// bytesIEC formats a size in KiB, MiB or GiB.
func bytesIEC(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func fileSizes(files []fileInfo) (string, string) {
	if len(files) == 0 {
		return "-", "-"
	}
	sizes := make([]int64, len(files))
	var total int64
	for i, f := range files {
		sizes[i] = f.Size
		total += f.Size
	}
	slices.Sort(sizes)
	return fmt.Sprintf("%s / %s / %s", bytesIEC(sizes[0]), bytesIEC(sizes[len(sizes)/2]), bytesIEC(sizes[len(sizes)-1])), bytesIEC(total)
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
