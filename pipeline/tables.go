package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strings"

	"github.com/jackc/pglogrepl"

	"github.com/cdc2s3/cdc2s3/decoder"
	"github.com/cdc2s3/cdc2s3/internal/logkey"
	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/pqfile"
	"github.com/cdc2s3/cdc2s3/source"
	"github.com/prometheus/client_golang/prometheus"
)

// table is the writer's view of one output folder.
type table struct {
	schema, name string
	label        string // schema.name, for logs and metrics
	// Changes and bytes written since the metrics were last told, which
	// they are once per transaction rather than once per row.
	opCounts [len(countedOps)]int64
	// The table's counters, looked up by label once rather than per
	// transaction.
	changeCounters [len(countedOps)]prometheus.Counter
	bytesCounter   prometheus.Counter
	valueBytes     int64
	rel            *decoder.Relation
	cols           []pqfile.Column
	history        *lsnstore.History
	historyDirty   bool
	// done is the last position already in the destination; rows at or
	// below it are replays and are skipped.
	done sink.Pos
	open *openFile
	// source describes the table in the catalog, read when first needed.
	source source.Table
}

type openFile struct {
	f           *os.File
	w           *pqfile.Writer
	first, last sink.Pos
	// reload: the file has the _cdc_reload column and holds a reload's L
	// rows only. A table's files never overlap in position, so that the
	// restart rule (the highest last position of a folder) holds: rows of
	// the other kind seal the file first.
	reload bool
	// folder is the date folder of the file's rows (--date-partition; ""
	// without), for commit times in [from, until): a row outside the span
	// seals the file first.
	folder      string
	from, until int64
}

// writeRow appends a change to its table's open file.
func (w *writer) writeRow(t *table, pos sink.Pos, ts int64, row decoder.Row) error {
	return w.write(t, pqfile.Meta{Op: row.Op, CommitTime: ts, LSN: pos.LSN, Seq: pos.Seq, Unchanged: row.Unchanged}, row.Values)
}

// writeReloadRow appends a reload's row (Op L) of cut to its table's open
// file.
func (w *writer) writeReloadRow(t *table, pos sink.Pos, ts int64, op byte, cut pglogrepl.LSN, vals [][]byte) error {
	return w.write(t, pqfile.Meta{Op: op, CommitTime: ts, LSN: pos.LSN, Seq: pos.Seq, Reload: cut}, vals)
}

func (w *writer) write(t *table, m pqfile.Meta, vals [][]byte) error {
	reload := m.Reload != 0
	if o := t.open; o != nil && (o.reload != reload || m.CommitTime < o.from || m.CommitTime >= o.until) {
		if err := w.seal(t); err != nil {
			return err
		}
	}
	pos := sink.Pos{LSN: m.LSN, Seq: m.Seq}
	if t.open == nil {
		f, err := os.CreateTemp(w.cfg.TempDir, "cdc2s3-cdc-*.parquet")
		if err != nil {
			return fmt.Errorf("temp file: %w", err)
		}
		pw, err := pqfile.NewWriter(f, t.cols, pqfile.Options{Compression: w.cfg.Compression, Reload: reload})
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			return err
		}
		t.open = &openFile{f: f, w: pw, first: pos, reload: reload, from: math.MinInt64, until: math.MaxInt64}
		if dp := w.cfg.DatePartition; dp != nil {
			t.open.folder, t.open.from, t.open.until = dp.Folder(m.CommitTime)
		}
	}
	before := t.open.w.Stats().Bytes
	if err := t.open.w.Write(m, vals); err != nil {
		return err
	}
	t.open.last = pos
	n := t.open.w.Stats().Bytes - before
	w.pendingBytes += n + 32
	if t.opCounts == [len(countedOps)]int64{} && t.valueBytes == 0 {
		w.counting = append(w.counting, t)
	}
	if i := strings.IndexByte(countedOps, m.Op); i >= 0 {
		t.opCounts[i]++
	}
	t.valueBytes += n
	return nil
}

// countedOps are the row operations, in the order of table.opCounts: the
// changes, and a reload's rows and markers.
const countedOps = "IUDTLR"

// publishCounts adds the changes and bytes written since the last call to
// the metrics.
func (w *writer) publishCounts() {
	for _, t := range w.counting {
		for i, n := range t.opCounts {
			if n > 0 {
				t.changeCounters[i].Add(float64(n))
			}
		}
		t.bytesCounter.Add(float64(t.valueBytes))
		t.opCounts, t.valueBytes = [len(countedOps)]int64{}, 0
	}
	w.counting = w.counting[:0]
}

