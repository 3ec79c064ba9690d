package s3store

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestCopySSE: a server-side copy asks for the store's encryption, as an
// upload does, and names its source bucket/prefix/key, escaped.
func TestCopySSE(t *testing.T) {
	var got http.Header
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, path = r.Header.Clone(), r.URL.EscapedPath()
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><CopyObjectResult><ETag>"x"</ETag><LastModified>2026-01-01T00:00:00.000Z</LastModified></CopyObjectResult>`)
	}))
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	key := "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	s, err := New(context.Background(), Options{Bucket: "b", Prefix: "p", Endpoint: srv.URL, Region: "eu-west-1", SSE: SSEKMS, KMSKeyID: key, BucketKey: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Copy(context.Background(), "_cdc2s3/load/x/files/1 %/1.parquet", "My Schema/t/LOAD00000001.parquet"); err != nil {
		t.Fatal(err)
	}
	if got.Get("X-Amz-Server-Side-Encryption") != "aws:kms" || got.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id") != key ||
		got.Get("X-Amz-Server-Side-Encryption-Bucket-Key-Enabled") != "true" {
		t.Errorf("copy: encryption headers %v", encryptionHeaders(got))
	}
	if src := got.Get("X-Amz-Copy-Source"); src != "b/p/_cdc2s3/load/x/files/1%20%25/1.parquet" {
		t.Errorf("copy source %q", src)
	}
	if path != "/b/p/My%20Schema/t/LOAD00000001.parquet" {
		t.Errorf("copy to %q", path)
	}
}
