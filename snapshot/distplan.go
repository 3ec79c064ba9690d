package snapshot

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/pqfile"
	"github.com/cdc2s3/cdc2s3/source"
)

// A distributed full load
//
// The work of a full load is split into units that other processes, on any
// host, can do: a coordinator (cdc2s3 snapshot --plan) holds the snapshot
// and writes the plan, workers (cdc2s3 snapshot --unit N) each import the
// snapshot and copy one unit, and the coordinator commits once every unit
// is done. Everything they share is in the destination, under
// _cdc2s3/load/:
//
//	current.json                       the plan workers use by default: {"plan": ID}
//	<ID>/plan.json                     the plan: snapshot, tables, every unit
//	<ID>/units.json                    [{"plan": ID, "unit": 1}, ...], written last: the
//	                                   plan is complete (a Step Functions Map reads it)
//	<ID>/files/<unit>/<attempt>/<k>.parquet   a unit's files, staged
//	<ID>/done/<unit>.json              the unit's record: its attempt and files
//	<ID>/failed/<unit>.json            a unit that no retry can cure (a table changed)
//	<ID>/committed.json                the LOAD files are in place
//
// How the LOAD files are named, exactly, whatever workers are killed: a
// unit writes its files under staging names of its own attempt (a random
// id), then creates its done record with a conditional write (PutIfAbsent),
// naming that attempt and its files. Of two attempts of one unit, the first
// record wins and the other deletes what it staged; an attempt killed
// before its record left files nothing names, which are never copied and go
// with the plan's folder. The coordinator, once every unit has a record,
// numbers the files from the plan alone: table by table, unit by unit in
// plan order, file by file within a unit, LOAD00000001.parquet onwards
// without gaps, and copies each staged file to its LOAD name (server-side:
// sink.Copy). The numbering is a function of the plan and the records, so
// a commit that dies half-way is done again the same. Only the coordinator
// writes table folders, under the destination's lease (lsnstore.Lease), and
// before the first file of a table it deletes the table's LOAD files of any
// earlier load, so the LOAD files of two snapshots never mix.

// LoadPrefix is the folder of distributed full loads in a destination.
const LoadPrefix = sink.StatePrefix + "load/"

// CurrentPlanKey names the plan workers use when none is given.
const CurrentPlanKey = LoadPrefix + "current.json"

// planFormat is the version of plan.json.
const planFormat = 1

// Errors of a distributed load, each with the fix in its message where the
// caller wraps it.
var (
	// ErrNoPlan: the destination holds no plan (or not the one named).
	ErrNoPlan = errors.New("no distributed load plan")
	// ErrUnitRange: a unit number the plan does not have.
	ErrUnitRange = errors.New("unit number out of range")
	// ErrSnapshotGone: the plan's exported snapshot no longer exists, so
	// its coordinator stopped (or PostgreSQL restarted).
	ErrSnapshotGone = errors.New("the plan's snapshot no longer exists")
	// ErrPlanReplaced: a newer plan replaced the one named.
	ErrPlanReplaced = errors.New("the plan is no longer the destination's current plan")
	// ErrPlanID: a plan id that cannot name a folder or an execution.
	ErrPlanID = errors.New("invalid plan id")
)

// planIDPattern is what a plan id may be: a Step Functions execution name
// (up to 80 letters, digits, '-' and '_') fits.
var planIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

// CheckPlanID returns an error wrapping ErrPlanID for an id that cannot be
// a plan's.
func CheckPlanID(id string) error {
	if !planIDPattern.MatchString(id) {
		return fmt.Errorf("%w %q: use 1 to 80 letters, digits, '-' or '_'", ErrPlanID, id)
	}
	return nil
}

// NewPlanID returns a fresh plan id: the time and a random suffix.
func NewPlanID() string {
	return time.Now().UTC().Format("20060102T150405Z") + "-" + randomID(4)
}

// Plan is a distributed full load: the snapshot every unit reads in, the
// tables with their output columns, and every unit.
type Plan struct {
	Format int    `json:"format"`
	ID     string `json:"id"`
	// Snapshot is the exported snapshot's name (SET TRANSACTION
	// SNAPSHOT), valid while the coordinator holds it.
	Snapshot string `json:"snapshot"`
	// LSN and Time are the LOAD rows' _cdc_lsn and _cdc_commit_ts.
	LSN  pglogrepl.LSN `json:"snapshot_lsn"`
	Time time.Time     `json:"snapshot_time"`
	// Database is the source database, which a worker's connection must
	// name too.
	Database string `json:"database"`
	// Slot and Publication are set for the daemon's first load: the slot
	// whose snapshot this is (cdc2s3 run resumes from it).
	Slot        string      `json:"slot,omitempty"`
	Publication string      `json:"publication,omitempty"`
	Compression string      `json:"compression"`
	MaxFileSize int64       `json:"max_file_size"`
	ChunkSize   int64       `json:"chunk_size"`
	Created     time.Time   `json:"created"`
	Tables      []PlanTable `json:"tables"`
	Units       []Unit      `json:"units"`
}

