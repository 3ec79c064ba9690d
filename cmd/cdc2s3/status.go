package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/urfave/cli/v2"

	"github.com/cdc2s3/cdc2s3/internal/preflight"
	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/pipeline"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/dest"
	"github.com/cdc2s3/cdc2s3/source"
)

// statusReport is what status prints; with --json, as it is. LSNs are in
// PostgreSQL's text form (0/16B3748).
type statusReport struct {
	Slot        *slotStatus   `json:"slot,omitempty"`        // without --source: left out
	Destination *destStatus   `json:"destination,omitempty"` // without --dest: left out
	Tables      []tableStatus `json:"tables"`
	// LagSeconds is the time since the destination last moved: the newer of
	// the last CDC file's upload and the state's updated_at. It grows while
	// the source is idle, too; read it with the slot's lag_bytes.
	LagSeconds *float64 `json:"lag_seconds"`
	LagSince   string   `json:"lag_since,omitempty"` // "cdc_file" or "state"
}

// slotStatus is the replication slot as the source reports it.
type slotStatus struct {
	Name              string `json:"name"`
	Exists            bool   `json:"exists"`
	Database          string `json:"database,omitempty"`
	Active            bool   `json:"active"`
	PID               int32  `json:"pid,omitempty"`
	WALStatus         string `json:"wal_status,omitempty"`
	ConfirmedFlushLSN string `json:"confirmed_flush_lsn,omitempty"`
	RestartLSN        string `json:"restart_lsn,omitempty"`
	CurrentLSN        string `json:"current_wal_lsn,omitempty"`
	// LagBytes is current_wal_lsn - confirmed_flush_lsn: WAL not yet
	// acknowledged (uploaded).
	LagBytes int64 `json:"lag_bytes"`
	// RetainedBytes is current_wal_lsn - restart_lsn: WAL the server keeps
	// for the slot.
	RetainedBytes int64 `json:"retained_wal_bytes"`
	// AheadOfDestination: the slot was acknowledged beyond anything the
	// destination's daemon acknowledged (its state's ack_limit_lsn), so
	// it was replaced or consumed by another client and changes are
	// missing; run refuses to stream from it.
	AheadOfDestination bool `json:"ahead_of_destination"`
}

// destStatus is the destination's cdc2s3 state and lease.
type destStatus struct {
	URL   string       `json:"url"`
	State *stateStatus `json:"state"` // null when the destination has none
	Lease *leaseStatus `json:"lease"` // null when no process holds it
}

type stateStatus struct {
	Slot          string    `json:"slot"`
	Publication   string    `json:"publication"`
	SnapshotDone  bool      `json:"snapshot_done"`
	SnapshotLSN   string    `json:"snapshot_lsn"`
	SnapshotTime  time.Time `json:"snapshot_time"`
	CheckpointLSN string    `json:"checkpoint_lsn"`
	AckLimitLSN   string    `json:"ack_limit_lsn,omitempty"`
	UpdatedAt     time.Time `json:"updated_at"`
	// Reloads are the reloads running, as far as the checkpoint covers
	// them; ReloadRequests the requests not yet picked up.
	Reloads        []lsnstore.Reload `json:"reloads,omitempty"`
	ReloadRequests []string          `json:"reload_requests,omitempty"`
}

