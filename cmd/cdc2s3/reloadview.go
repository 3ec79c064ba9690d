package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"

	"github.com/cdc2s3/cdc2s3/lsnstore"
)

// reloadView shows the reloads of one request as waitReloads sees them
// progress.
type reloadView interface {
	// show is called with the request's reloads still running, about once
	// a second.
	show(running []lsnstore.Reload)
	// writer returns a writer that prints w's output without garbling
	// the view (above the bars on a terminal).
	writer(w io.Writer) io.Writer
	// close leaves the last state shown.
	close()
}

// newReloadView returns bars redrawn in place when w is a terminal, and a
// line per change otherwise (a pipe, a file, a container's log).
func newReloadView(w io.Writer) reloadView {
	if f, ok := w.(*os.File); ok && isTerminal(f) {
		return newReloadBars(f)
	}
	return &reloadLines{w: w, last: map[string]string{}}
}

// reloadPercent is how much of r is done, from its rows and the row
// estimate it began with; false when there is no estimate.
func reloadPercent(r lsnstore.Reload) (int, bool) {
	if r.Estimate <= 0 {
		return 0, false
	}
	return int(min(float64(r.Rows)/float64(r.Estimate), 0.99) * 100), true
}

// reloadLine is r's progress as text: rows and chunks done, and the share
// of the estimate.
func reloadLine(r lsnstore.Reload) string {
	line := fmt.Sprintf("%s.%s: %d chunks, %d rows", r.Schema, r.Table, r.Chunks, r.Rows)
	if pct, ok := reloadPercent(r); ok {
		line += fmt.Sprintf(" (about %d%% of %d)", pct, r.Estimate)
	}
	return line
}

// reloadLines prints a line whenever a reload's progress changes.
type reloadLines struct {
	w    io.Writer
	last map[string]string // by reload id
}

func (v *reloadLines) show(running []lsnstore.Reload) {
	for _, r := range running {
		if line := reloadLine(r); v.last[r.ID] != line {
			v.last[r.ID] = line
			fmt.Fprintln(v.w, "reloading "+line)
		}
	}
}

func (v *reloadLines) writer(w io.Writer) io.Writer { return w }

func (v *reloadLines) close() {}

// reloadBars draws a bar per running reload with mpb, the snapshot
// display's lines: the share of the row estimate, the rate and the time
// left at it, rows and chunks.
type reloadBars struct {
	d    *progressDisplay
	bars map[string]*statusBar // by reload id
	n    int                   // bars added, for their order
	once sync.Once
}

func newReloadBars(out io.Writer, opts ...mpb.ContainerOption) *reloadBars {
	return &reloadBars{d: newProgressDisplay(out, nil, opts...), bars: map[string]*statusBar{}}
}

func (v *reloadBars) show(running []lsnstore.Reload) {
	v.d.mu.Lock()
	defer v.d.mu.Unlock()
	seen := map[string]bool{}
	for _, r := range running {
		seen[r.ID] = true
		b := v.bars[r.ID]
		if b == nil {
			v.n++
			b = v.d.addBar(v.n)
			v.bars[r.ID] = b
		}
		b.setReload(r, time.Now())
	}
	for id, b := range v.bars {
		if !seen[id] { // done: shown complete, then left on the screen
			b.bar.SetCurrent(progressBarTotal)
			delete(v.bars, id)
		}
	}
	v.d.refresh <- nil
}

func (v *reloadBars) writer(w io.Writer) io.Writer { return v.d.writer(w) }

// close stops the display once; the bars stay on the screen.
func (v *reloadBars) close() {
	v.once.Do(v.d.Stop)
}

// setReload shows r on the line as of now.
func (b *statusBar) setReload(r lsnstore.Reload, now time.Time) {
	name := r.Schema + "." + r.Table
	elapsed := now.Sub(r.StartedAt)
	rate := 0.0
	if elapsed > 0 {
		rate = float64(r.Rows) / elapsed.Seconds()
	}
	pct, known := reloadPercent(r)
	head, eta := "  ?%", "ETA -"
	if known {
		head = fmt.Sprintf("%3d%%", pct)
		if left := r.Estimate - r.Rows; left > 0 && rate > 0 {
			eta = "ETA " + time.Duration(float64(left)/rate*float64(time.Second)).Round(time.Second).String()
		}
	}
	tail := fmt.Sprintf("%s %-9s %6s rows/s %6s rows %d chunks", head, eta, progCount(int64(rate)), progCount(r.Rows), r.Chunks)
	b.name.Store(&name)
	b.tail.Store(&tail)
	b.bar.SetCurrent(min(int64(pct)*progressBarTotal/100, progressBarTotal-1))
}
