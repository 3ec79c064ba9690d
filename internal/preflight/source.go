package preflight

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/cdc2s3/cdc2s3/source"
)

// checkTimeout bounds each catalog query of a check, so a check never
// hangs on a lock.
const checkTimeout = "30s"

// server is what the checks need to know about the server and the role.
type server struct {
	version     string
	versionNum  int
	db, user    string
	inRecovery  bool
	superuser   bool
	replication bool // the REPLICATION attribute
	rds         bool // member of rds_replication (RDS, Aurora)
	canCreate   bool // CREATE on the database, which CREATE PUBLICATION needs
}

// connect opens a read-only session and reads the server facts.
func connect(ctx context.Context, dsn string) (*pgx.Conn, *server, Result) {
	r := Result{Name: NameConnect}
	conn, err := source.Connect(ctx, dsn)
	if err != nil {
		r.Status, r.Detail = Fail, source.Redact(oneLine(err.Error()))
		r.Fix = "fix --source (host, port, database, user, password) or the server's pg_hba.conf"
		return nil, nil, r
	}
	fail := func(err error) (*pgx.Conn, *server, Result) {
		conn.Close(context.WithoutCancel(ctx))
		r.Status, r.Detail = Fail, "cannot read the server's settings: "+source.Redact(oneLine(err.Error()))
		return nil, nil, r
	}
	// Checks only read; with a read-only session a mistake cannot write.
	if _, err := conn.Exec(ctx, "SET default_transaction_read_only = on; SET statement_timeout = '"+checkTimeout+"'"); err != nil {
		return fail(err)
	}
	srv := &server{}
	err = conn.QueryRow(ctx, `
		SELECT current_setting('server_version'), current_setting('server_version_num')::int,
		       current_database(), current_user, pg_is_in_recovery(),
		       r.rolsuper, r.rolreplication,
		       EXISTS (SELECT 1 FROM pg_roles x WHERE x.rolname = 'rds_replication' AND pg_has_role(current_user, x.oid, 'member')),
		       has_database_privilege(current_database(), 'CREATE')
		FROM pg_roles r WHERE r.rolname = current_user`).
		Scan(&srv.version, &srv.versionNum, &srv.db, &srv.user, &srv.inRecovery,
			&srv.superuser, &srv.replication, &srv.rds, &srv.canCreate)
	if err != nil {
		return fail(err)
	}
	r.Status = OK
	r.Detail = fmt.Sprintf("PostgreSQL %s, database %s, user %s", srv.version, srv.db, srv.user)
	switch {
	case srv.versionNum < 130000:
		r.Status = Fail
		r.Detail += ": cdc2s3 needs PostgreSQL 13 or later (publish_via_partition_root)"
		r.Fix = "upgrade PostgreSQL"
	case srv.inRecovery && srv.versionNum < 160000:
		r.Status = Fail
		r.Detail += ": the server is a standby, and before PostgreSQL 16 logical decoding runs only on the primary"
		r.Fix = "point --source at the primary"
	case srv.inRecovery:
		r.Status = Warn
		r.Detail += ": the server is a standby"
		r.Fix = "create the publication on the primary and set hot_standby_feedback = on on the standby, or point --source at the primary"
	}
	return conn, srv, r
}

// WALLevel checks that the server writes logical WAL.
func WALLevel(ctx context.Context, conn *pgx.Conn) Result {
	var level string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		return queryFailed(NameWALLevel, err)
	}
	if level != "logical" {
		return Result{Name: NameWALLevel, Status: Fail,
			Detail: fmt.Sprintf("wal_level is %s: logical decoding needs logical", level),
			Fix:    "set wal_level = logical in postgresql.conf (on RDS and Aurora: the parameter rds.logical_replication = 1) and restart PostgreSQL"}
	}
	return Result{Name: NameWALLevel, Status: OK, Detail: "wal_level is logical"}
}

// checkRole checks that the role may replicate: the REPLICATION attribute,
// membership in rds_replication, or superuser.
func checkRole(srv *server) Result {
	r := Result{Name: NameRole, Status: OK}
	switch {
	case srv.superuser:
		r.Detail = fmt.Sprintf("user %s is a superuser", srv.user)
	case srv.replication:
		r.Detail = fmt.Sprintf("user %s has the REPLICATION attribute", srv.user)
	case srv.rds:
		r.Detail = fmt.Sprintf("user %s is a member of rds_replication", srv.user)
	default:
		u := quoteIdent(srv.user)
		r.Status = Fail
		r.Detail = fmt.Sprintf("user %s lacks the REPLICATION attribute: it cannot create or read a replication slot", srv.user)
		r.Fix = fmt.Sprintf("ALTER ROLE %s REPLICATION; (on RDS and Aurora: GRANT rds_replication TO %s;)", u, u)
	}
	return r
}

