package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/cdc2s3/cdc2s3/internal/preflight"
	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/dest"
	"github.com/cdc2s3/cdc2s3/sink/pqfile"
	"github.com/cdc2s3/cdc2s3/source"
)

const (
	// inspectWorkers is the number of Parquet files inspect reads at once.
	inspectWorkers = 8
	// inspectMemLimit is the largest object inspect buffers in memory when
	// the store cannot read at offsets (S3); a larger one goes through a
	// temp file, since Parquet is read from its footer backwards.
	inspectMemLimit = 32 << 20
)

// inspectCommand returns the "inspect" subcommand: a per-table summary of
// what a destination holds (file counts, bytes, rows and operations) and a
// hint on how to query it. It reads only the footer and the Op column of
// each Parquet file.
func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:  "inspect",
		Usage: "summarize a destination: LOAD and CDC files, bytes, rows and operations per table folder",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dest", Usage: "destination: s3://bucket/prefix, file:///abs/path or a local path", EnvVars: env("DEST")},
			&cli.BoolFlag{Name: "s3-path-style", Usage: "use path-style S3 addressing (implied by a custom endpoint)", EnvVars: env("S3_PATH_STYLE")},
			&cli.StringFlag{Name: "tables", Usage: "comma-separated schema.table list (default: every table folder)", EnvVars: env("TABLES")},
		},
		Action: func(c *cli.Context) error {
			raw := c.String("dest")
			if raw == "" {
				return cli.Exit("no destination: set --dest or CDC2S3_DEST (s3://bucket/prefix or a local directory)", 2)
			}
			loc, err := dest.Parse(raw)
			if err != nil {
				return cli.Exit(err, 2)
			}
			// dest.Open creates a missing local directory; inspecting one is
			// almost certainly a typo, so say so instead.
			if loc.Path != "" {
				if fi, err := os.Stat(loc.Path); err != nil || !fi.IsDir() {
					return cli.Exit(fmt.Sprintf("destination %s is not a directory: check --dest", loc.Path), 2)
				}
			}
			store, err := openDest(c)
			if err != nil {
				return err
			}
			return runInspect(c.Context, c.App.Writer, c.App.ErrWriter, store, loc, splitList(c.String("tables")))
		},
	}
}

// opCounts counts the rows of each Op value.
type opCounts struct {
	I, U, D, T int64
	L, R       int64 // a reload's rows and markers (docs/reload.md)
	Other      int64 // any other value, including NULL; never written by cdc2s3
}

// add counts one Op value.
func (o *opCounts) add(v parquet.Value) {
	if v.IsNull() {
		o.Other++
		return
	}
	switch b := v.ByteArray(); string(b) {
	case "I":
		o.I++
	case "U":
		o.U++
	case "D":
		o.D++
	case "T":
		o.T++
	case "L":
		o.L++
	case "R":
		o.R++
	default:
		o.Other++
	}
}

// plus returns the sum of o and p.
func (o opCounts) plus(p opCounts) opCounts {
	return opCounts{I: o.I + p.I, U: o.U + p.U, D: o.D + p.D, T: o.T + p.T, L: o.L + p.L, R: o.R + p.R, Other: o.Other + p.Other}
}

// tableSummary is what inspect reports for one table folder.
type tableSummary struct {
	Dir       string // key prefix of the folder, "schema/table/"
	Name      string // schema.table, unescaped, for display
	LoadFiles int
	CDCFiles  int
	Other     int // objects in the folder that are neither LOAD nor CDC files
	Bytes     int64
	Rows      int64
	Ops       opCounts
	Last      sink.Pos // highest position a CDC file name carries
}

// fileJob is one Parquet file to read, with the summary it adds to.
type fileJob struct {
	obj   sink.ObjectInfo
	table *tableSummary
	rows  int64
	ops   opCounts
	gone  bool // deleted between the listing and the read
}

