package oracle

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdc2s3/cdc2s3/internal/testenv"
)

// intText is a table (id int primary key, v text).
var intText = Table{
	Schema: "public", Name: "t", Key: []string{"id"},
	Columns: []Column{{Name: "id", Kind: KindInt}, {Name: "v", Kind: KindText}},
}

var intTextCols = []string{"id INTEGER", "v VARCHAR"}

// checkState merges dir and compares the result with want.
func checkState(t *testing.T, dir string, tbl Table, want ...Row) {
	t.Helper()
	testenv.Integration(t, "DuckDB (node/npm)")
	got, err := State(context.Background(), dir, tbl)
	if err != nil {
		t.Fatal(err)
	}
	if err := Compare(want, got); err != nil {
		t.Fatal(err)
	}
}

func TestTruncateCut(t *testing.T) {
	dir := t.TempDir()
	duck(t, copySQL(filepath.Join(dir, "LOAD00000001.parquet"), intTextCols,
		row("I", 100, 0, "1", "'a'"),
		row("I", 100, 0, "2", "'b'"),
	)+copySQL(filepath.Join(dir, "cdc", "0001.parquet"), intTextCols,
		row("I", 200, 0, "3", "'c'"),
		row("T", 250, 0, "NULL", "NULL"), // an earlier truncate: superseded
		row("I", 260, 0, "4", "'d'"),
		row("I", 300, 0, "6", "'same commit, before the T'"),
		row("T", 300, 1, "NULL", "NULL"), // the cut
		row("I", 300, 2, "5", "'e'"),
	)+copySQL(filepath.Join(dir, "cdc", "0002.parquet"), intTextCols,
		row("U", 400, 0, "5", "'E'"),
		row("D", 500, 0, "4", "NULL"), // deletes a row cut away already
		row("I", 500, 1, "1", "'again'"),
	))
	checkState(t, dir, intText, Row{"5", `"E"`}, Row{"1", `"again"`})
}

func TestKeyUpdateAsDeleteInsert(t *testing.T) {
	dir := t.TempDir()
	duck(t, copySQL(filepath.Join(dir, "LOAD00000001.parquet"), intTextCols,
		row("I", 100, 0, "1", "'a'"),
		row("I", 100, 0, "2", "'b'"),
		row("I", 100, 0, "3", "'c'"),
	)+copySQL(filepath.Join(dir, "cdc.parquet"), intTextCols,
		row("D", 200, 0, "1", "NULL"), // UPDATE t SET id = 10 WHERE id = 1
		row("I", 200, 1, "10", "'a'"),
		row("U", 300, 0, "2", "'bb'"),
		row("D", 300, 1, "2", "NULL"), // then id 2 -> 20 in the same transaction
		row("I", 300, 2, "20", "'bb'"),
		row("D", 400, 0, "10", "NULL"), // and back: 10 -> 1
		row("I", 400, 1, "1", "'a1'"),
		row("D", 400, 2, "3", "NULL"),
	))
	checkState(t, dir, intText, Row{"1", `"a1"`}, Row{"20", `"bb"`})
}

func TestUnchangedToast(t *testing.T) {
	dir := t.TempDir()
	cols := []string{"id INTEGER", "big VARCHAR", "n INTEGER", "arr INTEGER[]"}
	tbl := Table{Key: []string{"id"}, Columns: []Column{
		{Name: "id", Kind: KindInt}, {Name: "big", Kind: KindText},
		{Name: "n", Kind: KindInt}, {Name: "arr", Kind: KindInt, Array: true},
	}}
	duck(t, copySQL(filepath.Join(dir, "LOAD00000001.parquet"), cols,
		row("I", 100, 0, "1", "'x'", "1", "[1, 2]"),
		row("I", 100, 0, "2", "NULL", "1", "NULL"),
		row("I", 100, 0, "4", "'four'", "1", "[4]"),
	)+copySQL(filepath.Join(dir, "cdc1.parquet"), cols,
		row("U", 200, 0, "1", "NULL", "2", "NULL").with("big", "arr"),
		row("U", 200, 1, "2", "NULL", "5", "NULL").with("big"), // the value before was NULL
		row("I", 210, 0, "3", "'y'", "1", "[3]"),
		row("U", 220, 0, "3", "'z'", "2", "NULL").with("arr"),
		row("U", 230, 0, "3", "NULL", "3", "NULL").with("big"), // arr really is NULL now
	)+copySQL(filepath.Join(dir, "cdc2.parquet"), cols,
		row("U", 300, 0, "1", "NULL", "3", "NULL").with("big", "arr"),
		row("U", 300, 1, "4", "NULL", "2", "NULL").with("big"),
		row("D", 310, 0, "4", "NULL", "NULL", "NULL"),
		row("I", 320, 0, "4", "'new four'", "3", "[44]"),
		row("U", 330, 0, "4", "NULL", "4", "NULL").with("big", "arr"),
	))
	checkState(t, dir, tbl,
		Row{"1", `"x"`, "3", "[1,2]"},
		Row{"2", "null", "5", "null"},
		Row{"3", `"z"`, "3", "null"},
		Row{"4", `"new four"`, "4", "[44]"},
	)
}

