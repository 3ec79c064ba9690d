// Package validate compares a destination with its source: each table's
// current state computed from its folder by the merge rule
// (docs/output-format.md section 6, version 2) against the table as the
// publication publishes it, read in a snapshot that matches a position in
// the stream. It is read-only on both sides.
//
// The folder's Parquet files are read with arrow-go, not with the writer's
// library, and values are compared in one canonical form per type that
// each side reaches on its own: the source from PostgreSQL's text output,
// the destination from the Parquet values (canon.go).
//
// Memory does not grow with the table: the folder's rows are spilled to
// local files partitioned by the hash of their key, and merged one
// partition at a time (a partition too large is split again); the source is
// streamed. Both sides sum a hash of each row per hash range (65,536 ranges
// of the key hash); only ranges whose sums differ are compared row by row,
// after a second read of the source (hash.go).
package validate

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/cdc2s3/cdc2s3/internal/logkey"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/source"
)

// DefaultMemory is the default memory budget of one table's comparison.
const DefaultMemory = 256 << 20

// DefaultSamples is how many keys of each kind of difference a result
// shows by default.
const DefaultSamples = 5

// Options tune Compare.
type Options struct {
	// Memory is the budget for one table's comparison (default
	// DefaultMemory): a partition of spilled rows is at most a quarter of
	// it, since merging one takes about three times its size.
	Memory int64
	// TempDir holds the spilled rows (default: the system temp dir).
	TempDir string
	// Samples is how many keys of each kind of difference to show
	// (default DefaultSamples).
	Samples int
	// Progress, when set, is kept up to date.
	Progress *Progress
	// Log receives a line per table compared; nil: none.
	Log *slog.Logger
}

// Result is the comparison of one table.
type Result struct {
	Table      string `json:"table"`
	SourceRows int64  `json:"source_rows"` // rows the source holds, as published
	DestRows   int64  `json:"dest_rows"`   // rows of the folder's current state
	// Missing rows are in the source and not in the destination; Extra
	// rows the other way round, and also every change the folder holds
	// twice (two rows at one position); Mismatched rows have the same key
	// on both sides and other values.
	Missing    int64 `json:"missing"`
	Extra      int64 `json:"extra"`
	Mismatched int64 `json:"mismatched"`
	// MissingKeys and ExtraKeys show the first few rows of each kind, by
	// key (by every value for a table without a key).
	MissingKeys []string `json:"missing_keys"`
	ExtraKeys   []string `json:"extra_keys"`
	// Mismatches shows the first few mismatched rows.
	Mismatches []Mismatch `json:"mismatches"`
	// Files lists the objects of the folder that are not the contract's
	// LOAD or CDC files, or that cannot be read as such.
	Files []string `json:"files"`
	// Notes say what was not compared and why.
	Notes []string `json:"notes"`
	// Ranges is how many hash ranges hold rows on either side; Compared
	// how many of them were compared row by row.
	Ranges   int `json:"ranges"`
	Compared int `json:"compared_ranges"`
}

// Mismatch is one row whose values differ.
type Mismatch struct {
	Key     string       `json:"key"`
	Columns []ColumnDiff `json:"columns"`
}

// ColumnDiff is one column of a mismatched row, as each side holds it.
type ColumnDiff struct {
	Column string `json:"column"`
	Source string `json:"source"`
	Dest   string `json:"dest"`
}

// Differs reports whether the table differs from the source.
func (r *Result) Differs() bool {
	return r.Missing+r.Extra+r.Mismatched > 0 || len(r.Files) > 0
}

