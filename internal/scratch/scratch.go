// Package scratch gives each cdc2s3 process a directory of its own under
// --temp-dir for the files it builds (Parquet files before their upload,
// spooled transactions), and removes the directories of processes that
// died without cleaning up: a SIGKILL, an out-of-memory kill or a crash
// in the middle of a 5-million-row transaction would otherwise leave its
// spool behind at every restart until the disk fills.
//
// A process holds an exclusive flock on the lock file in its directory for
// as long as it runs; the kernel releases it when the process ends, however
// it ends. A directory whose lock can be taken belongs to nobody. This
// holds across PID reuse and containers sharing a volume, where a PID says
// nothing.
package scratch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Directory name prefixes: a directory is created under newPrefix, locked,
// and only then renamed to livePrefix, so a sweep never sees an unlocked
// directory that is still being set up.
const (
	livePrefix = "cdc2s3-scratch-"
	newPrefix  = "cdc2s3-new-"
	lockName   = ".lock"
	// newMaxAge is how old a directory still under newPrefix must be to
	// be removed (its process died between creating and renaming it).
	newMaxAge = time.Hour
)

// Dir is one process's scratch directory.
type Dir struct {
	// Path is the directory; everything under it is removed by Close.
	Path string
	lock *os.File
}

// Removed describes a scratch directory of a dead process that Open removed.
type Removed struct {
	Path  string
	Bytes int64
}

// Open creates a scratch directory under parent (the system temp dir when
// empty) and removes those of dead processes, reporting them.
func Open(parent string) (*Dir, []Removed, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, nil, fmt.Errorf("--temp-dir: %w", err)
	}
	removed, err := sweep(parent)
	if err != nil {
		return nil, nil, err
	}
	tmp, err := os.MkdirTemp(parent, newPrefix)
	if err != nil {
		return nil, removed, fmt.Errorf("--temp-dir: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(tmp, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err == nil {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		os.RemoveAll(tmp)
		return nil, removed, fmt.Errorf("--temp-dir: lock %s: %w", tmp, err)
	}
	path := filepath.Join(parent, livePrefix+strings.TrimPrefix(filepath.Base(tmp), newPrefix))
	if err := os.Rename(tmp, path); err != nil {
		lock.Close()
		os.RemoveAll(tmp)
		return nil, removed, fmt.Errorf("--temp-dir: %w", err)
	}
	return &Dir{Path: path, lock: lock}, removed, nil
}

// Close removes the directory and everything in it, then releases the
// lock.
func (d *Dir) Close() error {
	err := os.RemoveAll(d.Path)
	d.lock.Close()
	return err
}

// sweep removes the scratch directories under parent that no process
// holds.
func sweep(parent string) ([]Removed, error) {
	ents, err := os.ReadDir(parent)
	if err != nil {
		return nil, fmt.Errorf("--temp-dir: %w", err)
	}
	var removed []Removed
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		path := filepath.Join(parent, e.Name())
		release := func() {}
		switch {
		case strings.HasPrefix(e.Name(), livePrefix):
			var ok bool
			if release, ok = claim(path); !ok {
				continue
			}
		case strings.HasPrefix(e.Name(), newPrefix):
			if !old(path) {
				continue
			}
		default:
			continue
		}
		n := size(path)
		err := os.RemoveAll(path)
		release()
		if err != nil {
			return removed, fmt.Errorf("--temp-dir: remove %s left by a process that died: %w", path, err)
		}
		removed = append(removed, Removed{Path: path, Bytes: n})
	}
	return removed, nil
}

// old reports whether path was last changed more than newMaxAge ago.
func old(path string) bool {
	info, err := os.Stat(path)
	return err == nil && time.Since(info.ModTime()) >= newMaxAge
}

// claim takes the lock of scratch directory path when no process holds
// it; the caller releases it once the directory is removed, so two sweeps
// do not remove it at once.
func claim(path string) (release func(), ok bool) {
	f, err := os.OpenFile(filepath.Join(path, lockName), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		// A live directory has its lock until its owner's Close removes
		// it: this one is being removed, or was left half removed by a
		// process that died in Close (removed once old).
		return func() {}, old(path)
	}
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return func() { f.Close() }, true
}

// size is the total size of the files under path, for the log.
func size(path string) int64 {
	var n int64
	filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
