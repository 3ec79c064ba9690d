package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

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

// progressDisplay draws a full load's progress at the bottom of a terminal:
// one line per running table and one for the whole load, redrawn about
// twice a second. Log lines and other output go through its handler and
// writer, which print them above the display.
type progressDisplay struct {
	out   *os.File
	p     *snapshot.Progress
	width int

	mu    sync.Mutex
	lines int // lines drawn last time, to move back over
	stop  chan struct{}
	done  chan struct{}
}

// startProgress starts drawing p on out until Stop.
func startProgress(out *os.File, p *snapshot.Progress) *progressDisplay {
	d := &progressDisplay{out: out, p: p, width: 80, stop: make(chan struct{}), done: make(chan struct{})}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 20 {
		d.width = n
	}
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
				d.clear()
				d.draw()
				d.mu.Unlock()
			}
		}
	}()
	return d
}

// Stop draws the display a last time and leaves it on the screen.
func (d *progressDisplay) Stop() {
	close(d.stop)
	<-d.done
	d.mu.Lock()
	defer d.mu.Unlock()
	d.clear()
	d.draw()
	d.lines = 0
}

// clear moves the cursor back to where the display started and erases it.
func (d *progressDisplay) clear() {
	if d.lines > 0 {
		fmt.Fprintf(d.out, "\x1b[%dA\r\x1b[J", d.lines)
		d.lines = 0
	}
}

func (d *progressDisplay) draw() {
	if d.p.Tables() == nil {
		return
	}
	var b strings.Builder
	n, more := 0, 0
	for _, s := range d.p.Tables() {
		if !s.Running() {
			continue
		}
		if n == maxProgressTables {
			more++
			continue
		}
		d.line(&b, s.Table, s, fmt.Sprintf("%d/%d", s.ChunksDone, s.Chunks))
		n++
	}
	if more > 0 {
		fmt.Fprintf(&b, "… and %d more tables\n", more)
		n++
	}
	t := d.p.Total()
	d.line(&b, fmt.Sprintf("total %d/%d tables", t.TablesDone, t.Tables), t, "")
	d.out.WriteString(b.String())
	d.lines = n + 1
}

// line writes one status line, cut to the terminal's width so that it never
// wraps (the cursor moves back by lines). What matters most comes first.
func (d *progressDisplay) line(b *strings.Builder, name string, s snapshot.Status, extra string) {
	const barWidth = 10
	filled := int(s.Fraction() * barWidth)
	bar := strings.Repeat("█", filled) + strings.Repeat("░", barWidth-filled)
	eta := "ETA -"
	if e := s.ETA(); e > 0 {
		eta = "ETA " + e.String()
	} else if s.Done {
		eta = "in " + s.Elapsed.Round(time.Second).String()
	}
	l := fmt.Sprintf("%-18s %s %3d%% %-9s %7s/s %6s rows %7s %s",
		progShorten(name, 18), bar, int(s.Fraction()*100), eta, progSize(int64(s.Rate())), progCount(s.Rows), progSize(s.Bytes), extra)
	b.WriteString(progCut(strings.TrimRight(l, " "), d.width-1))
	b.WriteByte('\n')
}

// handler wraps h so that each record is printed above the display.
func (d *progressDisplay) handler(h slog.Handler) slog.Handler {
	return aboveHandler{Handler: h, d: d}
}

// writer wraps w so that what is written to it is printed above the
// display.
func (d *progressDisplay) writer(w io.Writer) io.Writer {
	return aboveWriter{w: w, d: d}
}

type aboveWriter struct {
	w io.Writer
	d *progressDisplay
}

func (a aboveWriter) Write(p []byte) (int, error) {
	a.d.mu.Lock()
	defer a.d.mu.Unlock()
	a.d.clear()
	n, err := a.w.Write(p)
	a.d.draw()
	return n, err
}

type aboveHandler struct {
	slog.Handler
	d *progressDisplay
}

func (h aboveHandler) Handle(ctx context.Context, r slog.Record) error {
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	h.d.clear()
	err := h.Handler.Handle(ctx, r)
	h.d.draw()
	return err
}

func (h aboveHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return aboveHandler{Handler: h.Handler.WithAttrs(attrs), d: h.d}
}

func (h aboveHandler) WithGroup(name string) slog.Handler {
	return aboveHandler{Handler: h.Handler.WithGroup(name), d: h.d}
}

// progShorten cuts s to n runes, marking the cut with "…".
func progShorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// progCut cuts s to n runes.
func progCut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
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
