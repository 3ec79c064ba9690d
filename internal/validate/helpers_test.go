package validate

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/jackc/pglogrepl"

	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/localfs"
	"github.com/cdc2s3/cdc2s3/sink/pqfile"
)

// The tests here write folders with cdc2s3's own writer (sink/pqfile) into
// a local destination and compare them, through the whole of tableRun,
// with a source given as PostgreSQL text: only the PostgreSQL side is
// left out.

// testCol is one column of a test table: its type in the files and its
// kind in the source.
type testCol struct {
	name string
	typ  pqfile.Type
	kind ColumnKind
	// added and missing: the schema history's added position and missing
	// value of a column added later.
	added   position
	missing *string
}

// testTable is a table folder in a local destination.
type testTable struct {
	t     *testing.T
	cols  []testCol
	key   []string
	store sink.Store
	dir   string
	files int
}

func newTestTable(t *testing.T, cols []testCol, key ...string) *testTable {
	t.Helper()
	store, err := localfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &testTable{t: t, cols: cols, key: key, store: store, dir: sink.TableDir("public", "t")}
}

// row is one row of a file: its metadata and PostgreSQL text values (nil
// NULL); vals may be shorter than the file's columns for an R row.
type row struct {
	m    pqfile.Meta
	vals []*string
}

func s(v string) *string { return &v }

// ins, upd, del, load, trunc and reloaded make rows at (lsn, seq).
func ins(lsn, seq uint64, vals ...*string) row {
	return row{pqfile.Meta{Op: 'I', LSN: pglogrepl.LSN(lsn), Seq: seq}, vals}
}
func upd(lsn, seq uint64, unchanged []string, vals ...*string) row {
	return row{pqfile.Meta{Op: 'U', LSN: pglogrepl.LSN(lsn), Seq: seq, Unchanged: unchanged}, vals}
}
func del(lsn, seq uint64, vals ...*string) row {
	return row{pqfile.Meta{Op: 'D', LSN: pglogrepl.LSN(lsn), Seq: seq}, vals}
}
func trunc(lsn, seq uint64) row {
	return row{m: pqfile.Meta{Op: 'T', LSN: pglogrepl.LSN(lsn), Seq: seq}}
}
func reloaded(lsn, seq, cut uint64, vals ...*string) row {
	return row{pqfile.Meta{Op: 'L', LSN: pglogrepl.LSN(lsn), Seq: seq, Reload: pglogrepl.LSN(cut)}, vals}
}

// write writes a file of rows under name (LOAD… or CDC-…), with the
// columns cols (all of the table's when nil) and _cdc_reload when reload.
func (tt *testTable) write(name string, cols []string, reload bool, rows ...row) {
	tt.t.Helper()
	var pc []pqfile.Column
	for _, c := range tt.cols {
		if cols == nil || slices.Contains(cols, c.name) {
			pc = append(pc, pqfile.Column{Name: c.name, Type: c.typ})
		}
	}
	var buf bytes.Buffer
	w, err := pqfile.NewWriter(&buf, pc, pqfile.Options{Reload: reload})
	if err != nil {
		tt.t.Fatal(err)
	}
	for _, r := range rows {
		vals := make([][]byte, len(pc))
		for i := range pc {
			if i < len(r.vals) && r.vals[i] != nil {
				vals[i] = []byte(*r.vals[i])
			}
		}
		if err := w.Write(r.m, vals); err != nil {
			tt.t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tt.t.Fatal(err)
	}
	if err := tt.store.Put(context.Background(), tt.dir+name, bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
		tt.t.Fatal(err)
	}
}

// cdc names a CDC file by its first and last position.
func cdc(first, last uint64) string {
	return fmt.Sprintf("CDC-%016X00000000-%016X00000000.parquet", first, last)
}

// fakeRows is a source given as PostgreSQL text.
type fakeRows struct {
	cols []testCol
	rows [][]*string
}

func (f fakeRows) estimate(context.Context) (int64, error) { return int64(len(f.rows)), nil }

func (f fakeRows) each(_ context.Context, fn func([]byte) error) error {
	for _, r := range f.rows {
		var values []byte
		for j, c := range f.cols {
			var text []byte
			if r[j] != nil {
				text = []byte(*r[j])
			}
			var err error
			if values, err = appendPG(values, c.kind, text); err != nil {
				return err
			}
		}
		if err := fn(values); err != nil {
			return err
		}
	}
	return nil
}

// compare compares the folder at position at with source rows, with a
// memory budget (0: the default).
func (tt *testTable) compare(at uint64, memory int64, source ...[]*string) Result {
	tt.t.Helper()
	return tt.run(at, memory, source...).res
}

// run is compare returning the whole run.
func (tt *testTable) run(at uint64, memory int64, source ...[]*string) *tableRun {
	tt.t.Helper()
	sp := &spec{name: "public.t"}
	sp.plan.Dir = tt.dir
	for i, c := range tt.cols {
		sc := specColumn{name: c.name, kind: c.kind, added: c.added, isAdded: c.added != position{}}
		var missing []byte
		if c.missing != nil {
			missing = []byte(*c.missing)
		}
		var err error
		if sc.missing, err = appendPG(nil, c.kind, missing); err != nil {
			tt.t.Fatal(err)
		}
		sp.cols = append(sp.cols, sc)
		if slices.Contains(tt.key, c.name) {
			sp.key = append(sp.key, i)
		}
	}
	o := Options{Memory: memory, TempDir: tt.t.TempDir(), Samples: 10}
	if o.Memory == 0 {
		o.Memory = DefaultMemory
	}
	run := &tableRun{spec: sp, source: fakeRows{cols: tt.cols, rows: source}, store: tt.store, at: at,
		dir: o.TempDir, o: o, st: (*Progress)(nil).add("public.t"), res: Result{Table: sp.name}, done: map[uint64]bool{}}
	if err := run.compare(context.Background()); err != nil {
		tt.t.Fatal(err)
	}
	return run
}

// expect checks a result's counts.
func expect(t *testing.T, r Result, src, dst, missing, extra, mismatched int64) {
	t.Helper()
	if r.SourceRows != src || r.DestRows != dst || r.Missing != missing || r.Extra != extra || r.Mismatched != mismatched {
		t.Errorf("source %d dest %d missing %d extra %d mismatched %d; want %d %d %d %d %d\n%+v",
			r.SourceRows, r.DestRows, r.Missing, r.Extra, r.Mismatched, src, dst, missing, extra, mismatched, r)
	}
}
