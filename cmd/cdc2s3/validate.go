package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/cdc2s3/cdc2s3/internal/catalog"
	"github.com/cdc2s3/cdc2s3/internal/logkey"
	"github.com/cdc2s3/cdc2s3/internal/validate"
	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/source"
)

// Exit statuses of validate besides 0 (every table equal): differences,
// bad input (a flag, the source or the destination) and a comparison that
// could not finish.
const (
	exitDiffers  = 1
	exitBadInput = 2
	exitFailed   = 3
)

func validateCommand(stop context.Context) *cli.Command {
	return &cli.Command{
		Name:  "validate",
		Usage: "compare each table's current state in the destination with the source, at one position, read-only (docs/operations.md)",
		Description: "Reads the source in the snapshot of a temporary replication slot (position C) and each table folder's rows up\n" +
			"to C, merged by the output contract's rule; with a daemon running it first waits until the destination's\n" +
			"checkpoint reaches C. Prints per table the rows on each side and the rows missing, extra and mismatched.\n" +
			"Exit status: 0 equal, 1 differences, 2 bad input, 3 the comparison could not finish.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "source", Usage: "PostgreSQL connection string of the database the destination streams from (the role needs REPLICATION, as for run)", EnvVars: env("SOURCE")},
			&cli.StringFlag{Name: "dest", Usage: "destination: s3://bucket/prefix, file:///abs/path or a local path", EnvVars: env("DEST")},
			&cli.BoolFlag{Name: "s3-path-style", Usage: "use path-style S3 addressing (implied by a custom endpoint)", EnvVars: env("S3_PATH_STYLE")},
			&cli.StringFlag{Name: "tables", Usage: "comma-separated schema.table list (default: every table the destination's publication publishes)", EnvVars: env("TABLES")},
			&cli.DurationFlag{Name: "wait-timeout", Value: 10 * time.Minute, Usage: "with a daemon running, how long to wait for the destination's checkpoint to reach the source's position", EnvVars: env("VALIDATE_WAIT_TIMEOUT")},
			&cli.StringFlag{Name: "memory", Value: "256MB", Usage: "memory budget of one table's comparison; the folder's rows are spilled to --temp-dir in partitions of a quarter of it", EnvVars: env("VALIDATE_MEMORY")},
			&cli.IntFlag{Name: "show", Value: validate.DefaultSamples, Usage: "keys shown per kind of difference and table"},
			&cli.StringFlag{Name: "temp-dir", Usage: "directory for the spilled rows; each process works in a directory of its own under it and removes those of cdc2s3 processes that died (default: the system temp dir)", EnvVars: env("TEMP_DIR")},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
		},
		Action: func(c *cli.Context) error {
			// Read-only and safe to interrupt: the first SIGTERM or SIGINT
			// stops it.
			ctx, cancel := context.WithCancel(c.Context)
			defer cancel()
			defer context.AfterFunc(stop, cancel)()
			c.Context = ctx
			return runValidate(c)
		},
	}
}

// validateRun is what one validate needs as it goes.
type validateRun struct {
	c     *cli.Context
	log   *slog.Logger
	store sink.Store
	dest  destination
	conn  *pgx.Conn // the source's catalog connection, outside the snapshot
}

// destination is what validate reads of a destination before it starts.
type destination struct {
	state    lsnstore.State
	hasState bool // false: a cdc2s3 snapshot copy, no stream
	plans    []catalog.Table
}

