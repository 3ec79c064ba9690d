package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// TestSnapshotTypes runs the whole scripted workload (seed and changes,
// with the special values of every typed column: NaN, infinities, BC
// dates, the ends of the timestamp range, numerics beyond 38 digits, large
// values) into the tables, then copies them with `cdc2s3 snapshot`, whose
// full load reads COPY's binary format, and judges it with the oracle
// against the source. A second copy with --snapshot-text-copy must give
// the same values in every LOAD file, bit for bit.
func TestSnapshotTypes(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if err := Setup(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if err := Changes(ctx, conn); err != nil {
		t.Fatal(err)
	}
	binDir, textDir := t.TempDir(), t.TempDir()
	start(t, "snapshot", "--source", dsn, "--dest", binDir).wait(t)
	start(t, "snapshot", "--source", dsn, "--dest", textDir, "--snapshot-text-copy").wait(t)
	compareTables(t, conn, binDir, Tables)
	for _, st := range Tables {
		bin, text := loadFiles(t, binDir, st[0], st[1]), loadFiles(t, textDir, st[0], st[1])
		if len(bin) != len(text) {
			t.Errorf("%s.%s: %d LOAD files from the binary COPY, %d from the text COPY", st[0], st[1], len(bin), len(text))
			continue
		}
		for i := range bin {
			if err := sameValues(bin[i], text[i]); err != nil {
				t.Errorf("%s.%s: %v", st[0], st[1], err)
			}
		}
	}
}

// sameValues reports the first difference between two LOAD files'
// schemas or values (kind, levels and bytes, in order), but for the time
// and LSN of their snapshots.
func sameValues(aPath, bPath string) error {
	a, as, err := parquetRows(aPath)
	if err != nil {
		return err
	}
	b, bs, err := parquetRows(bPath)
	if err != nil {
		return err
	}
	if as != bs {
		return fmt.Errorf("schemas differ:\n%s\n%s", as, bs)
	}
	if len(a) != len(b) {
		return fmt.Errorf("%d rows and %d rows", len(a), len(b))
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return fmt.Errorf("row %d: %d values and %d", i, len(a[i]), len(b[i]))
		}
		for j := range a[i] {
			x, y := a[i][j], b[i][j]
			if c := x.Column(); c == 1 || c == 2 {
				continue // _cdc_commit_ts and _cdc_lsn: each snapshot's own
			}
			if x.Kind() != y.Kind() || x.IsNull() != y.IsNull() || x.Column() != y.Column() ||
				x.RepetitionLevel() != y.RepetitionLevel() || x.DefinitionLevel() != y.DefinitionLevel() || !bytes.Equal(x.Bytes(), y.Bytes()) {
				return fmt.Errorf("row %d, leaf column %d: %v (%x) and %v (%x)", i, x.Column(), x, x.Bytes(), y, y.Bytes())
			}
		}
	}
	return nil
}

// parquetRows reads every row of a Parquet file, and its schema.
func parquetRows(path string) ([]parquet.Row, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, "", err
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	var rows []parquet.Row
	buf := make([]parquet.Row, 64)
	for _, rg := range pf.RowGroups() {
		rr := rg.Rows()
		for {
			n, err := rr.ReadRows(buf)
			for _, r := range buf[:n] {
				rows = append(rows, r.Clone())
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				rr.Close()
				return nil, "", fmt.Errorf("%s: %w", path, err)
			}
		}
		rr.Close()
	}
	return rows, pf.Schema().String(), nil
}
