// Package dest opens the sink.Store a --dest value names:
//
//	s3://bucket/prefix    an S3 bucket, below an optional prefix
//	file:///abs/path      a local directory
//	path/to/dir           a local directory, relative to the working directory
package dest

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/localfs"
	"github.com/cdc2s3/cdc2s3/sink/s3store"
)

// usage is appended to every parse error.
const usage = "want s3://bucket/prefix, file:///absolute/path or a directory path"

// Options tune an S3 destination; a local one ignores them.
type Options struct {
	PathStyle bool   // path-style S3 addressing (implied by Endpoint)
	Region    string // overrides AWS_REGION
	Endpoint  string // S3-compatible endpoint URL; overrides AWS_ENDPOINT_URL_S3
	// SSE, KMSKeyID and BucketKey ask for server-side encryption of every
	// object written to S3 (s3store.Options).
	SSE       string
	KMSKeyID  string
	BucketKey bool
}

// Location is a parsed destination: either Bucket (with Prefix) or Path is
// set.
type Location struct {
	Bucket string // S3 bucket; "" for a local directory
	Prefix string // S3 key prefix without leading or trailing '/'
	Path   string // absolute, cleaned local directory
}

// String returns the location in canonical form: s3://bucket/prefix or
// the directory.
func (l Location) String() string {
	if l.Bucket != "" {
		if l.Prefix == "" {
			return "s3://" + l.Bucket
		}
		return "s3://" + l.Bucket + "/" + l.Prefix
	}
	return l.Path
}

// Parse parses a --dest value without touching the destination. An S3
// prefix is taken literally: s3://b/a%20b names the prefix "a%20b", as in
// the AWS CLI. A file URL is percent-decoded.
func Parse(raw string) (Location, error) {
	s := strings.TrimSpace(raw)
	raw = redact(s)
	if s == "" {
		return Location{}, fmt.Errorf("dest: empty: %s", usage)
	}
	scheme, rest, hasScheme := strings.Cut(s, "://")
	if !hasScheme {
		if lower := strings.ToLower(s); strings.HasPrefix(lower, "s3:") || strings.HasPrefix(lower, "file:") {
			scheme, _, _ = strings.Cut(lower, ":")
			return Location{}, fmt.Errorf("dest %q: %s: needs \"://\": %s", raw, scheme, usage)
		}
		path, err := filepath.Abs(s)
		if err != nil {
			return Location{}, fmt.Errorf("dest %q: %w", raw, err)
		}
		return Location{Path: path}, nil
	}
	switch strings.ToLower(scheme) {
	case "s3":
		bucket, prefix, _ := strings.Cut(rest, "/")
		if bucket == "" {
			return Location{}, fmt.Errorf("dest %q: no bucket: %s", raw, usage)
		}
		if strings.ContainsAny(bucket, ":@?# \t") {
			return Location{}, fmt.Errorf("dest %q: bad bucket name (an S3-compatible server's URL goes in the endpoint option or AWS_ENDPOINT_URL_S3, credentials in the environment): %s", raw, usage)
		}
		return Location{Bucket: bucket, Prefix: strings.Trim(prefix, "/")}, nil
	case "file":
		u, err := url.Parse(s)
		if err != nil {
			return Location{}, fmt.Errorf("dest %q: %w: %s", raw, err, usage)
		}
		if u.Host != "" && u.Host != "localhost" {
			return Location{}, fmt.Errorf("dest %q: a file URL takes an absolute path after three slashes (file:///data/out), not host %q: %s", raw, u.Host, usage)
		}
		if !filepath.IsAbs(u.Path) {
			return Location{}, fmt.Errorf("dest %q: file URL path is not absolute: %s", raw, usage)
		}
		return Location{Path: filepath.Clean(u.Path)}, nil
	default:
		return Location{}, fmt.Errorf("dest %q: unknown scheme %q: %s", raw, scheme, usage)
	}
}

// Open parses rawURL and opens the store it names. For S3 it checks that
// credentials exist and the bucket is reachable; a local directory is
// created if missing.
func Open(ctx context.Context, rawURL string, o Options) (sink.Store, error) {
	loc, err := Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if loc.Bucket == "" {
		return localfs.New(loc.Path)
	}
	s, err := s3store.New(ctx, s3store.Options{
		Bucket:    loc.Bucket,
		Prefix:    loc.Prefix,
		Region:    o.Region,
		Endpoint:  o.Endpoint,
		PathStyle: o.PathStyle,
		SSE:       o.SSE,
		KMSKeyID:  o.KMSKeyID,
		BucketKey: o.BucketKey,
	})
	if err != nil {
		return nil, err
	}
	if err := s.CheckBucket(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// redact hides user information (user:password@) in a URL-like value so
// that error messages never echo a secret.
func redact(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	authority, path, hasPath := strings.Cut(rest, "/")
	i := strings.LastIndexByte(authority, '@')
	if i < 0 {
		return s
	}
	out := scheme + "://xxxxx" + authority[i:]
	if hasPath {
		out += "/" + path
	}
	return out
}
