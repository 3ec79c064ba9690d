package localfs_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/localfs"
	"github.com/cdc2s3/cdc2s3/sink/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) sink.Store {
		s, err := localfs.New(filepath.Join(t.TempDir(), "new", "root"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestLayout checks that objects are plain files at their key's path and
// that no temp file is left behind.
func TestLayout(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := localfs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.String() != dir {
		t.Fatalf("String() = %q, want %q", s.String(), dir)
	}
	if err := s.Put(ctx, "public.t/0001.parquet", strings.NewReader("PAR1"), 4); err != nil {
		t.Fatal(err)
	}
	if err := s.PutIfAbsent(ctx, "_cdc2s3/lease", strings.NewReader("me"), 2); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "public.t", "0001.parquet"))
	if err != nil || string(b) != "PAR1" {
		t.Fatalf("file: %q, %v", b, err)
	}
	tmp, err := os.ReadDir(filepath.Join(dir, "_cdc2s3", "tmp"))
	if err != nil || len(tmp) != 0 {
		t.Fatalf("temp dir: %v, %v", tmp, err)
	}

	// A temp file of a crashed writer is not listed, and the temp area is
	// not addressable.
	if err := os.WriteFile(filepath.Join(dir, "_cdc2s3", "tmp", ".tmp-123"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	infos, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[0].Key != "_cdc2s3/lease" || infos[1].Key != "public.t/0001.parquet" {
		t.Fatalf("List: %+v", infos)
	}
	if err := s.Put(ctx, "_cdc2s3/tmp/x", strings.NewReader("x"), 1); err == nil {
		t.Fatal("Put under _cdc2s3/tmp succeeded")
	}

	// Delete removes emptied folders, but never the root.
	if err := s.Delete(ctx, "public.t/0001.parquet"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "public.t")); !os.IsNotExist(err) {
		t.Fatalf("emptied folder still there: %v", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}
