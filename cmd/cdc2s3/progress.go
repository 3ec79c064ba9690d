package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/cdc2s3/cdc2s3/snapshot"
)

// progressRedraw is how often the terminal display is drawn again.
const progressRedraw = 500 * time.Millisecond

// maxProgressTables is how many running tables the display lists.
const maxProgressTables = 8

// isTerminal reports whether f is a terminal (a character device), where a
// redrawn display makes sense; in a pipe, a file or a container log,
// throttled log lines are better.
func isTerminal(f *os.File) bool {
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// progressSource is what the display reads: a snapshot.Progress while the
// load runs.
type progressSource interface {
	Tables() []snapshot.Status
	Total() snapshot.Status
}

// progressDisplay draws a full load's progress at the bottom of a terminal
// with mpb: one bar per running table (the first maxProgressTables of the
// plan, then a line counting the others) and one for the whole load,
// redrawn about twice a second. Log lines and other output go through its
// writer, which prints them above the display.
type progressDisplay struct {
	src     progressSource
	out     io.Writer // the terminal, written directly once stopped
	mp      *mpb.Progress
	refresh chan any // a send draws the display now
	stop    chan struct{}
	done    chan struct{} // nil unless redrawing on its own

	mu      sync.Mutex // serialises updates, output and Stop
	stopped bool
	tables  map[string]*statusBar // by table name
	more    *statusBar            // the "… and N more tables" line, nil when none
	total   *statusBar
}

// statusBar is one line of the display; its decorators print what set
// stored last.
type statusBar struct {
	bar  *mpb.Bar
	name atomic.Pointer[string]
	tail atomic.Pointer[string]
}

// Lines are ordered by mpb priority, lowest first: tables by their place in
// the plan, then the line counting the tables not shown, then the total.
const (
	morePriority  = math.MaxInt32 - 1
	totalPriority = math.MaxInt32
)

// progressBarTotal is the mpb total of a bar: the fraction done in
// thousandths, capped one below so that mpb never completes a bar itself.
const progressBarTotal = 1000

// startProgress starts drawing p on out until Stop.
func startProgress(out *os.File, p *snapshot.Progress) *progressDisplay {
	d := newProgressDisplay(out, p)
	d.done = make(chan struct{})
	go func() {
		defer close(d.done)
		t := time.NewTicker(progressRedraw)
		defer t.Stop()
		for {
			select {
			case <-d.stop:
				return
			case <-t.C:
				d.mu.Lock()
				d.update()
				d.refresh <- nil
				d.mu.Unlock()
			}
		}
	}()
	return d
}

// newProgressDisplay makes a display of src on out that draws only when
// told (update, then a send on refresh); opts go to mpb after its defaults.
func newProgressDisplay(out io.Writer, src progressSource, opts ...mpb.ContainerOption) *progressDisplay {
	d := &progressDisplay{src: src, out: out, refresh: make(chan any), stop: make(chan struct{}), tables: map[string]*statusBar{}}
	d.mp = mpb.New(append([]mpb.ContainerOption{mpb.WithOutput(out), mpb.WithManualRefresh(d.refresh)}, opts...)...)
	return d
}

// Stop draws the display a last time and leaves it on the screen.
func (d *progressDisplay) Stop() {
	close(d.stop)
	if d.done != nil {
		<-d.done
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.update()
	// The refresh is taken before Shutdown can end mpb's loop, so this
	// last frame, and output not yet drawn, reach the terminal.
	d.refresh <- nil
	d.mp.Shutdown()
	d.stopped = true
}

// update sets the bars from the source: a bar for each table shown, none
// for the others, the count of the running tables not shown and the total.
// Before Copy plans the load there is nothing to draw.
func (d *progressDisplay) update() {
	if d.src == nil { // a display whose owner sets the bars itself
		return
	}
	tables := d.src.Tables()
	if tables == nil {
		return
	}
	shown := map[string]bool{}
	more := 0
	for i, s := range tables {
		if !s.Running() {
			continue
		}
		if len(shown) == maxProgressTables {
			more++
			continue
		}
		shown[s.Table] = true
		b := d.tables[s.Table]
		if b == nil {
			b = d.addBar(i)
			d.tables[s.Table] = b
		}
		b.set(s.Table, s, fmt.Sprintf("%d/%d", s.ChunksDone, s.Chunks))
	}
	for name, b := range d.tables {
		if !shown[name] {
			b.bar.Abort(true)
			delete(d.tables, name)
		}
	}
	switch {
	case more > 0 && d.more == nil:
		d.more = d.addText(morePriority)
		fallthrough
	case more > 0:
		d.more.name.Store(new(fmt.Sprintf("… and %d more tables", more)))
	case d.more != nil:
		d.more.bar.Abort(true)
		d.more = nil
	}
	if d.total == nil {
		d.total = d.addBar(totalPriority)
	}
	t := d.src.Total()
	d.total.set(fmt.Sprintf("total %d/%d tables", t.TablesDone, t.Tables), t, "")
}

// progressBarWidth is the width of a line's bar in cells.
const progressBarWidth = 10

// addBar adds a progress line: name, bar, then the figures. mpb cuts the
// line to the terminal's width (so that it never wraps), the figures first;
// what matters most comes first.
func (d *progressDisplay) addBar(priority int) *statusBar {
	b := &statusBar{}
	b.name.Store(new(""))
	b.tail.Store(new(""))
	b.bar = d.mp.New(progressBarTotal,
		mpb.BarStyle().Lbound("").Filler("█").Tip("").Padding("░").Rbound(""),
		mpb.BarWidth(progressBarWidth),
		mpb.BarPriority(priority),
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return fmt.Sprintf("%-18s", progShorten(*b.name.Load(), 18)) })),
		// The figures are cut rather than the bar narrowed: the
		// space left is the bar's and a space either side of it.
		mpb.AppendDecorators(decor.Any(func(st decor.Statistics) string {
			return progCut(*b.tail.Load(), st.AvailableWidth-progressBarWidth-2)
		})),
	)
	return b
}

