package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cdc2s3/cdc2s3/internal/testenv"
)

// aslStamp, in node_modules, records the package-lock.json it was
// installed from.
const aslStamp = ".cdc2s3-lock-sha256"

// ensureASL installs deploy/asl's npm packages (asl-validator, pinned in
// its package-lock.json) with npm ci when they are missing or stale, as
// the test oracle installs DuckDB, and returns the directory. Under -short
// the test skips.
func ensureASL(t *testing.T) string {
	t.Helper()
	testenv.Integration(t, "node/npm (asl-validator)")
	dir, err := filepath.Abs("asl")
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found in PATH: install Node.js 20 or later with npm (the state machine is checked with asl-validator from npm)", tool)
		}
	}
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(dir, "node_modules", aslStamp)
	installed := func() bool {
		b, err := os.ReadFile(stamp)
		return err == nil && strings.TrimSpace(string(b)) == want
	}
	if installed() {
		return dir
	}
	f, err := os.OpenFile(filepath.Join(dir, ".install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	if installed() {
		return dir
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	if err := os.WriteFile(stamp, []byte(want+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// nodeCommand runs a script of dir with node.
func nodeCommand(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command("node", args...)
	cmd.Dir = dir
	return cmd
}
