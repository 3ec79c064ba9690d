package lsnstore

import (
	"slices"

	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/jackc/pglogrepl"
)

// History records when each column of a table appeared (and disappeared)
// in the stream, and the value rows that existed before it took without
// any WAL, so that the merge rule (contract §4) can tell "NULL because the
// column did not exist yet" from a real NULL.
type History struct {
	Version int            `json:"version"`
	Schema  string         `json:"schema"`
	Table   string         `json:"table"`
	Columns []ColumnRecord `json:"columns"`
	// Keys records the primary key the writer used to write the table's
	// rows, from which commit LSN on: whether an update is written as U or
	// as D and I depends on it, so a replay after a crash must decide as
	// the first write did, whatever the catalog says by then.
	Keys []KeyRecord `json:"keys,omitempty"`
	// Unloaded: the table joined the pipeline after the full load (added
	// to the publication, created later) and its rows from before are not
	// in the folder; a reload is due, and clears it when done.
	Unloaded bool `json:"unloaded,omitempty"`
	// Partitions is, for a partitioned root, its partition tree as the
	// reload engine last checked it (source.PartitionFiles): a change
	// (a partition attached, detached, dropped or truncated) reloads the
	// root.
	Partitions string `json:"partitions,omitempty"`
}

// KeyRecord is the primary key used for the transactions from LSN on
// (0: from the start). Columns is empty for a table without one.
type KeyRecord struct {
	Columns []string      `json:"columns"`
	LSN     pglogrepl.LSN `json:"lsn"`
}

// KeyAt returns the key the writer used for a transaction that ended at
// lsn, and whether the history records one.
func (h *History) KeyAt(lsn pglogrepl.LSN) ([]string, bool) {
	var found *KeyRecord
	for i := range h.Keys {
		if h.Keys[i].LSN <= lsn {
			found = &h.Keys[i]
		}
	}
	if found == nil {
		return nil, false
	}
	return found.Columns, true
}

// ObserveKey records that transactions from lsn on are written with key,
// when it differs from the last key recorded. It reports whether the
// history changed.
func (h *History) ObserveKey(key []string, lsn pglogrepl.LSN) bool {
	if n := len(h.Keys); n > 0 && slices.Equal(h.Keys[n-1].Columns, key) {
		return false
	}
	if key == nil {
		key = []string{}
	}
	h.Keys = append(h.Keys, KeyRecord{Columns: slices.Clone(key), LSN: lsn})
	return true
}

// ColumnRecord is one incarnation of a column: a column dropped and added
// again has two records.
type ColumnRecord struct {
	Name string `json:"name"`
	// AddedLSN and AddedSeq are the position (_cdc_lsn, _cdc_seq) of the
	// first row written with the column (0 for columns present at the
	// snapshot or when the table was first seen). Rows at a lower position
	// take Missing: also the rows of the same transaction written before
	// an ALTER TABLE in its middle.
	AddedLSN pglogrepl.LSN `json:"added_lsn"`
	AddedSeq uint64        `json:"added_seq,omitempty"`
	// DroppedLSN is the end LSN of the first transaction written without
	// the column, 0 while it exists.
	DroppedLSN pglogrepl.LSN `json:"dropped_lsn,omitempty"`
	// Missing is PostgreSQL's text of the column's attmissingval (the
	// DEFAULT existing rows took), nil for NULL.
	Missing *string `json:"missing"`
	// MissingVaries: the partitions of a partitioned table hold different
	// missing values for the column (one attached with the column already
	// added under another default), so rows older than AddedLSN took one
	// of several values and Missing (nil) is not theirs.
	MissingVaries bool `json:"missing_varies,omitempty"`
	// AttNum is the column's number in the source table
	// (pg_attribute.attnum), 0 while unknown (histories written before it
	// was recorded): a column dropped and added again under the same name
	// gets a new one, the only trace of it when no change of the table
	// came in between.
	AttNum int16 `json:"attnum,omitempty"`
	// Type is the column's type in the files written last
	// (pqfile.Type.String(), e.g. "int64", "decimal(12,2)",
	// "list<string>"): what a catalog declares it as. Empty in a history
	// written before types were recorded, until the column is next seen.
	Type string `json:"type,omitempty"`
}

// Live returns the names of the columns that currently exist, in the order
// they were added.
func (h *History) Live() []string {
	var names []string
	for _, c := range h.Columns {
		if c.DroppedLSN == 0 {
			names = append(names, c.Name)
		}
	}
	return names
}

// Observe records the column set seen at the row position at. The first observation of a
// table records every column at LSN 0. missing is asked for each newly
// added column: its value, and whether it varies (see MissingVaries). It
// reports whether the history changed.
func (h *History) Observe(columns []string, at sink.Pos, missing func(name string) (*string, bool)) bool {
	lsn := at.LSN
	first := len(h.Columns) == 0
	changed := false
	for i := range h.Columns {
		c := &h.Columns[i]
		if c.DroppedLSN == 0 && !slices.Contains(columns, c.Name) {
			c.DroppedLSN = lsn
			if c.DroppedLSN == 0 {
				c.DroppedLSN = 1
			}
			changed = true
		}
	}
	live := h.Live()
	for _, name := range columns {
		if slices.Contains(live, name) {
			continue
		}
		rec := ColumnRecord{Name: name}
		if !first {
			rec.AddedLSN, rec.AddedSeq = at.LSN, at.Seq
			if missing != nil {
				rec.Missing, rec.MissingVaries = missing(name)
			}
		}
		h.Columns = append(h.Columns, rec)
		changed = true
	}
	return changed
}

// ObserveAttNums records the number of each live column that nums names
// (name → pg_attribute.attnum), seen at the row position at. A column
// whose recorded number differs was dropped and added again under its
// name: its incarnation ends at at and a new one starts there, with
// missing's value (as Observe asks it). It reports whether the history
// changed and whether a column was added again.
func (h *History) ObserveAttNums(nums map[string]int16, at sink.Pos, missing func(name string) (*string, bool)) (changed, readded bool) {
	n := len(h.Columns)
	for i := 0; i < n; i++ {
		c := &h.Columns[i]
		num, ok := nums[c.Name]
		switch {
		case c.DroppedLSN != 0 || !ok || c.AttNum == num:
		case c.AttNum == 0:
			c.AttNum, changed = num, true
		default:
			c.DroppedLSN = max(at.LSN, 1)
			rec := ColumnRecord{Name: c.Name, AttNum: num, AddedLSN: at.LSN, AddedSeq: at.Seq, Type: c.Type}
			if missing != nil {
				rec.Missing, rec.MissingVaries = missing(c.Name)
			}
			h.Columns = append(h.Columns, rec)
			changed, readded = true, true
		}
	}
	return changed, readded
}

// ObserveTypes records the type of each live column that types names
// (name → pqfile.Type.String()), and reports whether one changed.
func (h *History) ObserveTypes(types map[string]string) bool {
	changed := false
	for i := range h.Columns {
		c := &h.Columns[i]
		if t, ok := types[c.Name]; ok && c.DroppedLSN == 0 && c.Type != t {
			c.Type, changed = t, true
		}
	}
	return changed
}

// Clone returns a deep copy.
func (h *History) Clone() *History {
	c := *h
	c.Columns = slices.Clone(h.Columns)
	return &c
}
