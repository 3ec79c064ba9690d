package scratch

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary play a cdc2s3 process holding a scratch
// directory, to be killed.
func TestMain(m *testing.M) {
	if parent := os.Getenv("SCRATCH_TEST_HOLD"); parent != "" {
		d, _, err := Open(parent)
		if err != nil {
			os.Stdout.WriteString("error " + err.Error() + "\n")
			os.Exit(1)
		}
		os.WriteFile(filepath.Join(d.Path, "spool"), make([]byte, 4096), 0o600)
		os.Stdout.WriteString(d.Path + "\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// holder starts a process holding a scratch directory under parent and
// returns it with the directory's path.
func holder(t *testing.T, parent string) (*exec.Cmd, string) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SCRATCH_TEST_HOLD="+parent)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, parent) {
		t.Fatalf("holder: %q %v", line, err)
	}
	return cmd, strings.TrimSpace(line)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func paths(rs []Removed) []string {
	var p []string
	for _, r := range rs {
		p = append(p, r.Path)
	}
	return p
}

// TestSweep checks that a start removes the scratch directories of
// processes that died (SIGKILL), and keeps those of running ones.
func TestSweep(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "tmp") // created by Open
	live, liveDir := holder(t, parent)
	killed, deadDir := holder(t, parent)
	if err := killed.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed.Wait()
	_ = live

	// Left by a process that died between creating and renaming its
	// directory: removed once old, kept while it may still be in use.
	oldNew := filepath.Join(parent, newPrefix+"old")
	freshNew := filepath.Join(parent, newPrefix+"fresh")
	// Without a lock file: being removed by its owner's Close (kept), or
	// left half removed long ago (removed).
	closing := filepath.Join(parent, livePrefix+"closing")
	halfGone := filepath.Join(parent, livePrefix+"halfgone")
	for _, p := range []string{oldNew, freshNew, closing, halfGone} {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * newMaxAge)
	for _, p := range []string{oldNew, halfGone} {
		if err := os.Chtimes(p, past, past); err != nil {
			t.Fatal(err)
		}
	}
	other := filepath.Join(parent, "not-ours")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}

	d, removed, err := Open(parent)
	if err != nil {
		t.Fatal(err)
	}
	got := paths(removed)
	slices.Sort(got)
	want := []string{deadDir, oldNew, halfGone}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("removed %v, want %v", got, want)
	}
	for _, r := range removed {
		if r.Path == deadDir && r.Bytes != 4096 {
			t.Errorf("removed %s with %d bytes, want 4096", r.Path, r.Bytes)
		}
	}
	for _, p := range []string{liveDir, freshNew, closing, other, d.Path} {
		if !exists(p) {
			t.Errorf("%s was removed", p)
		}
	}
	if exists(deadDir) {
		t.Errorf("%s of the killed process is still there", deadDir)
	}

	// A second directory of this same process: the first one's lock is
	// held, so it stays.
	d2, removed, err := Open(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 0 || !exists(d.Path) {
		t.Errorf("a second Open removed %v (first directory there: %v)", paths(removed), exists(d.Path))
	}
	for _, x := range []*Dir{d, d2} {
		os.WriteFile(filepath.Join(x.Path, "file"), []byte("x"), 0o600)
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
		if exists(x.Path) {
			t.Errorf("%s is still there after Close", x.Path)
		}
	}
}
