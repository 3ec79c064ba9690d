// Package catalog turns a destination's schema histories into the tables
// and current-state views analysts query: one plan per table folder, from
// which each engine's SQL (DuckDB, Athena, Spark) is generated, so that the
// engines agree on names, columns and the merge rule
// (docs/output-format.md section 6, version 2).
package catalog

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/pqfile"
)

// Table is the plan of one table folder.
type Table struct {
	Schema, Name string
	// Dir is the folder's key prefix in the destination ("public/orders/").
	Dir string
	// Columns are the table's current columns, in the order they were
	// added (PostgreSQL's order for all but re-added columns).
	Columns []Column
	// Key is the current primary key; empty: the folder is a multiset.
	Key []string
	// Empty: the folder holds no file yet.
	Empty bool
	// Dated is the layout of the destination's date folders (run
	// --date-partition), nil without; DatedFrom is the table's earliest
	// date folder ("" when none yet).
	Dated     *sink.DatePartition
	DatedFrom string
}

// Column is one current column of a table.
type Column struct {
	Name string
	Type pqfile.Type
	// AddedLSN and AddedSeq: rows at a lower position (_cdc_lsn,
	// _cdc_seq) are older than the column and take Missing (PostgreSQL's
	// text of the value, nil for NULL). Zero: the column was always there.
	AddedLSN, AddedSeq uint64
	Missing            *string
}

// Added reports whether the column came after the table's first rows.
func (c Column) Added() bool { return c.AddedLSN != 0 || c.AddedSeq != 0 }

// Plan reads the schema history of every table folder in store (or of the
// tables named schema.table in only) and returns the tables' plans, in
// schema and name order.
func Plan(ctx context.Context, store sink.Store, only []string) ([]Table, error) {
	states := lsnstore.New(store)
	st, _, err := states.Load(ctx)
	if err != nil {
		return nil, err
	}
	hs, err := states.Histories(ctx)
	if err != nil {
		return nil, err
	}
	var out []Table
	seen := map[string]bool{}
	for _, h := range hs {
		label := h.Schema + "." + h.Table
		if len(only) > 0 && !slices.Contains(only, label) {
			continue
		}
		seen[label] = true
		t, err := planTable(h)
		if err != nil {
			return nil, err
		}
		if len(t.Columns) == 0 {
			// A history with no column is a mark, not a table folder: a
			// table met with no rows written yet (its load is due).
			continue
		}
		files, err := store.List(ctx, t.Dir)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", t.Dir, err)
		}
		t.Empty = !slices.ContainsFunc(files, func(o sink.ObjectInfo) bool { return strings.HasSuffix(o.Key, ".parquet") })
		if t.Dated = st.DatePartition; t.Dated != nil {
			keys := make([]string, len(files))
			for i, o := range files {
				keys[i] = o.Key
			}
			t.DatedFrom = firstFolder(t.Dated, t.Dir, keys)
		}
		out = append(out, t)
	}
	for _, name := range only {
		if !seen[name] {
			return nil, fmt.Errorf("%s has no table %s (no schema history under %s): check --tables", store, name, lsnstore.SchemaPrefix)
		}
	}
	slices.SortFunc(out, func(a, b Table) int {
		return strings.Compare(a.Schema+"\x00"+a.Name, b.Schema+"\x00"+b.Name)
	})
	return out, nil
}

// planTable makes a table's plan from its history.
func planTable(h *lsnstore.History) (Table, error) {
	t := Table{Schema: h.Schema, Name: h.Table, Dir: sink.TableDir(h.Schema, h.Table)}
	for _, c := range h.Columns {
		if c.DroppedLSN != 0 {
			continue
		}
		if c.Type == "" {
			return t, fmt.Errorf("%s.%s: the schema history records no type for column %q (written by a cdc2s3 before types were recorded): "+
				"run the daemon with this version until the table has a change, or reload the table (cdc2s3 reload)", h.Schema, h.Table, c.Name)
		}
		typ, err := pqfile.ParseType(c.Type)
		if err != nil {
			return t, fmt.Errorf("%s.%s: column %q: %w", h.Schema, h.Table, c.Name, err)
		}
		t.Columns = append(t.Columns, Column{Name: c.Name, Type: typ, AddedLSN: uint64(c.AddedLSN), AddedSeq: c.AddedSeq, Missing: c.Missing})
	}
	if n := len(h.Keys); n > 0 {
		t.Key = slices.Clone(h.Keys[n-1].Columns)
	}
	return t, nil
}
