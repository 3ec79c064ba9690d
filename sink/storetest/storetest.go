// Package storetest is the conformance suite every sink.Store must pass, so
// that all destinations behave, and lay out objects, the same way.
//
// A backend's test calls Run with a constructor that returns an empty store
// (a fresh directory, bucket or prefix) for each subtest.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdc2s3/cdc2s3/sink"
)

// LargeSize is the size of the large object in the suite: above 16 MiB, so
// an S3 store with the default part size uploads it in several parts.
const LargeSize = 17<<20 + 123

// Run runs the conformance suite against the stores newStore returns. Each
// subtest calls newStore once and expects an empty store.
func Run(t *testing.T, newStore func(t *testing.T) sink.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s sink.Store)
	}{
		{"PutGet", testPutGet},
		{"PutGetEmpty", testPutGetEmpty},
		{"PutGetLarge", testPutGetLarge},
		{"Overwrite", testOverwrite},
		{"PutShortReader", testPutShortReader},
		{"PutReaderError", testPutReaderError},
		{"PutCanceled", testPutCanceled},
		{"PutIfAbsent", testPutIfAbsent},
		{"PutIfAbsentLarge", testPutIfAbsentLarge},
		{"PutIfAbsentRace", testPutIfAbsentRace},
		{"GetMissing", testGetMissing},
		{"List", testList},
		{"ListEmpty", testListEmpty},
		{"ListByteOrder", testListByteOrder},
		{"Delete", testDelete},
		{"DeleteMissing", testDeleteMissing},
		{"UnusualKeys", testUnusualKeys},
		{"InvalidKeys", testInvalidKeys},
		{"Concurrent", testConcurrent},
		{"String", testString},
		{"Copy", testCopy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newStore(t))
		})
	}
}

// onlyReader hides any io.Seeker or io.ReaderAt, so a store sees a stream
// as it would from a pipe.
type onlyReader struct{ r io.Reader }

func (r onlyReader) Read(p []byte) (int, error) { return r.r.Read(p) }

func put(t *testing.T, s sink.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(context.Background(), key, onlyReader{bytes.NewReader(data)}, int64(len(data))); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func get(t *testing.T, s sink.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q): read: %v", key, err)
	}
	return b
}

func checkContent(t *testing.T, s sink.Store, key string, want []byte) {
	t.Helper()
	got := get(t, s, key)
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q): got %d bytes (sha256 %x), want %d bytes (sha256 %x)",
			key, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
	}
}

func checkMissing(t *testing.T, s sink.Store, key string) {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if err == nil {
		rc.Close()
		t.Fatalf("Get(%q): object exists, want ErrNotFound", key)
	}
	if !errors.Is(err, sink.ErrNotFound) {
		t.Fatalf("Get(%q): got %v, want ErrNotFound", key, err)
	}
}

