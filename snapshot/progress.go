package snapshot

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cdc2s3/cdc2s3/internal/logkey"
)

// DefaultProgressInterval is how often Copy logs "snapshot progress" lines.
const DefaultProgressInterval = 10 * time.Second

// Progress counts what a full load has done so far. Copy fills it in when
// it is set in Options; its methods are safe to call from any goroutine while
// Copy runs, so a terminal display or a metrics exporter can read it. The
// zero value is ready to use; one Progress serves one Copy.
type Progress struct {
	mu     sync.Mutex
	start  time.Time
	tables []*tableProgress

	// Totals over all tables, kept as they change so that readers need no
	// lock: rows and COPY text bytes read (a retried chunk's rows are
	// counted once).
	rows, bytes atomic.Int64
}

// tableProgress is one table's counters.
type tableProgress struct {
	name   string
	disk   int64 // heap and TOAST bytes when planned
	chunks int64

	rows, bytes, files, chunksDone atomic.Int64
	// doneDisk and doneBytes are the planned disk bytes and the COPY text
	// bytes of finished chunks: their ratio turns the rest of the planned
	// disk bytes into an estimate of the text still to read.
	doneDisk, doneBytes atomic.Int64
	started, finished   atomic.Int64 // Unix nanoseconds, 0 while not yet
}

// Status is a point-in-time view of a table's progress, or of the whole
// load's (Progress.Total).
type Status struct {
	Table string // schema.table; "" for the total
	Rows  int64  // rows read
	Bytes int64  // COPY text bytes read
	// EstBytes estimates the COPY text bytes of the whole table (or load):
	// the heap and TOAST size on disk when planned, scaled by the text to
	// disk ratio of the chunks finished so far. It equals Bytes once done.
	EstBytes   int64
	DiskBytes  int64 // heap and TOAST bytes on disk when planned
	Files      int64 // LOAD files uploaded
	Chunks     int64
	ChunksDone int64
	Tables     int // tables in the load (1 for a table)
	TablesDone int
	Started    time.Time // zero while pending
	Elapsed    time.Duration
	Done       bool
}

// Running reports whether the table has started and is not done.
func (s Status) Running() bool { return !s.Started.IsZero() && !s.Done }

// Fraction returns how much is done, from 0 to 1 (1 only when done).
func (s Status) Fraction() float64 {
	switch {
	case s.Done:
		return 1
	case s.EstBytes > 0:
		return min(float64(s.Bytes)/float64(s.EstBytes), 0.99)
	case s.Chunks > 0:
		return min(float64(s.ChunksDone)/float64(s.Chunks), 0.99)
	}
	return 0
}

// Rate returns the COPY text bytes read per second so far.
func (s Status) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Bytes) / s.Elapsed.Seconds()
}

// ETA estimates the time left from the rate so far; 0 when unknown or done.
func (s Status) ETA() time.Duration {
	rate := s.Rate()
	if s.Done || rate <= 0 || s.EstBytes <= s.Bytes {
		return 0
	}
	return time.Duration(float64(s.EstBytes-s.Bytes) / rate * float64(time.Second)).Round(time.Second)
}

// Rows returns the rows read so far, over all tables.
func (p *Progress) Rows() int64 { return p.rows.Load() }

// Bytes returns the COPY text bytes read so far, over all tables.
func (p *Progress) Bytes() int64 { return p.bytes.Load() }

// Files returns the LOAD files uploaded so far, over all tables.
func (p *Progress) Files() int64 {
	p.mu.Lock()
	tables := p.tables
	p.mu.Unlock()
	var n int64
	for _, t := range tables {
		n += t.files.Load()
	}
	return n
}

// Tables returns the status of every table of the load, in the order of the
// jobs; nil before Copy has planned the load.
func (p *Progress) Tables() []Status {
	p.mu.Lock()
	tables := p.tables
	p.mu.Unlock()
	if tables == nil {
		return nil
	}
	ratio := p.ratio(tables)
	now := time.Now()
	out := make([]Status, len(tables))
	for i, t := range tables {
		out[i] = t.status(ratio, now)
	}
	return out
}

