package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/cdc2s3/cdc2s3/decoder"
	"github.com/cdc2s3/cdc2s3/internal/logkey"
	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/pqfile"
	"github.com/cdc2s3/cdc2s3/source"
)

// This file is the writer's half of a reload (docs/reload.md): it meets the
// reload engine's chunks with the stream at the watermarks the engine
// writes into the WAL, and writes the L and R rows.

// Ops of a reload (docs/reload.md section 1).
const (
	opReloaded = 'L' // a row as the reload read it, at a chunk's high watermark
	opMarker   = 'R' // the reload's marker, at its end watermark
)

// reloadPrefix is the prefix of the reload engine's watermarks.
const reloadPrefix = "cdc2s3.reload"

// Kinds of watermark.
const (
	markStart  = "start"  // a reload begins (keyed: its position is the cut)
	markLow    = "low"    // a chunk's window opens
	markHigh   = "high"   // a chunk's rows are written here
	markEnd    = "end"    // the marker is written here
	markTree   = "tree"   // a partitioned root's partition tree, recorded in its history
	markCancel = "cancel" // the reload is abandoned: no marker
)

// watermark is the content of one reload watermark.
type watermark struct {
	ID   string `json:"id"`
	Run  string `json:"run"`
	Kind string `json:"kind"`
	// Chunk numbers the chunks of one run, from 1 (low and high).
	Chunk  int    `json:"chunk,omitempty"`
	Schema string `json:"schema,omitempty"` // start
	Table  string `json:"table,omitempty"`  // start
	Keyed  bool   `json:"keyed,omitempty"`  // start
	// Cut is a keyless reload's cut (its snapshot's consistent point), on
	// the start written once the snapshot exists.
	Cut pglogrepl.LSN `json:"cut,omitempty"`
	// Tree is a partitioned root's partition tree (start and tree): the
	// writer records it in the table's history with the reload, so that a
	// change of the tree is acted on exactly once.
	Tree string `json:"tree,omitempty"`
	// Estimate is the table's estimated rows (start), for progress.
	Estimate int64     `json:"estimate,omitempty"`
	At       time.Time `json:"at"`
}

// reloadShared is what the reload engine and the writer share: which run of
// each reload is this session's (watermarks of any other run are a dead
// process's and are ignored) and the chunks read but not yet written.
type reloadShared struct {
	mu     sync.Mutex
	runs   map[string]string       // reload id → run
	chunks map[string]*reloadChunk // chunkKey → chunk, from its read until the writer takes it
	// joined are the tables the writer met with no schema history (they
	// joined the pipeline after the full load), for the engine to reload.
	joined [][2]string
	// relationSent is set when the stream sent a relation: PostgreSQL
	// sends one again after the catalog entry of the table whose change
	// follows was invalidated, as truncating or attaching a partition does
	// to it, so the engine checks the partition trees at once rather than
	// at its next timed check.
	relationSent bool
}

// relationChanged tells the engine that the stream sent a relation.
func (s *reloadShared) relationChanged() {
	s.mu.Lock()
	s.relationSent = true
	s.mu.Unlock()
}

// takeRelationChanged reports and forgets whether a relation was sent
// since the last call.
func (s *reloadShared) takeRelationChanged() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sent := s.relationSent
	s.relationSent = false
	return sent
}

// join tells the engine that a table joined the pipeline.
func (s *reloadShared) join(schema, name string) {
	s.mu.Lock()
	s.joined = append(s.joined, [2]string{schema, name})
	s.mu.Unlock()
}

// takeJoined returns and forgets the tables that joined.
func (s *reloadShared) takeJoined() [][2]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.joined
	s.joined = nil
	return j
}

func newReloadShared() *reloadShared {
	return &reloadShared{runs: map[string]string{}, chunks: map[string]*reloadChunk{}}
}

func chunkKey(id, run string, chunk int) string { return fmt.Sprintf("%s\x00%s\x00%d", id, run, chunk) }

// current reports whether m is a watermark of this session's run.
func (s *reloadShared) current(m watermark) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return m.Run != "" && s.runs[m.ID] == m.Run
}

// take removes and returns the chunk a high watermark stands for.
func (s *reloadShared) take(m watermark) *reloadChunk {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := chunkKey(m.ID, m.Run, m.Chunk)
	c := s.chunks[k]
	delete(s.chunks, k)
	return c
}