func list(t *testing.T, s sink.Store, prefix string) []sink.ObjectInfo {
	t.Helper()
	infos, err := s.List(context.Background(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return infos
}

func keys(infos []sink.ObjectInfo) []string {
	ks := []string{}
	for _, info := range infos {
		ks = append(ks, info.Key)
	}
	return ks
}

func checkKeys(t *testing.T, s sink.Store, prefix string, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got := keys(list(t, s, prefix)); !slices.Equal(got, want) {
		t.Fatalf("List(%q):\n got %q\nwant %q", prefix, got, want)
	}
}

// randomBytes returns n pseudo-random bytes, the same for the same seed.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func testPutGet(t *testing.T, s sink.Store) {
	data := []byte("hello, parquet")
	put(t, s, "t/a.parquet", data)
	checkContent(t, s, "t/a.parquet", data)
	infos := list(t, s, "")
	if len(infos) != 1 || infos[0].Key != "t/a.parquet" || infos[0].Size != int64(len(data)) {
		t.Fatalf("List: got %+v, want one t/a.parquet of %d bytes", infos, len(data))
	}
	if mt := infos[0].ModTime; mt.IsZero() || time.Since(mt).Abs() > time.Hour {
		t.Fatalf("List: ModTime %v, want about now", mt)
	}
}

func testPutGetEmpty(t *testing.T, s sink.Store) {
	put(t, s, "empty", nil)
	checkContent(t, s, "empty", []byte{})
	infos := list(t, s, "empty")
	if len(infos) != 1 || infos[0].Size != 0 {
		t.Fatalf("List: got %+v, want one empty object", infos)
	}
}

func testPutGetLarge(t *testing.T, s sink.Store) {
	data := randomBytes(LargeSize, 1)
	put(t, s, "big/object.parquet", data)
	checkContent(t, s, "big/object.parquet", data)
	if infos := list(t, s, "big/"); len(infos) != 1 || infos[0].Size != LargeSize {
		t.Fatalf("List: got %+v, want one object of %d bytes", infos, LargeSize)
	}
	// From a seekable reader too: backends may take another path.
	data = randomBytes(LargeSize, 2)
	if err := s.Put(context.Background(), "big/object.parquet", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	checkContent(t, s, "big/object.parquet", data)
}

func testOverwrite(t *testing.T, s sink.Store) {
	put(t, s, "k", []byte("first version, longer"))
	put(t, s, "k", []byte("second"))
	checkContent(t, s, "k", []byte("second"))
	if infos := list(t, s, ""); len(infos) != 1 || infos[0].Size != 6 {
		t.Fatalf("List: got %+v, want one object of 6 bytes", infos)
	}
}

// errReader returns n bytes and then err.
type errReader struct {
	n   int
	err error
}

func (r *errReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	k := min(len(p), r.n)
	clear(p[:k])
	r.n -= k
	return k, nil
}

func testPutShortReader(t *testing.T, s sink.Store) {
	ctx := context.Background()
	put(t, s, "short", []byte("old"))
	for _, size := range []int64{100, LargeSize} {
		err := s.Put(ctx, "short", &errReader{n: 50, err: io.EOF}, size)
		if err == nil {
			t.Fatalf("Put of %d bytes from a 50-byte reader succeeded", size)
		}
		checkContent(t, s, "short", []byte("old"))
		err = s.Put(ctx, "short-new", &errReader{n: 50, err: io.EOF}, size)
		if err == nil {
			t.Fatalf("Put of %d bytes from a 50-byte reader succeeded", size)
		}
		checkMissing(t, s, "short-new")
	}
	// A reader longer than size: only size bytes are stored.
	if err := s.Put(ctx, "long", strings.NewReader("0123456789"), 4); err != nil {
		t.Fatal(err)
	}
	checkContent(t, s, "long", []byte("0123"))
}

func testPutReaderError(t *testing.T, s sink.Store) {
	ctx := context.Background()
	boom := errors.New("boom")
	put(t, s, "x/obj", []byte("old"))
	for _, tc := range []struct{ n, size int }{{10, 100}, {6 << 20, LargeSize}} {
		if err := s.Put(ctx, "x/obj", &errReader{n: tc.n, err: boom}, int64(tc.size)); err == nil {
			t.Fatalf("Put from a reader failing after %d bytes succeeded", tc.n)
		}
		if err := s.PutIfAbsent(ctx, "x/new", &errReader{n: tc.n, err: boom}, int64(tc.size)); err == nil {
			t.Fatalf("PutIfAbsent from a reader failing after %d bytes succeeded", tc.n)
		}
		checkContent(t, s, "x/obj", []byte("old"))
		checkMissing(t, s, "x/new")
	}
	checkKeys(t, s, "", "x/obj")
}

func testPutCanceled(t *testing.T, s sink.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Put(ctx, "c", strings.NewReader("data"), 4); err == nil {
		t.Fatal("Put with a canceled context succeeded")
	}
	checkMissing(t, s, "c")
	checkKeys(t, s, "")
}

func testPutIfAbsent(t *testing.T, s sink.Store) {
	ctx := context.Background()
	if err := s.PutIfAbsent(ctx, "_cdc2s3/lease", strings.NewReader("one"), 3); err != nil {
		t.Fatal(err)
	}
	err := s.PutIfAbsent(ctx, "_cdc2s3/lease", strings.NewReader("two!"), 4)
	if !errors.Is(err, sink.ErrPreconditionFailed) {
		t.Fatalf("second PutIfAbsent: got %v, want ErrPreconditionFailed", err)
	}
	checkContent(t, s, "_cdc2s3/lease", []byte("one"))
	checkKeys(t, s, "", "_cdc2s3/lease")

	// Put still overwrites; after Delete the key is free again.
	put(t, s, "_cdc2s3/lease", []byte("three"))
	checkContent(t, s, "_cdc2s3/lease", []byte("three"))
	if err := s.Delete(ctx, "_cdc2s3/lease"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutIfAbsent(ctx, "_cdc2s3/lease", strings.NewReader("four"), 4); err != nil {
		t.Fatalf("PutIfAbsent after Delete: %v", err)
	}
	checkContent(t, s, "_cdc2s3/lease", []byte("four"))

	// An empty object counts as existing.
	if err := s.PutIfAbsent(ctx, "e", strings.NewReader(""), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.PutIfAbsent(ctx, "e", strings.NewReader("x"), 1); !errors.Is(err, sink.ErrPreconditionFailed) {
		t.Fatalf("PutIfAbsent over an empty object: got %v, want ErrPreconditionFailed", err)
	}
}

func testPutIfAbsentLarge(t *testing.T, s sink.Store) {
	ctx := context.Background()
	data := randomBytes(LargeSize, 3)
	if err := s.PutIfAbsent(ctx, "big", onlyReader{bytes.NewReader(data)}, LargeSize); err != nil {
		t.Fatal(err)
	}
	other := randomBytes(LargeSize, 4)
	err := s.PutIfAbsent(ctx, "big", onlyReader{bytes.NewReader(other)}, LargeSize)
	if !errors.Is(err, sink.ErrPreconditionFailed) {
		t.Fatalf("second large PutIfAbsent: got %v, want ErrPreconditionFailed", err)
	}
	checkContent(t, s, "big", data)
}

func testPutIfAbsentRace(t *testing.T, s sink.Store) {
	const n = 8
	for round := range 3 {
		key := fmt.Sprintf("race/%d/checkpoint", round)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				data := fmt.Sprintf("writer %d", i)
				errs[i] = s.PutIfAbsent(context.Background(), key, strings.NewReader(data), int64(len(data)))
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("%s: writers %d and %d both won", key, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, sink.ErrPreconditionFailed):
				t.Fatalf("%s: writer %d: got %v, want nil or ErrPreconditionFailed", key, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("%s: no writer won", key)
		}
		checkContent(t, s, key, fmt.Appendf(nil, "writer %d", winner))
	}
}

func testGetMissing(t *testing.T, s sink.Store) {
	checkMissing(t, s, "nope")
	checkMissing(t, s, "no/such/dir/file.parquet")
	put(t, s, "a/file", []byte("x"))
	checkMissing(t, s, "a")        // a "folder", not an object
	checkMissing(t, s, "a/fil")    // a prefix of a key
	checkMissing(t, s, "a/file/x") // below an object
}

func testList(t *testing.T, s sink.Store) {
	objects := map[string]string{
		"public.orders/2024/00000001.parquet":       "1",
		"public.orders/2024/00000002.parquet":       "22",
		"public.orders/2025/00000003.parquet":       "333",
		"public.orders_archive/00000001.parquet":    "4444",
		"public.Order Items/00000001.parquet":       "55555",
		"public.orders%25/x.parquet":                "666666",
		"_cdc2s3/checkpoints/0000000001A2B3C4.json": "{}",
		"top": "",
	}
	for k, v := range objects {
		put(t, s, k, []byte(v))
	}
	all := list(t, s, "")
	var want []string
	for k := range objects {
		want = append(want, k)
	}
	sort.Strings(want)
	if got := keys(all); !slices.Equal(got, want) {
		t.Fatalf("List(\"\"):\n got %q\nwant %q", got, want)
	}
	for _, info := range all {
		if info.Size != int64(len(objects[info.Key])) {
			t.Fatalf("List: %s has size %d, want %d", info.Key, info.Size, len(objects[info.Key]))
		}
	}
	checkKeys(t, s, "public.orders/",
		"public.orders/2024/00000001.parquet",
		"public.orders/2024/00000002.parquet",
		"public.orders/2025/00000003.parquet")
	checkKeys(t, s, "public.orders/2024/",
		"public.orders/2024/00000001.parquet",
		"public.orders/2024/00000002.parquet")
	checkKeys(t, s, "public.orders/2024/00000002", "public.orders/2024/00000002.parquet")
	checkKeys(t, s, "public.orders",
		"public.orders%25/x.parquet",
		"public.orders/2024/00000001.parquet",
		"public.orders/2024/00000002.parquet",
		"public.orders/2025/00000003.parquet",
		"public.orders_archive/00000001.parquet")
	checkKeys(t, s, "public.O", "public.Order Items/00000001.parquet")
	checkKeys(t, s, "public.orders%", "public.orders%25/x.parquet")
	checkKeys(t, s, "public.orders%2F") // not unescaped
	checkKeys(t, s, "_cdc2s3/", "_cdc2s3/checkpoints/0000000001A2B3C4.json")
	checkKeys(t, s, "to", "top")
	checkKeys(t, s, "top", "top")
	checkKeys(t, s, "top/")
	checkKeys(t, s, "zzz")
}

func testListEmpty(t *testing.T, s sink.Store) {
	checkKeys(t, s, "")
	checkKeys(t, s, "a/")
	checkKeys(t, s, "_cdc2s3/")
}

func testListByteOrder(t *testing.T, s sink.Store) {
	// ' ' < '%' < '-' < '.' < '/' < '0' < 'B' < '_' < 'a': a walk of
	// folders in name order gives "x/a/b" before "x/a-b"; byte order does
	// not.
	want := []string{
		"x/B",
		"x/a b",
		"x/a%25",
		"x/a-b",
		"x/a.b",
		"x/a/b",
		"x/a/c/d",
		"x/a0",
		"x/aB",
		"x/a_b",
		"x/ab",
		"x/é",
	}
	for i, k := range slices.Backward(want) {
		put(t, s, k, []byte{byte(i)})
	}
	checkKeys(t, s, "", want...)
	checkKeys(t, s, "x/a", want[1:11]...)
}

func testDelete(t *testing.T, s sink.Store) {
	ctx := context.Background()
	put(t, s, "d/one/a.parquet", []byte("a"))
	put(t, s, "d/one/b.parquet", []byte("b"))
	put(t, s, "d/two/c.parquet", []byte("c"))
	if err := s.Delete(ctx, "d/one/a.parquet"); err != nil {
		t.Fatal(err)
	}
	checkMissing(t, s, "d/one/a.parquet")
	checkKeys(t, s, "d/", "d/one/b.parquet", "d/two/c.parquet")
	if err := s.Delete(ctx, "d/two/c.parquet"); err != nil {
		t.Fatal(err)
	}
	checkKeys(t, s, "d/", "d/one/b.parquet")
	checkKeys(t, s, "d/two/")
	// The emptied folder can hold objects again.
	put(t, s, "d/two/c.parquet", []byte("c2"))
	checkContent(t, s, "d/two/c.parquet", []byte("c2"))
}

func testDeleteMissing(t *testing.T, s sink.Store) {
	ctx := context.Background()
	if err := s.Delete(ctx, "never/was"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	put(t, s, "f/g/h", []byte("h"))
	// "f" and "f/g" are folders, not objects: deleting them changes nothing.
	for _, k := range []string{"f", "f/g", "f/g/h/i"} {
		if err := s.Delete(ctx, k); err != nil {
			t.Fatalf("Delete(%q): %v", k, err)
		}
	}
	checkContent(t, s, "f/g/h", []byte("h"))
	if err := s.Delete(ctx, "f/g/h"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "f/g/h"); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	checkKeys(t, s, "")
}

// UnusualKeys are keys with characters that need escaping in URLs or
// shells. Stores must keep them byte for byte.
var UnusualKeys = []string{
	"with space/file name.parquet",
	"UPPER/lower/MiXeD.Parquet",
	"percent/%25/%2F%20.parquet",
	"plus+equals=/amp&semi;/x",
	"quote'/double\"/back`tick",
	"brackets[0]/{braces}/(parens)",
	"question?/hash#/excl!/at@/dollar$",
	"tilde~/caret^/pipe|/star*/comma,",
	"colon:/x:y",
	"unicode/日本語/émoji-😀/ü",
	"dots/a..b/.hidden/trailing.",
	"table=public.orders/date=2024-01-01/part-00000.parquet",
	"tab\there/newline-free",
	"long/" + strings.Repeat("k", 200),
}

func testUnusualKeys(t *testing.T, s sink.Store) {
	for _, k := range UnusualKeys {
		put(t, s, k, []byte(k))
		checkContent(t, s, k, []byte(k))
	}
	want := slices.Clone(UnusualKeys)
	sort.Strings(want)
	checkKeys(t, s, "", want...)
	checkKeys(t, s, "percent/%25/", "percent/%25/%2F%20.parquet")
	checkKeys(t, s, "with space/", "with space/file name.parquet")
	for _, k := range UnusualKeys {
		if err := s.Delete(context.Background(), k); err != nil {
			t.Fatalf("Delete(%q): %v", k, err)
		}
		checkMissing(t, s, k)
	}
	checkKeys(t, s, "")
}

// InvalidKeys are refused by every store: they would not map to one file
// on a local directory, and cdc2s3 never makes them.
var InvalidKeys = []string{
	"",
	"/abs",
	"dir/",
	"a//b",
	"a/./b",
	"a/../b",
	"..",
	".",
	"nul\x00byte",
}

func testInvalidKeys(t *testing.T, s sink.Store) {
	ctx := context.Background()
	for _, k := range InvalidKeys {
		if err := s.Put(ctx, k, strings.NewReader("x"), 1); err == nil {
			t.Errorf("Put(%q) succeeded, want an error", k)
		}
		if err := s.PutIfAbsent(ctx, k, strings.NewReader("x"), 1); err == nil {
			t.Errorf("PutIfAbsent(%q) succeeded, want an error", k)
		}
		if rc, err := s.Get(ctx, k); err == nil {
			rc.Close()
			t.Errorf("Get(%q) succeeded, want an error", k)
		}
	}
	checkKeys(t, s, "")
}

func testConcurrent(t *testing.T, s sink.Store) {
	// Writers and deleters share folders that appear and vanish.
	ctx := context.Background()
	const workers, rounds = 6, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				key := fmt.Sprintf("conc/shared/%d/w%d", r%2, w)
				data := fmt.Sprintf("%d-%d", w, r)
				if err := s.Put(ctx, key, strings.NewReader(data), int64(len(data))); err != nil {
					errs <- err
					return
				}
				if err := s.Delete(ctx, key); err != nil {
					errs <- err
					return
				}
			}
			key := fmt.Sprintf("conc/shared/final/w%d", w)
			if err := s.Put(ctx, key, strings.NewReader("done"), 4); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var want []string
	for w := range workers {
		want = append(want, fmt.Sprintf("conc/shared/final/w%d", w))
	}
	checkKeys(t, s, "conc/", want...)
}

func testString(t *testing.T, s sink.Store) {
	if s.String() == "" {
		t.Fatal("String() is empty")
	}
}