// table returns the output table of rel, handling a first sighting (load
// the position and schema history from the destination) and a schema
// change (seal the open file; record added and dropped columns).
func (w *writer) table(ctx context.Context, rel *decoder.Relation, at sink.Pos) (*table, error) {
	k := rel.Namespace + "\x00" + rel.Name
	t := w.tables[k]
	if t != nil && t.rel == rel {
		if !w.resent[rel.ID] {
			return t, nil
		}
		delete(w.resent, rel.ID)
		return t, w.checkAttNums(ctx, t, rel, at)
	}
	delete(w.resent, rel.ID)
	if t == nil || t.rel == nil {
		var err error
		if t, err = w.tableState(ctx, rel.Namespace, rel.Name); err != nil {
			return nil, err
		}
	} else if err := w.seal(t); err != nil {
		return nil, err
	}
	if err := w.catalogReady(ctx); err != nil {
		return nil, err
	}
	cols := make([]pqfile.Column, len(rel.Columns))
	names := make([]string, len(rel.Columns))
	for i, c := range rel.Columns {
		ct, err := w.resolver.Resolve(ctx, c.TypeOID, c.TypeMod)
		if err != nil {
			return nil, err
		}
		cols[i] = pqfile.Column{Name: c.Name, Type: pqfile.TypeFor(ct.OID, ct.Mod, ct.Array)}
		names[i] = c.Name
	}
	var missErr error
	missing := w.missingValue(ctx, t, rel.ID, &missErr)
	observed := t.history.Observe(names, at, missing)
	if rel.ID != 0 { // a relation the stream sent, not one made for a reload's chunk
		nums, err := source.AttNums(ctx, w.conn, rel.ID)
		if err != nil {
			return nil, err
		}
		numbered, readded := t.history.ObserveAttNums(nums, at, missing)
		if readded {
			w.log.Info("a column was dropped and added again under its name", logkey.Table, t.label, logkey.LSN, at.LSN, logkey.Seq, at.Seq)
		}
		observed = observed || numbered
	}
	types := make(map[string]string, len(cols))
	for _, c := range cols {
		types[c.Name] = c.Type.String()
	}
	if retyped := t.history.ObserveTypes(types); observed || retyped {
		t.historyDirty = true
		w.windowChanged(t)
		if t.rel != nil {
			w.log.Info("schema change", logkey.Table, t.schema+"."+t.name, logkey.Columns, names, logkey.LSN, at.LSN, logkey.Seq, at.Seq)
		}
	}
	if missErr != nil {
		return nil, missErr
	}
	t.rel, t.cols = rel, cols
	return t, nil
}

// missingValue returns the function that reads an added column's missing
// value for the schema history; the first error it meets goes to *errp.
func (w *writer) missingValue(ctx context.Context, t *table, relID uint32, errp *error) func(name string) (*string, bool) {
	return func(name string) (*string, bool) {
		v, varies, err := source.MissingValue(ctx, w.conn, relID, name)
		if err != nil && *errp == nil {
			*errp = err
		}
		if varies {
			w.log.Warn("the partitions hold different missing values for an added column: rows older than the column take none of them in the merge",
				logkey.Table, t.label, logkey.Column, name)
		}
		return v, varies
	}
}

// checkAttNums compares the columns' numbers with the history's when the
// stream sent a table's relation again with the same columns: a column
// dropped and added again under its name with no change of the table in
// between looks the same in the stream, and only its new number tells.
// The new incarnation starts at at, the table's first row since.
func (w *writer) checkAttNums(ctx context.Context, t *table, rel *decoder.Relation, at sink.Pos) error {
	if err := w.catalogReady(ctx); err != nil {
		return err
	}
	nums, err := source.AttNums(ctx, w.conn, rel.ID)
	if err != nil {
		return err
	}
	var missErr error
	changed, readded := t.history.ObserveAttNums(nums, at, w.missingValue(ctx, t, rel.ID, &missErr))
	if missErr != nil {
		return missErr
	}
	if !changed {
		return nil
	}
	t.historyDirty = true
	if readded {
		w.windowChanged(t)
		w.log.Info("a column was dropped and added again under its name", logkey.Table, t.label, logkey.LSN, at.LSN, logkey.Seq, at.Seq)
		return w.seal(t)
	}
	return nil
}

