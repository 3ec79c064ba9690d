package s3store

// This file is the only one that knows how objects are uploaded. It uses
// feature/s3/manager, which the SDK has deprecated in favour of
// feature/s3/transfermanager; moving over means rewriting this file alone.

import (
	"context"
	"io"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// uploadParams describes one upload.
type uploadParams struct {
	Bucket      string
	Key         string    // full key, prefix included
	Body        io.Reader // yields exactly Size bytes, then io.EOF
	Size        int64
	IfNoneMatch bool  // fail with 412 PreconditionFailed if the key exists
	PartSize    int64 // bytes per part; objects up to this size go in one PutObject
	Concurrency int   // parts in flight
	Encryption  encryption
}

// encryption is the server-side encryption asked for each object.
type encryption struct {
	Mode      string // "", SSES3 or SSEKMS
	KMSKeyID  string
	BucketKey bool
}

// upload stores p.Body under p.Key: one PutObject for small objects, a
// multipart upload (aborted on failure) for larger ones. IfNoneMatch goes on
// the PutObject or on CompleteMultipartUpload, so the object appears only if
// no other did first.
func upload(ctx context.Context, client *s3.Client, p uploadParams) error {
	u := manager.NewUploader(client, func(u *manager.Uploader) {
		u.PartSize = max(p.PartSize, manager.MinUploadPartSize)
		// Stay within the parts limit, as the manager does itself only
		// for seekable bodies.
		if parts := int64(u.MaxUploadParts); p.Size/u.PartSize >= parts {
			u.PartSize = p.Size/(parts-1) + 1
		}
		u.Concurrency = max(p.Concurrency, 1)
	})
	in := &s3.PutObjectInput{
		Bucket: aws.String(p.Bucket),
		Key:    aws.String(p.Key),
		Body:   p.Body,
	}
	if p.IfNoneMatch {
		in.IfNoneMatch = aws.String("*")
	}
	// The manager puts these on the PutObject, or on the
	// CreateMultipartUpload of a larger object.
	in.ServerSideEncryption, in.SSEKMSKeyId, in.BucketKeyEnabled = p.Encryption.fields()
	_, err := u.Upload(ctx, in)
	return err
}

// copyObject copies the object srcKey to dstKey within the bucket, server
// side, with the same encryption as an upload. CopyObject takes objects up
// to 5 GB; a LOAD file is at most --max-file-size plus one row.
func copyObject(ctx context.Context, client *s3.Client, bucket, srcKey, dstKey string, e encryption) error {
	in := &s3.CopyObjectInput{
		Bucket:     aws.String(bucket),
		Key:        aws.String(dstKey),
		CopySource: aws.String(url.PathEscape(bucket) + "/" + escapeKey(srcKey)),
	}
	in.ServerSideEncryption, in.SSEKMSKeyId, in.BucketKeyEnabled = e.fields()
	_, err := client.CopyObject(ctx, in)
	return err
}

// fields returns the request fields of e: none when e.Mode is empty.
func (e encryption) fields() (mode types.ServerSideEncryption, kmsKeyID *string, bucketKey *bool) {
	if e.Mode == "" {
		return "", nil, nil
	}
	if e.KMSKeyID != "" {
		kmsKeyID = aws.String(e.KMSKeyID)
	}
	if e.BucketKey {
		bucketKey = aws.Bool(true)
	}
	return types.ServerSideEncryption(e.Mode), kmsKeyID, bucketKey
}

// escapeKey URL-encodes each segment of a key for x-amz-copy-source.
func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