// reloadChunk is one chunk as the engine read it.
type reloadChunk struct {
	cols []source.Column
	key  []int      // indexes in cols of the key columns; nil: keyless
	rows [][][]byte // the rows, in key order for a keyed table
	// consistent is the consistent point of the chunk's snapshot: the
	// window's changes that end above it are applied to the rows.
	consistent pglogrepl.LSN
	// from is the key the chunk reads after (nil: the table's start),
	// lastKey the key of its last row (keyed tables).
	from, lastKey []string
	// redo is set, before done is closed, when the writer dropped the
	// chunk instead of writing it: the table's columns or key changed in
	// its window, or it does not start where the last chunk written ended
	// (the one before it was dropped). The engine reads its range again.
	redo bool
	// resume is the writer's progress once it judged the chunk: the key
	// its last written chunk ended at.
	resume []string
	// done is closed once the writer has written (or dropped) the chunk.
	done chan struct{}
}

// reloadRun is the writer's view of one reload.
type reloadRun struct {
	lsnstore.Reload
	window *reloadWindow // between a chunk's low and high watermarks
	// moot: a keyless reload's table was truncated after its cut, which
	// cuts the rows read too; the reload ends without rows or marker.
	moot bool
}

// label is the reloaded table's schema.name, as the writer's table label.
func (r *reloadRun) label() string { return r.Schema + "." + r.Table }

// reloadWindow keeps a table's changes between a chunk's watermarks.
type reloadWindow struct {
	chunk   int
	changes []windowChange
	// changed: the stream changed the table's columns or key inside the
	// window, so the chunk's rows and the changes after them may not have
	// the same columns; the chunk is read again.
	changed bool
}

// windowChange is one change of the window, its values copied out of the
// spool.
type windowChange struct {
	end       pglogrepl.LSN
	op        byte
	rel       *decoder.Relation
	values    [][]byte
	unchanged []string
}

// initReloads takes the reloads the saved state records as running.
func (w *writer) initReloads(saved []lsnstore.Reload) {
	w.reloads = map[string]*reloadRun{}
	for _, r := range saved {
		w.reloads[r.ID] = &reloadRun{Reload: r}
	}
}