// PlanTable is one table of a plan.
type PlanTable struct {
	Table source.Table `json:"table"`
	// Columns are the output columns, each with its Parquet type
	// (pqfile.Type.String), as the coordinator resolved them.
	Columns    []PlanColumn `json:"columns"`
	Partitions string       `json:"partitions,omitempty"`
	DiskBytes  int64        `json:"disk_bytes"`
	Units      int          `json:"units"`
}

// PlanColumn is an output column.
type PlanColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Unit is one chunk of a plan: a block range of one relation, or several
// small relations of one table read one after the other.
type Unit struct {
	N         int        `json:"unit"`  // 1-based, the worker's --unit
	Table     int        `json:"table"` // index in Plan.Tables
	Seq       int        `json:"seq"`   // 1-based among the table's units
	Parts     []UnitPart `json:"parts"`
	DiskBytes int64      `json:"disk_bytes"` // planned heap and TOAST bytes
}

// UnitPart is what a unit reads of one relation: blocks [Start, End), End
// 0 for "to the end".
type UnitPart struct {
	Schema     string `json:"schema"`
	Name       string `json:"name"`
	Pages      int64  `json:"pages"`
	Bytes      int64  `json:"bytes"`
	Heap       bool   `json:"heap"`
	Splittable bool   `json:"splittable"`
	Start      int64  `json:"start"`
	End        int64  `json:"end"`
}

// UnitItem is one element of units.json.
type UnitItem struct {
	Plan string `json:"plan"`
	Unit int    `json:"unit"`
}

// UnitDone is a finished unit's record.
type UnitDone struct {
	Plan    string `json:"plan"`
	Unit    int    `json:"unit"`
	Attempt string `json:"attempt"`
	// Files are the staged files in order; their LOAD numbers are given
	// at the commit.
	Files     []StagedFile     `json:"files"`
	Rows      int64            `json:"rows"`
	Bytes     int64            `json:"bytes"`
	Nulled    map[string]int64 `json:"nulled,omitempty"`
	Flattened map[string]int64 `json:"flattened,omitempty"`
	Host      string           `json:"host"`
	Duration  float64          `json:"duration_seconds"`
	Finished  time.Time        `json:"finished"`
}

// StagedFile is a file a unit wrote under its staging name.
type StagedFile struct {
	Key  string `json:"key"`
	Size int64  `json:"size"`
}

// UnitFailed records a unit that failed in a way no retry can cure.
type UnitFailed struct {
	Unit  int    `json:"unit"`
	Error string `json:"error"`
}

// Committed is the record of a committed plan.
type Committed struct {
	Plan   string    `json:"plan"`
	Tables int       `json:"tables"`
	Files  int       `json:"files"`
	Rows   int64     `json:"rows"`
	Time   time.Time `json:"time"`
}

// Keys of a plan's objects.
func planDir(id string) string        { return LoadPrefix + id + "/" }
func planKey(id string) string        { return planDir(id) + "plan.json" }
func unitsKey(id string) string       { return planDir(id) + "units.json" }
func committedKey(id string) string   { return planDir(id) + "committed.json" }
func doneDir(id string) string        { return planDir(id) + "done/" }
func failedDir(id string) string      { return planDir(id) + "failed/" }
func doneKey(id string, n int) string { return fmt.Sprintf("%s%08d.json", doneDir(id), n) }
func failedKey(id string, n int) string {
	return fmt.Sprintf("%s%08d.json", failedDir(id), n)
}

// stagedKey is the staging name of a unit attempt's k-th file (1-based).
func stagedKey(id string, n int, attempt string, k int) string {
	return fmt.Sprintf("%sfiles/%08d/%s/%08d.parquet", planDir(id), n, attempt, k)
}

// UnitsKey is the key of a plan's unit list, relative to the destination:
// what a Step Functions Map's ItemReader reads.
func UnitsKey(id string) string { return unitsKey(id) }

// jobs rebuilds the plan's jobs: tables with their output columns.
func (p *Plan) jobs() ([]Job, error) {
	jobs := make([]Job, len(p.Tables))
	for i, t := range p.Tables {
		cols := make([]pqfile.Column, len(t.Columns))
		for k, c := range t.Columns {
			typ, err := pqfile.ParseType(c.Type)
			if err != nil {
				return nil, fmt.Errorf("plan %s: %s.%s: %w", p.ID, t.Table, c.Name, err)
			}
			cols[k] = pqfile.Column{Name: c.Name, Type: typ}
		}
		jobs[i] = Job{Table: t.Table, Columns: cols, Partitions: t.Partitions}
	}
	return jobs, nil
}

// options are the copy options of the plan's units.
func (p *Plan) options(tempDir string) Options {
	return Options{
		Snapshot: p.Snapshot, LSN: p.LSN, Time: p.Time, MaxFileSize: p.MaxFileSize,
		ChunkSize: p.ChunkSize, Compression: p.Compression, TempDir: tempDir,
	}
}

// unitsOf returns the plan's units of table i, in order.
func (p *Plan) unitsOf(i int) []Unit {
	var out []Unit
	for _, u := range p.Units {
		if u.Table == i {
			out = append(out, u)
		}
	}
	return out
}
