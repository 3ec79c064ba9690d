package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
)

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := percentile(d, c.q); got != c.want {
			t.Errorf("percentile(1..100ms, %v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
	if got := percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("percentile of one value = %v, want it", got)
	}
}

func TestSpliceResults(t *testing.T) {
	fresh := spliceResults("", "one\n")
	if !strings.Contains(fresh, beginResults+"\none\n"+endResults) || !strings.HasPrefix(fresh, "# Benchmarks") {
		t.Fatalf("new doc:\n%s", fresh)
	}
	doc := "# Title\n\nintro\n\n" + beginResults + "\nold\n" + endResults + "\n\n## Analysis\n\nkept\n"
	got := spliceResults(doc, "new\n")
	want := "# Title\n\nintro\n\n" + beginResults + "\nnew\n" + endResults + "\n\n## Analysis\n\nkept\n"
	if got != want {
		t.Errorf("splice:\n%s\nwant:\n%s", got, want)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 5000000: "5,000,000", -12345: "-12,345"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestUploadedAt(t *testing.T) {
	log := filepath.Join(t.TempDir(), "run.log")
	lines := `time=2026-11-22T05:30:11.475Z level=INFO msg=streaming slot=s publication=cdc2s3 from=0/39E3B10
time=2026-11-22T05:30:12.100Z level=INFO msg=uploaded files=1 rows=10 lsn=0/3F00000 duration=2ms
time=2026-11-22T05:30:12.482Z level=INFO msg=uploaded files=1 rows=20000 lsn=0/3F40930 duration=2ms
`
	if err := os.WriteFile(log, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	target, _ := pglogrepl.ParseLSN("0/3F40930")
	at, ok := uploadedAt(log, target)
	if !ok || !at.Equal(time.Date(2026, 11, 22, 5, 30, 12, 482e6, time.UTC)) {
		t.Errorf("uploadedAt = %v, %v; want 05:30:12.482", at, ok)
	}
	if _, ok := uploadedAt(log, target+1); ok {
		t.Error("uploadedAt found a line past the last upload")
	}
}

func TestReadStatSelf(t *testing.T) {
	// Burn some CPU in user and system time so both counters move.
	deadline := time.Now().Add(100 * time.Millisecond)
	for time.Now().Before(deadline) {
		os.Getpid()
		_, _ = os.Stat("/proc/self")
	}
	st, ok := readStat("self")
	if !ok {
		t.Fatal("readStat(self) failed")
	}
	if st.ppid != os.Getppid() {
		t.Errorf("ppid = %d, want %d: fields misread", st.ppid, os.Getppid())
	}
	if st.cpu <= 0 || st.sys > st.cpu || st.childrenSys > st.children {
		t.Errorf("cpu %v, sys %v, children %v, childrenSys %v: want 0 < cpu, sys <= cpu, childrenSys <= children", st.cpu, st.sys, st.children, st.childrenSys)
	}
}
