// Package lsnstore keeps cdc2s3's own state in the destination, under
// _cdc2s3/: the replication state and checkpoint (the LSN at or below which
// every change is durable) and each table's schema history.
//
// Objects are replaced whole (Store.Put is atomic), and the checkpoint never
// moves backwards.
package lsnstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/cdc2s3/cdc2s3/sink"
)

// Keys of the state objects.
const (
	StateKey      = sink.StatePrefix + "state.json"
	SchemaPrefix  = sink.StatePrefix + "schema/"
	stateVersion  = 1
	historyFormat = 1
)

// ErrBackwards is returned when a save would move the checkpoint back.
var ErrBackwards = errors.New("checkpoint would move backwards")

// State is the replication state of one destination.
type State struct {
	Version     int    `json:"version"`
	Slot        string `json:"slot"`
	Publication string `json:"publication"`
	// SnapshotLSN is the slot's consistent point: LOAD rows carry it, and
	// streaming starts there.
	SnapshotLSN  pglogrepl.LSN `json:"snapshot_lsn"`
	SnapshotTime time.Time     `json:"snapshot_time"`
	// SnapshotDone is set once every LOAD file is uploaded.
	SnapshotDone bool `json:"snapshot_done"`
	// Checkpoint is the LSN at or below which every change is uploaded.
	Checkpoint pglogrepl.LSN `json:"checkpoint_lsn"`
	// AckLimit is the highest LSN the daemon may have acknowledged to the
	// slot: it is saved before any acknowledgement beyond it, so the
	// slot's confirmed_flush_lsn is never above it. A slot that is (a slot
	// dropped and created again under the same name, or acknowledged by
	// another consumer) has skipped changes this destination never got.
	// Zero in states written before the check existed.
	AckLimit pglogrepl.LSN `json:"ack_limit_lsn,omitempty"`
	// Reloads are the reloads begun and not yet finished, as far as the
	// checkpoint covers them (docs/reload.md).
	Reloads []Reload `json:"reloads,omitempty"`
	// DatePartition is the layout of the date folders new change files
	// go to (run --date-partition); nil: the table folder's top. Files
	// written under an earlier setting stay where they are.
	DatePartition *sink.DatePartition `json:"date_partition,omitempty"`
	UpdatedAt     time.Time           `json:"updated_at"`
}

// Reload is the progress of one table's reload, saved with the checkpoint
// so that a restart goes on from the last chunk the checkpoint covers.
type Reload struct {
	// ID names the reload in its watermarks and logs: the request's name
	// and the table's place in it.
	ID     string `json:"id"`
	Schema string `json:"schema"`
	Table  string `json:"table"`
	// Keyed: read in chunks by key, each in its own snapshot; otherwise
	// the whole table in one snapshot, started over after a restart.
	Keyed bool `json:"keyed"`
	// Cut is the reload's cut (_cdc_reload of its rows); zero until its
	// start watermark is written.
	Cut pglogrepl.LSN `json:"cut_lsn,omitempty"`
	// LastKey is the key of the last row of the last chunk done (text of
	// each key column); nil before the first. Keyed reloads only.
	LastKey []string `json:"last_key,omitempty"`
	// Rows and Chunks count what is done.
	Rows   int64 `json:"rows"`
	Chunks int   `json:"chunks"`
	// Estimate is PostgreSQL's estimate of the table's rows when the
	// reload began (0: none), for progress displays.
	Estimate int64 `json:"rows_estimate,omitempty"`
	// Finished is set once every chunk is done: only the marker is left.
	Finished  bool      `json:"finished,omitempty"`
	StartedAt time.Time `json:"started_at"`
}

// Store reads and writes state objects in a destination.
type Store struct {
	s sink.Store
}

// New returns a Store over s.
func New(s sink.Store) *Store { return &Store{s: s} }

// Load returns the saved state and whether there is one.
func (l *Store) Load(ctx context.Context) (State, bool, error) {
	var st State
	ok, err := sink.GetJSON(ctx, l.s, StateKey, &st)
	if err == nil && st.DatePartition != nil {
		if err = st.DatePartition.Ready(); err != nil {
			err = fmt.Errorf("%s: %w", StateKey, err)
		}
	}
	return st, ok, err
}

// Save writes st. It refuses (ErrBackwards) to replace a saved state whose
// checkpoint is ahead of st's.
func (l *Store) Save(ctx context.Context, st State) error {
	var old State
	ok, err := sink.GetJSON(ctx, l.s, StateKey, &old)
	if err != nil {
		return err
	}
	if ok && old.Checkpoint > st.Checkpoint {
		return fmt.Errorf("%w: saved %s, new %s", ErrBackwards, old.Checkpoint, st.Checkpoint)
	}
	st.Version = stateVersion
	st.UpdatedAt = time.Now().UTC()
	return sink.PutJSON(ctx, l.s, StateKey, st)
}

// Delete removes the state (used when a snapshot is started over).
func (l *Store) Delete(ctx context.Context) error {
	return l.s.Delete(ctx, StateKey)
}

// HistoryKey returns the key of a table's schema history.
func HistoryKey(schema, table string) string {
	return SchemaPrefix + sink.EscapeName(schema) + "/" + sink.EscapeName(table) + ".json"
}

// LoadHistory returns a table's schema history; an empty one when none is
// saved yet.
func (l *Store) LoadHistory(ctx context.Context, schema, table string) (*History, error) {
	h := &History{Version: historyFormat, Schema: schema, Table: table}
	if _, err := sink.GetJSON(ctx, l.s, HistoryKey(schema, table), h); err != nil {
		return nil, err
	}
	return h, nil
}

// Histories returns the schema history of every table folder, in key
// order.
func (l *Store) Histories(ctx context.Context) ([]*History, error) {
	objs, err := l.s.List(ctx, SchemaPrefix)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", SchemaPrefix, err)
	}
	var out []*History
	for _, o := range objs {
		if !strings.HasSuffix(o.Key, ".json") {
			continue
		}
		h := &History{}
		if _, err := sink.GetJSON(ctx, l.s, o.Key, h); err != nil {
			return nil, err
		}
		if h.Schema != "" && h.Table != "" {
			out = append(out, h)
		}
	}
	return out, nil
}

// SaveHistory writes a table's schema history.
func (l *Store) SaveHistory(ctx context.Context, h *History) error {
	return sink.PutJSON(ctx, l.s, HistoryKey(h.Schema, h.Table), h)
}

// SlotAhead reports whether a slot acknowledged up to confirmed is ahead of
// anything this destination's daemon acknowledged (see AckLimit): the slot
// is not the one the destination was streamed from, or another consumer
// moved it, and the changes between are missing. False when the state
// predates the check.
func (st State) SlotAhead(confirmed pglogrepl.LSN) bool {
	return st.AckLimit != 0 && confirmed > st.AckLimit
}
