package dest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdc2s3/cdc2s3/internal/testenv"
)

func TestParse(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in   string
		want Location
	}{
		{"s3://bucket", Location{Bucket: "bucket"}},
		{"s3://bucket/", Location{Bucket: "bucket"}},
		{"s3://bucket/cdc/prod", Location{Bucket: "bucket", Prefix: "cdc/prod"}},
		{"s3://bucket/cdc/prod/", Location{Bucket: "bucket", Prefix: "cdc/prod"}},
		{"S3://my.bucket-1/a%20b c", Location{Bucket: "my.bucket-1", Prefix: "a%20b c"}},
		{"  s3://bucket/p  ", Location{Bucket: "bucket", Prefix: "p"}},
		{"file:///data/out", Location{Path: "/data/out"}},
		{"file:///data/out/", Location{Path: "/data/out"}},
		{"file://localhost/data/out", Location{Path: "/data/out"}},
		{"file:///data/with%20space", Location{Path: "/data/with space"}},
		{"/data/out", Location{Path: "/data/out"}},
		{"/data/../out/./x", Location{Path: "/out/x"}},
		{"out", Location{Path: filepath.Join(wd, "out")}},
		{"./out/sub", Location{Path: filepath.Join(wd, "out", "sub")}},
		{"..", Location{Path: filepath.Dir(wd)}},
		{"dir:with:colons", Location{Path: filepath.Join(wd, "dir:with:colons")}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, why string }{
		{"", "empty"},
		{"   ", "empty"},
		{"s3://", "no bucket"},
		{"s3:///prefix", "no bucket"},
		{"s3:bucket/prefix", `needs "://"`},
		{"s3:/bucket", `needs "://"`},
		{"file:/data", `needs "://"`},
		{"file://relative/path", "three slashes"},
		{"file://data", "three slashes"},
		{"file://", "not absolute"},
		{"gs://bucket/x", `unknown scheme "gs"`},
		{"https://s3.amazonaws.com/bucket", `unknown scheme "https"`},
		{"s3://key:secret@host/bucket", "bad bucket name"},
		{"file://user:secret@host/x", "three slashes"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.in)
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", tt.in)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tt.why) || !strings.Contains(msg, usage) {
			t.Errorf("Parse(%q): %q, want it to say %q and %q", tt.in, msg, tt.why, usage)
		}
		if strings.Contains(msg, "secret") {
			t.Errorf("Parse(%q): %q shows the secret", tt.in, msg)
		}
	}
}

func TestLocationString(t *testing.T) {
	for _, s := range []string{"s3://b", "s3://b/p/q", "/data/out"} {
		loc, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		if loc.String() != s {
			t.Errorf("Parse(%q).String() = %q", s, loc.String())
		}
	}
}

func TestOpenLocal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	s, err := Open(context.Background(), "file://"+dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.String() != dir {
		t.Fatalf("String() = %q, want %q", s.String(), dir)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("Open did not create the directory: %v", err)
	}
	if _, err := Open(context.Background(), "ftp://x", Options{}); err == nil {
		t.Fatal("Open(ftp://x) succeeded")
	}
}

func TestOpenS3(t *testing.T) {
	ctx := context.Background()
	srv := testenv.NewS3(t)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	if err := srv.CreateBucket(ctx, "cdc"); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, "s3://cdc/prod/", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.String() != "s3://cdc/prod" {
		t.Fatalf("String() = %q", s.String())
	}
	if err := s.Put(ctx, "k", strings.NewReader("v"), 1); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, "s3://missing/prod", Options{Endpoint: srv.Endpoint(), Region: srv.Region()})
	if err == nil || !strings.Contains(err.Error(), `bucket "missing" does not exist: create it or fix --dest`) {
		t.Fatalf("missing bucket: got %v", err)
	}
}