// Compare compares each table at the position at. tx is a REPEATABLE READ
// transaction on the source in a snapshot holding exactly the transactions
// whose commit ends at or below at (source.CreateTempSlot's exported
// snapshot); the folders are read up to the rows with _cdc_lsn at or below
// at, which the destination must hold in full (its checkpoint at or above
// at). Tables are compared one after the other.
func Compare(ctx context.Context, tx pgx.Tx, store sink.Store, tables []Table, at pglogrepl.LSN, o Options) ([]Result, error) {
	if o.Memory <= 0 {
		o.Memory = DefaultMemory
	}
	if o.Samples <= 0 {
		o.Samples = DefaultSamples
	}
	resolver := source.NewResolver(tx.Conn())
	var statuses []*TableStatus
	for _, t := range tables {
		statuses = append(statuses, o.Progress.add(t.String()))
	}
	results := make([]Result, 0, len(tables))
	for i, t := range tables {
		r, err := compareTable(ctx, tx, store, resolver, t, uint64(at), o, statuses[i])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t, err)
		}
		statuses[i].setPhase("done")
		statuses[i].Done.Store(true)
		if o.Log != nil {
			o.Log.Info("table compared", logkey.Table, r.Table, logkey.SourceRows, r.SourceRows, logkey.DestRows, r.DestRows,
				logkey.Missing, r.Missing, logkey.Extra, r.Extra, logkey.Mismatched, r.Mismatched)
		}
		results = append(results, r)
	}
	return results, nil
}

// compareTable compares one table in a temporary directory of its own.
func compareTable(ctx context.Context, tx pgx.Tx, store sink.Store, r *source.Resolver, t Table, at uint64, o Options, st *TableStatus) (Result, error) {
	s, err := newSpec(ctx, r, t)
	if err != nil {
		return Result{}, err
	}
	dir, err := os.MkdirTemp(o.TempDir, "validate-")
	if err != nil {
		return Result{}, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	run := &tableRun{spec: s, source: pgRows{tx: tx, spec: s}, store: store, at: at, dir: dir, o: o, st: st,
		res: Result{Table: s.name, Notes: s.notes}, done: map[uint64]bool{}}
	if err := run.compare(ctx); err != nil {
		return Result{}, err
	}
	return run.res, nil
}

// Progress is what Compare has done so far, for a progress display.
type Progress struct {
	mu     sync.Mutex
	tables []*TableStatus
}

// Tables returns the status of every table, in the order compared.
func (p *Progress) Tables() []*TableStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*TableStatus(nil), p.tables...)
}

// add registers a table; on a nil Progress it returns a status nobody reads.
func (p *Progress) add(name string) *TableStatus {
	s := &TableStatus{Table: name}
	s.Phase.Store(new("waiting"))
	if p != nil {
		p.mu.Lock()
		p.tables = append(p.tables, s)
		p.mu.Unlock()
	}
	return s
}

// TableStatus is the progress of one table's comparison.
type TableStatus struct {
	Table string
	// Phase says what is being done.
	Phase atomic.Pointer[string]
	// SourceRows counts the source's rows read; SourceEstimate is the
	// catalog's estimate of them (0: none).
	SourceRows, SourceEstimate atomic.Int64
	// Bytes of the folder's files read, of BytesTotal.
	Bytes, BytesTotal atomic.Int64
	// Parts of the spilled rows merged, of PartsTotal.
	Parts, PartsTotal atomic.Int64
	Done              atomic.Bool
}

// Fraction is how much of the table is done, from 0 to 1: reading the
// source (two fifths, when the catalog has an estimate of its rows),
// reading the folder (two fifths) and merging (the rest).
func (s *TableStatus) Fraction() float64 {
	if s.Done.Load() {
		return 1
	}
	frac := func(n, of int64) float64 {
		if of <= 0 {
			return 0
		}
		return min(float64(n)/float64(of), 1)
	}
	done := 0.4*frac(s.Bytes.Load(), s.BytesTotal.Load()) + 0.2*frac(s.Parts.Load(), s.PartsTotal.Load())
	if est := s.SourceEstimate.Load(); est > 0 {
		return done + 0.4*frac(s.SourceRows.Load(), est)
	}
	return done / 0.6
}

// setPhase records what the table's comparison is doing.
func (s *TableStatus) setPhase(p string) { s.Phase.Store(&p) }
