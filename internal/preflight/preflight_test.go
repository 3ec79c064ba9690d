package preflight

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pglogrepl"

	"github.com/cdc2s3/cdc2s3/internal/testenv"
	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink/localfs"
	"github.com/cdc2s3/cdc2s3/source"
)

// find returns the result named name.
func find(t *testing.T, rs []Result, name string) Result {
	t.Helper()
	for _, r := range rs {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no %q result in %+v", name, rs)
	return Result{}
}

// want fails t unless r has status and its detail contains every phrase.
func want(t *testing.T, r Result, status Status, phrases ...string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s: status %s, want %s: %s", r.Name, r.Status, status, r.Detail)
	}
	for _, p := range phrases {
		if !strings.Contains(r.Detail+" fix: "+r.Fix, p) {
			t.Errorf("%s does not say %q: %s (fix: %s)", r.Name, p, r.Detail, r.Fix)
		}
	}
	if r.Status != OK && r.Status != Info && r.Fix == "" {
		t.Errorf("%s: %s without a fix", r.Name, r.Status)
	}
}

func TestCheckPlan(t *testing.T) {
	o := Options{Slot: "s", Publication: "p"}
	slot := &source.Slot{Name: "s", ConfirmedFlushLSN: 0x100}
	done := lsnstore.State{Slot: "s", Publication: "p", SnapshotDone: true, Checkpoint: 0x100}
	for _, c := range []struct {
		name      string
		slot      *source.Slot
		st        lsnstore.State
		haveState bool
		status    Status
		phrase    string
	}{
		{"resume", slot, done, true, OK, "resumes streaming"},
		{"unfinished load", slot, lsnstore.State{Slot: "s"}, true, Info, "starts a new full load"},
		{"first start", nil, lsnstore.State{}, false, OK, "creates slot s"},
		{"first start after an unfinished load", nil, lsnstore.State{Slot: "s"}, true, OK, "creates slot s"},
		{"lost slot", nil, done, true, Fail, "new --dest"},
		{"lost slot, other name", nil, lsnstore.State{Slot: "t", SnapshotDone: true}, true, Fail, "--slot t"},
		{"foreign slot, no state", slot, lsnstore.State{}, false, Fail, "choose another --slot"},
		{"foreign slot, other state", slot, lsnstore.State{Slot: "t", SnapshotDone: true}, true, Fail, "state of slot t"},
	} {
		t.Run(c.name, func(t *testing.T) {
			want(t, Plan(o, c.slot, c.st, c.haveState), c.status, c.phrase)
		})
	}
}

func TestCheckSlotState(t *testing.T) {
	ok := source.Slot{Name: "s", Type: "logical", Plugin: "pgoutput", Here: true, WALStatus: "reserved", LagBytes: 2048, RetainedBytes: 4096}
	with := func(f func(*source.Slot)) *source.Slot {
		s := ok
		f(&s)
		return &s
	}
	want(t, SlotState("s", nil), Info, "does not exist")
	want(t, SlotState("s", &ok), OK, "inactive", "2.0 KiB behind", "retains 4.0 KiB")
	want(t, SlotState("s", with(func(s *source.Slot) { s.Active, s.PID = true, 42 })), Info, "active (PID 42)")
	want(t, SlotState("s", with(func(s *source.Slot) { s.Here, s.Database = false, "other" })), Fail, "database other", "another --slot")
	want(t, SlotState("s", with(func(s *source.Slot) { s.Plugin = "wal2json" })), Fail, "not a pgoutput")
	want(t, SlotState("s", with(func(s *source.Slot) { s.Type, s.Plugin = "physical", "" })), Fail, "physical")
	want(t, SlotState("s", with(func(s *source.Slot) { s.WALStatus = "lost" })), Fail, "invalidated", "cdc2s3 drop")
	want(t, SlotState("s", with(func(s *source.Slot) { s.WALStatus = "unreserved" })), Warn, "max_slot_wal_keep_size")
}

func TestCheckHeadroom(t *testing.T) {
	want(t, headroom("x", "slots", 10, 10, true, "raise it"), Fail, "10 of 10", "0 free", "raise it")
	want(t, headroom("x", "slots", 10, 9, true, "raise it"), Warn, "last one")
	want(t, headroom("x", "slots", 10, 2, true, "raise it"), OK, "8 free")
	want(t, headroom("x", "slots", 10, 10, false, "raise it"), OK, "has its own")
}