func runValidate(c *cli.Context) error {
	log, err := newLogger(c)
	if err != nil {
		return cli.Exit(err, exitBadInput)
	}
	o, err := validateOptions(c)
	if err != nil {
		return cli.Exit(err, exitBadInput)
	}
	if c.String("source") == "" {
		return cli.Exit("no source: set --source or CDC2S3_SOURCE to the PostgreSQL database the destination streams from", exitBadInput)
	}
	v := &validateRun{c: c, log: log}
	if v.store, err = openDest(c); err != nil {
		return badInput(err, "")
	}
	if v.dest, err = readDestination(c.Context, v.store); err != nil {
		return err
	}
	if v.conn, err = source.Connect(c.Context, c.String("source")); err != nil {
		return badInput(err, "")
	}
	defer v.conn.Close(context.WithoutCancel(c.Context))
	snap, err := validate.OpenSnapshot(c.Context, c.String("source"))
	if err != nil {
		return badInput(fmt.Errorf("read the source at a known position (a temporary replication slot, which needs the REPLICATION attribute and a free slot): %w", err), "")
	}
	defer snap.Close(c.Context)
	tables, notCompared, err := v.tables(snap.Tx.Conn())
	if err != nil {
		return err
	}
	pos, err := v.position(snap.LSN)
	if err != nil {
		return err
	}
	tmp, err := openScratch(c, log)
	if err != nil {
		return err
	}
	defer tmp.Close()
	o.TempDir = tmp.Path
	results, err := v.compare(snap, tables, o)
	if err != nil && c.Context.Err() != nil {
		return cli.Exit("validate: interrupted", exitFailed)
	}
	if err != nil {
		return cli.Exit(fmt.Errorf("validate: %w", err), exitFailed)
	}
	addNotes(results, pos, v.dest.state)
	return report(c.App.Writer, c.Bool("json"), pos, results, notCompared)
}

// validateOptions reads the comparison's flags.
func validateOptions(c *cli.Context) (validate.Options, error) {
	mem, err := parseSize(c.String("memory"))
	if err != nil {
		return validate.Options{}, fmt.Errorf("invalid --memory: %w", err)
	}
	if mem < 4<<20 {
		return validate.Options{}, fmt.Errorf("invalid --memory %s: give it at least 4MB", c.String("memory"))
	}
	if c.Int("show") < 1 {
		return validate.Options{}, fmt.Errorf("invalid --show %d: show at least 1 key", c.Int("show"))
	}
	if c.Duration("wait-timeout") <= 0 {
		return validate.Options{}, fmt.Errorf("invalid --wait-timeout %s: use a positive duration, e.g. 10m", c.Duration("wait-timeout"))
	}
	return validate.Options{Memory: mem, Samples: c.Int("show")}, nil
}

// badInput is exit status 2 with err on one line, and the fix when err
// does not name one.
func badInput(err error, fix string) error {
	var exit cli.ExitCoder
	if errors.As(err, &exit) {
		return err
	}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if fix != "" {
		msg += ": " + fix
	}
	return cli.Exit(msg, exitBadInput)
}

// readDestination reads the destination's state and schema histories; a
// destination with neither is bad input.
func readDestination(ctx context.Context, store sink.Store) (destination, error) {
	var d destination
	var err error
	if d.state, d.hasState, err = lsnstore.New(store).Load(ctx); err != nil {
		return d, badInput(err, "check --dest and the credentials")
	}
	if d.plans, err = catalog.Plan(ctx, store, nil); err != nil {
		return d, badInput(err, "")
	}
	switch {
	case !d.hasState && len(d.plans) == 0:
		return d, cli.Exit(fmt.Sprintf("%s holds no cdc2s3 output (no %s, no schema history): check --dest", store, lsnstore.StateKey), exitBadInput)
	case d.hasState && !d.state.SnapshotDone:
		return d, cli.Exit(fmt.Sprintf("the full load into %s has not finished: validate once cdc2s3 run has loaded every table (cdc2s3 status shows it)", store), exitBadInput)
	}
	return d, nil
}

// tables pairs the source's published tables (read through conn, in the
// snapshot) with their folders, and names the folders not compared.
func (v *validateRun) tables(conn *pgx.Conn) ([]validate.Table, []string, error) {
	ctx := v.c.Context
	var published []source.Table
	var err error
	if pub := v.dest.state.Publication; v.dest.hasState && pub != "" {
		var p *source.Publication
		if p, err = source.LookupPublication(ctx, conn, pub); err != nil {
			return nil, nil, badInput(err, "")
		}
		if p == nil {
			return nil, nil, cli.Exit(fmt.Sprintf("the source has no publication %q, which the destination's state names: is --source the database the destination streams from?", pub), exitBadInput)
		}
		published, err = source.PublishedTables(ctx, conn, pub)
	} else {
		var names []string
		for _, p := range v.dest.plans {
			names = append(names, p.Schema+"."+p.Name)
		}
		published, err = source.UserTables(ctx, conn, names)
	}
	if err != nil {
		return nil, nil, badInput(err, "")
	}
	plans := map[string]*catalog.Table{}
	for i, p := range v.dest.plans {
		plans[p.Schema+"."+p.Name] = &v.dest.plans[i]
	}
	only := map[string]bool{}
	for _, n := range splitList(v.c.String("tables")) {
		schema, name := source.SplitName(n)
		only[schema+"."+name] = true
	}
	var tables []validate.Table
	for _, t := range published {
		if len(only) == 0 || only[t.String()] {
			tables = append(tables, validate.Table{Source: t, Plan: plans[t.String()]})
			delete(only, t.String())
		}
		delete(plans, t.String())
	}
	if len(only) > 0 {
		what := fmt.Sprintf("not published by the publication %s", v.dest.state.Publication)
		if !v.dest.hasState {
			what = "not in the destination"
		}
		return nil, nil, cli.Exit(fmt.Sprintf("%s: %s: check --tables", strings.Join(slices.Sorted(maps.Keys(only)), ", "), what), exitBadInput)
	}
	var notCompared []string
	if len(splitList(v.c.String("tables"))) == 0 {
		notCompared = slices.Sorted(maps.Keys(plans))
	}
	return tables, notCompared, nil
}

