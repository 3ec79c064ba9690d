// Package localfs implements sink.Store on a local directory, for tests and
// for writing to a mounted file system.
//
// An object is a regular file at the key's path under the root. Put writes
// to a temp file under _cdc2s3/tmp/, fsyncs it and renames it into place, so
// readers never see a partial object; PutIfAbsent hard-links the temp file
// instead, which fails when the target exists. Both need the whole tree on
// one file system.
//
// Keys map to paths, so one key cannot be both an object and a "folder" of
// other keys ("a" and "a/b"), which S3 allows. cdc2s3's layout never does
// that.
package localfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/cdc2s3/cdc2s3/sink"
)

// tmpDir holds temp files, relative to the root. List skips it and keys
// under it are refused.
const tmpDir = "_cdc2s3/tmp"

// tmpPrefix starts every temp file name, so a temp file is never mistaken
// for a .parquet file by tools reading the directory.
const tmpPrefix = ".tmp-"

// staleTemp is the age after which New removes temp files left by a process
// that died mid-Put.
const staleTemp = 24 * time.Hour

// Store is a sink.Store on a local directory. It is safe for concurrent
// use, also by several processes on the same directory.
type Store struct {
	root string // absolute
	tmp  string // root/_cdc2s3/tmp
}

var _ sink.Store = (*Store)(nil)

// New returns a Store rooted at dir, creating dir if needed. It removes temp
// files older than a day left by earlier crashed writers.
func New(dir string) (*Store, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("localfs: %w", err)
	}
	s := &Store{root: root, tmp: filepath.Join(root, filepath.FromSlash(tmpDir))}
	if err := os.MkdirAll(s.tmp, 0o755); err != nil {
		return nil, fmt.Errorf("localfs: %w", err)
	}
	s.removeStaleTemp()
	return s, nil
}

// removeStaleTemp deletes old temp files; errors do not matter.
func (s *Store) removeStaleTemp() {
	entries, _ := os.ReadDir(s.tmp)
	for _, e := range entries {
		if info, err := e.Info(); err == nil && strings.HasPrefix(e.Name(), tmpPrefix) &&
			time.Since(info.ModTime()) > staleTemp {
			os.Remove(filepath.Join(s.tmp, e.Name()))
		}
	}
}

// String returns the root directory.
func (s *Store) String() string { return s.root }

// Put writes size bytes from r to key atomically: a temp file is written,
// fsynced and renamed over the target, and the directory is fsynced.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := s.put(ctx, key, r, size, false); err != nil {
		return fmt.Errorf("localfs: put %s: %w", key, err)
	}
	return nil
}

// PutIfAbsent is Put that fails with sink.ErrPreconditionFailed when key
// exists. The temp file is hard-linked to the target (link(2) never
// replaces), so of several concurrent callers, also in other processes,
// exactly one wins.
func (s *Store) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := s.put(ctx, key, r, size, true); err != nil {
		return fmt.Errorf("localfs: put if absent %s: %w", key, err)
	}
	return nil
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, size int64, exclusive bool) error {
	path, err := s.path(key)
	if err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("negative size %d", size)
	}
	tmp, err := s.writeTemp(ctx, r, size)
	if err != nil {
		return err
	}
	placed := false
	defer func() {
		if exclusive || !placed {
			os.Remove(tmp)
		}
	}()
	dir := filepath.Dir(path)
	// A concurrent Delete may remove an emptied parent directory while we
	// create the path or before we rename into it; then try again.
	for attempt := 0; ; attempt++ {
		err = s.mkdirs(dir)
		if err == nil {
			if exclusive {
				err = os.Link(tmp, path)
			} else {
				err = os.Rename(tmp, path)
			}
		}
		if err == nil || !errors.Is(err, fs.ErrNotExist) || attempt == 100 {
			break
		}
	}
	if err != nil {
		if exclusive && errors.Is(err, fs.ErrExist) {
			if fi, serr := os.Lstat(path); serr == nil && fi.IsDir() {
				return fmt.Errorf("%s is a directory", path)
			}
			return sink.ErrPreconditionFailed
		}
		return err
	}
	placed = true
	return syncDir(dir)
}