// tableState returns the writer's state of a table folder, reading what
// the destination holds of it (the last position, the schema history) the
// first time.
func (w *writer) tableState(ctx context.Context, schema, name string) (*table, error) {
	k := schema + "\x00" + name
	if t := w.tables[k]; t != nil {
		return t, nil
	}
	// A table published after the start (FOR ALL TABLES, TABLES IN
	// SCHEMA) that cannot have a folder stops the daemon with the fix,
	// before anything of it is written.
	if err := sink.CheckTableName(schema, name); err != nil {
		return nil, err
	}
	t := &table{schema: schema, name: name, label: schema + "." + name}
	for i := range countedOps {
		t.changeCounters[i] = w.cfg.Metrics.changes.WithLabelValues(t.label, countedOps[i:i+1])
	}
	t.bytesCounter = w.cfg.Metrics.bytes.WithLabelValues(t.label)
	done, err := w.position(ctx, schema, name)
	if err != nil {
		return nil, err
	}
	t.done = done
	if t.history, err = w.states.LoadHistory(ctx, schema, name); err != nil {
		return nil, err
	}
	if len(t.history.Columns) == 0 {
		// Never loaded nor streamed: the table joined the pipeline after
		// the full load, and its existing rows are due (reload engine).
		t.history.Unloaded, t.historyDirty = true, true
		if w.reloadShared != nil {
			w.reloadShared.join(schema, name)
		}
	}
	w.tables[k] = t
	return t, nil
}

// fillUnchanged completes the insert half of a primary-key update whose
// TOASTed columns were not sent. Under the default replica identity
// PostgreSQL sends neither the value nor a before image, and the merge rule
// cannot carry a value across keys, so the value is read from the row
// itself. It may be newer than the update, but any later change to the
// column is in the stream with its own value, and a row deleted since needs
// none: the current state derived from the folder is exact either way.
// With REPLICA IDENTITY FULL the decoder fills such values from the before
// image and this is never needed.
func (w *writer) fillUnchanged(ctx context.Context, t *table, row *decoder.Row) error {
	rel := row.Rel
	if len(rel.Key) == 0 {
		return nil
	}
	if err := w.catalogReady(ctx); err != nil {
		return err
	}
	key := make([]string, len(rel.Key))
	keyVals := make([][]byte, len(rel.Key))
	for i, k := range rel.Key {
		key[i], keyVals[i] = rel.Columns[k].Name, row.Values[k]
	}
	if t.source.OID == 0 {
		src, err := source.Describe(ctx, w.conn, rel.ID)
		if err != nil {
			return err
		}
		t.source = src
	}
	vals, found, err := source.CurrentValues(ctx, w.conn, t.source, key, keyVals, row.Unchanged)
	if err != nil || !found {
		return err
	}
	for i, name := range row.Unchanged {
		for j, c := range rel.Columns {
			if c.Name == name {
				row.Values[j] = vals[i]
			}
		}
	}
	row.Unchanged = nil
	return nil
}

// position returns the last position of a table already in the
// destination, from the positions its change files' names carry.
func (w *writer) position(ctx context.Context, schema, name string) (sink.Pos, error) {
	objs, err := w.store.List(ctx, sink.TableDir(schema, name))
	if err != nil {
		return sink.Pos{}, fmt.Errorf("list %s.%s: %w", schema, name, err)
	}
	var done sink.Pos
	for _, o := range objs {
		if _, last, ok := sink.ParseCDCKey(o.Key); ok && done.Less(last) {
			done = last
		}
	}
	return done, nil
}

// seal closes a table's open file and queues it for the next batch.
func (w *writer) seal(t *table) error {
	o := t.open
	if o == nil {
		return nil
	}
	t.open = nil
	if err := o.w.Close(); err != nil {
		o.f.Close()
		os.Remove(o.f.Name())
		return err
	}
	if err := o.f.Close(); err != nil {
		os.Remove(o.f.Name())
		return fmt.Errorf("close %s: %w", o.f.Name(), err)
	}
	st := o.w.Stats()
	warnAdapted(w.log, t.label, st)
	for col, n := range st.Nulled {
		w.cfg.Metrics.nulled.WithLabelValues(t.label, col).Add(float64(n))
	}
	for col, n := range st.Flattened {
		w.cfg.Metrics.flattened.WithLabelValues(t.label, col).Add(float64(n))
	}
	w.sealed = append(w.sealed, sealedFile{
		key: sink.CDCKeyIn(t.schema, t.name, o.folder, o.first, o.last), path: o.f.Name(), rows: st.Rows, table: t.label,
	})
	if t.done.Less(o.last) {
		t.done = o.last
	}
	return nil
}

// warnAdapted logs, per column, the values a file holds in a form other
// than the source's: NULL for values the Parquet type cannot hold, and
// multi-dimensional arrays flattened (contract §3).
func warnAdapted(log *slog.Logger, table string, st pqfile.Stats) {
	for col, n := range st.Nulled {
		log.Warn("values not representable in the column's Parquet type were written as NULL", logkey.Table, table, logkey.Column, col, logkey.Count, n)
	}
	for col, n := range st.Flattened {
		log.Warn("multi-dimensional array values were flattened", logkey.Table, table, logkey.Column, col, logkey.Count, n)
	}
}