func TestColumnAddedWithMissingValue(t *testing.T) {
	dir := t.TempDir()
	str := func(s string) *string { return &s }
	tbl := Table{Key: []string{"id"}, Columns: []Column{
		{Name: "id", Kind: KindInt}, {Name: "a", Kind: KindText},
		{Name: "c", Kind: KindInt}, {Name: "d", Kind: KindText},
		{Name: "e", Kind: KindTimestampTZ}, {Name: "f", Kind: KindInt, Array: true},
		{Name: "g", Kind: KindDate}, {Name: "h", Kind: KindDecimal},
	}, History: []ColumnHistory{
		{Name: "c", AddedLSN: 200, Missing: str("5")},
		{Name: "d", AddedLSN: 200},
		{Name: "e", AddedLSN: 200, Missing: str("2020-01-02 03:04:05.5+00")},
		{Name: "f", AddedLSN: 200, Missing: str("{1,NULL,3}")},
		{Name: "g", AddedLSN: 200, Missing: str("0044-03-15 BC")},
		// No file has h yet: every row predates it.
		{Name: "h", AddedLSN: 400, Missing: str("9.50")},
		{Name: "gone", AddedLSN: 300, Missing: str("ignored: not a current column")},
	}}
	duck(t, copySQL(filepath.Join(dir, "LOAD00000001.parquet"), []string{"id INTEGER", "a VARCHAR"},
		row("I", 100, 0, "1", "'one'"),
		row("I", 100, 0, "2", "'two'"),
	)+copySQL(filepath.Join(dir, "cdc.parquet"),
		[]string{"id INTEGER", "a VARCHAR", "c INTEGER", "d VARCHAR", "e TIMESTAMPTZ", "f INTEGER[]", "g DATE"},
		row("I", 250, 0, "3", "'three'", "7", "'x'", "TIMESTAMPTZ '2021-01-01 00:00:00+00'", "[4]", "DATE '2021-01-01'"),
		row("U", 260, 0, "1", "'ONE'", "NULL", "'y'", "NULL", "[]", "NULL"),
	))
	missing := []string{"5", "null", `"2020-01-02T03:04:05.500000Z"`, "[1,null,3]", `"-0043-03-15"`, "9.5"}
	checkState(t, dir, tbl,
		Row{"1", `"ONE"`, "null", `"y"`, "null", "[]", "null", "9.5"},
		append(Row{"2", `"two"`}, missing...),
		Row{"3", `"three"`, "7", `"x"`, `"2021-01-01T00:00:00.000000Z"`, "[4]", `"2021-01-01"`, "9.5"},
	)
}