// ReplicationConnection opens a replication connection (replication =
// database) the way cdc2s3 run does, which pg_hba.conf must allow
// separately from normal connections, and closes it again.
func ReplicationConnection(ctx context.Context, dsn string) Result {
	conn, err := source.ConnectReplication(ctx, dsn)
	if err != nil {
		return Result{Name: NameReplConn, Status: Fail,
			Detail: "cannot open a replication connection: " + source.Redact(oneLine(err.Error())),
			Fix:    "allow the user replication connections to this database in pg_hba.conf (a line for database \"replication\" does not cover logical replication connections; use the database name or \"all\") and give it REPLICATION"}
	}
	defer conn.Close(context.WithoutCancel(ctx))
	sys, err := pglogrepl.IdentifySystem(ctx, conn)
	if err != nil {
		return Result{Name: NameReplConn, Status: Fail,
			Detail: "replication connection opened, but IDENTIFY_SYSTEM failed: " + source.Redact(oneLine(err.Error())),
			Fix:    "give the user REPLICATION"}
	}
	return Result{Name: NameReplConn, Status: OK,
		Detail: fmt.Sprintf("replication connection works (system %s, timeline %d)", sys.SystemID, sys.Timeline)}
}

// SlotHeadroom checks that a replication slot is free for cdc2s3 unless its
// slot exists already.
func SlotHeadroom(ctx context.Context, conn *pgx.Conn, slot *source.Slot) Result {
	var max, used int
	err := conn.QueryRow(ctx, `SELECT current_setting('max_replication_slots')::int, (SELECT count(*) FROM pg_replication_slots)::int`).Scan(&max, &used)
	if err != nil {
		return queryFailed(NameSlotHeadroom, err)
	}
	return headroom(NameSlotHeadroom, "replication slots", max, used, slot == nil,
		"raise max_replication_slots (needs a restart) or drop slots nothing uses (see "+NameInactiveSlots+")")
}

// SenderHeadroom checks that a WAL sender is free for cdc2s3, unless its
// slot is active (then a running cdc2s3 has its sender already).
func SenderHeadroom(ctx context.Context, conn *pgx.Conn, slot *source.Slot) Result {
	var max, used int
	err := conn.QueryRow(ctx, `SELECT current_setting('max_wal_senders')::int, (SELECT count(*) FROM pg_stat_replication)::int`).Scan(&max, &used)
	if err != nil {
		return queryFailed(NameSenderHeadroom, err)
	}
	return headroom(NameSenderHeadroom, "WAL senders", max, used, slot == nil || !slot.Active,
		"raise max_wal_senders (needs a restart) or stop replication clients nothing uses")
}

// headroom judges max against used when cdc2s3 needs one more (need).
func headroom(name, what string, max, used int, need bool, fix string) Result {
	free := max - used
	detail := fmt.Sprintf("%d of %d %s in use, %d free", used, max, what, free)
	switch {
	case need && free < 1:
		return Result{Name: name, Status: Fail, Detail: detail + "; cdc2s3 needs one", Fix: fix}
	case need && free == 1:
		return Result{Name: name, Status: Warn, Detail: detail + "; cdc2s3 takes the last one, leaving none for anything else", Fix: fix}
	case need:
		return Result{Name: name, Status: OK, Detail: detail + "; cdc2s3 needs one"}
	}
	return Result{Name: name, Status: OK, Detail: detail + "; cdc2s3 has its own already"}
}

// KeepSize reports max_slot_wal_keep_size: unlimited means a slot nobody
// consumes can fill the disk; a limit means such a slot is invalidated.
func KeepSize(ctx context.Context, conn *pgx.Conn) Result {
	var v string
	if err := conn.QueryRow(ctx, "SHOW max_slot_wal_keep_size").Scan(&v); err != nil {
		return queryFailed(NameKeepSize, err)
	}
	if v == "-1" {
		return Result{Name: NameKeepSize, Status: Warn,
			Detail: "max_slot_wal_keep_size is -1 (unlimited): a slot that nobody consumes (cdc2s3 stopped or stuck) keeps WAL until the disk is full",
			Fix:    "set max_slot_wal_keep_size to what the disk can spare (a reload is enough) and watch the slot with cdc2s3 status; a slot that falls further behind is invalidated and needs a new full load"}
	}
	return Result{Name: NameKeepSize, Status: Info,
		Detail: fmt.Sprintf("max_slot_wal_keep_size is %s: a slot that falls further behind is invalidated, and cdc2s3 then needs a new full load into a new destination", v)}
}

