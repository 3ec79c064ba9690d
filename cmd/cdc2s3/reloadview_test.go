package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vbauerster/mpb/v8"

	"github.com/cdc2s3/cdc2s3/lsnstore"
)

// TestReloadViews checks the two views of a reload's progress: a line per
// change off a terminal, and on one a bar per running reload with the
// share of its row estimate, the time left and the counts, a reload with
// no estimate shown without a share.
func TestReloadViews(t *testing.T) {
	started := time.Now().Add(-10 * time.Second)
	big := lsnstore.Reload{ID: "r.0", Schema: "public", Table: "big", Rows: 420_000, Chunks: 7, Estimate: 1_000_000, StartedAt: started}
	kk := lsnstore.Reload{ID: "r.1", Schema: "public", Table: "kk", Rows: 0, StartedAt: started}

	var buf bytes.Buffer
	lines := newReloadView(&buf)
	lines.show([]lsnstore.Reload{big, kk})
	lines.show([]lsnstore.Reload{big, kk}) // unchanged: no new line
	big2 := big
	big2.Rows, big2.Chunks = 2_000_000, 30 // more than estimated
	lines.show([]lsnstore.Reload{big2})
	want := "reloading public.big: 7 chunks, 420000 rows (about 42% of 1000000)\n" +
		"reloading public.kk: 0 chunks, 0 rows\n" +
		"reloading public.big: 30 chunks, 2000000 rows (about 99% of 1000000)\n"
	if buf.String() != want {
		t.Errorf("lines:\n%s\nwant\n%s", buf.String(), want)
	}

	f, err := os.Create(filepath.Join(t.TempDir(), "tty"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bars := newReloadBars(f, mpb.ForceTTY(), mpb.WithWidth(100))
	bars.show([]lsnstore.Reload{big, kk})
	bars.show([]lsnstore.Reload{big})
	bars.close()
	bars.close() // a second close does nothing
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	out := escape.ReplaceAllString(string(b), "")
	frames := strings.Split(out, "\n")
	last := strings.Join(frames[max(len(frames)-3, 0):], "\n")
	for _, w := range []string{"public.big", " 42% ETA 14s", "42.0k rows/s", "420.0k rows 7 chunks", "public.kk", "  ?% ETA -", "0 rows 0 chunks"} {
		if !strings.Contains(out, w) {
			t.Errorf("the bars lack %q:\n%s", w, out)
		}
	}
	if !strings.Contains(last, "public.kk") || !strings.Contains(last, "██████████") {
		t.Errorf("the finished reload's bar is not left full on the screen:\n%s", last)
	}
}