type leaseStatus struct {
	Owner     string    `json:"owner"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	ExpiresAt time.Time `json:"expires_at"`
	Expired   bool      `json:"expired"`
}

// tableStatus is one table folder: its files and its newest CDC file.
type tableStatus struct {
	Table       string     `json:"table"`
	LoadFiles   int        `json:"load_files"`
	CDCFiles    int        `json:"cdc_files"`
	LastCDCFile string     `json:"last_cdc_file,omitempty"`
	LastCDCLSN  string     `json:"last_cdc_lsn,omitempty"`
	LastCDCTime *time.Time `json:"last_cdc_time,omitempty"`
}

// statusCommand returns the "status" subcommand: the slot as the source
// sees it, the destination's state and, per table, the newest change file.
func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the replication slot, its lag and retained WAL, the destination's checkpoint and each table's last change file",
		Flags: []cli.Flag{
			sourceFlag(),
			&cli.StringFlag{Name: "dest", Usage: "destination: s3://bucket/prefix, file:///abs/path or a local path", EnvVars: env("DEST")},
			&cli.BoolFlag{Name: "s3-path-style", Usage: "use path-style S3 addressing (implied by a custom endpoint)", EnvVars: env("S3_PATH_STYLE")},
			&cli.StringFlag{Name: "slot", Value: pipeline.DefaultSlot, Usage: "replication slot (default: the one the destination's state names, else cdc2s3)", EnvVars: env("SLOT")},
			&cli.BoolFlag{Name: "json", Usage: "print the status as JSON"},
		},
		Action: func(c *cli.Context) error {
			dsn, raw := c.String("source"), c.String("dest")
			if dsn == "" && raw == "" {
				return cli.Exit("nothing to show: set --source (or CDC2S3_SOURCE) and --dest (or CDC2S3_DEST)", 2)
			}
			var rep statusReport
			var st lsnstore.State
			haveState := false
			if raw != "" {
				var err error
				if rep.Destination, rep.Tables, st, haveState, err = destinationStatus(c, raw); err != nil {
					return err
				}
			}
			slot := c.String("slot")
			if !c.IsSet("slot") && haveState && st.Slot != "" {
				slot = st.Slot
			}
			if dsn != "" {
				s, err := slotStatusOf(c.Context, dsn, slot)
				if err != nil {
					return err
				}
				rep.Slot = s
				if confirmed, err := pglogrepl.ParseLSN(s.ConfirmedFlushLSN); err == nil && s.Exists && haveState && st.Slot == slot {
					s.AheadOfDestination = st.SlotAhead(confirmed)
				}
			}
			rep.LagSeconds, rep.LagSince = lagSeconds(rep.Tables, st, haveState, time.Now())
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			printStatus(c.App.Writer, rep, time.Now())
			return nil
		},
	}
}

// slotStatusOf looks the slot up on the source.
func slotStatusOf(ctx context.Context, dsn, name string) (*slotStatus, error) {
	conn, err := source.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	s, err := source.LookupSlot(ctx, conn, name)
	if err != nil {
		return nil, source.Explain(err, nil)
	}
	if s == nil {
		return &slotStatus{Name: name}, nil
	}
	return &slotStatus{
		Name: name, Exists: true, Database: s.Database, Active: s.Active, PID: s.PID, WALStatus: s.WALStatus,
		ConfirmedFlushLSN: s.ConfirmedFlushLSN.String(), RestartLSN: s.RestartLSN.String(), CurrentLSN: s.CurrentLSN.String(),
		LagBytes: s.LagBytes, RetainedBytes: s.RetainedBytes,
	}, nil
}

// destinationStatus reads the destination's state and lease and lists its
// table folders.
func destinationStatus(c *cli.Context, raw string) (*destStatus, []tableStatus, lsnstore.State, bool, error) {
	var st lsnstore.State
	loc, err := dest.Parse(raw)
	if err != nil {
		return nil, nil, st, false, cli.Exit(err, 2)
	}
	// Opening a local destination creates it; a missing one is a typo.
	if loc.Path != "" {
		if fi, err := os.Stat(loc.Path); err != nil || !fi.IsDir() {
			return nil, nil, st, false, cli.Exit(fmt.Sprintf("destination %s is not a directory: check --dest", loc.Path), 2)
		}
	}
	store, err := dest.Open(c.Context, raw, dest.Options{PathStyle: c.Bool("s3-path-style")})
	if err != nil {
		return nil, nil, st, false, err
	}
	ds := &destStatus{URL: store.String()}
	st, haveState, err := lsnstore.New(store).Load(c.Context)
	if err != nil {
		return nil, nil, st, false, err
	}
	if haveState {
		ds.State = &stateStatus{
			Slot: st.Slot, Publication: st.Publication, SnapshotDone: st.SnapshotDone,
			SnapshotLSN: st.SnapshotLSN.String(), SnapshotTime: st.SnapshotTime,
			CheckpointLSN: st.Checkpoint.String(), UpdatedAt: st.UpdatedAt, AckLimitLSN: lsnOrEmpty(st.AckLimit),
			Reloads: st.Reloads,
		}
		reqs, err := store.List(c.Context, pipeline.ReloadRequestPrefix)
		if err != nil {
			return nil, nil, st, false, fmt.Errorf("list %s: %w", store, err)
		}
		for _, o := range reqs {
			ds.State.ReloadRequests = append(ds.State.ReloadRequests, o.Key)
		}
	}
	if rec, err := lsnstore.ReadLease(c.Context, store); err != nil {
		return nil, nil, st, false, err
	} else if rec != nil {
		ds.Lease = &leaseStatus{Owner: rec.Owner, Host: rec.Host, PID: rec.PID, ExpiresAt: rec.ExpiresAt, Expired: time.Now().After(rec.ExpiresAt)}
	}
	objs, err := store.List(c.Context, "")
	if err != nil {
		return nil, nil, st, false, fmt.Errorf("list %s: %w", store, err)
	}
	return ds, tableStatuses(objs), st, haveState, nil
}

// tableStatuses groups a destination listing by table folder and finds
// each folder's newest change file by the position its name carries.
func tableStatuses(objs []sink.ObjectInfo) []tableStatus {
	type folder struct {
		tableStatus
		last sink.Pos
	}
	byDir := map[string]*folder{}
	for _, o := range objs {
		dir, ok := sink.TableOfKey(o.Key)
		if !ok {
			continue
		}
		f := byDir[dir]
		if f == nil {
			parts := strings.Split(dir, "/")
			f = &folder{tableStatus: tableStatus{Table: folderName(parts[0]) + "." + folderName(parts[1])}}
			byDir[dir] = f
		}
		_, last, isCDC := sink.ParseCDCKey(o.Key)
		switch {
		case isCDC:
			f.CDCFiles++
			if f.LastCDCFile == "" || f.last.Less(last) {
				mod := o.ModTime.UTC()
				f.last, f.LastCDCFile, f.LastCDCTime = last, o.Key, &mod
				f.LastCDCLSN = last.LSN.String()
			}
		case sink.IsLoadKey(o.Key):
			f.LoadFiles++
		}
	}
	out := make([]tableStatus, 0, len(byDir))
	for _, f := range byDir {
		out = append(out, f.tableStatus)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Table < out[j].Table })
	return out
}

// folderName reverses sink.EscapeName for display.
func folderName(s string) string {
	return strings.NewReplacer("%2F", "/", "%25", "%").Replace(s)
}

// lagSeconds is the time since the destination last moved: the newer of
// the newest CDC file's upload and the state's updated_at.
func lagSeconds(tables []tableStatus, st lsnstore.State, haveState bool, now time.Time) (*float64, string) {
	var last time.Time
	since := ""
	for _, t := range tables {
		if t.LastCDCTime != nil && t.LastCDCTime.After(last) {
			last, since = *t.LastCDCTime, "cdc_file"
		}
	}
	if haveState && st.UpdatedAt.After(last) {
		last, since = st.UpdatedAt, "state"
	}
	if since == "" {
		return nil, ""
	}
	s := now.Sub(last).Seconds()
	if s < 0 {
		s = 0 // clocks differ
	}
	s = float64(int64(s*10)) / 10
	return &s, since
}

// printStatus prints the report for people.
func printStatus(out io.Writer, rep statusReport, now time.Time) {
	ago := func(t time.Time) string {
		return fmt.Sprintf("%s (%s ago)", t.UTC().Format("2006-01-02 15:04:05Z"), now.Sub(t).Round(time.Second))
	}
	if s := rep.Slot; s != nil {
		switch {
		case !s.Exists:
			fmt.Fprintf(out, "slot %s: does not exist\n", s.Name)
		default:
			state := "inactive (no cdc2s3 streaming from it)"
			if s.Active {
				state = fmt.Sprintf("active (PID %d)", s.PID)
			}
			fmt.Fprintf(out, "slot %s: %s, wal_status %s\n", s.Name, state, s.WALStatus)
			fmt.Fprintf(out, "  confirmed_flush_lsn %s: %s behind the server (at %s)\n", s.ConfirmedFlushLSN, preflight.FormatBytes(s.LagBytes), s.CurrentLSN)
			fmt.Fprintf(out, "  restart_lsn %s: retains %s of WAL\n", s.RestartLSN, preflight.FormatBytes(s.RetainedBytes))
			if s.AheadOfDestination {
				fmt.Fprintf(out, "  acknowledged beyond anything the destination's daemon acknowledged: the slot was replaced or consumed by another client, changes are missing, and run refuses to stream from it (docs/operations.md, \"The slot was replaced\")\n")
			}
			if s.WALStatus == "lost" {
				fmt.Fprintln(out, "  the slot is invalidated: the changes since its position are gone; see docs/operations.md, \"The slot is lost\"")
			}
		}
	}
	if d := rep.Destination; d != nil {
		if st := d.State; st != nil {
			load := "full load done"
			if !st.SnapshotDone {
				load = "full load NOT finished"
			}
			fmt.Fprintf(out, "destination %s: slot %s, publication %s, %s (snapshot %s at %s)\n",
				d.URL, st.Slot, st.Publication, load, st.SnapshotLSN, st.SnapshotTime.UTC().Format("2006-01-02 15:04:05Z"))
			fmt.Fprintf(out, "  checkpoint %s, updated %s\n", st.CheckpointLSN, ago(st.UpdatedAt))
			for _, r := range st.Reloads {
				fmt.Fprintf(out, "  reload of %s.%s running since %s: %d rows in %d chunks", r.Schema, r.Table, ago(r.StartedAt), r.Rows, r.Chunks)
				if pct, ok := reloadPercent(r); ok {
					fmt.Fprintf(out, ", about %d%% of %d", pct, r.Estimate)
				}
				fmt.Fprintln(out)
			}
			for _, k := range st.ReloadRequests {
				fmt.Fprintf(out, "  reload request %s waiting for the daemon\n", k)
			}
		} else {
			fmt.Fprintf(out, "destination %s: no cdc2s3 state\n", d.URL)
		}
		if l := d.Lease; l != nil {
			held := "held by"
			if l.Expired {
				held = "expired, last held by"
			}
			fmt.Fprintf(out, "  lease %s %s (PID %d) until %s\n", held, l.Host, l.PID, l.ExpiresAt.UTC().Format("2006-01-02 15:04:05Z"))
		}
	}
	if rep.LagSeconds != nil {
		what := "the last CDC file's upload"
		if rep.LagSince == "state" {
			what = "the last state update"
		}
		fmt.Fprintf(out, "lag: %s since %s\n", (time.Duration(*rep.LagSeconds * float64(time.Second))).Round(time.Second), what)
	}
	if len(rep.Tables) == 0 {
		return
	}
	rows := [][]string{{"TABLE", "LOAD", "CDC", "LAST CDC LSN", "LAST CDC UPLOAD"}}
	for _, t := range rep.Tables {
		lsn, when := "-", "-"
		if t.LastCDCTime != nil {
			lsn, when = t.LastCDCLSN, ago(*t.LastCDCTime)
		}
		rows = append(rows, []string{t.Table, strconv.Itoa(t.LoadFiles), strconv.Itoa(t.CDCFiles), lsn, when})
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, cell := range r {
			widths[i] = max(widths[i], len(cell))
		}
	}
	fmt.Fprintln(out)
	for _, r := range rows {
		fmt.Fprintf(out, "%-*s  %*s  %*s  %-*s  %s\n", widths[0], r[0], widths[1], r[1], widths[2], r[2], widths[3], r[3], r[4])
	}
}

// lsnOrEmpty prints an LSN, or nothing for zero.
func lsnOrEmpty(l pglogrepl.LSN) string {
	if l == 0 {
		return ""
	}
	return l.String()
}
