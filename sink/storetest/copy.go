package storetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/cdc2s3/cdc2s3/sink"
)

// testCopy: sink.Copy (server-side where the store is a Copier) makes an
// independent object with the same bytes, replaces what dst held, and
// reports a missing source as ErrNotFound.
func testCopy(t *testing.T, s sink.Store) {
	ctx := context.Background()
	put := func(key, body string) {
		t.Helper()
		if err := s.Put(ctx, key, bytes.NewReader([]byte(body)), int64(len(body))); err != nil {
			t.Fatal(err)
		}
	}
	get := func(key string) string {
		t.Helper()
		r, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	put("stage/a b%/1.parquet", "staged bytes")
	put("t/LOAD00000001.parquet", "old")
	if err := sink.Copy(ctx, s, "stage/a b%/1.parquet", "t/LOAD00000001.parquet"); err != nil {
		t.Fatal(err)
	}
	if got := get("t/LOAD00000001.parquet"); got != "staged bytes" {
		t.Errorf("copy holds %q", got)
	}
	// Again onto itself's copy: idempotent.
	if err := sink.Copy(ctx, s, "stage/a b%/1.parquet", "t/LOAD00000001.parquet"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "stage/a b%/1.parquet"); err != nil {
		t.Fatal(err)
	}
	if got := get("t/LOAD00000001.parquet"); got != "staged bytes" {
		t.Errorf("after deleting the source the copy holds %q", got)
	}
	put("t/LOAD00000001.parquet", "replaced")
	if err := sink.Copy(ctx, s, "stage/missing", "t/x"); !errors.Is(err, sink.ErrNotFound) {
		t.Errorf("copy of a missing object: %v, want ErrNotFound", err)
	}
	objs, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Key != "t/LOAD00000001.parquet" {
		t.Errorf("objects after the copies: %v, want t/LOAD00000001.parquet only", objs)
	}
}
