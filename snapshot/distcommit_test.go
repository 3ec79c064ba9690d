package snapshot

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/localfs"
	"github.com/cdc2s3/cdc2s3/sink/pqfile"
	"github.com/cdc2s3/cdc2s3/source"
)

// TestCommitNumbering: the commit numbers a plan's staged files table by
// table, unit by unit, from LOAD00000001 without gaps; copies nothing that
// no done record names (a killed attempt's files); removes the LOAD files
// of an earlier load; writes one empty file for a table without rows; and,
// failing half-way, gives the same files when run again.
func TestCommitNumbering(t *testing.T) {
	ctx := context.Background()
	store, err := localfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	put := func(key, body string) {
		t.Helper()
		if err := store.Put(ctx, key, strings.NewReader(body), int64(len(body))); err != nil {
			t.Fatal(err)
		}
	}
	id := "p1"
	col := []PlanColumn{{Name: "id", Type: pqfile.TypeFor(20, -1, false).String()}}
	p := &Plan{Format: planFormat, ID: id, Tables: []PlanTable{
		{Table: source.Table{Schema: "public", Name: "a"}, Columns: col, Units: 2},
		{Table: source.Table{Schema: "public", Name: "b"}, Columns: col, Units: 1},
	}, Units: []Unit{{N: 1, Table: 0, Seq: 1}, {N: 2, Table: 0, Seq: 2}, {N: 3, Table: 1, Seq: 1}}}
	for n := 1; n <= 3; n++ {
		put(sink.LoadKey("public", "a", n), "an earlier load")
	}
	put(sink.LoadKey("public", "a", 9), "an earlier load")
	// Unit 2 was killed once after staging (attempt "dead"), then done.
	put(stagedKey(id, 2, "dead", 1), "never named")
	done := map[int]UnitDone{
		1: {Attempt: "x", Files: []StagedFile{{Key: stagedKey(id, 1, "x", 1)}, {Key: stagedKey(id, 1, "x", 2)}}, Rows: 3},
		2: {Attempt: "y", Files: []StagedFile{{Key: stagedKey(id, 2, "y", 1)}}, Rows: 1},
		3: {Attempt: "z"},
	}
	bodies := map[string]string{stagedKey(id, 1, "x", 1): "u1 f1", stagedKey(id, 1, "x", 2): "u1 f2", stagedKey(id, 2, "y", 1): "u2 f1"}
	for k, v := range bodies {
		put(k, v)
	}
	for n, d := range done {
		d.Plan, d.Unit = id, n
		if won, err := recordDone(ctx, store, d); err != nil || !won {
			t.Fatalf("record unit %d: %v %v", n, won, err)
		}
	}
	if won, err := recordDone(ctx, store, UnitDone{Plan: id, Unit: 2, Attempt: "late"}); err != nil || won {
		t.Errorf("a second attempt's record: won %v, %v; want the first to stay", won, err)
	}
	jobs, err := p.jobs()
	if err != nil {
		t.Fatal(err)
	}
	o := PlanOptions{ID: id}
	o.defaults()
	o.TempDir = t.TempDir()
	crash := errors.New("killed before the state was saved")
	o.Committed = func(context.Context) error { return crash }
	if _, err := commit(ctx, store, p, jobs, o); !errors.Is(err, crash) {
		t.Fatalf("first commit: %v", err)
	}
	o.Committed = nil
	res, err := commit(ctx, store, p, jobs, o)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		sink.LoadKey("public", "a", 1): "u1 f1", sink.LoadKey("public", "a", 2): "u1 f2", sink.LoadKey("public", "a", 3): "u2 f1",
	}
	objs, err := store.List(ctx, "public/")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
		if w, ok := want[o.Key]; ok {
			if got := read(t, store, o.Key); got != w {
				t.Errorf("%s holds %q, want %q", o.Key, got, w)
			}
		}
	}
	if wantKeys := "public/a/LOAD00000001.parquet public/a/LOAD00000002.parquet public/a/LOAD00000003.parquet public/b/LOAD00000001.parquet"; strings.Join(keys, " ") != wantKeys {
		t.Errorf("LOAD files %v, want %s", keys, wantKeys)
	}
	if !strings.HasPrefix(read(t, store, sink.LoadKey("public", "b", 1)), "PAR1") {
		t.Errorf("b's empty file is not Parquet")
	}
	if res[0].Rows != 4 || res[0].Files != 3 || res[1].Files != 1 {
		t.Errorf("results %+v", res)
	}
	if ok, err := isCommitted(ctx, store, id); err != nil || !ok {
		t.Errorf("not recorded committed: %v", err)
	}
	if left, _ := store.List(ctx, planDir(id)+"files/"); len(left) > 0 {
		t.Errorf("staged files left: %v", left)
	}
}

func read(t *testing.T, store sink.Store, key string) string {
	t.Helper()
	r, err := store.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var b bytes.Buffer
	if _, err := io.Copy(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
