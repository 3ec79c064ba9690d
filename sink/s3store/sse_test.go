package s3store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestSSEHeaders checks, against an endpoint that records requests, that
// every object is written with the encryption asked for: the headers on a
// PutObject of a small object and on the CreateMultipartUpload of a large
// one (and on no part, as S3 wants). An edge case of the SDK's wiring that
// the S3-compatible test server does not check.
func TestSSEHeaders(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]http.Header{} // "PUT" (single), "POST uploads" (create), "PUT part"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		q := r.URL.Query()
		kind := r.Method
		switch {
		case r.Method == http.MethodPost && q.Has("uploads"):
			kind = "POST uploads"
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>`)
		case r.Method == http.MethodPut && q.Has("partNumber"):
			kind = "PUT part"
			w.Header().Set("ETag", `"p"`)
		case r.Method == http.MethodPost && q.Has("uploadId"):
			kind = "POST complete"
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><ETag>"x"</ETag></CompleteMultipartUploadResult>`)
		case r.Method == http.MethodPut:
			w.Header().Set("ETag", `"x"`)
		}
		mu.Lock()
		seen[kind] = r.Header.Clone()
		mu.Unlock()
	}))
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	key := "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	s, err := New(context.Background(), Options{Bucket: "b", Endpoint: srv.URL, Region: "eu-west-1",
		SSE: SSEKMS, KMSKeyID: key, BucketKey: true, PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	small := []byte("small object")
	if err := s.Put(context.Background(), "a/small", bytes.NewReader(small), int64(len(small))); err != nil {
		t.Fatal(err)
	}
	large := bytes.Repeat([]byte("x"), 11<<20)
	if err := s.Put(context.Background(), "a/large", bytes.NewReader(large), int64(len(large))); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"PUT", "POST uploads"} {
		h := seen[kind]
		if h == nil {
			t.Fatalf("no %s request", kind)
		}
		if h.Get("X-Amz-Server-Side-Encryption") != "aws:kms" || h.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id") != key ||
			h.Get("X-Amz-Server-Side-Encryption-Bucket-Key-Enabled") != "true" {
			t.Errorf("%s: encryption headers %v", kind, encryptionHeaders(h))
		}
	}
	if h := seen["PUT part"]; h == nil || len(encryptionHeaders(h)) != 0 {
		t.Errorf("a part carries encryption headers (S3 refuses them on UploadPart): %v", encryptionHeaders(h))
	}
}

func encryptionHeaders(h http.Header) map[string]string {
	out := map[string]string{}
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-server-side-encryption") {
			out[k] = h.Get(k)
		}
	}
	return out
}

// TestSSEOptions refuses settings that cannot be meant.
func TestSSEOptions(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	for _, o := range []Options{{Bucket: "b", SSE: "kms"}, {Bucket: "b", SSE: SSES3, KMSKeyID: "k"}, {Bucket: "b", KMSKeyID: "k"}} {
		if _, err := New(context.Background(), o); err == nil || !strings.Contains(err.Error(), "--s3-sse") {
			t.Errorf("New(%+v): %v, want an error naming --s3-sse", o, err)
		}
	}
}