// positionReport says at which position the comparison ran and how far
// the destination is known to be complete there.
type positionReport struct {
	LSN        string `json:"lsn"`
	Checkpoint string `json:"checkpoint"`
	Daemon     bool   `json:"daemon"`
	// Exact: the destination holds every change up to the position.
	Exact bool   `json:"exact"`
	Note  string `json:"note,omitempty"`
	// Pending counts, per table, the transactions after the checkpoint
	// that no daemon has streamed yet.
	Pending map[string]int `json:"pending,omitempty"`
}

// position settles how the destination stands at the snapshot's position
// at: with a daemon running, it waits until the checkpoint reaches at;
// without one, it finds out what changed after the checkpoint.
func (v *validateRun) position(at pglogrepl.LSN) (positionReport, error) {
	ctx := v.c.Context
	pos := positionReport{LSN: at.String()}
	if !v.dest.hasState {
		pos.Note = "the destination has no replication state (a cdc2s3 snapshot copy): changes made in the source after its snapshot show as differences"
		return pos, nil
	}
	lease, err := validate.Daemon(ctx, v.store)
	if err != nil {
		return pos, cli.Exit(fmt.Errorf("validate: %w", err), exitFailed)
	}
	st := v.dest.state
	if lease != nil {
		pos.Daemon = true
		if err := validate.Nudge(ctx, v.conn); err != nil {
			v.log.Debug("could not write a logical message; waiting for the daemon's heartbeat", logkey.Error, source.Redact(err.Error()))
		}
		var covered bool
		st, covered, err = validate.WaitCovered(ctx, v.store, at, v.c.Duration("wait-timeout"), v.waiting(at))
		if err != nil {
			return pos, cli.Exit(fmt.Sprintf("validate: %v: is the daemon streaming (cdc2s3 status)? or raise --wait-timeout", err), exitFailed)
		}
		pos.Checkpoint = st.Checkpoint.String()
		if covered {
			pos.Exact = true
			return pos, nil
		}
		pos.Daemon = false // it stopped while validate waited
	}
	return v.idlePosition(pos, st, at), nil
}

// idlePosition settles the position with no daemon streaming: exact when
// the checkpoint covers it or no published table changed after the
// checkpoint, else the tables that did.
func (v *validateRun) idlePosition(pos positionReport, st lsnstore.State, at pglogrepl.LSN) positionReport {
	pos.Checkpoint = st.Checkpoint.String()
	if st.Checkpoint >= at {
		pos.Exact = true
		return pos
	}
	pending, err := validate.Pending(v.c.Context, v.conn, st.Slot, st.Publication, st.Checkpoint, at)
	switch {
	case err != nil:
		pos.Note = fmt.Sprintf("no daemon is running and the slot %s cannot be read (%s): changes committed after the destination's checkpoint %s show as differences until cdc2s3 run streams them",
			st.Slot, strings.Join(strings.Fields(source.Redact(err.Error())), " "), st.Checkpoint)
	case len(pending) == 0:
		pos.Exact = true
		pos.Note = fmt.Sprintf("no daemon is running; no published table changed after the destination's checkpoint %s", st.Checkpoint)
	default:
		pos.Pending = pending
		pos.Note = fmt.Sprintf("no daemon is running: %s changed after the destination's checkpoint %s; those changes are not in the destination until cdc2s3 run streams them, and show as differences",
			plural(len(pending), "table"), st.Checkpoint)
	}
	return pos
}

