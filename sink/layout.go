package sink

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pglogrepl"
)

// StatePrefix is the folder of the tool's own state (contract §1): never
// inside a table folder, so a query over a table folder reads data only.
const StatePrefix = "_cdc2s3/"

// EscapeName percent-encodes the two characters a folder name cannot keep
// as they are ('%' and '/'); every other character stays as PostgreSQL
// spells it.
func EscapeName(s string) string {
	if !strings.ContainsAny(s, "%/") {
		return s
	}
	s = strings.ReplaceAll(s, "%", "%25")
	return strings.ReplaceAll(s, "/", "%2F")
}

// ErrReservedName is returned for a table whose folder cannot be written:
// a schema or table named "." or "..", or the schema named like the
// tool's own state folder.
var ErrReservedName = errors.New("reserved name")

// CheckTableName returns an error wrapping ErrReservedName, with the fix,
// when the table schema.table cannot have a folder of its own (contract
// §1: "." and ".." are not folder names in S3 keys or on disk, and
// _cdc2s3/ holds the tool's state, so a table there would overwrite it).
func CheckTableName(schema, table string) error {
	bad := func(s string) bool { return s == "" || s == "." || s == ".." }
	if !bad(schema) && !bad(table) && schema+"/" != StatePrefix {
		return nil
	}
	why := `"." and ".." cannot be folder names`
	if schema+"/" == StatePrefix {
		why = "the folder " + StatePrefix + " holds cdc2s3's own state"
	}
	return fmt.Errorf("%w: table %q.%q cannot be written: %s; rename it (ALTER TABLE ... RENAME, ALTER SCHEMA ... RENAME) or leave it out of the publication and --tables",
		ErrReservedName, schema, table, why)
}

// TableDir returns the folder of a table, with a trailing '/'.
func TableDir(schema, table string) string {
	return EscapeName(schema) + "/" + EscapeName(table) + "/"
}

// LoadKey returns the key of the n-th (1-based) full-load file of a table:
// LOAD00000001.parquet, as AWS DMS names them.
func LoadKey(schema, table string, n int) string {
	return fmt.Sprintf("%sLOAD%08X.parquet", TableDir(schema, table), n)
}

// IsLoadKey reports whether key names a full-load file.
func IsLoadKey(key string) bool {
	name := key[strings.LastIndexByte(key, '/')+1:]
	return strings.HasPrefix(name, "LOAD") && strings.HasSuffix(name, ".parquet")
}

// Pos is a position in a table's change stream: the end LSN of a commit
// and the row's sequence number within that transaction. Positions order
// CDC rows exactly as the contract's (_cdc_lsn, _cdc_seq).
type Pos struct {
	LSN pglogrepl.LSN
	Seq uint64
}

// Less reports whether p comes before q.
func (p Pos) Less(q Pos) bool { return p.LSN < q.LSN || (p.LSN == q.LSN && p.Seq < q.Seq) }

// String prints the position as LSN/seq in hex, the form used in keys.
func (p Pos) String() string { return fmt.Sprintf("%016X%08X", uint64(p.LSN), p.Seq) }

// CDCKey returns the key of a change file holding the rows from first to
// last, both included: CDC-<first>-<last>.parquet with fixed-width hex, so
// a listing sorts in commit order and tells what is already uploaded.
func CDCKey(schema, table string, first, last Pos) string {
	return fmt.Sprintf("%sCDC-%s-%s.parquet", TableDir(schema, table), first, last)
}

// ParseCDCKey returns the positions a change file's key carries.
func ParseCDCKey(key string) (first, last Pos, ok bool) {
	name := key[strings.LastIndexByte(key, '/')+1:]
	if len(name) != 4+24+1+24+8 || !strings.HasPrefix(name, "CDC-") || !strings.HasSuffix(name, ".parquet") || name[28] != '-' {
		return Pos{}, Pos{}, false
	}
	var err error
	if first, err = parsePos(name[4:28]); err != nil {
		return Pos{}, Pos{}, false
	}
	if last, err = parsePos(name[29:53]); err != nil {
		return Pos{}, Pos{}, false
	}
	return first, last, true
}

func parsePos(s string) (Pos, error) {
	lsn, err := strconv.ParseUint(s[:16], 16, 64)
	if err != nil {
		return Pos{}, err
	}
	seq, err := strconv.ParseUint(s[16:], 16, 32)
	return Pos{LSN: pglogrepl.LSN(lsn), Seq: seq}, err
}
