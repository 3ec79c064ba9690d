// Package s3store implements sink.Store on an S3 bucket (or an
// S3-compatible server) with aws-sdk-go-v2.
//
// Credentials, region and endpoint come from the SDK's default chain
// (environment, shared config and profiles, ECS task and EC2 instance
// roles), so AWS_REGION, AWS_PROFILE and AWS_ENDPOINT_URL_S3 work; Options
// override the region and endpoint. With a custom endpoint the store uses
// path-style addressing, which S3-compatible servers expect.
package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/cdc2s3/cdc2s3/sink"
)

// Defaults for Options.
const (
	// DefaultPartSize is the multipart part size: objects up to it are
	// uploaded with one PutObject. Memory use is about PartSize ×
	// Concurrency per upload in flight.
	DefaultPartSize = 16 << 20
	// DefaultConcurrency is the number of parts uploaded at once.
	DefaultConcurrency = 4
	// DefaultMaxAttempts is how many times the SDK's standard retryer tries
	// a request, unless AWS_MAX_ATTEMPTS or the profile says otherwise.
	DefaultMaxAttempts = 5
	// DefaultRegion is used when neither Options nor the environment name
	// a region; S3-compatible servers mostly ignore it.
	DefaultRegion = "us-east-1"
)

// Options configures a Store. Only Bucket is required.
type Options struct {
	Bucket string // bucket name
	Prefix string // key prefix inside the bucket, with or without the trailing '/'

	Region    string // overrides AWS_REGION and the profile
	Endpoint  string // overrides AWS_ENDPOINT_URL_S3, e.g. http://127.0.0.1:7070
	PathStyle bool   // path-style addressing; implied by any custom endpoint

	PartSize    int64 // multipart part size; 0 means DefaultPartSize
	Concurrency int   // parts in flight per upload; 0 means DefaultConcurrency
	MaxAttempts int   // tries per request; 0 means the SDK config, else DefaultMaxAttempts

	// SSE asks S3 to encrypt every object written: "" leaves it to the
	// bucket's default encryption, "AES256" is SSE-S3, "aws:kms" SSE-KMS
	// with KMSKeyID (empty: the account's aws/s3 key) and, with BucketKey,
	// an S3 Bucket Key (fewer KMS requests).
	SSE       string
	KMSKeyID  string
	BucketKey bool
}

// Server-side encryption modes of Options.SSE.
const (
	SSES3  = "AES256"
	SSEKMS = "aws:kms"
)

// Store is a sink.Store on an S3 bucket, below an optional prefix. It is
// safe for concurrent use.
type Store struct {
	client      *s3.Client
	creds       aws.CredentialsProvider
	region      string
	bucket      string
	prefix      string // "" or ending in '/'
	partSize    int64
	concurrency int
	sse         encryption
}

var _ sink.Store = (*Store)(nil)

// New returns a Store for o.Bucket. It loads the AWS configuration but
// makes no request; call CheckBucket to find configuration errors early.
func New(ctx context.Context, o Options) (*Store, error) {
	if o.Bucket == "" {
		return nil, errors.New("s3: no bucket")
	}
	switch {
	case o.SSE != "" && o.SSE != SSES3 && o.SSE != SSEKMS:
		return nil, fmt.Errorf("s3: invalid --s3-sse %q: use %s (SSE-S3) or %s (SSE-KMS), or leave it empty for the bucket's default encryption", o.SSE, SSES3, SSEKMS)
	case o.KMSKeyID != "" && o.SSE != SSEKMS:
		return nil, fmt.Errorf("s3: --s3-sse-kms-key-id needs --s3-sse %s", SSEKMS)
	}
	if o.Endpoint != "" {
		if u, err := url.Parse(o.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("s3: endpoint %q: want a URL like https://s3.example.com or http://127.0.0.1:7070", redactURL(o.Endpoint))
		}
	}
	var loadOpts []func(*config.LoadOptions) error
	if o.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(o.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS config: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	switch {
	case o.MaxAttempts > 0:
		cfg.RetryMaxAttempts = o.MaxAttempts
	case cfg.RetryMaxAttempts == 0:
		cfg.RetryMaxAttempts = DefaultMaxAttempts
	}
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		// BaseEndpoint is also set here when AWS_ENDPOINT_URL_S3 (or the
		// profile's endpoint_url) names one.
		if o.PathStyle || so.BaseEndpoint != nil {
			so.UsePathStyle = true
		}
		// versitygw's posix backend answers 409 ExistingObjectIsDirectory
		// when a DeleteObject removes an emptied folder while a PutObject
		// is creating a key in it; a retry succeeds. S3 never sends it.
		so.Retryer = retry.AddWithErrorCodes(so.Retryer, "ExistingObjectIsDirectory")
		// GetObject of a multipart object cannot check its composite
		// checksum; the SDK would log a warning for every such read.
		so.DisableLogOutputChecksumValidationSkipped = true
	})
	s := &Store{
		client:      client,
		creds:       cfg.Credentials,
		region:      cfg.Region,
		bucket:      o.Bucket,
		prefix:      strings.Trim(o.Prefix, "/"),
		partSize:    o.PartSize,
		concurrency: o.Concurrency,
		sse:         encryption{Mode: o.SSE, KMSKeyID: o.KMSKeyID, BucketKey: o.BucketKey && o.SSE == SSEKMS},
	}
	if s.prefix != "" {
		s.prefix += "/"
	}
	if s.partSize <= 0 {
		s.partSize = DefaultPartSize
	}
	if s.concurrency <= 0 {
		s.concurrency = DefaultConcurrency
	}
	return s, nil
}

