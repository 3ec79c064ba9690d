package localfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cdc2s3/cdc2s3/sink"
)

var _ sink.Copier = (*Store)(nil)

// Copy makes dst a hard link of src's file, through a temp link renamed
// into place, so dst appears whole and no byte is copied. Objects are never
// modified in place (a Put replaces the file), so the two stay independent.
func (s *Store) Copy(ctx context.Context, src, dst string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("localfs: copy %s: %w", src, err)
	}
	from, err := s.path(src)
	if err != nil {
		return fmt.Errorf("localfs: copy %s: %w", src, err)
	}
	to, err := s.path(dst)
	if err != nil {
		return fmt.Errorf("localfs: copy to %s: %w", dst, err)
	}
	f, err := os.CreateTemp(s.tmp, tmpPrefix+"link-*")
	if err != nil {
		return fmt.Errorf("localfs: copy %s: %w", src, err)
	}
	tmp := f.Name()
	f.Close()
	os.Remove(tmp) // the name only: link(2) does not replace
	if err := os.Link(from, tmp); err != nil {
		if notFound(err) {
			return fmt.Errorf("localfs: copy %s: %w", src, sink.ErrNotFound)
		}
		return fmt.Errorf("localfs: copy %s: %w", src, err)
	}
	// rename(2) of two links to one file does nothing: the temp link is
	// removed in any case.
	defer os.Remove(tmp)
	dir := filepath.Dir(to)
	for attempt := 0; ; attempt++ {
		err = s.mkdirs(dir)
		if err == nil {
			err = os.Rename(tmp, to)
		}
		if err == nil || !errors.Is(err, fs.ErrNotExist) || attempt == 100 {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("localfs: copy %s to %s: %w", src, dst, err)
	}
	return syncDir(dir)
}
