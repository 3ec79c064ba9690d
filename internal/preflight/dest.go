package preflight

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/dest"
	"github.com/cdc2s3/cdc2s3/sink/localfs"
	"github.com/cdc2s3/cdc2s3/sink/s3store"
)

// CheckKeyPrefix starts the key of the object the write check puts and
// deletes again: _cdc2s3/check-<random>.
const CheckKeyPrefix = sink.StatePrefix + "check-"

// Destination checks that the destination is reachable and writable (it
// writes, reads, lists and deletes one object under _cdc2s3/), that it
// supports the conditional writes of the single-writer lease, and, for
// S3, reports the bucket's region and default encryption. It returns the
// destination's cdc2s3 state and whether there is one; ok is false when
// the destination could not be read.
func Destination(ctx context.Context, o Options) (rs []Result, st lsnstore.State, haveState, ok bool) {
	loc, err := dest.Parse(o.Dest)
	if err != nil {
		return []Result{{Name: NameDest, Status: Fail, Detail: oneLine(err.Error()),
			Fix: "fix --dest: s3://bucket/prefix, file:///absolute/path or a directory path"}}, st, false, false
	}
	var store sink.Store
	if loc.Bucket != "" {
		var brs []Result
		brs, store = checkBucket(ctx, loc, o.PathStyle)
		rs = append(rs, brs...)
	} else {
		var r Result
		var cleanup func()
		r, store, cleanup = openLocal(loc.Path)
		// Directories the check made for its test object go again, so a
		// check leaves the destination as it found it.
		defer cleanup()
		rs = append(rs, r)
	}
	if store == nil {
		return rs, st, false, false
	}
	rs = append(rs, WriteTest(ctx, store, loc.Bucket != ""), ConditionalWrite(ctx, store))
	r, st, haveState, ok := State(ctx, store, o)
	return append(rs, r), st, haveState, ok
}

// checkBucket checks the credentials and the bucket with a client of its
// own (so it can tell the causes apart), then reports the bucket's region
// and default encryption. It returns the store to test writes with, nil
// when the bucket cannot be reached.
func checkBucket(ctx context.Context, loc dest.Location, pathStyle bool) ([]Result, sink.Store) {
	fail := func(detail, fix string) ([]Result, sink.Store) {
		return []Result{{Name: NameDest, Status: Fail, Detail: detail, Fix: fix}}, nil
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fail("cannot load the AWS configuration: "+oneLine(err.Error()), "fix AWS_PROFILE, AWS_CONFIG_FILE or ~/.aws/config")
	}
	if cfg.Region == "" {
		cfg.Region = s3store.DefaultRegion
	}
	if cfg.Credentials == nil {
		return fail("no AWS credentials found", "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an IAM role")
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return fail("no AWS credentials found: "+oneLine(err.Error()), "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an IAM role")
	}
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if pathStyle || so.BaseEndpoint != nil {
			so.UsePathStyle = true
		}
	})
	endpoint := "AWS S3"
	if e := client.Options().BaseEndpoint; e != nil {
		endpoint = *e
	}
	head, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(loc.Bucket)})
	if isStatus(err, http.StatusForbidden) {
		// A role allowed s3:ListBucket on the prefix only (the stack's task
		// role) may not HeadBucket, but may list its prefix.
		if _, lerr := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(loc.Bucket), Prefix: aws.String(loc.Prefix), MaxKeys: aws.Int32(1)}); lerr == nil {
			head, err = &s3.HeadBucketOutput{}, nil
		}
	}
	if err != nil {
		var re *awshttp.ResponseError
		if errors.As(err, &re) {
			switch re.HTTPStatusCode() {
			case http.StatusNotFound:
				return fail(fmt.Sprintf("bucket %s does not exist at %s", loc.Bucket, endpoint), "create the bucket, or fix --dest (and AWS_ENDPOINT_URL_S3 for an S3-compatible server)")
			case http.StatusForbidden:
				return fail(fmt.Sprintf("access to bucket %s denied", loc.Bucket),
					"check the AWS credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE) and that they allow s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject on the bucket and prefix")
			case http.StatusMovedPermanently, http.StatusBadRequest:
				if r := re.Response.Header.Get("X-Amz-Bucket-Region"); r != "" && r != cfg.Region {
					return fail(fmt.Sprintf("bucket %s is in region %s, not %s", loc.Bucket, r, cfg.Region), "set AWS_REGION="+r)
				}
			}
		}
		return fail(fmt.Sprintf("cannot reach bucket %s at %s: %s", loc.Bucket, endpoint, oneLine(err.Error())),
			"check the network, AWS_ENDPOINT_URL_S3 for an S3-compatible server, and --s3-path-style")
	}
	rs := []Result{{Name: NameDest, Status: OK, Detail: fmt.Sprintf("bucket %s is reachable at %s (%s)", loc.Bucket, endpoint, loc)}}

	region := aws.ToString(head.BucketRegion)
	switch {
	case region == "":
		rs = append(rs, Result{Name: NameBucketRegion, Status: Info, Detail: fmt.Sprintf("the server does not report the bucket's region; requests use %s", cfg.Region)})
	case region != cfg.Region:
		rs = append(rs, Result{Name: NameBucketRegion, Status: Warn,
			Detail: fmt.Sprintf("bucket %s is in region %s, but requests are signed for %s", loc.Bucket, region, cfg.Region),
			Fix:    "set AWS_REGION=" + region})
	default:
		rs = append(rs, Result{Name: NameBucketRegion, Status: Info, Detail: fmt.Sprintf("bucket %s is in region %s", loc.Bucket, region)})
	}
	rs = append(rs, bucketEncryption(ctx, client, loc.Bucket))

	store, err := s3store.New(ctx, s3store.Options{Bucket: loc.Bucket, Prefix: loc.Prefix, PathStyle: pathStyle})
	if err != nil {
		rs = append(rs, Result{Name: NameDestWrite, Status: Fail, Detail: oneLine(err.Error())})
		return rs, nil
	}
	return rs, store
}

