package snapshot

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"

	"github.com/cdc2s3/cdc2s3/internal/testenv"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/localfs"
	"github.com/cdc2s3/cdc2s3/source"
)

// flakyStore fails the Puts that fail says to fail.
type flakyStore struct {
	sink.Store
	mu   sync.Mutex
	puts int
	fail func(n int, key string) bool
}

func (f *flakyStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	f.mu.Lock()
	f.puts++
	n := f.puts
	f.mu.Unlock()
	if f.fail(n, key) {
		return fmt.Errorf("injected failure of put %d", n)
	}
	return f.Store.Put(ctx, key, r, size)
}

// TestChunkCopyRetry copies a table split into many chunks by three
// workers while a worker's connection is killed and uploads fail, over the
// LOAD files of an earlier load, and checks that the table's files are
// LOAD00000001... without gaps and hold every row of the snapshot once.
func TestChunkCopyRetry(t *testing.T) {
	retryBackoff = 10 * time.Millisecond
	ctx := context.Background()
	pg := testenv.NewPostgres(t)
	if err := pg.CreateDatabase(ctx, "chunks"); err != nil {
		t.Fatal(err)
	}
	dsn := pg.DSN("chunks")
	conn, err := pg.Connect(ctx, "chunks")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const rows = 20000
	if _, err := conn.Exec(ctx, `
		CREATE TABLE "Odd %/name" (id int PRIMARY KEY, pad text);
		INSERT INTO "Odd %/name" SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g;
		CREATE TABLE empty (id int);`); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	local, err := localfs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	// LOAD files of an earlier load, more than this one writes.
	for n := 1; n <= 300; n++ {
		if err := local.Put(ctx, sink.LoadKey("public", "Odd %/name", n), strings.NewReader("old"), 3); err != nil {
			t.Fatal(err)
		}
	}
	if err := local.Put(ctx, sink.LoadKey("public", "empty", 7), strings.NewReader("old"), 3); err != nil {
		t.Fatal(err)
	}

	exp, err := Export(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Close(ctx)
	// Changes after the snapshot are not in the load.
	if _, err := conn.Exec(ctx, `
		DELETE FROM "Odd %/name" WHERE id <= 100;
		INSERT INTO "Odd %/name" SELECT g, 'new' FROM generate_series(20001, 21000) g;`); err != nil {
		t.Fatal(err)
	}
	jobs := jobsFor(ctx, t, conn, exp, nil)

	// Kill the connection of the third chunk before its COPY.
	killer, err := pg.Connect(ctx, "chunks")
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close(ctx)
	var copies atomic.Int64
	beforeCopy = func(c *pgx.Conn) {
		if copies.Add(1) == 3 {
			if _, err := killer.Exec(ctx, "SELECT pg_terminate_backend($1)", c.PgConn().PID()); err != nil {
				t.Error(err)
			}
		}
	}
	defer func() { beforeCopy = nil }()
	store := &flakyStore{Store: local, fail: func(n int, key string) bool { return n == 2 || n == 5 }}
	prog := &Progress{}
	var logs strings.Builder
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	}), nil))
	type outcome struct {
		res []Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := Copy(ctx, dsn, store, jobs, Options{
			Snapshot: exp.Name, LSN: exp.LSN, Time: exp.Time, Workers: 3, ChunkSize: 256 << 10,
			MaxFileSize: 200 << 10, TempDir: t.TempDir(), Log: log, Progress: prog, ProgressInterval: 20 * time.Millisecond,
		})
		done <- outcome{res, err}
	}()
	var out outcome
	select {
	case out = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("Copy did not finish")
	}
	if out.err != nil {
		t.Fatalf("Copy: %v\n%s", out.err, logs.String())
	}
	if got := strings.Count(logs.String(), "msg=retrying"); got != 3 {
		t.Errorf("%d retries logged, want 3 (one lost connection, two failed uploads)\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "msg=\"snapshot progress\"") {
		t.Errorf("no progress logged\n%s", logs.String())
	}

	// Every row of the snapshot once, in files numbered from 1 without gaps.
	seen := map[int32]int{}
	files := checkLoadFiles(t, local, "public", "Odd %/name")
	for _, key := range files {
		type row struct {
			ID  int32  `parquet:"id"`
			Op  string `parquet:"Op"`
			Pad string `parquet:"pad"`
		}
		got, err := parquet.ReadFile[row](filepath.Join(dir, filepath.FromSlash(key)))
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		for _, r := range got {
			seen[r.ID]++
			if r.Op != "I" || r.Pad != strings.Repeat("x", 200) {
				t.Fatalf("%s: row %+v", key, r)
			}
		}
	}
	if len(seen) != rows {
		t.Errorf("%d distinct ids in the files, want %d", len(seen), rows)
	}
	for id, n := range seen {
		if id < 1 || id > rows || n != 1 {
			t.Errorf("id %d seen %d times", id, n)
		}
	}
	if len(files) < 10 {
		t.Errorf("only %d files: the table was not split", len(files))
	}
	if got := checkLoadFiles(t, local, "public", "empty"); len(got) != 1 {
		t.Errorf("empty table has %d files, want 1", len(got))
	}

	var res Result
	for _, r := range out.res {
		if r.Table == "public.Odd %/name" {
			res = r
		}
	}
	if res.Rows != rows || res.Files != len(files) {
		t.Errorf("result %+v, want %d rows in %d files", res, rows, len(files))
	}
	total := prog.Total()
	if !total.Done || total.Rows != rows || total.Files != int64(len(files)+1) || prog.Files() != total.Files || total.TablesDone != 2 || total.Fraction() != 1 {
		t.Errorf("progress total %+v", total)
	}
}

// checkLoadFiles returns the table's LOAD keys and fails unless they are
// LOAD00000001... without gaps and nothing else is in the folder.
func checkLoadFiles(t *testing.T, store sink.Store, schema, table string) []string {
	t.Helper()
	objs, err := store.List(context.Background(), sink.TableDir(schema, table))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for i, o := range objs {
		if want := sink.LoadKey(schema, table, i+1); o.Key != want {
			t.Fatalf("object %d of %s.%s is %s, want %s", i+1, schema, table, o.Key, want)
		}
		if o.Size <= 3 {
			t.Errorf("%s is a file of the earlier load", o.Key)
		}
		keys = append(keys, o.Key)
	}
	return keys
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// jobsFor lists the user tables of names (nil: every one) on conn, checks
// them in the exported snapshot exp, and resolves their column types: the
// steps Load takes before it copies.
func jobsFor(ctx context.Context, t *testing.T, conn *pgx.Conn, exp *Exported, names []string) []Job {
	t.Helper()
	listed, err := source.UserTables(ctx, conn, names)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := Prepare(ctx, exp.Conn(), listed)
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := Resolve(ctx, source.NewResolver(conn), tables)
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}