// waiting reports, at most every 5 seconds, that validate waits for the
// destination.
func (v *validateRun) waiting(at pglogrepl.LSN) func(lsnstore.State) {
	var last time.Time
	return func(st lsnstore.State) {
		if time.Since(last) < 5*time.Second {
			return
		}
		last = time.Now()
		v.log.Info("waiting for the destination to reach the source's position", logkey.LSN, at, logkey.Checkpoint, st.Checkpoint,
			logkey.LagBytes, uint64(at-min(st.Checkpoint, at)))
	}
}

// compare runs the comparison with its progress shown: redrawn bars on a
// terminal, a log line every 10 seconds elsewhere.
func (v *validateRun) compare(snap *validate.Snapshot, tables []validate.Table, o validate.Options) ([]validate.Result, error) {
	o.Progress = &validate.Progress{}
	stop := showValidateProgress(os.Stderr, o.Progress, v.log)
	defer stop()
	v.log.Info("validating", logkey.Tables, len(tables), logkey.LSN, snap.LSN)
	return validate.Compare(v.c.Context, snap.Tx, v.store, tables, snap.LSN, o)
}

// addNotes adds to each result what the position and the state say of its
// table: changes not streamed yet, and, for a table that differs, a reload
// not finished.
func addNotes(results []validate.Result, pos positionReport, st lsnstore.State) {
	for i := range results {
		r := &results[i]
		if n := pos.Pending[r.Table]; n > 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("the changes of %s after the destination's checkpoint %s are not streamed yet (no daemon is running)", plural(n, "transaction"), pos.Checkpoint))
		}
		for _, rl := range st.Reloads {
			if rl.Schema+"."+rl.Table == r.Table && r.Differs() {
				r.Notes = append(r.Notes, "a reload of it has not finished: its rows count once its marker is written (docs/reload.md)")
			}
		}
	}
}

// validateReport is the JSON report.
type validateReport struct {
	OK          bool              `json:"ok"`
	Position    positionReport    `json:"position"`
	Tables      []validate.Result `json:"tables"`
	NotCompared []string          `json:"not_compared"`
}

// report prints the results and returns the exit status: 1 when a table
// differs.
func report(w io.Writer, asJSON bool, pos positionReport, results []validate.Result, notCompared []string) error {
	differ := 0
	for _, r := range results {
		if r.Differs() {
			differ++
		}
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(validateReport{OK: differ == 0, Position: pos, Tables: results, NotCompared: notCompared}); err != nil {
			return err
		}
	} else {
		printReport(w, pos, results, notCompared, differ)
	}
	if differ > 0 {
		return cli.Exit(fmt.Sprintf("tables that differ from the source: %d of %d", differ, len(results)), exitDiffers)
	}
	return nil
}

// printReport prints the results as a table, with the first keys of each
// kind of difference under a table that differs.
func printReport(w io.Writer, pos positionReport, results []validate.Result, notCompared []string, differ int) {
	where := "the destination's checkpoint " + pos.Checkpoint
	switch {
	case pos.Checkpoint == "":
		where = "no replication state"
	case pos.Daemon:
		where += ", a daemon streaming"
	default:
		where += ", no daemon running"
	}
	fmt.Fprintf(w, "position %s: the source in a temporary slot's snapshot, the destination's rows up to it (%s)\n", pos.LSN, where)
	if pos.Note != "" {
		fmt.Fprintf(w, "note: %s\n", pos.Note)
	}
	width := len("TABLE")
	for _, r := range results {
		width = max(width, len(r.Table))
	}
	fmt.Fprintf(w, "%-*s %10s %10s %8s %8s %10s  %s\n", width, "TABLE", "SOURCE", "DEST", "MISSING", "EXTRA", "MISMATCHED", "RESULT")
	for _, r := range results {
		result := "equal"
		if r.Differs() {
			result = "DIFFERS"
		}
		fmt.Fprintf(w, "%-*s %10d %10d %8d %8d %10d  %s\n", width, r.Table, r.SourceRows, r.DestRows, r.Missing, r.Extra, r.Mismatched, result)
		printDetails(w, r)
	}
	if len(notCompared) > 0 {
		fmt.Fprintf(w, "not compared (a folder of a table the publication does not publish now): %s\n", strings.Join(notCompared, ", "))
	}
	fmt.Fprintf(w, "%s: %d equal, %d differ\n", plural(len(results), "table"), len(results)-differ, differ)
}

