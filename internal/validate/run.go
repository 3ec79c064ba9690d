package validate

import (
	"context"
	"fmt"
	"math"

	"golang.org/x/sync/errgroup"

	"github.com/cdc2s3/cdc2s3/sink"
)

// tableRun is the comparison of one table, in four steps:
//
//  1. at once: the source's rows, summed per hash range (sourceSums), and
//     the folder's rows at or below the position, spilled by key hash
//     (readFolder);
//  2. each partition of the spill merged by the merge rule into the
//     folder's current state, summed per hash range; the state's rows in
//     ranges whose sums differ spilled again (mergeParts);
//  3. only when some range differs: the source read again, its rows in
//     those ranges spilled (sourceDetail);
//  4. the two spills of differing rows compared row by row (compareDetail).
type tableRun struct {
	spec   *spec
	source rowSource
	store  sink.Store
	at     uint64 // the position: rows with _cdc_lsn <= at
	dir    string // the run's temporary files
	o      Options
	st     *TableStatus
	res    Result

	// Found while reading the folder: the cut (the latest truncate or
	// completed reload) and the reloads completed (their R rows).
	cut    position
	hasCut bool
	done   map[uint64]bool

	src, dst sums     // the two sides' sums per hash range
	differ   rangeSet // the ranges whose sums differ
	bits     int      // the first split of the spills
	dstRows  []part   // the destination's rows of the differing ranges
	splits   int      // partitions split for want of memory
}

// compare runs the four steps.
func (t *tableRun) compare(ctx context.Context) error {
	t.src, t.dst, t.differ = newSums(), newSums(), newRangeSet()
	var parts []part
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return t.sourceSums(gctx) })
	g.Go(func() (err error) {
		parts, err = t.readFolder(gctx)
		return err
	})
	if err := g.Wait(); err != nil {
		return err
	}
	t.st.setPhase("merging")
	if err := t.mergeParts(parts); err != nil {
		return err
	}
	t.res.SourceRows, t.res.DestRows = t.src.rows(), t.dst.rows()
	for r := range t.src {
		if t.src[r].rows > 0 || t.dst[r].rows > 0 {
			t.res.Ranges++
		}
		if t.src[r] != t.dst[r] {
			t.differ.add(uint32(r))
		}
	}
	t.res.Compared = t.differ.count()
	if t.differ.empty() {
		return nil
	}
	t.st.setPhase("comparing rows")
	srcRows, err := t.sourceDetail(ctx)
	if err != nil {
		return err
	}
	return t.compareDetail(t.dstRows, srcRows)
}

// partLimit is the largest partition file merged or compared in memory.
func (t *tableRun) partLimit() int64 { return max(t.o.Memory/4, 64<<10) }

// firstBits is how many bits the first spill splits by: enough for
// partitions of about partLimit if the folder's files hold about a quarter
// of their canonical size (Parquet compresses; too few bits only means a
// second split).
func (t *tableRun) firstBits(folderBytes int64) int {
	n := float64(folderBytes*4) / float64(t.partLimit())
	if n <= 1 {
		return 0
	}
	return min(int(math.Ceil(math.Log2(n))), splitBits)
}

// sample appends s to list while it holds fewer than the samples asked.
func (t *tableRun) sample(list *[]string, s string) {
	if len(*list) < t.o.Samples {
		*list = append(*list, s)
	}
}

// keyText renders an encoded key: "(id=7)", or every column of a table
// without one.
func (t *tableRun) keyText(key []byte) string {
	cols := t.spec.key
	if !t.spec.keyed() {
		cols = make([]int, len(t.spec.cols))
		for i := range cols {
			cols[i] = i
		}
	}
	vals, err := splitValues(key, len(cols))
	if err != nil {
		return fmt.Sprintf("(%x)", key)
	}
	s := "("
	for i, j := range cols {
		if i > 0 {
			s += ", "
		}
		s += t.spec.cols[j].name + "=" + formatValue(vals[i])
	}
	return s + ")"
}