// bucketEncryption reports the bucket's default encryption, when the
// server tells: S3-compatible servers often do not implement the call.
func bucketEncryption(ctx context.Context, client *s3.Client, bucket string) Result {
	r := Result{Name: NameBucketEncryption, Status: Info}
	out, err := client.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(bucket)})
	if err != nil {
		var ae smithy.APIError
		code := ""
		if errors.As(err, &ae) {
			code = ae.ErrorCode()
		}
		switch code {
		case "ServerSideEncryptionConfigurationNotFoundError":
			r.Detail = "the bucket has no default encryption: objects are stored as the server stores them by default"
			r.Fix = "if the data must be encrypted at rest, set the bucket's default encryption (aws s3api put-bucket-encryption)"
		case "AccessDenied":
			r.Detail = "the bucket's default encryption is not readable with these credentials (s3:GetEncryptionConfiguration); not checked"
		default:
			r.Detail = "the server does not report the bucket's default encryption; not checked"
			if code != "" {
				r.Detail += " (" + code + ")"
			}
		}
		return r
	}
	var algs []string
	if c := out.ServerSideEncryptionConfiguration; c != nil {
		for _, rule := range c.Rules {
			if d := rule.ApplyServerSideEncryptionByDefault; d != nil {
				a := string(d.SSEAlgorithm)
				if k := aws.ToString(d.KMSMasterKeyID); k != "" {
					a += " with key " + k
				}
				algs = append(algs, a)
			}
		}
	}
	if len(algs) == 0 {
		r.Detail = "the bucket has an encryption configuration without a default rule"
		return r
	}
	r.Detail = "objects are encrypted by default with " + strings.Join(algs, ", ")
	return r
}