// Total returns the status of the whole load.
func (p *Progress) Total() Status {
	p.mu.Lock()
	tables, start := p.tables, p.start
	p.mu.Unlock()
	ratio := p.ratio(tables)
	now := time.Now()
	s := Status{Tables: len(tables), Started: start}
	for _, t := range tables {
		ts := t.status(ratio, now)
		s.Rows += ts.Rows
		s.Bytes += ts.Bytes
		s.EstBytes += ts.EstBytes
		s.DiskBytes += ts.DiskBytes
		s.Files += ts.Files
		s.Chunks += ts.Chunks
		s.ChunksDone += ts.ChunksDone
		s.TablesDone += ts.TablesDone
	}
	if !start.IsZero() {
		s.Elapsed = now.Sub(start)
	}
	s.Done = len(tables) > 0 && s.TablesDone == len(tables)
	return s
}

// ratio is the COPY text to disk bytes ratio of every finished chunk, 1
// before any: the estimate for tables with no finished chunk yet.
func (p *Progress) ratio(tables []*tableProgress) float64 {
	var disk, text int64
	for _, t := range tables {
		disk += t.doneDisk.Load()
		text += t.doneBytes.Load()
	}
	if disk <= 0 || text <= 0 {
		return 1
	}
	return float64(text) / float64(disk)
}

func (t *tableProgress) status(ratio float64, now time.Time) Status {
	s := Status{
		Table: t.name, Rows: t.rows.Load(), Bytes: t.bytes.Load(), DiskBytes: t.disk,
		Files: t.files.Load(), Chunks: t.chunks, ChunksDone: t.chunksDone.Load(), Tables: 1,
	}
	if dd, db := t.doneDisk.Load(), t.doneBytes.Load(); dd > 0 && db > 0 {
		ratio = float64(db) / float64(dd)
	}
	s.EstBytes = max(int64(float64(t.disk)*ratio), s.Bytes)
	if st := t.started.Load(); st != 0 {
		s.Started = time.Unix(0, st)
		end := now
		if f := t.finished.Load(); f != 0 {
			end = time.Unix(0, f)
			s.Done, s.TablesDone, s.EstBytes = true, 1, s.Bytes
		}
		s.Elapsed = end.Sub(s.Started)
	}
	return s
}

// init sets up the tables of a planned load.
func (p *Progress) init(tables []*tableProgress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.start, p.tables = time.Now(), tables
}

// add counts rows and bytes read (negative to take back a failed attempt's).
func (p *Progress) add(t *tableProgress, rows, bytes int64) {
	t.rows.Add(rows)
	t.bytes.Add(bytes)
	p.rows.Add(rows)
	p.bytes.Add(bytes)
}

// logProgress logs one "snapshot progress" line per running table and one
// for the whole load every interval, until ctx ends.
func logProgress(ctx context.Context, p *Progress, log *slog.Logger, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, s := range p.Tables() {
			if s.Running() {
				log.Info("snapshot progress", logkey.Table, s.Table, logkey.Rows, s.Rows, logkey.Bytes, s.Bytes,
					logkey.Pct, pct(s), logkey.Chunks, s.ChunksDone, logkey.Of, s.Chunks, logkey.Eta, s.ETA())
			}
		}
		s := p.Total()
		log.Info("snapshot progress", logkey.Tables, s.TablesDone, logkey.Of, s.Tables, logkey.Rows, s.Rows, logkey.Bytes, s.Bytes,
			logkey.Pct, pct(s), logkey.Eta, s.ETA())
	}
}

// pct is a status's fraction as a percentage with one decimal.
func pct(s Status) float64 { return float64(int(s.Fraction()*1000)) / 10 }
