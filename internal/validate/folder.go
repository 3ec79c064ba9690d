package validate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"

	"github.com/cdc2s3/cdc2s3/sink"
)

// folderFile is one object of a table folder to read.
type folderFile struct {
	key  string
	size int64
}

// readFolder reads every Parquet file of the table's folder that can hold
// rows at or below the position, as readers do (every *.parquet under the
// folder), and spills their rows by key hash. It records the folder's cut
// and completed reloads, and the objects that are not contract files.
func (t *tableRun) readFolder(ctx context.Context) ([]part, error) {
	t.st.setPhase("reading")
	files, err := t.folderFiles(ctx)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, f := range files {
		total += f.size
	}
	t.st.BytesTotal.Store(total)
	t.bits = t.firstBits(total)
	s, err := newSpill(t.dir, "changes", 0, 0, t.bits)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if err := t.readFile(ctx, f, s); err != nil {
			s.abort()
			return nil, err
		}
		t.st.Bytes.Add(f.size)
	}
	return s.close()
}

// folderFiles lists the folder: the LOAD files, the CDC files whose first
// row is at or below the position, and other Parquet files (which readers
// read too), each of the last noted as not a contract file, as is every
// object that is no Parquet file.
func (t *tableRun) folderFiles(ctx context.Context) ([]folderFile, error) {
	if t.spec.plan.Dir == "" {
		t.res.Notes = append(t.res.Notes, "the destination has no folder for this table (no schema history)")
		return nil, nil
	}
	objs, err := t.store.List(ctx, t.spec.plan.Dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", t.spec.plan.Dir, err)
	}
	var files []folderFile
	for _, o := range objs {
		name := strings.TrimPrefix(o.Key, t.spec.plan.Dir)
		first, _, isCDC := sink.ParseCDCKey(o.Key)
		switch {
		case isCDC && uint64(first.LSN) > t.at:
			continue // every row after the position
		case isCDC || (sink.IsLoadKey(o.Key) && !strings.Contains(name, "/")):
		case strings.HasSuffix(o.Key, ".parquet"):
			t.res.Files = append(t.res.Files, name+": not a LOAD or CDC file name (readers read it all the same; its rows are compared)")
		default:
			t.res.Files = append(t.res.Files, name+": not a Parquet file")
			continue
		}
		files = append(files, folderFile{key: o.Key, size: o.Size})
	}
	return files, nil
}

// readFile downloads one file and spills its rows. A file that cannot be
// read as a Parquet file of the contract is noted, not an error.
func (t *tableRun) readFile(ctx context.Context, f folderFile, s *spill) error {
	local, err := t.download(ctx, f.key)
	if err != nil {
		return err
	}
	defer os.Remove(local)
	err = t.readParquet(ctx, local, f.key, s)
	var bad badFile
	if errors.As(err, &bad) {
		t.res.Files = append(t.res.Files, strings.TrimPrefix(f.key, t.spec.plan.Dir)+": "+bad.Error())
		return nil
	}
	return err
}

// badFile is a file that is not what the contract says.
type badFile struct{ err error }

func (b badFile) Error() string { return "cannot be read: " + b.err.Error() }

// download copies an object into a local file, which arrow-go reads at
// random.
func (t *tableRun) download(ctx context.Context, key string) (string, error) {
	r, err := t.store.Get(ctx, key)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", key, err)
	}
	defer r.Close()
	f, err := os.CreateTemp(t.dir, "file-*.parquet")
	if err != nil {
		return "", fmt.Errorf("temp file: %w", err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", fmt.Errorf("read %s: %w", key, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// readParquet reads a local Parquet file with arrow-go's column readers,
// a row group at a time and only the columns compared, skipping row groups
// whose _cdc_lsn statistics put every row after the position.
func (t *tableRun) readParquet(ctx context.Context, path, key string, s *spill) error {
	props := parquet.NewReaderProperties(memory.DefaultAllocator)
	props.BufferedStreamEnabled, props.BufferSize = true, 1<<20
	pf, err := file.OpenParquetFile(path, false, file.WithReadProps(props))
	if err != nil {
		return badFile{err}
	}
	defer pf.Close()
	md := pf.MetaData()
	byName := leaves(md)
	for g := 0; g < md.NumRowGroups(); g++ {
		if leaf, ok := byName[colLSN]; ok && minLSN(md.RowGroup(g), leaf) > t.at {
			continue
		}
		rg, err := t.openRowGroup(pf, g, byName, sink.IsLoadKey(key))
		if err != nil {
			return err
		}
		for n := md.RowGroup(g).NumRows(); n > 0; n-- {
			if err := rg.row(s); err != nil {
				return err
			}
			if n%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	return nil
}

// minLSN is the smallest _cdc_lsn of a row group by its statistics, 0 when
// it has none.
func minLSN(rg *metadata.RowGroupMetaData, leaf int) uint64 {
	cc, err := rg.ColumnChunk(leaf)
	if err != nil {
		return 0
	}
	if ok, err := cc.StatsSet(); !ok || err != nil {
		return 0
	}
	st, err := cc.Statistics()
	if err != nil || !st.HasMinMax() {
		return 0
	}
	if s, ok := st.(*metadata.Int64Statistics); ok && s.Min() > 0 {
		return uint64(s.Min())
	}
	return 0
}
