package pipeline

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/pqfile"
)

// TestWriterDateFolders checks that the writer cuts a table's file where
// the commit date's folder changes, also when commit times go back across
// the boundary (they are taken before the commit record is written, so two
// sessions' commits may be out of time order), and names each file in its
// folder.
func TestWriterDateFolders(t *testing.T) {
	dp, err := sink.ParseDatePartition("YYYYMMDD", "SLASH", "Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{cfg: Config{DatePartition: dp, TempDir: t.TempDir(), Compression: "zstd"}}
	tbl := &table{schema: "public", name: "t", label: "public.t", cols: []pqfile.Column{{Name: "id", Type: pqfile.Type{Kind: pqfile.Int32}}}}
	paris, _ := time.LoadLocation("Europe/Paris")
	// Midnight in Paris on 2026-12-04 is 23:00 UTC on the 3rd.
	at := func(h, m int) int64 { return time.Date(2026, 12, 3, h, m, 0, 0, paris).UnixMicro() }
	rows := []struct {
		lsn pglogrepl.LSN
		ts  int64
	}{
		{100, at(23, 58)},
		{200, at(23, 59)},
		{300, at(24, 1)},  // the 4th
		{400, at(23, 59)}, // committed later, timestamped earlier
		{500, at(24, 2)},
	}
	for _, r := range rows {
		if err := w.write(tbl, pqfile.Meta{Op: 'I', CommitTime: r.ts, LSN: r.lsn}, [][]byte{[]byte("1")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.seal(tbl); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, f := range w.sealed {
		keys = append(keys, f.key)
		os.Remove(f.path)
	}
	pos := func(l pglogrepl.LSN) sink.Pos { return sink.Pos{LSN: l} }
	want := []string{
		sink.CDCKeyIn("public", "t", "2026/12/03", pos(100), pos(200)),
		sink.CDCKeyIn("public", "t", "2026/12/04", pos(300), pos(300)),
		sink.CDCKeyIn("public", "t", "2026/12/03", pos(400), pos(400)),
		sink.CDCKeyIn("public", "t", "2026/12/04", pos(500), pos(500)),
	}
	if !slices.Equal(keys, want) {
		t.Errorf("sealed files\n%v\nwant\n%v", keys, want)
	}
}