func TestCheckFormatting(t *testing.T) {
	for n, s := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 30: "5.0 GiB", -2048: "-2.0 KiB"} {
		if got := FormatBytes(n); got != s {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, s)
		}
	}
	if got := listNames([]string{"a", "b", "c"}, 2); got != "a, b and 1 more" {
		t.Errorf("listNames = %q", got)
	}
	if got := quoteIdent("public", `we"ird`); got != `"public"."we""ird"` {
		t.Errorf("quoteIdent = %q", got)
	}
	if f, w := Failed([]Result{{Status: OK}, {Status: Warn}, {Status: Fail}, {Status: Fail}, {Status: Info}}); f != 2 || w != 1 {
		t.Errorf("Failed = %d, %d", f, w)
	}
}

// TestCheckDestinationLocal checks a local directory: a new one is tested and
// removed again, one below a file cannot be created, a destination with a
// state is reported, and objects without a state warn.
func TestCheckDestinationLocal(t *testing.T) {
	ctx := context.Background()

	fresh := filepath.Join(t.TempDir(), "a", "b")
	rs, _, haveState, ok := Destination(ctx, Options{Dest: fresh})
	if !ok || haveState {
		t.Fatalf("ok %t, haveState %t: %+v", ok, haveState, rs)
	}
	want(t, find(t, rs, NameDest), OK, "does not exist yet")
	want(t, find(t, rs, NameDestWrite), OK, CheckKeyPrefix)
	want(t, find(t, rs, NameConditionalWrite), OK)
	want(t, find(t, rs, NameState), Info, "no cdc2s3 state")
	if _, err := os.Stat(filepath.Dir(fresh)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the check left %s behind: %v", filepath.Dir(fresh), err)
	}

	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rs, _, _, ok = Destination(ctx, Options{Dest: file})
	if ok {
		t.Errorf("a file as destination is ok: %+v", rs)
	}
	want(t, find(t, rs, NameDest), Fail, "not a directory")
	rs, _, _, _ = Destination(ctx, Options{Dest: filepath.Join(file, "sub")})
	want(t, find(t, rs, NameDest), Fail, "cannot create or write")
	rs, _, _, _ = Destination(ctx, Options{Dest: "ftp://x"})
	want(t, find(t, rs, NameDest), Fail, "--dest")

	dir := t.TempDir()
	store, err := localfs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "stray.parquet"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	rs, _, _, _ = Destination(ctx, Options{Dest: dir})
	want(t, find(t, rs, NameState), Warn, "1 other object")

	st := lsnstore.State{Slot: "s", Publication: "p", SnapshotDone: true, SnapshotLSN: 0x10, Checkpoint: pglogrepl.LSN(0x20)}
	if err := lsnstore.New(store).Save(ctx, st); err != nil {
		t.Fatal(err)
	}
	rs, got, haveState, ok := Destination(ctx, Options{Dest: dir, Slot: "s", Publication: "q"})
	if !ok || !haveState || got.Checkpoint != 0x20 || got.Slot != "s" {
		t.Fatalf("state %+v, haveState %t, ok %t", got, haveState, ok)
	}
	want(t, find(t, rs, NameState), Warn, "full load done", "checkpoint 0/20", "--publication p")
	objs, err := store.List(ctx, CheckKeyPrefix)
	if err != nil || len(objs) != 0 {
		t.Errorf("check objects left: %v (%v)", objs, err)
	}
}

