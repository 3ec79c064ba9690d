package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vbauerster/mpb/v8"

	"github.com/cdc2s3/cdc2s3/snapshot"
)

func TestProgressSizes(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 1023: "1023B", 1536: "1.5KiB", 203 << 20: "203MiB", 5 << 40: "5.0TiB"} {
		if got := progSize(n); got != want {
			t.Errorf("progSize(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int64]string{950: "950", 12345: "12.3k", 4560000: "4.56M"} {
		if got := progCount(n); got != want {
			t.Errorf("progCount(%d) = %q, want %q", n, got, want)
		}
	}
}

// fakeProgress is a planned load for the display: what snapshot.Progress
// would report.
type fakeProgress struct {
	mu     sync.Mutex
	tables []snapshot.Status
}

func (f *fakeProgress) Tables() []snapshot.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tables
}

func (f *fakeProgress) Total() snapshot.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := snapshot.Status{Tables: len(f.tables), Started: time.Now(), Elapsed: time.Second}
	for _, s := range f.tables {
		t.Rows += s.Rows
		t.Bytes += s.Bytes
		t.EstBytes += s.EstBytes
		if s.Done {
			t.TablesDone++
		}
	}
	return t
}

// escape matches the terminal control sequences mpb writes.
var escape = regexp.MustCompile("\x1b\\[[0-9]*[A-Za-z]")

// TestProgressDisplay checks that log lines and output print above the
// display, which is drawn again below them, that no line is wider than
// the terminal, and that tables past the first few are counted on a line.
func TestProgressDisplay(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "tty"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Fatal("a file is not a terminal")
	}
	src := &fakeProgress{}
	d := newProgressDisplay(f, src, mpb.ForceTTY(), mpb.WithWidth(80))
	// draw draws the display and returns once it is written: the second
	// refresh is taken only once mpb has started the first drawing, and a
	// write waits for it to end.
	draw := func() {
		d.mu.Lock()
		d.update()
		d.refresh <- nil
		d.refresh <- nil
		d.mu.Unlock()
		d.mp.Write(nil)
	}
	read := func() string {
		b, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// Before Copy plans the load there is nothing to draw.
	draw()
	if got := read(); got != "" {
		t.Fatalf("drew %q before the plan", got)
	}

	started := time.Now().Add(-time.Minute)
	src.tables = []snapshot.Status{{Table: "public.done", Rows: 10, Bytes: 100, EstBytes: 100, Started: started, Done: true, Elapsed: time.Second}}
	for i := range maxProgressTables + 1 {
		src.tables = append(src.tables, snapshot.Status{Table: fmt.Sprintf("public.t%d", i), Rows: 5, Bytes: 50, EstBytes: 100, Chunks: 2, ChunksDone: 1, Started: started, Elapsed: time.Minute})
	}
	src.tables[1] = snapshot.Status{Table: strings.Repeat("long name ", 5), Rows: 123456789, Bytes: 1 << 40, EstBytes: 2 << 40, Chunks: 1000, ChunksDone: 999, Started: started, Elapsed: time.Minute}
	src.tables = append(src.tables, snapshot.Status{Table: "public.pending", EstBytes: 100})
	draw()
	log := slog.New(slog.NewTextHandler(d.writer(f), nil))
	log.Info("table loaded", "table", "public.t")
	d.writer(f).Write([]byte("summary\n"))
	d.Stop()
	d.writer(f).Write([]byte("after\n"))
	got := read()

	// The log line comes after the display is moved back over and erased.
	if !regexp.MustCompile("\x1b\\[[0-9]+A\x1b\\[J[^\x1b]*table loaded").MatchString(got) {
		t.Errorf("log line not printed over the display: %q", got)
	}
	i := strings.Index(got, "summary\n")
	if i < 0 || !strings.Contains(got[i:], "total 1/11 tables") {
		t.Errorf("display not drawn again below the output: %q", got)
	}
	if !strings.HasSuffix(got, "after\n") {
		t.Errorf("output after Stop not printed as it is: %q", got)
	}
	last := got[strings.LastIndex(got, "summary\n")+len("summary\n"):]
	for _, want := range []string{"long name long na… █████░░░░░  50% ETA 1m0s  17.1GiB/s 123.46M rows  1.0TiB 99", "public.t1 ", "… and 1 more tables\n", "total 1/11 tables"} {
		if !strings.Contains(last, want) {
			t.Errorf("last display lacks %q:\n%s", want, last)
		}
	}
	for _, no := range []string{"public.done", "public.pending", fmt.Sprintf("public.t%d", maxProgressTables)} {
		if strings.Contains(last, no) {
			t.Errorf("last display shows %s:\n%s", no, last)
		}
	}
	for _, l := range strings.Split(escape.ReplaceAllString(got, ""), "\n") {
		if n := utf8.RuneCountInString(l); n > 80 {
			t.Errorf("line of %d runes: %q", n, l)
		}
	}
}
