// Package sink defines where cdc2s3 writes: an object store holding the
// table folders, the Parquet files and the tool's own state under _cdc2s3/.
//
// Every backend (S3 in sink/s3store, a local directory in sink/localfs)
// implements Store and passes the one conformance suite in sink/storetest,
// so both destinations hold the same layout, byte for byte.
package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// ErrNotFound is returned by Get (and Delete where a backend can tell) when
// no object exists under the key.
var ErrNotFound = errors.New("object not found")

// ErrRefused is returned when the destination refuses a request for a
// reason that waiting rarely cures: access denied, the bucket gone, bad or
// expired credentials. Callers may retry for a while (a policy being
// fixed, credentials refreshed), but not for ever.
var ErrRefused = errors.New("the destination refuses the request")

// ErrPreconditionFailed is returned by PutIfAbsent when an object already
// exists under the key.
var ErrPreconditionFailed = errors.New("object already exists")

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key     string    // full key relative to the store's root, '/'-separated
	Size    int64     // bytes
	ModTime time.Time // last modification, as the backend reports it
}

// Store is a flat namespace of objects addressed by '/'-separated keys,
// relative to the destination's root (bucket prefix or directory).
//
// Keys are relative paths: no leading or trailing '/', no empty, "." or ".."
// segments, no NUL byte. Every Store refuses other keys with an error, so
// whatever one destination accepts, all do. On a local directory a key
// cannot be both an object and a folder of other keys ("a" and "a/b");
// cdc2s3's layout never needs that. Implementations must be safe for
// concurrent use.
type Store interface {
	// Put stores size bytes read from r under key, replacing any object
	// there. The object becomes visible whole or not at all: a reader never
	// sees a partial object, even if the process dies mid-way. If r ends
	// before size bytes or fails, Put fails and stores nothing; bytes past
	// size are not read. size must not be negative.
	Put(ctx context.Context, key string, r io.Reader, size int64) error

	// PutIfAbsent is Put that fails with ErrPreconditionFailed when an
	// object already exists under key (S3 If-None-Match: *; O_EXCL link on
	// a local directory). It is the primitive for leases and for never
	// overwriting a checkpoint written by another process.
	PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error

	// Get opens the object under key. It returns ErrNotFound (wrapped) when
	// there is none. The caller closes the reader.
	Get(ctx context.Context, key string) (io.ReadCloser, error)

	// List returns every object whose key starts with prefix, sorted by key
	// in byte order. An empty result is not an error.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)

	// Delete removes the object under key. Deleting a missing key is not an
	// error.
	Delete(ctx context.Context, key string) error

	// String describes the destination for logs and messages, without any
	// secret (for example "s3://bucket/prefix" or "/data/out").
	String() string
}

// PutFile uploads the local file at path under key.
func PutFile(ctx context.Context, s Store, key, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	return s.Put(ctx, key, f, info.Size())
}

// ErrInvalidKey is returned for a key no destination can hold (empty, with
// NUL, or with an empty, "." or ".." segment). Retrying it cannot help.
var ErrInvalidKey = errors.New("invalid key")

// ValidKey checks that key is a relative '/'-separated path with no empty,
// "." or ".." segments and no NUL: a key that maps to exactly one file in a
// local directory, so every destination accepts the same keys.
func ValidKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	if strings.IndexByte(key, 0) >= 0 {
		return fmt.Errorf("%w %q: it contains NUL", ErrInvalidKey, key)
	}
	for _, seg := range strings.Split(key, "/") {
		switch seg {
		case "", ".", "..":
			return fmt.Errorf("%w %q: want a relative path like a/b.parquet, without empty, . or .. segments", ErrInvalidKey, key)
		}
	}
	return nil
}
