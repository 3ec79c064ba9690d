package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

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

// TestProgressDisplay checks that log lines and output print above the
// display, which is drawn again below them, and that no line is wider than
// the terminal.
func TestProgressDisplay(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "tty"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Fatal("a file is not a terminal")
	}
	p := &snapshot.Progress{}
	d := &progressDisplay{out: f, p: p, width: 80, stop: make(chan struct{}), done: make(chan struct{})}
	close(d.done)
	// Before Copy plans the load there is nothing to draw.
	d.draw()
	if d.lines != 0 {
		t.Fatalf("drew %d lines before the plan", d.lines)
	}
	log := slog.New(d.handler(slog.NewTextHandler(f, nil)))
	d.lines = 2 // as if the display were on the screen
	log.Info("table loaded", "table", "public.t")
	d.writer(f).Write([]byte("summary\n"))
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got), "\x1b[2A\r\x1b[J") || !strings.Contains(string(got), "summary\n") {
		t.Errorf("output %q", got)
	}

	var b strings.Builder
	d.line(&b, strings.Repeat("long name ", 5), snapshot.Status{Rows: 123456789, Bytes: 1 << 40, EstBytes: 2 << 40, Chunks: 1000, ChunksDone: 999}, "999/1000")
	if n := utf8.RuneCountInString(strings.TrimSuffix(b.String(), "\n")); n > 79 {
		t.Errorf("line of %d runes: %q", n, b.String())
	}
}