func TestDroppedAndReAddedColumn(t *testing.T) {
	dest := t.TempDir()
	dir := TableDir(dest, "public", "t")
	// c was text from the start, dropped at 150 and re-added as integer at 250.
	hist := filepath.Join(dest, "_cdc2s3", "schema", "public", "t.json")
	if err := os.MkdirAll(filepath.Dir(hist), 0o755); err != nil {
		t.Fatal(err)
	}
	err := os.WriteFile(hist, []byte(`{"version":1,"schema":"public","table":"t","columns":[
		{"name":"id","added_lsn":0,"missing":null},
		{"name":"c","added_lsn":0,"missing":null},
		{"name":"c","added_lsn":250,"missing":null},
		{"name":"c","added_lsn":90,"missing":"stale"}]}`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	h, err := LoadHistory("file://"+dest, "public", "t")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[1].Name != "c" || h[1].AddedLSN != 250 || h[1].Missing != nil {
		t.Fatalf("LoadHistory = %+v", h)
	}
	tbl := Table{Key: []string{"id"}, Columns: []Column{{Name: "id", Kind: KindInt}, {Name: "c", Kind: KindInt}}, History: h}
	duck(t, copySQL(filepath.Join(dir, "LOAD00000001.parquet"), []string{"id INTEGER", "c VARCHAR"},
		row("I", 100, 0, "1", "'old1'"),
		row("I", 100, 0, "2", "'old2'"),
	)+copySQL(filepath.Join(dir, "cdc1.parquet"), []string{"id INTEGER"},
		row("U", 200, 0, "2"),
	)+copySQL(filepath.Join(dir, "cdc2.parquet"), []string{"id INTEGER", "c INTEGER"},
		row("I", 300, 0, "3", "33"),
		row("U", 310, 0, "1", "11"),
	))
	checkState(t, dir, tbl, Row{"1", "11"}, Row{"2", "null"}, Row{"3", "33"})
}

func TestLoadHistoryMissingFile(t *testing.T) {
	h, err := LoadHistory(t.TempDir(), "a/b%c", "t")
	if err != nil || h != nil {
		t.Fatalf("LoadHistory = %v, %v; want nil, nil", h, err)
	}
	if got := TableDir("/d", "a/b%c", "t"); got != "/d/a%2Fb%25c/t" {
		t.Fatalf("TableDir = %s", got)
	}
}

func TestMultisetWithoutKey(t *testing.T) {
	dir := t.TempDir()
	tbl := Table{Columns: []Column{{Name: "a", Kind: KindInt}, {Name: "b", Kind: KindText}, {Name: "f", Kind: KindFloat8}}}
	cols := []string{"a INTEGER", "b VARCHAR", "f DOUBLE"}
	duck(t, copySQL(filepath.Join(dir, "LOAD00000001.parquet"), cols,
		row("I", 100, 0, "1", "'x'", "1.5"),
		row("I", 100, 0, "1", "'x'", "1.5"),
		row("I", 100, 0, "1", "'x'", "1.5"),
		row("I", 100, 0, "2", "NULL", "'NaN'::DOUBLE"),
		row("I", 100, 0, "NULL", "NULL", "NULL"),
	)+copySQL(filepath.Join(dir, "cdc.parquet"), cols,
		row("D", 200, 0, "1", "'x'", "1.5"),            // removes one of three
		row("D", 200, 1, "2", "NULL", "'NaN'::DOUBLE"), // UPDATE ... SET b = 'y': before image
		row("I", 200, 2, "2", "'y'", "'NaN'::DOUBLE"),  // after image
		row("I", 300, 0, "NULL", "NULL", "NULL"),
		row("D", 300, 1, "NULL", "NULL", "NULL"),
		row("I", 300, 2, "3", "''", "0"),
	))
	checkState(t, dir, tbl,
		Row{"1", `"x"`, "1.5"}, Row{"1", `"x"`, "1.5"},
		Row{"2", `"y"`, `"NaN"`},
		Row{"null", "null", "null"},
		Row{"3", `""`, "0"},
	)

	// A delete that matches no row is a broken folder, not a silent no-op.
	bad := t.TempDir()
	duck(t, copySQL(filepath.Join(bad, "x.parquet"), cols,
		row("I", 100, 0, "1", "'x'", "1.5"),
		row("D", 200, 0, "1", "'y'", "1.5"),
	))
	if _, err := State(context.Background(), bad, tbl); err == nil || !strings.Contains(err.Error(), "matches no live row") {
		t.Fatalf("State = %v, want a no-match error", err)
	}
}

func TestUnionByName(t *testing.T) {
	dir := t.TempDir()
	tbl := Table{Key: []string{"id"}, Columns: []Column{
		{Name: "id", Kind: KindInt}, {Name: "a", Kind: KindText}, {Name: "b", Kind: KindFloat4},
		{Name: "c", Kind: KindBool}, {Name: "Mixed Case", Kind: KindText},
	}}
	// Different column sets and orders, nested folders, files directly in
	// the folder, and a non-Parquet file that must be ignored.
	duck(t, copySQL(filepath.Join(dir, "LOAD00000001.parquet"), []string{"id INTEGER", "a VARCHAR", "b FLOAT"},
		row("I", 100, 0, "1", "'a1'", "0.1"),
		row("I", 100, 0, "2", "'a2'", "16777217"),
	)+copySQL(filepath.Join(dir, "2024", "01", "cdc.parquet"), []string{"c BOOLEAN", "id INTEGER", `"Mixed Case" VARCHAR`, "b FLOAT"},
		row("U", 200, 0, "true", "1", "'M'", "'-Infinity'::FLOAT"),
		row("I", 200, 1, "false", "3", "NULL", "3.4028235e38"),
	))
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not parquet"), 0o644); err != nil {
		t.Fatal(err)
	}
	checkState(t, dir, tbl,
		Row{"1", "null", `"-Infinity"`, "true", `"M"`},
		Row{"2", `"a2"`, "16777216", "null", "null"},
		Row{"3", "null", "3.4028235e+38", "false", "null"},
	)
}

func TestEmptyFolder(t *testing.T) {
	testenv.Integration(t, "DuckDB (node/npm)")
	for _, dir := range []string{t.TempDir(), filepath.Join(t.TempDir(), "never-written")} {
		got, err := State(context.Background(), dir, intText)
		if err != nil || len(got) != 0 {
			t.Fatalf("State(%s) = %v, %v; want no rows", dir, got, err)
		}
	}
}

func TestCompare(t *testing.T) {
	a := []Row{{"1", `"x"`}, {"2", "null"}, {"2", "null"}}
	if err := Compare(a, []Row{{"2", "null"}, {"1", `"x"`}, {"2", "null"}}); err != nil {
		t.Fatal(err)
	}
	err := Compare(a, []Row{{"1", `"x"`}, {"2", "null"}, {"3", `""`}})
	if err == nil {
		t.Fatal("Compare found no difference")
	}
	for _, s := range []string{"want 3 rows, got 3", "1 wanted rows missing, 1 unexpected", `(2, null)`, `(3, "")`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Compare error %q lacks %q", err, s)
		}
	}
}
