package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// VersitygwVersion is the versitygw release the tests run. Keep it in step
// with scripts/tools.sh.
const VersitygwVersion = "v1.8.0"

const versitygwModule = "github.com/versity/versitygw/cmd/versitygw"

// ToolsDir returns the cache of built test tools: $CDC2S3_TOOLS_DIR, else
// $HOME/.cache/cdc2s3/tools. Programs live in its bin/ directory, each with a
// NAME.version stamp. scripts/tools.sh fills the same directory.
func ToolsDir() (string, error) {
	if dir := os.Getenv("CDC2S3_TOOLS_DIR"); dir != "" {
		return filepath.Abs(dir)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("tools dir: set CDC2S3_TOOLS_DIR: %w", err)
	}
	return filepath.Join(home, ".cache", "cdc2s3", "tools"), nil
}

// buildMu keeps the tests of one process from building twice; the lock file
// does the same across processes (parallel test packages, scripts/tools.sh).
var buildMu sync.Mutex

// versitygw returns the path of the versitygw program, building it with
// "go install" into ToolsDir first if it is missing or of another version.
func versitygw(ctx context.Context) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	dir, err := ToolsDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "bin", "versitygw")
	stamp := bin + ".version"
	if built(bin, stamp) {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", fmt.Errorf("versitygw: %w", err)
	}
	unlock, err := LockFile(ctx, filepath.Join(dir, ".lock"))
	if err != nil {
		return "", fmt.Errorf("versitygw: lock tools dir: %w", err)
	}
	defer unlock()
	if built(bin, stamp) { // built by another process while we waited
		return bin, nil
	}

	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", fmt.Errorf("versitygw: %w", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "go", "install", versitygwModule+"@"+VersitygwVersion)
	// Build outside any module so our go.mod does not constrain versitygw's.
	cmd.Dir = tmp
	cmd.Env = append(cleanEnv("GOBIN=", "GOFLAGS=", "GOWORK="), "GOBIN="+tmp, "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("versitygw: go install %s@%s (or run scripts/tools.sh): %w\n%s",
			versitygwModule, VersitygwVersion, err, lastLines(string(out), 30))
	}
	if err := os.Rename(filepath.Join(tmp, "versitygw"), bin); err != nil {
		return "", fmt.Errorf("versitygw: %w", err)
	}
	if err := os.WriteFile(stamp, []byte(VersitygwVersion+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("versitygw: %w", err)
	}
	return bin, nil
}

// built reports whether bin exists and stamp names VersitygwVersion.
func built(bin, stamp string) bool {
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		return false
	}
	b, err := os.ReadFile(stamp)
	return err == nil && strings.TrimSpace(string(b)) == VersitygwVersion
}

// LockFile takes an exclusive flock(2) on path, the same lock flock(1) takes
// in scripts/tools.sh, waiting until ctx ends: for set-up that test packages
// running in parallel must do once.
func LockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