// reloadList is the progress of every reload, for the batch's state.
func (w *writer) reloadList() []lsnstore.Reload {
	var out []lsnstore.Reload
	for _, r := range w.reloads {
		c := r.Reload
		c.LastKey = slices.Clone(c.LastKey)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b lsnstore.Reload) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// recordWindow keeps a change of a table whose reload has a chunk window
// open.
func (w *writer) recordWindow(t *table, end pglogrepl.LSN, row decoder.Row) {
	r := w.windows[t.label]
	if r == nil {
		return
	}
	if !r.Keyed {
		r.moot = r.moot || (row.Op == decoder.OpTruncate && r.Cut != 0 && end > r.Cut)
		return
	}
	if r.window == nil {
		return
	}
	vals := make([][]byte, len(row.Values))
	for i, v := range row.Values {
		if v != nil {
			vals[i] = slices.Clone(v)
		}
	}
	r.window.changes = append(r.window.changes, windowChange{
		end: end, op: row.Op, rel: row.Rel, values: vals, unchanged: slices.Clone(row.Unchanged),
	})
}

// windowChanged notes that the stream changed t's columns or key: a chunk
// window of t open now is read again.
func (w *writer) windowChanged(t *table) {
	if r := w.windows[t.label]; r != nil && r.window != nil {
		r.window.changed = true
	}
}

// watermark handles a reload watermark at position at.
func (w *writer) watermark(ctx context.Context, body []byte, at pglogrepl.LSN) error {
	// Every transaction that ends below the watermark has been written:
	// the stream may be acknowledged up to it.
	w.lastCommit = max(w.lastCommit, at)
	var m watermark
	if err := json.Unmarshal(body, &m); err != nil {
		w.log.Warn("ignoring a reload watermark that does not parse", logkey.LSN, at, logkey.Error, err)
		return nil
	}
	if w.reloadShared == nil || !w.reloadShared.current(m) {
		return nil // a dead run's, or another daemon's on the same database
	}
	defer func() { w.cfg.Metrics.reloads.Set(float64(len(w.reloads))) }()
	r := w.reloads[m.ID]
	if m.Tree != "" && (m.Kind == markStart || m.Kind == markTree) {
		t, err := w.tableState(ctx, m.Schema, m.Table)
		if err != nil {
			return err
		}
		if t.history.Partitions != m.Tree {
			t.history.Partitions, t.historyDirty = m.Tree, true
		}
	}
	switch m.Kind {
	case markStart:
		if r == nil {
			r = &reloadRun{Reload: lsnstore.Reload{ID: m.ID, Schema: m.Schema, Table: m.Table, Keyed: m.Keyed, StartedAt: m.At, Estimate: m.Estimate}}
			w.reloads[m.ID] = r
			if m.Keyed {
				r.Cut = at
			}
		}
		if !r.Keyed && m.Cut != 0 {
			// A keyless reload starts over whenever its snapshot is new;
			// a truncate after the cut makes it moot.
			r.Cut, r.Rows, r.Chunks, r.moot = m.Cut, 0, 0, false
			w.windows[r.label()] = r
		}
		w.flushNow = true // the engine waits for the start to be saved
		w.log.Info("reload started", logkey.Table, r.label(), logkey.Reload, r.ID, logkey.LSN, r.Cut)
	case markLow:
		if r == nil || !r.Keyed {
			return nil
		}
		r.window = &reloadWindow{chunk: m.Chunk}
		w.windows[r.label()] = r
	case markHigh:
		c := w.reloadShared.take(m)
		if c == nil {
			return nil
		}
		defer close(c.done)
		if r == nil {
			return nil
		}
		defer func() { c.resume = slices.Clone(r.LastKey) }()
		if !r.Keyed {
			if r.moot {
				return nil
			}
			return w.writeChunk(ctx, r, c, nil, sink.Pos{LSN: at}, m.At)
		}
		win := r.window
		r.window = nil
		delete(w.windows, r.label())
		if win == nil || win.chunk != m.Chunk {
			return fmt.Errorf("reload %s: chunk %d's high watermark without its low one", r.ID, m.Chunk)
		}
		if win.changed || !slices.Equal(c.from, r.LastKey) {
			c.redo = true
			w.log.Info("reload chunk dropped, to be read again: the table's columns or key changed while it was read (or the chunk before it was dropped)",
				logkey.Table, r.label(), logkey.Reload, r.ID, logkey.Chunk, m.Chunk)
			return nil
		}
		return w.writeChunk(ctx, r, c, win, sink.Pos{LSN: at}, m.At)
	case markCancel:
		if r != nil {
			delete(w.reloads, m.ID)
			delete(w.windows, r.label())
			w.flushNow = true
		}
	case markEnd:
		if r == nil || r.Cut == 0 {
			return nil
		}
		delete(w.reloads, m.ID)
		delete(w.windows, r.label())
		if r.moot {
			w.log.Warn("reload ended without a marker: the table was truncated while it ran, which cut what it read", logkey.Table, r.label(), logkey.Reload, r.ID)
			return nil
		}
		t, err := w.writeMarker(ctx, r, sink.Pos{LSN: at}, m.At)
		if err != nil {
			return err
		}
		if t.history.Unloaded {
			t.history.Unloaded, t.historyDirty = false, true
		}
		w.flushNow = true
		w.log.Info("reload done", logkey.Table, r.label(), logkey.Reload, r.ID, logkey.Rows, r.Rows, logkey.Chunks, r.Chunks)
	}
	return nil
}

// writeChunk writes a chunk's rows as L rows at pos: for a keyed table,
// the state at pos of every key the chunk read, the window's changes that
// ended above the chunk's consistent point applied to the rows read.
func (w *writer) writeChunk(ctx context.Context, r *reloadRun, c *reloadChunk, win *reloadWindow, pos sink.Pos, at time.Time) error {
	t, err := w.chunkTable(ctx, r, c, pos)
	if err != nil {
		return err
	}
	rows := c.rows
	alive := make([]bool, len(rows))
	for i := range alive {
		alive[i] = true
	}
	if c.key != nil && win != nil {
		applyWindow(c, win, alive)
	}
	ts := at.UnixMicro()
	var n int64
	for i, vals := range rows {
		if !alive[i] {
			continue
		}
		p := sink.Pos{LSN: pos.LSN, Seq: uint64(n)}
		if err := w.writeReloadRow(t, p, ts, opReloaded, r.Cut, vals); err != nil {
			return fmt.Errorf("%s: reload: %w", t.label, err)
		}
		n++
	}
	w.publishCounts()
	w.cfg.Metrics.reloadChunks.WithLabelValues(t.label).Inc()
	r.Rows += n
	r.Chunks++
	if c.key != nil {
		r.LastKey = c.lastKey
	}
	return nil
}

// applyWindow applies to the chunk's rows, in commit order, the window's
// changes that ended above the chunk's consistent point, for the keys the
// chunk read: an insert or update sets the values it carries (an unchanged
// TOASTed value keeps the row's), a delete or truncate removes the key.
func applyWindow(c *reloadChunk, win *reloadWindow, alive []bool) {
	index := make(map[string]int, len(c.rows))
	keyOf := func(vals func(int) []byte) string {
		var b strings.Builder
		for _, k := range c.key {
			b.Write(vals(k))
			b.WriteByte(0)
		}
		return b.String()
	}
	for i, row := range c.rows {
		index[keyOf(func(k int) []byte { return row[k] })] = i
	}
	// Where each chunk column is in a relation's values, by name: once per
	// relation (a window's changes share one or two), not per change.
	positions := map[*decoder.Relation][]int{}
	for _, ch := range win.changes {
		if ch.end <= c.consistent {
			continue // in the chunk's snapshot already
		}
		if ch.op == decoder.OpTruncate {
			clear(alive)
			continue
		}
		at := positions[ch.rel]
		if at == nil {
			at = make([]int, len(c.cols))
			for j, col := range c.cols {
				at[j] = slices.IndexFunc(ch.rel.Columns, func(rc decoder.Column) bool { return rc.Name == col.Name })
			}
			positions[ch.rel] = at
		}
		i, ok := index[keyOf(func(k int) []byte {
			if at[k] < 0 {
				return nil
			}
			return ch.values[at[k]]
		})]
		if !ok {
			continue // a key the chunk did not read: the stream has it
		}
		switch ch.op {
		case decoder.OpDelete:
			alive[i] = false
		case decoder.OpInsert, decoder.OpUpdate:
			row := slices.Clone(c.rows[i])
			for j, col := range c.cols {
				if at[j] < 0 || slices.Contains(ch.unchanged, col.Name) {
					continue
				}
				row[j] = ch.values[at[j]]
			}
			c.rows[i], alive[i] = row, true
		}
	}
}

// chunkTable returns the output table of a chunk, with the columns the
// chunk was read with: the stream's relation when it has the same columns,
// else a relation made from the chunk's (the table not yet seen in this
// session's stream, or its columns changed since).
func (w *writer) chunkTable(ctx context.Context, r *reloadRun, c *reloadChunk, pos sink.Pos) (*table, error) {
	t, err := w.tableState(ctx, r.Schema, r.Table)
	if err != nil {
		return nil, err
	}
	if t.rel != nil && sameColumns(t.rel.Columns, c.cols) {
		return t, nil
	}
	rel := &decoder.Relation{Namespace: r.Schema, Name: r.Table, ReplicaIdentity: decoder.IdentityDefault}
	for _, col := range c.cols {
		rel.Columns = append(rel.Columns, decoder.Column{Name: col.Name, TypeOID: col.TypeOID, TypeMod: col.TypeMod})
	}
	return w.table(ctx, rel, pos)
}

// sameColumns reports whether a relation and a chunk have the same columns
// in the same order.
func sameColumns(rel []decoder.Column, cols []source.Column) bool {
	return slices.EqualFunc(rel, cols, func(a decoder.Column, b source.Column) bool {
		return a.Name == b.Name && a.TypeOID == b.TypeOID && a.TypeMod == b.TypeMod
	})
}

// writeMarker writes a reload's R row at pos, in a file of its own that
// holds no table column (every one would be NULL), and returns the table.
func (w *writer) writeMarker(ctx context.Context, r *reloadRun, pos sink.Pos, at time.Time) (*table, error) {
	t, err := w.tableState(ctx, r.Schema, r.Table)
	if err != nil {
		return nil, err
	}
	if err := w.seal(t); err != nil { // files of a table never overlap
		return nil, err
	}
	f, err := os.CreateTemp(w.cfg.TempDir, "cdc2s3-cdc-*.parquet")
	if err != nil {
		return nil, fmt.Errorf("temp file: %w", err)
	}
	pw, err := pqfile.NewWriter(f, nil, pqfile.Options{Compression: w.cfg.Compression, Reload: true})
	if err == nil {
		err = pw.Write(pqfile.Meta{Op: opMarker, CommitTime: at.UnixMicro(), LSN: pos.LSN, Reload: r.Cut}, nil)
	}
	if err == nil {
		err = pw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, fmt.Errorf("%s: reload marker: %w", t.label, err)
	}
	var folder string
	if dp := w.cfg.DatePartition; dp != nil {
		folder, _, _ = dp.Folder(at.UnixMicro())
	}
	w.sealed = append(w.sealed, sealedFile{key: sink.CDCKeyIn(t.schema, t.name, folder, pos, pos), path: f.Name(), rows: 1, table: t.label})
	t.done = pos
	w.pendingBytes += 64
	t.changeCounters[strings.IndexByte(countedOps, opMarker)].Inc()
	return t, nil
}