// writeTemp copies exactly size bytes from r into a new fsynced temp file
// and returns its path.
func (s *Store) writeTemp(ctx context.Context, r io.Reader, size int64) (string, error) {
	f, err := os.CreateTemp(s.tmp, tmpPrefix+"*")
	if err != nil {
		return "", err
	}
	n, err := io.Copy(f, ctxReader{ctx, io.LimitReader(r, size)})
	if err == nil && n < size {
		err = fmt.Errorf("read %d of %d bytes: %w", n, size, io.ErrUnexpectedEOF)
	}
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// mkdirs is os.MkdirAll that fsyncs the parent of every directory it
// creates, so a new object's path survives a crash.
func (s *Store) mkdirs(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) || dir == s.root {
		return err
	}
	parent := filepath.Dir(dir)
	if err := s.mkdirs(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

// syncDir fsyncs a directory, making renames and links in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Get opens the file under key.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	path, err := s.path(key)
	if err != nil {
		return nil, fmt.Errorf("localfs: get %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("localfs: get %s: %w", key, err)
	}
	f, err := os.Open(path)
	if notFound(err) {
		return nil, fmt.Errorf("localfs: get %s: %w", key, sink.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("localfs: get %s: %w", key, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = sink.ErrNotFound // a directory is not an object
		}
		return nil, fmt.Errorf("localfs: get %s: %w", key, err)
	}
	return f, nil
}

// List walks the directory under prefix and returns the regular files whose
// key starts with prefix, in byte order of keys.
func (s *Store) List(ctx context.Context, prefix string) ([]sink.ObjectInfo, error) {
	// Start at the deepest directory the prefix names in full.
	start := s.root
	if i := strings.LastIndexByte(prefix, '/'); i > 0 {
		if dir := prefix[:i]; sink.ValidKey(dir) == nil {
			start = filepath.Join(s.root, filepath.FromSlash(dir))
		}
	}
	var infos []sink.ObjectInfo
	err := filepath.WalkDir(start, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if notFound(err) { // missing start, or removed while we walk
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if path == s.root {
			return nil
		}
		rel, err := filepath.Rel(s.root, path)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if path == s.tmp {
				return filepath.SkipDir
			}
			// Skip folders that can hold no key with the prefix.
			if k := key + "/"; !strings.HasPrefix(k, prefix) && !strings.HasPrefix(prefix, k) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), tmpPrefix) || !strings.HasPrefix(key, prefix) {
			return nil
		}
		info, err := d.Info()
		if notFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		infos = append(infos, sink.ObjectInfo{Key: key, Size: info.Size(), ModTime: info.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("localfs: list %s: %w", prefix, err)
	}
	// WalkDir's order is per directory ("a/b" before "a-b"); keys sort by byte.
	sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
	return infos, nil
}

// Delete removes the file under key and then its parent directories up to
// the root while they are empty, like S3 where folders exist only through
// their keys.
func (s *Store) Delete(ctx context.Context, key string) error {
	path, err := s.path(key)
	if err != nil {
		return fmt.Errorf("localfs: delete %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("localfs: delete %s: %w", key, err)
	}
	fi, err := os.Lstat(path)
	if notFound(err) || err == nil && fi.IsDir() {
		return nil
	}
	if err != nil {
		return fmt.Errorf("localfs: delete %s: %w", key, err)
	}
	if err := os.Remove(path); err != nil && !notFound(err) {
		return fmt.Errorf("localfs: delete %s: %w", key, err)
	}
	dir := filepath.Dir(path)
	if err := syncDir(dir); err != nil && !notFound(err) {
		return fmt.Errorf("localfs: delete %s: %w", key, err)
	}
	for ; dir != s.root && dir != s.tmp; dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil { // not empty, or already gone
			break
		}
	}
	return nil
}

// path validates key and returns its file path.
func (s *Store) path(key string) (string, error) {
	if err := sink.ValidKey(key); err != nil {
		return "", err
	}
	if key == tmpDir || strings.HasPrefix(key, tmpDir+"/") {
		return "", fmt.Errorf("key %q is under the reserved %s/", key, tmpDir)
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// notFound reports whether err means that the path does not exist, also
// when a parent in it is a file.
func notFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
