package oracle

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pglogrepl"
)

// historyFile is the schema history cdc2s3 keeps per table at
// <dest>/_cdc2s3/schema/<schema>/<table>.json.
type historyFile struct {
	Version int    `json:"version"`
	Schema  string `json:"schema"`
	Table   string `json:"table"`
	Columns []struct {
		Name     string  `json:"name"`
		AddedLSN uint64  `json:"added_lsn"`
		AddedSeq uint64  `json:"added_seq"`
		Missing  *string `json:"missing"`
	} `json:"columns"`
}

// EscapeName percent-encodes a schema or table name for a path segment as
// the output contract does: only % and / are encoded.
func EscapeName(name string) string {
	return strings.NewReplacer("%", "%25", "/", "%2F").Replace(name)
}

// TableDir returns the folder of table schema.table under the local
// destination dest (a path or a file:// URL).
func TableDir(dest, schema, table string) string {
	return filepath.Join(localPath(dest), EscapeName(schema), EscapeName(table))
}

func localPath(dest string) string {
	return strings.TrimPrefix(dest, "file://")
}

// LoadHistory reads the schema history of schema.table under the local
// destination dest (a path or a file:// URL). A column listed more than once
// (dropped and re-added) is returned once, with its latest appearance. A
// missing file means every column was there from LSN 0: no entries.
func LoadHistory(dest, schema, table string) ([]ColumnHistory, error) {
	path := filepath.Join(localPath(dest), "_cdc2s3", "schema", EscapeName(schema), EscapeName(table)+".json")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("oracle: %w", err)
	}
	var h historyFile
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("oracle: schema history %s: %w", path, err)
	}
	if h.Version != 1 {
		return nil, fmt.Errorf("oracle: schema history %s: version %d, want 1", path, h.Version)
	}
	var out []ColumnHistory
	at := map[string]int{}
	for _, c := range h.Columns {
		e := ColumnHistory{Name: c.Name, AddedLSN: pglogrepl.LSN(c.AddedLSN), AddedSeq: c.AddedSeq, Missing: c.Missing}
		if i, ok := at[c.Name]; ok {
			if e.AddedLSN > out[i].AddedLSN || e.AddedLSN == out[i].AddedLSN && e.AddedSeq >= out[i].AddedSeq {
				out[i] = e
			}
			continue
		}
		at[c.Name] = len(out)
		out = append(out, e)
	}
	return out, nil
}
