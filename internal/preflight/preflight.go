// Package preflight checks what cdc2s3 needs from a PostgreSQL server and a
// destination before it starts, and reports every problem at once, each
// with its fix: wal_level, slot and WAL sender headroom, the role, the
// publication and its tables, the replication slot and the WAL it holds,
// and whether the destination is reachable and writable.
//
// Checks only read. The source session is read-only (a stray write would
// fail), and the one object written to the destination, to prove that it
// is writable, is deleted again.
package preflight

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/source"
)

// Status is the outcome of one check.
type Status string

// The outcomes, from best to worst. Only Fail makes a start fail; Warn
// names something that works but loses data or may fill a disk; Info is
// worth knowing.
const (
	OK   Status = "ok"
	Info Status = "info"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Result is the outcome of one check: what was found and, unless it is OK,
// what to do about it.
type Result struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Names of the checks, as Result.Name carries them.
const (
	NameConnect           = "connect"
	NameWALLevel          = "wal_level"
	NameSlotHeadroom      = "max_replication_slots"
	NameSenderHeadroom    = "max_wal_senders"
	NameRole              = "role"
	NameReplConn          = "replication_connection"
	NamePublication       = "publication"
	NameTables            = "tables"
	NamePublicationTables = "publication_tables"
	NamePublishedSubsets  = "published_subsets"
	NameSelect            = "select_privilege"
	NameReplicaIdentity   = "replica_identity"
	NameTOAST             = "toast"
	NameTypes             = "column_types"
	NameArrays            = "array_columns"
	NameColumnNames       = "column_names"
	NameSlot              = "slot"
	NameKeepSize          = "max_slot_wal_keep_size"
	NameInactiveSlots     = "inactive_slots"
	NameDest              = "destination"
	NameDestWrite         = "destination_write"
	NameConditionalWrite  = "conditional_write"
	NameBucketRegion      = "bucket_region"
	NameBucketEncryption  = "bucket_encryption"
	NameState             = "destination_state"
	NameStart             = "next_start"
)

// Options say what to check: the same values cdc2s3 run would get.
type Options struct {
	Source      string   // PostgreSQL connection string; "" skips the source checks
	Dest        string   // --dest; "" skips the destination checks
	PathStyle   bool     // --s3-path-style
	Publication string   // --publication
	Slot        string   // --slot
	Tables      []string // --tables: the tables of a publication cdc2s3 would create
	// ArraysAsText is --arrays-as-text: array columns are written as text.
	ArraysAsText bool
}

// slotName is the rule cdc2s3 run applies to --slot.
var slotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// Run runs every check that opts allow and returns the results in a fixed
// order: source, destination, then what the next start would do. It never
// fails as a whole: a check that cannot run is itself a failed result.
func Run(ctx context.Context, o Options) []Result {
	var rs []Result
	var slot *source.Slot
	sourceOK := false
	if o.Source != "" {
		var srs []Result
		srs, slot, sourceOK = Source(ctx, o)
		rs = append(rs, srs...)
	}
	var st lsnstore.State
	haveState, destOK := false, false
	if o.Dest != "" {
		var drs []Result
		drs, st, haveState, destOK = Destination(ctx, o)
		rs = append(rs, drs...)
	}
	if sourceOK && destOK {
		rs = append(rs, Plan(o, slot, st, haveState))
	}
	return rs
}

// Source connects to o.Source in a read-only session and runs the source
// checks. It returns the replication slot o.Slot (nil when missing) and
// whether the slot could be looked up, which Plan needs.
func Source(ctx context.Context, o Options) ([]Result, *source.Slot, bool) {
	conn, srv, r := connect(ctx, o.Source)
	rs := []Result{r}
	if conn == nil {
		return rs, nil, false
	}
	defer conn.Close(context.WithoutCancel(ctx))

	rs = append(rs, WALLevel(ctx, conn), checkRole(srv))
	var slot *source.Slot
	slotOK := false
	if !slotName.MatchString(o.Slot) {
		rs = append(rs, Result{Name: NameSlot, Status: Fail,
			Detail: fmt.Sprintf("invalid slot name %q", o.Slot),
			Fix:    "use 1 to 63 lower-case letters, digits and underscores in --slot"})
	} else {
		var err error
		if slot, err = source.LookupSlot(ctx, conn, o.Slot); err != nil {
			rs = append(rs, queryFailed(NameSlot, err))
		} else {
			slotOK = true
			rs = append(rs, SlotState(o.Slot, slot))
		}
	}
	rs = append(rs, SlotHeadroom(ctx, conn, slot), SenderHeadroom(ctx, conn, slot))
	if srv.superuser || srv.replication || srv.rds {
		rs = append(rs, ReplicationConnection(ctx, o.Source))
	}

	pr, pub := checkPublication(ctx, conn, srv, o)
	rs = append(rs, pr)
	if pub != nil {
		tables, tr := checkTables(ctx, conn, pub, o)
		rs = append(rs, tr)
		for _, r := range []*Result{checkPublicationTables(ctx, conn, pub, o), checkPublishedSubsets(ctx, conn, pub)} {
			if r != nil {
				rs = append(rs, *r)
			}
		}
		if len(tables) > 0 {
			rs = append(rs, checkPrivileges(srv, tables), checkReplicaIdentity(ctx, conn, tables), checkTOAST(ctx, conn, tables))
			rs = append(rs, checkColumnTypes(ctx, conn, tables, o.ArraysAsText)...)
		}
	}
	rs = append(rs, KeepSize(ctx, conn), InactiveSlots(ctx, conn, o.Slot))
	return rs, slot, slotOK
}

// Failed reports how many results failed and how many warn.
func Failed(rs []Result) (fails, warns int) {
	for _, r := range rs {
		switch r.Status {
		case Fail:
			fails++
		case Warn:
			warns++
		}
	}
	return fails, warns
}

// queryFailed is the result of a check whose query failed.
func queryFailed(name string, err error) Result {
	return Result{Name: name, Status: Fail, Detail: "cannot check: " + oneLine(err.Error()),
		Fix: "make sure the role may read the catalog views (pg_replication_slots, pg_stat_replication, pg_publication)"}
}

// oneLine joins the lines of s, so a result prints on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// quoteIdent quotes an SQL identifier for a fix the user can paste.
func quoteIdent(parts ...string) string {
	return pgx.Identifier(parts).Sanitize()
}

// quoteLiteral quotes an SQL string literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// listNames joins names for a detail, at most max of them, then "and N
// more".
func listNames(names []string, max int) string {
	if len(names) <= max {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:max], ", "), len(names)-max)
}

// FormatBytes prints a byte count with a binary unit: "512 B", "1.5 MiB".
func FormatBytes(n int64) string {
	if n < 0 {
		return "-" + FormatBytes(-n)
	}
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, unit := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v /= 1024
		if v < 1024 || unit == "TiB" {
			return fmt.Sprintf("%.1f %s", v, unit)
		}
	}
	return "" // not reached
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails on the platforms Go supports
	return hex.EncodeToString(b)
}