// TestCheckSource runs the source checks against a real server: partitioned
// tables judged by their partitions, domains followed to their base type,
// and a check that leaves the server as it was.
func TestCheckSource(t *testing.T) {
	ctx := context.Background()
	pg := testenv.NewPostgres(t)
	if err := pg.Exec(ctx, "postgres", `
		CREATE DOMAIN span AS int4range;
		CREATE TABLE events (at date, payload jsonb) PARTITION BY RANGE (at);
		CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
		CREATE TABLE events_2027 PARTITION OF events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
		ALTER TABLE events_2027 REPLICA IDENTITY FULL;
		CREATE TABLE keyed (id int PRIMARY KEY, code varchar(20), s span, u uuid, tags text[]);
		CREATE UNIQUE INDEX keyed_code ON keyed (code);
		ALTER TABLE keyed ALTER code SET NOT NULL;
		ALTER TABLE keyed REPLICA IDENTITY USING INDEX keyed_code;
		CREATE TABLE quiet (id int PRIMARY KEY, v int);
		ALTER TABLE quiet REPLICA IDENTITY NOTHING;`); err != nil {
		t.Fatal(err)
	}
	rs, slot, ok := Source(ctx, Options{Source: pg.DSN("postgres"), Slot: "pf", Publication: "pf"})
	if !ok || slot != nil {
		t.Fatalf("slot %+v, ok %t", slot, ok)
	}
	for _, r := range rs {
		t.Logf("%-4s %-22s %s", r.Status, r.Name, r.Detail)
	}
	ri := find(t, rs, NameReplicaIdentity)
	want(t, ri, Warn, "public.events_2026", "REPLICA IDENTITY NOTHING", "public.quiet", "other than the primary key", "public.keyed",
		`ALTER TABLE "public"."events_2026" REPLICA IDENTITY FULL`, `ALTER TABLE "public"."quiet" REPLICA IDENTITY DEFAULT`)
	if strings.Contains(ri.Detail, "events_2027") {
		t.Errorf("a partition with REPLICA IDENTITY FULL is named: %s", ri.Detail)
	}
	want(t, find(t, rs, NameTypes), Info, "public.keyed.s (span)")
	if r := find(t, rs, NameTypes); strings.Contains(r.Detail, "keyed.u") || strings.Contains(r.Detail, "payload") {
		t.Errorf("uuid or jsonb named as text to parse: %s", r.Detail)
	}
	want(t, find(t, rs, NameArrays), Info, "public.keyed.tags (text[])")
	// events has no primary key, quiet no TOASTable column, and keyed's
	// short varchar never reaches the TOAST threshold.
	want(t, find(t, rs, NameTOAST), Info, "1 table(s)", "public.keyed (s, tags)")
	want(t, find(t, rs, NameTables), OK, "public.events", "public.keyed", "public.quiet")
	if r := find(t, rs, NameTables); strings.Contains(r.Detail, "events_2026") {
		t.Errorf("a partition is listed as a table of its own: %s", r.Detail)
	}

	// --arrays-as-text writes arrays as text, which keeps their shape.
	rs, _, _ = Source(ctx, Options{Source: pg.DSN("postgres"), Slot: "pf", Publication: "pf", Tables: []string{"keyed"}, ArraysAsText: true})
	want(t, find(t, rs, NameArrays), OK, "--arrays-as-text")
	want(t, find(t, rs, NameTables), OK, "1 table(s) named by --tables")

	conn, err := pg.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	// An existing publication with a column list and a row filter, and a
	// --tables that disagrees with it: what run refuses, check fails.
	if _, err := conn.Exec(ctx, `CREATE PUBLICATION part FOR TABLE keyed (id, code) WHERE (code <> 'x')`); err != nil {
		t.Fatal(err)
	}
	rs, _, _ = Source(ctx, Options{Source: pg.DSN("postgres"), Slot: "pf", Publication: "part", Tables: []string{"keyed", "quiet"}})
	want(t, find(t, rs, NamePublicationTables), Fail, "not published: public.quiet", `ALTER PUBLICATION "part" SET TABLE "public"."keyed", "public"."quiet"`)
	want(t, find(t, rs, NamePublishedSubsets), Info, "public.keyed (columns id, code; rows WHERE ((code)::text <> 'x'::text))")
	rs, _, _ = Source(ctx, Options{Source: pg.DSN("postgres"), Slot: "pf", Publication: "part", Tables: []string{"keyed"}})
	want(t, find(t, rs, NamePublicationTables), OK, "exactly the 1 table(s)")
	if _, err := conn.Exec(ctx, `DROP PUBLICATION part`); err != nil {
		t.Fatal(err)
	}
	var slots, pubs int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_replication_slots), (SELECT count(*) FROM pg_publication)`).Scan(&slots, &pubs); err != nil {
		t.Fatal(err)
	}
	if slots != 0 || pubs != 0 {
		t.Errorf("the check left %d slot(s) and %d publication(s)", slots, pubs)
	}

	// A slot cdc2s3 would use, looked up with its distances.
	if _, err := conn.Exec(ctx, `SELECT pg_create_logical_replication_slot('pf', 'pgoutput')`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO quiet VALUES (1, 1)`); err != nil {
		t.Fatal(err)
	}
	s, err := source.LookupSlot(ctx, conn, "pf")
	if err != nil || s == nil {
		t.Fatalf("LookupSlot: %+v, %v", s, err)
	}
	if !s.Here || s.Active || s.Plugin != "pgoutput" || s.LagBytes <= 0 || s.RetainedBytes < s.LagBytes ||
		int64(s.CurrentLSN-s.ConfirmedFlushLSN) != s.LagBytes || int64(s.CurrentLSN-s.RestartLSN) != s.RetainedBytes {
		t.Errorf("slot %+v", s)
	}
	if missing, err := source.LookupSlot(ctx, conn, "nope"); missing != nil || err != nil {
		t.Errorf("source.LookupSlot(nope) = %+v, %v", missing, err)
	}
}
