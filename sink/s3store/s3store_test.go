package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cdc2s3/cdc2s3/internal/testenv"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/s3store"
	"github.com/cdc2s3/cdc2s3/sink/storetest"
)

// srv is the S3 server all tests share.
var srv *testenv.S3Server

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if testenv.Short() {
		// No server: the tests that need it skip (newBucket, setEnv).
		return m.Run()
	}
	var err error
	srv, err = testenv.StartS3(context.Background())
	if err != nil {
		// A failure, not a skip: the suite must run.
		fmt.Fprintln(os.Stderr, "FAIL: start S3 server:", err)
		return 1
	}
	defer srv.Stop()
	return m.Run()
}

var bucketSeq atomic.Int64

// newBucket creates a fresh bucket.
func newBucket(t *testing.T) string {
	t.Helper()
	testenv.Integration(t, "versitygw")
	name := fmt.Sprintf("test-%d", bucketSeq.Add(1))
	if err := srv.CreateBucket(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	return name
}

// options points a store at srv explicitly, without the environment.
func options(bucket, prefix string) s3store.Options {
	return s3store.Options{
		Bucket:   bucket,
		Prefix:   prefix,
		Region:   srv.Region(),
		Endpoint: srv.Endpoint(),
		PartSize: 5 << 20, // the minimum, so multipart code runs with more parts
	}
}

// setEnv points the default credential chain at srv.
func setEnv(t *testing.T) {
	t.Helper()
	testenv.Integration(t, "versitygw")
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
}

func newStore(t *testing.T, o s3store.Options) *s3store.Store {
	t.Helper()
	s, err := s3store.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStore(t *testing.T) {
	setEnv(t) // credentials; the endpoint comes from Options
	storetest.Run(t, func(t *testing.T) sink.Store {
		return newStore(t, options(newBucket(t), ""))
	})
}

func TestStorePrefix(t *testing.T) {
	setEnv(t)
	storetest.Run(t, func(t *testing.T) sink.Store {
		bucket := newBucket(t)
		// An object beside the prefix must stay invisible.
		other := newStore(t, options(bucket, "other"))
		if err := other.Put(context.Background(), "x", strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
		return newStore(t, options(bucket, "/some/prefix/"))
	})
}

// TestEnvEndpoint uses only the environment, as the daemon does: the
// endpoint from AWS_ENDPOINT_URL_S3 must switch to path-style addressing.
func TestEnvEndpoint(t *testing.T) {
	setEnv(t)
	ctx := context.Background()
	bucket := newBucket(t)
	s := newStore(t, s3store.Options{Bucket: bucket, Prefix: "p"})
	if got, want := s.String(), "s3://"+bucket+"/p"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	if err := s.Put(ctx, "k", strings.NewReader("v"), 1); err != nil {
		t.Fatal(err)
	}
	out, err := srv.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("p/k")})
	if err != nil {
		t.Fatal(err)
	}
	out.Body.Close()
}

// TestMultipart checks that a large object is really uploaded in parts.
func TestMultipart(t *testing.T) {
	setEnv(t)
	ctx := context.Background()
	bucket := newBucket(t)
	s := newStore(t, s3store.Options{Bucket: bucket}) // default part size
	data := bytes.Repeat([]byte("0123456789abcdef"), storetest.LargeSize/16)
	if err := s.Put(ctx, "big", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	head, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("big")})
	if err != nil {
		t.Fatal(err)
	}
	if etag := aws.ToString(head.ETag); !strings.Contains(etag, "-2") {
		t.Fatalf("ETag %s: want a two-part multipart ETag", etag)
	}
}

func TestCheckBucket(t *testing.T) {
	ctx := context.Background()
	setEnv(t)
	bucket := newBucket(t)

	s, err := s3store.New(ctx, s3store.Options{Bucket: "no-such-bucket"})
	if err != nil {
		t.Fatal(err)
	}
	err = s.CheckBucket(ctx)
	if err == nil || !strings.Contains(err.Error(), `bucket "no-such-bucket" does not exist: create it or fix --dest`) {
		t.Fatalf("missing bucket: got %v", err)
	}

	t.Run("wrong secret", func(t *testing.T) {
		t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value")
		s, err := s3store.New(ctx, s3store.Options{Bucket: bucket, MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		err = s.CheckBucket(ctx)
		if err == nil || !strings.Contains(err.Error(), "denied") {
			t.Fatalf("wrong secret: got %v", err)
		}
		for _, secret := range []string{"wrong-secret-value", srv.SecretKey()} {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error shows a secret: %v", err)
			}
		}
	})

	t.Run("no credentials", func(t *testing.T) {
		t.Setenv("AWS_ACCESS_KEY_ID", "")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "")
		os.Unsetenv("AWS_ACCESS_KEY_ID")
		os.Unsetenv("AWS_SECRET_ACCESS_KEY")
		t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
		s, err := s3store.New(ctx, s3store.Options{Bucket: bucket})
		if err != nil {
			t.Fatal(err)
		}
		err = s.CheckBucket(ctx)
		if err == nil || !strings.Contains(err.Error(), "no AWS credentials") {
			t.Fatalf("no credentials: got %v", err)
		}
	})
}

func TestNewErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := s3store.New(ctx, s3store.Options{}); err == nil {
		t.Error("New without a bucket succeeded")
	}
	_, err := s3store.New(ctx, s3store.Options{Bucket: "b", Endpoint: "ftp://user:hunter2@host"})
	if err == nil {
		t.Fatal("New with an ftp endpoint succeeded")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error shows a password: %v", err)
	}
}

// TestBucketGone deletes the bucket under an open store: every request is
// refused (sink.ErrRefused, with the fix), and a Get is not mistaken for a
// missing object (S3 answers 404 NoSuchBucket), which would make the state
// of a destination look empty.
func TestBucketGone(t *testing.T) {
	setEnv(t)
	ctx := context.Background()
	bucket := newBucket(t)
	s := newStore(t, options(bucket, "p"))
	if err := s.Put(ctx, "a", strings.NewReader("a"), 1); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(srv.DataDir(), bucket)); err != nil {
		t.Fatal(err)
	}
	_, err := s.Get(ctx, "a")
	if errors.Is(err, sink.ErrNotFound) || !errors.Is(err, sink.ErrRefused) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Get in a deleted bucket = %v; want ErrRefused naming the fix, not ErrNotFound", err)
	}
	for name, err := range map[string]error{
		"Put":  s.Put(ctx, "b", strings.NewReader("b"), 1),
		"List": func() error { _, err := s.List(ctx, ""); return err }(),
	} {
		if !errors.Is(err, sink.ErrRefused) {
			t.Errorf("%s in a deleted bucket = %v; want ErrRefused", name, err)
		}
	}
}