// InactiveSlots warns about slots other than ours that nobody consumes:
// each keeps WAL from its restart_lsn on.
func InactiveSlots(ctx context.Context, conn *pgx.Conn, ours string) Result {
	slots, err := source.IdleSlots(ctx, conn, ours)
	if err != nil {
		return queryFailed(NameInactiveSlots, err)
	}
	if len(slots) == 0 {
		return Result{Name: NameInactiveSlots, Status: OK, Detail: "no other inactive replication slots"}
	}
	var names, fixes []string
	var total int64
	for _, s := range slots {
		total += s.RetainedBytes
		n := fmt.Sprintf("%s (%s, retains %s)", s.Name, s.Type, FormatBytes(s.RetainedBytes))
		if !s.Here {
			n = fmt.Sprintf("%s (%s in database %s, retains %s)", s.Name, s.Type, s.Database, FormatBytes(s.RetainedBytes))
		}
		names = append(names, n)
		if len(fixes) < 10 {
			fixes = append(fixes, fmt.Sprintf("SELECT pg_drop_replication_slot(%s);", quoteLiteral(s.Name)))
		}
	}
	if len(slots) > len(fixes) {
		fixes = append(fixes, fmt.Sprintf("(and %d more of the same)", len(slots)-len(fixes)))
	}
	fix := "drop the slots that nothing uses any more (a logical slot from its own database): " + strings.Join(fixes, " ")
	// Every name: they are what the user has to act on.
	return Result{Name: NameInactiveSlots, Status: Warn,
		Detail: fmt.Sprintf("%d other inactive replication slot(s) hold %s of WAL: %s", len(slots), FormatBytes(total), strings.Join(names, ", ")),
		Fix:    fix}
}

// publication is what Publication found.
type publication struct {
	name      string
	exists    bool
	allTables bool
	viaRoot   bool
	ops       []string // operations published
	tables    int      // rows in pg_publication_tables
}

// checkPublication checks the publication: when it exists, that it publishes
// every operation and partitions via their root; when not, that cdc2s3 may
// create it. It returns nil when the publication cannot be looked up.
func checkPublication(ctx context.Context, conn *pgx.Conn, srv *server, o Options) (Result, *publication) {
	p := &publication{name: o.Publication}
	r := Result{Name: NamePublication}
	found, err := source.LookupPublication(ctx, conn, o.Publication)
	if err != nil {
		return queryFailed(NamePublication, err), nil
	}
	var partitions int
	if found != nil {
		p.exists, p.allTables, p.viaRoot, p.tables, p.ops = true, found.AllTables, found.ViaRoot, found.Tables, found.Operations()
		partitions = found.Partitions
	}
	name := quoteIdent(o.Publication)
	if !p.exists {
		if len(o.Tables) == 0 {
			r.Status, r.Detail = OK, fmt.Sprintf("publication %s does not exist: the first run creates it FOR ALL TABLES WITH (publish_via_partition_root = true)", o.Publication)
			if !srv.superuser {
				r.Status = Fail
				r.Detail += ", which needs a superuser, and user " + srv.user + " is not one"
				r.Fix = fmt.Sprintf("create it as a superuser: CREATE PUBLICATION %s FOR ALL TABLES WITH (publish_via_partition_root = true); or pass --tables with tables user %s owns", name, srv.user)
			}
		} else {
			r.Status, r.Detail = OK, fmt.Sprintf("publication %s does not exist: the first run creates it FOR TABLE the %d --tables WITH (publish_via_partition_root = true), which needs ownership of them (see %s)", o.Publication, len(o.Tables), NameTables)
			if !srv.canCreate && !srv.superuser {
				r.Status = Fail
				r.Detail += ", and the CREATE privilege on the database, which user " + srv.user + " lacks"
				r.Fix = fmt.Sprintf("GRANT CREATE ON DATABASE %s TO %s; or create the publication yourself", quoteIdent(srv.db), quoteIdent(srv.user))
			}
		}
		return r, p
	}
	what := fmt.Sprintf("FOR %d table(s)", p.tables)
	if p.allTables {
		what = fmt.Sprintf("FOR ALL TABLES (%d now)", p.tables)
	}
	r.Status = OK
	r.Detail = fmt.Sprintf("publication %s exists, %s, publishes %s, publish_via_partition_root = %t", o.Publication, what, strings.Join(p.ops, ", "), p.viaRoot)
	var fixes []string
	if len(p.ops) < 4 {
		r.Status = Warn
		r.Detail += ": operations it does not publish are not written"
		fixes = append(fixes, fmt.Sprintf("ALTER PUBLICATION %s SET (publish = 'insert, update, delete, truncate');", name))
	}
	if !p.viaRoot && partitions > 0 {
		r.Status = Warn
		r.Detail += fmt.Sprintf("; %d partition(s) are published under their own names, so each gets its own folder instead of its root's", partitions)
		fixes = append(fixes, fmt.Sprintf("ALTER PUBLICATION %s SET (publish_via_partition_root = true);", name))
	}
	if len(fixes) > 0 {
		r.Fix = strings.Join(fixes, " ") + " (before the first run: an existing destination keeps its folders)"
	}
	return r, p
}
