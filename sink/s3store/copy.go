package s3store

import (
	"context"
	"fmt"

	"github.com/cdc2s3/cdc2s3/sink"
)

var _ sink.Copier = (*Store)(nil)

// Copy copies the object under src to dst inside the bucket with
// CopyObject: S3 copies the bytes itself, so a coordinator can rename many
// large files without moving them through its own network. The new object
// gets the store's encryption.
func (s *Store) Copy(ctx context.Context, src, dst string) error {
	for _, k := range []string{src, dst} {
		if err := sink.ValidKey(k); err != nil {
			return fmt.Errorf("s3: copy %s to %s: %w", src, dst, err)
		}
	}
	err := copyObject(ctx, s.client, s.bucket, s.prefix+src, s.prefix+dst, s.sse)
	if isNotFound(err) {
		return fmt.Errorf("s3: copy %s: %w", src, sink.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("s3: copy %s to %s: %w", src, dst, refused(err, s.bucket))
	}
	return nil
}