// runInspect lists the table folders of store (or only those of tables),
// reads the Op column of every LOAD and CDC file and prints the summary to
// out; warnings go to errOut.
func runInspect(ctx context.Context, out, errOut io.Writer, store sink.Store, loc dest.Location, tables []string) error {
	summaries, jobs, stray, err := collect(ctx, store, tables)
	if err != nil {
		return err
	}
	if len(tables) == 0 && len(summaries) == 0 {
		return cli.Exit(fmt.Sprintf("%s holds no table folders: check --dest (or wait for the full load to finish)", store), 1)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(inspectWorkers)
	for _, j := range jobs {
		g.Go(func() error {
			rows, ops, err := readOps(gctx, store, j.obj)
			if errors.Is(err, sink.ErrNotFound) {
				// A full load that starts over removes old LOAD files.
				j.gone = true
				return nil
			}
			if err != nil {
				return err
			}
			j.rows, j.ops = rows, ops
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	gone := 0
	for _, j := range jobs {
		if j.gone {
			gone++
		}
		j.table.Rows += j.rows
		j.table.Ops = j.table.Ops.plus(j.ops)
	}

	printState(ctx, out, errOut, store)
	printSummary(out, summaries)
	for _, s := range summaries {
		if s.Other > 0 {
			fmt.Fprintf(errOut, "warning: %s holds %d object(s) that are not LOAD or CDC files; a query over *.parquet may read them too\n", s.Dir, s.Other)
		}
		if s.Ops.Other > 0 {
			fmt.Fprintf(errOut, "warning: %s has %d row(s) with an Op other than I, U, D, T, L or R\n", s.Dir, s.Ops.Other)
		}
		if len(tables) > 0 && s.LoadFiles+s.CDCFiles == 0 {
			fmt.Fprintf(errOut, "warning: no files for %s under %s\n", s.Name, s.Dir)
		}
	}
	if gone > 0 {
		fmt.Fprintf(errOut, "warning: %d file(s) disappeared while inspect ran (is cdc2s3 starting a full load?); their files and bytes are counted, their rows are not\n", gone)
	}
	if stray > 0 {
		fmt.Fprintf(errOut, "warning: %d object(s) outside the table folders and %s were ignored\n", stray, sink.StatePrefix)
	}
	printQueryHint(out, summaries, loc)
	return nil
}

// collect lists the destination and groups its objects by table folder. It
// returns the summaries sorted by folder, the files to read and the number
// of objects that belong to no table folder.
func collect(ctx context.Context, store sink.Store, tables []string) ([]*tableSummary, []*fileJob, int, error) {
	byDir := map[string]*tableSummary{}
	var objs []sink.ObjectInfo
	if len(tables) == 0 {
		all, err := store.List(ctx, "")
		if err != nil {
			return nil, nil, 0, fmt.Errorf("list %s: %w", store, err)
		}
		objs = all
	} else {
		for _, t := range tables {
			schema, name := source.SplitName(t)
			dir := sink.TableDir(schema, name)
			if byDir[dir] != nil {
				continue
			}
			byDir[dir] = &tableSummary{Dir: dir, Name: schema + "." + name}
			listed, err := store.List(ctx, dir)
			if err != nil {
				return nil, nil, 0, fmt.Errorf("list %s: %w", dir, err)
			}
			objs = append(objs, listed...)
		}
	}
	var jobs []*fileJob
	stray := 0
	for _, o := range objs {
		if strings.HasPrefix(o.Key, sink.StatePrefix) {
			continue
		}
		dir, ok := sink.TableOfKey(o.Key)
		if !ok {
			stray++
			continue
		}
		s := byDir[dir]
		if s == nil {
			parts := strings.Split(dir, "/")
			s = &tableSummary{Dir: dir, Name: unescapeName(parts[0]) + "." + unescapeName(parts[1])}
			byDir[dir] = s
		}
		s.Bytes += o.Size
		switch _, last, isCDC := sink.ParseCDCKey(o.Key); {
		case isCDC:
			s.CDCFiles++
			if s.Last.Less(last) {
				s.Last = last
			}
		case sink.IsLoadKey(o.Key):
			s.LoadFiles++
		default:
			s.Other++
			continue
		}
		jobs = append(jobs, &fileJob{obj: o, table: s})
	}
	summaries := make([]*tableSummary, 0, len(byDir))
	for _, s := range byDir {
		summaries = append(summaries, s)
	}
	sort.Slice(summaries, func(i, j int) bool { return summaries[i].Dir < summaries[j].Dir })
	return summaries, jobs, stray, nil
}

// unescapeName reverses sink.EscapeName for display.
func unescapeName(s string) string {
	return strings.NewReplacer("%2F", "/", "%25", "%").Replace(s)
}

// readOps returns the row count of one Parquet file (from its footer) and
// the count of each Op value, reading no other column.
func readOps(ctx context.Context, store sink.Store, obj sink.ObjectInfo) (int64, opCounts, error) {
	var ops opCounts
	rc, err := store.Get(ctx, obj.Key)
	if err != nil {
		return 0, ops, err // ErrNotFound (wrapped) when it was deleted since the listing
	}
	defer rc.Close()
	ra, size, cleanup, err := readerAt(rc, obj.Size)
	if err != nil {
		return 0, ops, fmt.Errorf("read %s: %w", obj.Key, err)
	}
	defer cleanup()
	f, err := parquet.OpenFile(ra, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return 0, ops, fmt.Errorf("%s is not a readable Parquet file: %w", obj.Key, err)
	}
	leaf, ok := f.Schema().Lookup(pqfile.ColOp)
	if !ok {
		return 0, ops, fmt.Errorf("%s has no %s column: not a cdc2s3 file", obj.Key, pqfile.ColOp)
	}
	for _, rg := range f.RowGroups() {
		if err := countOps(rg.ColumnChunks()[leaf.ColumnIndex], &ops); err != nil {
			return 0, ops, fmt.Errorf("read %s column of %s: %w", pqfile.ColOp, obj.Key, err)
		}
	}
	return f.NumRows(), ops, nil
}

// countOps adds the Op values of one column chunk to ops, page by page.
func countOps(chunk parquet.ColumnChunk, ops *opCounts) error {
	pages := chunk.Pages()
	defer pages.Close()
	buf := make([]parquet.Value, 1024)
	for {
		p, err := pages.ReadPage()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		values := p.Values()
		for {
			n, err := values.ReadValues(buf)
			for _, v := range buf[:n] {
				ops.add(v)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				parquet.Release(p)
				return err
			}
		}
		parquet.Release(p)
	}
}

// readerAt gives random access to an object: directly when the store
// returned a file, else through memory or, for a large object, a temp
// file. cleanup releases what it made.
func readerAt(rc io.ReadCloser, size int64) (io.ReaderAt, int64, func(), error) {
	if f, ok := rc.(*os.File); ok {
		fi, err := f.Stat()
		if err != nil {
			return nil, 0, nil, err
		}
		return f, fi.Size(), func() {}, nil
	}
	if size <= inspectMemLimit {
		b, err := io.ReadAll(rc)
		if err != nil {
			return nil, 0, nil, err
		}
		return bytes.NewReader(b), int64(len(b)), func() {}, nil
	}
	tmp, err := os.CreateTemp("", "cdc2s3-inspect-*.parquet")
	if err != nil {
		return nil, 0, nil, err
	}
	cleanup := func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}
	n, err := io.Copy(tmp, rc)
	if err != nil {
		cleanup()
		return nil, 0, nil, err
	}
	return tmp, n, cleanup, nil
}

// printState prints one line about the tool's own state, when there is one.
func printState(ctx context.Context, out, errOut io.Writer, store sink.Store) {
	st, ok, err := lsnstore.New(store).Load(ctx)
	switch {
	case err != nil:
		fmt.Fprintf(errOut, "warning: cannot read the cdc2s3 state: %v\n", err)
		return
	case !ok:
		fmt.Fprintf(out, "%s: no cdc2s3 state under %s\n\n", store, sink.StatePrefix)
		return
	}
	load := "full load done"
	if !st.SnapshotDone {
		load = "full load NOT finished (the next run starts over)"
	}
	fmt.Fprintf(out, "%s: slot %s, publication %s, %s; snapshot at LSN %s (%s); checkpoint LSN %s\n\n",
		store, st.Slot, st.Publication, load, st.SnapshotLSN, st.SnapshotTime.UTC().Format("2006-01-02 15:04:05Z"), st.Checkpoint)
}

// printSummary prints the per-table table: the name left-aligned, numbers
// right-aligned, and a total line when there is more than one table.
func printSummary(out io.Writer, summaries []*tableSummary) {
	// A reload's L and R rows get columns of their own where there are any.
	reloads := slices.ContainsFunc(summaries, func(s *tableSummary) bool { return s.Ops.L+s.Ops.R > 0 })
	header := []string{"TABLE", "LOAD", "CDC", "BYTES", "ROWS", "I", "U", "D", "T", "LAST CDC LSN"}
	if reloads {
		header = slices.Insert(header, 9, "L", "R")
	}
	rows := [][]string{header}
	var total tableSummary
	for _, s := range summaries {
		rows = append(rows, summaryRow(s.Name, s, reloads))
		total.LoadFiles += s.LoadFiles
		total.CDCFiles += s.CDCFiles
		total.Bytes += s.Bytes
		total.Rows += s.Rows
		total.Ops = total.Ops.plus(s.Ops)
		if total.Last.Less(s.Last) {
			total.Last = s.Last
		}
	}
	if len(summaries) > 1 {
		rows = append(rows, summaryRow("total", &total, reloads))
	}
	widths := make([]int, len(header))
	for _, r := range rows {
		for i, cell := range r {
			widths[i] = max(widths[i], len(cell))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, cell := range r {
			switch {
			case i == 0:
				fmt.Fprintf(&b, "%-*s", widths[i], cell)
			default:
				fmt.Fprintf(&b, "  %*s", widths[i], cell)
			}
		}
		fmt.Fprintln(out, strings.TrimRight(b.String(), " "))
	}
}

// summaryRow formats one line of the summary, with the L and R counts
// when reloads is set.
func summaryRow(name string, s *tableSummary, reloads bool) []string {
	last := "-"
	if s.CDCFiles > 0 {
		last = s.Last.LSN.String()
	}
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	row := []string{
		name, strconv.Itoa(s.LoadFiles), strconv.Itoa(s.CDCFiles), preflight.FormatBytes(s.Bytes), n(s.Rows),
		n(s.Ops.I), n(s.Ops.U), n(s.Ops.D), n(s.Ops.T), last,
	}
	if reloads {
		row = slices.Insert(row, 9, n(s.Ops.L), n(s.Ops.R))
	}
	return row
}

// printQueryHint prints a DuckDB one-liner over the first table folder that
// holds files, and where the merge rule is documented.
func printQueryHint(out io.Writer, summaries []*tableSummary, loc dest.Location) {
	var s *tableSummary
	for _, t := range summaries {
		if t.LoadFiles+t.CDCFiles > 0 {
			s = t
			break
		}
	}
	if s == nil {
		return
	}
	glob := strings.TrimSuffix(loc.String(), "/") + "/" + s.Dir + "*.parquet"
	sql := fmt.Sprintf("SELECT Op, count(*) AS n FROM read_parquet(%s, union_by_name = true) GROUP BY Op ORDER BY Op", sqlString(glob))
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Query a table folder with DuckDB (https://duckdb.org), for example:")
	fmt.Fprintf(out, "  duckdb -c %s\n", shellQuote(sql))
	if loc.Bucket != "" {
		fmt.Fprintln(out, "  (for s3:// paths run first: CREATE SECRET (TYPE s3, PROVIDER credential_chain);)")
	}
	fmt.Fprintln(out, "The current state of a table (the merge rule, with DuckDB and Athena examples) is in docs/output-format.md.")
}

// sqlString quotes s as an SQL string literal.
func sqlString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// shellQuote quotes s for a POSIX shell: in double quotes when that needs
// no escaping (the common case, and it keeps SQL's single quotes legible),
// else in single quotes.
func shellQuote(s string) string {
	if !strings.ContainsAny(s, "\"$`\\!") {
		return `"` + s + `"`
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