// openLocal opens a local directory destination the way run does (which
// creates it and _cdc2s3/tmp/ in it when missing). The returned cleanup
// removes again the directories that did not exist before, if they are
// still empty.
func openLocal(path string) (Result, sink.Store, func()) {
	r := Result{Name: NameDest}
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		r.Status, r.Detail, r.Fix = Fail, path+" exists and is not a directory", "fix --dest"
		return r, nil, func() {}
	}
	var made []string
	for d := filepath.Join(path, filepath.FromSlash(sink.StatePrefix), "tmp"); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil || d == filepath.Dir(d) {
			break
		}
		made = append(made, d) // deepest first
	}
	cleanup := func() {
		for _, d := range made {
			os.Remove(d) // fails, as it should, when not empty
		}
	}
	store, err := localfs.New(path)
	if err != nil {
		r.Status, r.Detail = Fail, "cannot create or write the directory: "+oneLine(err.Error())
		r.Fix = fmt.Sprintf("make %s writable by the user cdc2s3 runs as (%s), or choose another --dest", path, userName())
		cleanup()
		return r, nil, func() {}
	}
	r.Status, r.Detail = OK, "local directory "+path
	if slices.Contains(made, path) {
		r.Detail += " (it does not exist yet: the first run creates it)"
	}
	return r, store, cleanup
}

// userName names the user this process runs as, for a fix.
func userName() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return fmt.Sprintf("uid %d", os.Getuid())
}

// WriteTest writes an object under _cdc2s3/, reads it back, finds it in a
// listing and deletes it: the four operations cdc2s3 needs.
func WriteTest(ctx context.Context, store sink.Store, isS3 bool) Result {
	key := CheckKeyPrefix + randomHex(8)
	body := []byte("written by cdc2s3 check at " + time.Now().UTC().Format(time.RFC3339) + "; safe to delete\n")
	r := Result{Name: NameDestWrite, Status: Fail}
	perm := func(action, what string) string {
		if isS3 {
			return fmt.Sprintf("allow %s on the bucket and prefix", action)
		}
		return fmt.Sprintf("let the user cdc2s3 runs as (%s) %s %s", userName(), what, store)
	}
	if err := store.Put(ctx, key, bytes.NewReader(body), int64(len(body))); err != nil {
		r.Detail, r.Fix = "cannot write "+key+": "+oneLine(err.Error()), perm("s3:PutObject", "write in")
		return r
	}
	deleted := false
	defer func() {
		if !deleted {
			store.Delete(context.WithoutCancel(ctx), key)
		}
	}()
	rc, err := store.Get(ctx, key)
	if err == nil {
		var got []byte
		got, err = io.ReadAll(rc)
		rc.Close()
		if err == nil && !bytes.Equal(got, body) {
			err = fmt.Errorf("read back %d bytes that differ from the %d written", len(got), len(body))
		}
	}
	if err != nil {
		r.Detail, r.Fix = "cannot read back "+key+": "+oneLine(err.Error()), perm("s3:GetObject", "read in")
		return r
	}
	listed, err := store.List(ctx, key)
	if err == nil && (len(listed) != 1 || listed[0].Key != key) {
		err = fmt.Errorf("a listing of %s does not show the object just written", key)
	}
	if err != nil {
		r.Detail, r.Fix = "cannot list "+key+": "+oneLine(err.Error()), perm("s3:ListBucket", "list")
		return r
	}
	if err := store.Delete(ctx, key); err != nil {
		r.Detail, r.Fix = "cannot delete "+key+": "+oneLine(err.Error()), perm("s3:DeleteObject", "delete in")
		return r
	}
	deleted = true
	if rc, err := store.Get(ctx, key); err == nil {
		rc.Close()
		r.Detail, r.Fix = key+" is still readable after its deletion", perm("s3:DeleteObject", "delete in")
		return r
	}
	r.Status = OK
	r.Detail = fmt.Sprintf("wrote, read, listed and deleted %s", key)
	return r
}

