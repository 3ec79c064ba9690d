package testenv_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cdc2s3/cdc2s3/internal/testenv"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/s3store"
)

// TestFaultProxyHTTP checks, against a plain HTTP server, that the proxy
// forwards Host, headers, path and body unchanged and that its faults look
// like S3's.
func TestFaultProxyHTTP(t *testing.T) {
	var hits atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s %s %s", r.Method, r.Host, r.URL.RequestURI(), r.Header.Get("X-Amz-Date"), body)
	}))
	defer backend.Close()
	p := testenv.NewFaultProxy(t, backend.URL)
	host := strings.TrimPrefix(p.Endpoint(), "http://")

	do := func(method, path string) (*http.Response, string, error) {
		req, _ := http.NewRequest(method, p.Endpoint()+path, strings.NewReader("body"))
		req.Header.Set("X-Amz-Date", "20240101T000000Z")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, string(b), err
	}

	// Forwarded as sent; the escaped path survives byte for byte.
	_, got, err := do("PUT", "/b/a%20b%2Fc?partNumber=1&uploadId=x")
	if err != nil {
		t.Fatal(err)
	}
	if want := "PUT " + host + " /b/a%20b%2Fc?partNumber=1&uploadId=x 20240101T000000Z body"; got != want {
		t.Fatalf("backend saw %q, want %q", got, want)
	}

	// SlowDown answers without forwarding, with an S3 error document.
	p.SetFaults(testenv.Faults{SlowDown: 1})
	before := hits.Load()
	resp, got, err := do("PUT", "/b/k")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 503 || !strings.Contains(got, "<Code>SlowDown</Code>") || !strings.Contains(got, "<Resource>/b/k</Resource>") {
		t.Fatalf("got %d %q", resp.StatusCode, got)
	}
	if hits.Load() != before {
		t.Fatal("SlowDown forwarded the request")
	}

	// Filters: a GET, or a key not named, passes.
	p.SetFaults(testenv.Faults{InternalError: 1, Methods: []string{"PUT", "POST"}, Keys: []string{"/data/"}})
	for _, c := range []struct {
		method, path string
		status       int
	}{{"GET", "/b/data/k", 200}, {"PUT", "/b/other/k", 200}, {"PUT", "/b/data/k", 500}} {
		if resp, _, err := do(c.method, c.path); err != nil || resp.StatusCode != c.status {
			t.Errorf("%s %s: %v %v, want status %d", c.method, c.path, resp, err, c.status)
		}
	}

	// Reset never reaches the backend; Drop does, and both fail the client.
	for _, f := range []testenv.Faults{{Reset: 1}, {Drop: 1}} {
		p.SetFaults(f)
		before := hits.Load()
		if _, _, err := do("PUT", "/b/k"); err == nil || !strings.Contains(err.Error(), "connection reset") {
			t.Errorf("%+v: got error %v, want a connection reset", f, err)
		}
		if forwarded := hits.Load() != before; forwarded != (f.Drop == 1) {
			t.Errorf("%+v: forwarded = %v", f, forwarded)
		}
	}

	// Limit caps the faults; Delay waits.
	p.SetFaults(testenv.Faults{SlowDown: 1, Limit: 2, Delay: 1, Latency: 50 * time.Millisecond})
	start := time.Now()
	var statuses []int
	for range 3 {
		resp, _, err := do("GET", "/b/k")
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, resp.StatusCode)
	}
	if fmt.Sprint(statuses) != "[503 503 200]" || time.Since(start) < 150*time.Millisecond {
		t.Errorf("statuses %v after %v", statuses, time.Since(start))
	}

	c := p.Counts()
	if want := (testenv.Counts{Requests: 10, InternalError: 1, SlowDown: 3, Reset: 1, Drop: 1, Delay: 3}); c != want {
		t.Errorf("Counts() = %+v, want %+v", c, want)
	}

	// StallAfter lets two matching requests through, then holds the next
	// until Release; others pass meanwhile.
	p.SetFaults(testenv.Faults{Methods: []string{"PUT"}, StallAfter: 2})
	for i := range 2 {
		if resp, _, err := do("PUT", "/b/k"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("PUT %d before the stall: %v %v", i, resp, err)
		}
	}
	held := make(chan error, 1)
	go func() {
		_, _, err := do("PUT", "/b/k")
		held <- err
	}()
	select {
	case err := <-held:
		t.Fatalf("the third PUT was not held (%v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	if resp, _, err := do("GET", "/b/k"); err != nil || resp.StatusCode != 200 {
		t.Errorf("a GET during the stall: %v %v", resp, err)
	}
	p.Release()
	if err := <-held; err != nil {
		t.Errorf("the held PUT after Release: %v", err)
	}
	if resp, _, err := do("PUT", "/b/k"); err != nil || resp.StatusCode != 200 {
		t.Errorf("a PUT after Release: %v %v", resp, err)
	}
}

