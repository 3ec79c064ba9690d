package sink

import (
	"bytes"
	"context"
	"fmt"
	"io"
)

// Copier is a Store that copies an object to another key without the bytes
// passing through this process: S3's CopyObject, a hard link on a local
// directory. The copy appears whole or not at all, like a Put, replaces any
// object under dst, and fails with ErrNotFound (wrapped) when src is
// missing.
type Copier interface {
	Copy(ctx context.Context, src, dst string) error
}

// Copy copies the object under src to dst: server-side when s is a Copier,
// else by reading it into memory and putting it again (for stores that
// hold small objects only, such as test fakes).
func Copy(ctx context.Context, s Store, src, dst string) error {
	if c, ok := s.(Copier); ok {
		return c.Copy(ctx, src, dst)
	}
	r, err := s.Get(ctx, src)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return s.Put(ctx, dst, bytes.NewReader(b), int64(len(b)))
}