// ConditionalWrite checks that a write-if-absent (S3 If-None-Match: *; a
// hard link on a local directory) refuses to replace an object: the
// single-writer lease that keeps two daemons off one destination relies
// on it.
func ConditionalWrite(ctx context.Context, store sink.Store) Result {
	key := CheckKeyPrefix + randomHex(8) + "-if-absent"
	body := []byte("written by cdc2s3 check; safe to delete\n")
	put := func() error { return store.PutIfAbsent(ctx, key, bytes.NewReader(body), int64(len(body))) }
	defer store.Delete(context.WithoutCancel(ctx), key)
	if err := put(); err != nil {
		return Result{Name: NameConditionalWrite, Status: Fail,
			Detail: "a conditional write (create only if absent) failed: " + oneLine(err.Error()),
			Fix:    "cdc2s3 takes a lease with conditional writes: use a store that supports them (AWS S3 and versitygw do; on S3-compatible servers, If-None-Match on PutObject)"}
	}
	err := put()
	switch {
	case errors.Is(err, sink.ErrPreconditionFailed):
		return Result{Name: NameConditionalWrite, Status: OK, Detail: "conditional writes refuse to replace an object, as the single-writer lease needs"}
	case err == nil:
		return Result{Name: NameConditionalWrite, Status: Warn,
			Detail: "the store ignores conditional writes (a create-if-absent replaced an object): the lease cannot keep two daemons off this destination",
			Fix:    "make sure only one cdc2s3 run ever writes to this destination"}
	}
	return Result{Name: NameConditionalWrite, Status: Fail,
		Detail: "a second conditional write failed with an unexpected error: " + oneLine(err.Error()),
		Fix:    "cdc2s3 takes a lease with conditional writes: use a store that supports them"}
}

// State reads the destination's cdc2s3 state and reports it; ok is false
// when it cannot be read.
func State(ctx context.Context, store sink.Store, o Options) (r Result, st lsnstore.State, haveState, ok bool) {
	r = Result{Name: NameState, Status: Info}
	st, haveState, err := lsnstore.New(store).Load(ctx)
	if err != nil {
		r.Status, r.Detail = Fail, "cannot read the cdc2s3 state: "+oneLine(err.Error())
		r.Fix = "check that " + lsnstore.StateKey + " is readable and valid JSON; if it is damaged, start over in a new --dest"
		return r, st, false, false
	}
	if !haveState {
		r.Detail = "no cdc2s3 state: a new destination"
		objs, err := store.List(ctx, "")
		if err != nil {
			r.Status, r.Detail = Fail, "cannot list the destination: "+oneLine(err.Error())
			return r, st, false, false
		}
		n := 0
		for _, obj := range objs {
			if !strings.HasPrefix(obj.Key, sink.StatePrefix) {
				n++
			}
		}
		if n > 0 {
			r.Status = Warn
			r.Detail = fmt.Sprintf("no cdc2s3 state, but the destination holds %d other object(s): a full load would be written among them, and a table folder's old files would be read as its data", n)
			r.Fix = "use an empty --dest (a new prefix or directory)"
		}
		return r, st, false, true
	}
	load := "full load done"
	if !st.SnapshotDone {
		load = "full load not finished"
	}
	r.Detail = fmt.Sprintf("state of slot %s, publication %s: %s, snapshot at %s, checkpoint %s, updated %s ago",
		st.Slot, st.Publication, load, st.SnapshotLSN, st.Checkpoint, age(st.UpdatedAt))
	if holder := liveLease(ctx, store); holder != nil {
		r.Detail += fmt.Sprintf("; a cdc2s3 (%s, PID %d) holds the destination's lease until %s", holder.Host, holder.PID, holder.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if st.Publication != "" && st.Publication != o.Publication {
		r.Status = Warn
		r.Detail += fmt.Sprintf("; the destination was loaded from publication %s, but --publication is %s", st.Publication, o.Publication)
		r.Fix = "pass --publication " + st.Publication
	}
	return r, st, true, true
}

// liveLease returns the record of the destination's lease when a process
// holds it and it has not expired.
func liveLease(ctx context.Context, store sink.Store) *lsnstore.LeaseRecord {
	rec, err := lsnstore.ReadLease(ctx, store)
	if err != nil || rec == nil || time.Now().After(rec.ExpiresAt) {
		return nil
	}
	return rec
}

// isStatus reports an S3 response error with the HTTP status code.
func isStatus(err error, code int) bool {
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == code
}