// TestFaultProxyS3 runs sink/s3store through the proxy to a real S3 server.
func TestFaultProxyS3(t *testing.T) {
	srv := testenv.NewS3(t) // fails if the server cannot start; skips only under -short
	p := testenv.NewFaultProxy(t, srv.Endpoint())
	for _, kv := range p.Env(srv) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)

	ctx := context.Background()
	bucket := 0
	// newStore returns a store on a new bucket through the proxy.
	newStore := func(t *testing.T, maxAttempts int) (*s3store.Store, string) {
		t.Helper()
		p.SetFaults(testenv.Faults{})
		bucket++
		name := fmt.Sprintf("faults-%d", bucket)
		if err := srv.CreateBucket(ctx, name); err != nil {
			t.Fatal(err)
		}
		s, err := s3store.New(ctx, s3store.Options{
			Bucket:      name,
			Region:      srv.Region(),
			Endpoint:    p.Endpoint(),
			MaxAttempts: maxAttempts,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CheckBucket(ctx); err != nil {
			t.Fatal(err)
		}
		return s, name
	}
	// onServer reports whether key exists, asking the server directly.
	onServer := func(t *testing.T, bucket, key string) bool {
		t.Helper()
		_, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		return err == nil
	}

	t.Run("NoFaults", func(t *testing.T) {
		s, _ := newStore(t, 0)
		big := make([]byte, 20<<20) // multipart with the default 16 MiB parts
		for i := range big {
			big[i] = byte(i * 7)
		}
		if err := s.Put(ctx, "small", strings.NewReader("hello"), 5); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, "big", bytes.NewReader(big), int64(len(big))); err != nil {
			t.Fatal(err)
		}
		for key, want := range map[string][]byte{"small": []byte("hello"), "big": big} {
			rc, err := s.Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("get %s: %d bytes, %v", key, len(got), err)
			}
		}
		list, err := s.List(ctx, "")
		if err != nil || len(list) != 2 {
			t.Fatalf("list: %v, %v", list, err)
		}
		if c := p.Counts(); c.Requests == 0 || c != (testenv.Counts{Requests: c.Requests}) {
			t.Fatalf("Counts() = %+v, want requests and no faults", c)
		}
	})

	t.Run("SlowDown", func(t *testing.T) {
		s, _ := newStore(t, 10)
		before := p.Counts()
		p.SetFaults(testenv.Faults{SlowDown: 0.3, Seed: 1})
		for i := range 8 {
			if err := s.Put(ctx, fmt.Sprint("k", i), strings.NewReader("v"), 1); err != nil {
				t.Fatal(err)
			}
		}
		got := p.Counts().SlowDown - before.SlowDown
		if got == 0 {
			t.Fatal("no SlowDown injected")
		}
		t.Logf("%d SlowDown faults retried", got)
	})

	t.Run("DropAfterForward", func(t *testing.T) {
		s, bucket := newStore(t, 1) // no retries: the client sees the drop
		p.SetFaults(testenv.Faults{Drop: 1, Methods: []string{"PUT"}})
		err := s.Put(ctx, "k", strings.NewReader("v"), 1)
		if err == nil {
			t.Fatal("put succeeded through a dropped response")
		}
		if !onServer(t, bucket, "k") {
			t.Fatalf("object missing after a dropped response (put: %v)", err)
		}

		// With retries, PutIfAbsent's second try finds its own first one.
		s, _ = newStore(t, 3)
		p.SetFaults(testenv.Faults{Drop: 1, Limit: 1, Methods: []string{"PUT"}})
		err = s.PutIfAbsent(ctx, "k", strings.NewReader("v"), 1)
		if !errors.Is(err, sink.ErrPreconditionFailed) {
			t.Fatalf("PutIfAbsent after a dropped response: %v, want ErrPreconditionFailed", err)
		}
	})

	t.Run("ResetBeforeForward", func(t *testing.T) {
		s, bucket := newStore(t, 1)
		p.SetFaults(testenv.Faults{Reset: 1, Methods: []string{"PUT"}})
		if err := s.Put(ctx, "k", strings.NewReader("v"), 1); err == nil {
			t.Fatal("put succeeded through a reset")
		}
		if onServer(t, bucket, "k") {
			t.Fatal("object exists although the request was never forwarded")
		}
	})

	t.Run("Stall", func(t *testing.T) {
		s, bucket := newStore(t, 0)
		before := p.Counts()
		p.Stall()
		defer p.Release()
		done := make(chan error, 1)
		go func() { done <- s.Put(ctx, "k", strings.NewReader("v"), 1) }()
		testenv.WaitFor(t, 10*time.Second, func() (bool, error) {
			return p.Counts().Stall > before.Stall, nil
		})
		select {
		case err := <-done:
			t.Fatalf("put returned while stalled: %v", err)
		case <-time.After(300 * time.Millisecond):
		}
		if onServer(t, bucket, "k") {
			t.Fatal("stalled put reached the server")
		}
		p.Release()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("put still blocked after Release")
		}
		if !onServer(t, bucket, "k") {
			t.Fatal("object missing after Release")
		}
	})

	t.Run("Mixed", func(t *testing.T) {
		// Every kind at once on a multipart upload: with retries the Put
		// succeeds and the server holds exactly the bytes sent.
		s, bucket := newStore(t, 10)
		before := p.Counts()
		p.SetFaults(testenv.Faults{
			InternalError: 0.1, SlowDown: 0.1, Reset: 0.05, Drop: 0.05,
			Delay: 0.3, Latency: 5 * time.Millisecond, Jitter: 20 * time.Millisecond,
			Seed: 2,
		})
		data := make([]byte, 17<<20)
		r := rand.New(rand.NewPCG(3, 3))
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		if err := s.Put(ctx, "big", bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		p.SetFaults(testenv.Faults{})
		out, err := srv.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("big")})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes, %v", len(got), err)
		}
		t.Logf("counts: before %+v, after %+v", before, p.Counts())
	})
}