// printDetails prints the first keys of each kind of difference, the
// objects that are not contract files and the notes of one table.
func printDetails(w io.Writer, r validate.Result) {
	for _, k := range r.MissingKeys {
		fmt.Fprintf(w, "    missing: %s\n", k)
	}
	for _, k := range r.ExtraKeys {
		fmt.Fprintf(w, "    extra: %s\n", k)
	}
	for _, m := range r.Mismatches {
		var cols []string
		for _, d := range m.Columns {
			cols = append(cols, fmt.Sprintf("%s source %s, destination %s", d.Column, d.Source, d.Dest))
		}
		fmt.Fprintf(w, "    mismatched: %s: %s\n", m.Key, strings.Join(cols, "; "))
	}
	for _, f := range r.Files {
		fmt.Fprintf(w, "    file: %s\n", f)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "    note: %s\n", n)
	}
}

// showValidateProgress shows the comparison's progress until the returned
// stop is called.
func showValidateProgress(out *os.File, p *validate.Progress, log *slog.Logger) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	if isTerminal(out) {
		go func() { defer wg.Done(); drawValidateProgress(out, p, done) }()
	} else {
		go func() { defer wg.Done(); logValidateProgress(p, log, done) }()
	}
	return func() { close(done); wg.Wait() }
}

// logValidateProgress logs each running table's progress every 10 seconds.
func logValidateProgress(p *validate.Progress, log *slog.Logger, done chan struct{}) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		for _, s := range p.Tables() {
			if phase := *s.Phase.Load(); !s.Done.Load() && phase != "waiting" {
				log.Info("validating", logkey.Table, s.Table, logkey.Phase, phase, logkey.Pct, int(s.Fraction()*100),
					logkey.Rows, s.SourceRows.Load(), logkey.Bytes, s.Bytes.Load())
			}
		}
	}
}

// drawValidateProgress draws a bar per table started and one for all,
// twice a second, until done; it leaves them on the screen.
func drawValidateProgress(out io.Writer, p *validate.Progress, done chan struct{}) {
	mp := mpb.New(mpb.WithOutput(out), mpb.WithRefreshRate(progressRedraw))
	bars := map[*validate.TableStatus]*mpb.Bar{}
	var finished, count atomic.Int64
	total := mp.New(0, mpb.NopStyle(), mpb.BarPriority(totalPriority),
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
			return fmt.Sprintf("total %d/%d tables", finished.Load(), count.Load())
		})))
	tick := time.NewTicker(progressRedraw)
	defer tick.Stop()
	for stopping := false; !stopping; {
		select {
		case <-done:
			stopping = true
		case <-tick.C:
		}
		tables := p.Tables()
		n := int64(0)
		for _, s := range tables {
			if s.Done.Load() {
				n++
			}
			b := bars[s]
			if b == nil && *s.Phase.Load() != "waiting" {
				b = addValidateBar(mp, s)
				bars[s] = b
			}
			if b != nil {
				b.SetCurrent(int64(s.Fraction() * progressBarTotal))
			}
		}
		finished.Store(n)
		count.Store(int64(len(tables)))
	}
	for _, b := range append(slices.Collect(maps.Values(bars)), total) {
		if !b.Completed() {
			b.Abort(false)
		}
	}
	mp.Wait()
}

// addValidateBar adds the bar of one table: its name, the bar, the phase
// and the share done.
func addValidateBar(mp *mpb.Progress, s *validate.TableStatus) *mpb.Bar {
	return mp.New(progressBarTotal,
		mpb.BarStyle().Lbound("").Filler("█").Tip("").Padding("░").Rbound(""),
		mpb.BarWidth(progressBarWidth),
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return fmt.Sprintf("%-24s", progShorten(s.Table, 24)) })),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
			return fmt.Sprintf("%3d%% %-15s %s rows", int(s.Fraction()*100), *s.Phase.Load(), progCount(s.SourceRows.Load()))
		})),
	)
}

// plural writes n things: "1 table", "2 tables".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