// String returns s3://bucket/prefix.
func (s *Store) String() string {
	return "s3://" + s.bucket + "/" + strings.TrimSuffix(s.prefix, "/")
}

// CheckBucket verifies that credentials are available and that the bucket
// exists and is reachable with them: a ListObjectsV2 of one key under the
// prefix, which a role allowed s3:ListBucket on the prefix only may do (a
// HeadBucket needs it on the whole bucket). Its errors say what to fix.
func (s *Store) CheckBucket(ctx context.Context) error {
	if s.creds == nil {
		return errNoCredentials(errors.New("no credential provider"))
	}
	if _, err := s.creds.Retrieve(ctx); err != nil {
		return errNoCredentials(err)
	}
	_, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(s.prefix), MaxKeys: aws.Int32(1)})
	if err == nil {
		return nil
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound:
			return fmt.Errorf("s3: bucket %q does not exist: create it or fix --dest", s.bucket)
		case http.StatusForbidden:
			return fmt.Errorf("s3: access to bucket %q denied: check the AWS credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE) and that they allow s3:ListBucket (for the prefix %q at least), s3:GetObject, s3:PutObject and s3:DeleteObject on it", s.bucket, s.prefix)
		case http.StatusMovedPermanently, http.StatusBadRequest:
			if r := re.Response.Header.Get("X-Amz-Bucket-Region"); r != "" && r != s.region {
				return fmt.Errorf("s3: bucket %q is in region %s, not %s: set the region to %s (AWS_REGION)", s.bucket, r, s.region, r)
			}
		}
	}
	return fmt.Errorf("s3: check bucket %q: %w", s.bucket, err)
}

func errNoCredentials(err error) error {
	return fmt.Errorf("s3: no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an IAM role: %w", err)
}

// Put uploads size bytes from r to key. Large objects go in parts and
// appear only when the multipart upload completes.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := s.put(ctx, key, r, size, false); err != nil {
		return fmt.Errorf("s3: put %s: %w", key, refused(err, s.bucket))
	}
	return nil
}

// PutIfAbsent is Put with If-None-Match: *. S3 answers 412
// PreconditionFailed when the key exists, or 409 ConditionalRequestConflict
// while a conflicting conditional write is in flight; both give
// sink.ErrPreconditionFailed.
//
// If a try succeeds but its response is lost, the SDK's retry finds the
// object and reports ErrPreconditionFailed; a caller that must tell can read
// the object back.
func (s *Store) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error {
	err := s.put(ctx, key, r, size, true)
	if isPreconditionFailed(err) {
		return fmt.Errorf("s3: put if absent %s: %w", key, sink.ErrPreconditionFailed)
	}
	if err != nil {
		return fmt.Errorf("s3: put if absent %s: %w", key, refused(err, s.bucket))
	}
	return nil
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, size int64, ifNoneMatch bool) error {
	if err := sink.ValidKey(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("negative size %d", size)
	}
	return upload(ctx, s.client, uploadParams{
		Bucket:      s.bucket,
		Key:         s.prefix + key,
		Body:        &exactReader{ctx: ctx, r: r, left: size},
		Size:        size,
		IfNoneMatch: ifNoneMatch,
		PartSize:    s.partSize,
		Concurrency: s.concurrency,
		Encryption:  s.sse,
	})
}