// addText adds a line of text only.
func (d *progressDisplay) addText(priority int) *statusBar {
	b := &statusBar{}
	b.name.Store(new(""))
	b.bar = d.mp.New(0, mpb.NopStyle(), mpb.BarFillerTrim(), mpb.BarPriority(priority),
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return *b.name.Load() })))
	return b
}

// set shows s on the line, with extra at the end.
func (b *statusBar) set(name string, s snapshot.Status, extra string) {
	eta := "ETA -"
	if e := s.ETA(); e > 0 {
		eta = "ETA " + e.String()
	} else if s.Done {
		eta = "in " + s.Elapsed.Round(time.Second).String()
	}
	tail := fmt.Sprintf("%3d%% %-9s %7s/s %6s rows %7s %s",
		int(s.Fraction()*100), eta, progSize(int64(s.Rate())), progCount(s.Rows), progSize(s.Bytes), extra)
	b.name.Store(&name)
	b.tail.Store(new(strings.TrimRight(tail, " ")))
	b.bar.SetCurrent(min(int64(s.Fraction()*progressBarTotal), progressBarTotal-1))
}

// writer returns a writer that prints above the display what is written
// to it, for w the display's own terminal or another one (standard output
// on the same screen); any other w, a file or a pipe, is returned as it is
// since the display cannot garble it.
func (d *progressDisplay) writer(w io.Writer) io.Writer {
	if f, ok := w.(*os.File); (ok && isTerminal(f)) || w == d.out {
		return aboveWriter{w: w, d: d}
	}
	return w
}

// aboveWriter prints above the display, through mpb, until the display
// stops, and then to w directly.
type aboveWriter struct {
	w io.Writer
	d *progressDisplay
}

func (a aboveWriter) Write(p []byte) (int, error) {
	a.d.mu.Lock()
	defer a.d.mu.Unlock()
	if a.d.stopped {
		return a.w.Write(p)
	}
	n, err := a.d.mp.Write(p)
	a.d.refresh <- nil // now, not at the next redraw
	return n, err
}

// progShorten cuts s to n runes, marking the cut with "…".
func progShorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// progCut cuts s to n runes (none when n < 0).
func progCut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:max(n, 0)])
}

// progCount prints a number of rows shortly: 950, 12.3k, 4.56M.
func progCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fG", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e4:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return strconv.FormatInt(n, 10)
}

// progSize prints a byte count shortly: 512B, 1.5KiB, 203MiB.
func progSize(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + "B"
	}
	v, unit := float64(n)/1024, 0
	for v >= 1024 && unit < 4 {
		v /= 1024
		unit++
	}
	u := []string{"KiB", "MiB", "GiB", "TiB", "PiB"}[unit]
	if v >= 100 {
		return fmt.Sprintf("%.0f%s", v, u)
	}
	return fmt.Sprintf("%.1f%s", v, u)
}