// Get opens the object under key.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := sink.ValidKey(key); err != nil {
		return nil, fmt.Errorf("s3: get %s: %w", key, err)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.prefix + key),
	})
	if isNotFound(err) {
		return nil, fmt.Errorf("s3: get %s: %w", key, sink.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("s3: get %s: %w", key, refused(err, s.bucket))
	}
	return out.Body, nil
}

// List pages through ListObjectsV2 under prefix. Keys ending in '/' (folder
// markers made by consoles) are not objects and are left out.
func (s *Store) List(ctx context.Context, prefix string) ([]sink.ObjectInfo, error) {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(s.prefix + prefix),
	})
	var infos []sink.ObjectInfo
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3: list %s: %w", prefix, refused(err, s.bucket))
		}
		for _, obj := range page.Contents {
			key, ok := strings.CutPrefix(aws.ToString(obj.Key), s.prefix)
			if !ok || key == "" || strings.HasSuffix(key, "/") {
				continue
			}
			infos = append(infos, sink.ObjectInfo{
				Key:     key,
				Size:    aws.ToInt64(obj.Size),
				ModTime: aws.ToTime(obj.LastModified),
			})
		}
	}
	// S3 lists in byte order; not every compatible server does.
	sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
	return infos, nil
}

// Delete removes the object under key. S3 does not report missing keys;
// a 404 from a compatible server is ignored too.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := sink.ValidKey(key); err != nil {
		return fmt.Errorf("s3: delete %s: %w", key, refused(err, s.bucket))
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.prefix + key),
	})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("s3: delete %s: %w", key, err)
	}
	return nil
}

// refusedCodes are S3's error codes for requests that waiting rarely
// cures, each with what to fix.
var refusedCodes = map[string]string{
	"AccessDenied":          "check the bucket policy and the role's permissions (s3:PutObject, s3:GetObject, s3:ListBucket, s3:DeleteObject on the bucket and prefix)",
	"AllAccessDisabled":     "the bucket's owner disabled all access to it",
	"AccountProblem":        "the AWS account has a problem that blocks S3: see the AWS console",
	"NoSuchBucket":          "the bucket does not exist (any more): create it, or fix --dest",
	"InvalidAccessKeyId":    "the AWS access key does not exist: fix AWS_ACCESS_KEY_ID or the role",
	"SignatureDoesNotMatch": "the AWS secret key does not match the access key: fix AWS_SECRET_ACCESS_KEY",
	"ExpiredToken":          "the AWS credentials expired: renew them (or run with a role, whose credentials renew themselves)",
	"InvalidToken":          "the AWS session token is invalid: renew the credentials",
}

// refusal returns the code and the fix when S3 refused the request for
// one of refusedCodes or with a bare 403.
func refusal(err error) (code, fix string, ok bool) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if fix, ok := refusedCodes[ae.ErrorCode()]; ok {
			return ae.ErrorCode(), fix, true
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusForbidden {
		return "403", refusedCodes["AccessDenied"], true
	}
	return "", "", false
}

// refused wraps err with sink.ErrRefused and the fix when S3 refused the
// request (refusal); else it returns err.
func refused(err error, bucket string) error {
	if err == nil {
		return nil
	}
	if code, fix, ok := refusal(err); ok {
		return fmt.Errorf("%w (%s, bucket %s): %s: %w", sink.ErrRefused, code, bucket, fix, err)
	}
	return err
}

// isNotFound reports whether err is S3's NoSuchKey or a plain 404 (not a
// bucket that is gone: that is refused).
func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	if _, _, ok := refusal(err); ok {
		return false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchKey" || ae.ErrorCode() == "NotFound") {
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound
}

// isPreconditionFailed reports whether err is a failed If-None-Match.
func isPreconditionFailed(err error) bool {
	if err == nil {
		return false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "PreconditionFailed", "ConditionalRequestConflict":
			return true
		}
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusPreconditionFailed
}

// redactURL hides any password in a URL for messages.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	return s
}

// exactReader yields exactly left bytes of r: it stops there, reports a
// short r as io.ErrUnexpectedEOF (so a truncated body fails the upload
// instead of storing fewer bytes) and stops once ctx is done.
type exactReader struct {
	ctx  context.Context
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if err := e.ctx.Err(); err != nil {
		return 0, err
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF {
		if e.left > 0 {
			return n, fmt.Errorf("body ended %d bytes short: %w", e.left, io.ErrUnexpectedEOF)
		}
		if n == 0 {
			return 0, io.EOF
		}
		err = nil
	}
	return n, err
}
