package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/cdc2s3/cdc2s3/internal/preflight"
	"github.com/cdc2s3/cdc2s3/internal/testenv"
)

// opsTimeout bounds one run of check, status or drop.
const opsTimeout = 60 * time.Second

// runOps runs the binary with args to completion, with the test S3
// server's environment and none of the caller's PG*, AWS_* or CDC2S3_*
// settings, and returns its output and exit code. Stdin is /dev/null.
func runOps(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runOpsAs(t, binary, nil, args...)
}

// runOpsAs is runOps of the binary at bin, as the user cred when it is
// not nil.
func runOpsAs(t *testing.T, bin string, cred *syscall.Credential, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runOpsEnv(t, bin, cred, nil, args...)
}

// runOpsEnv is runOpsAs with extra environment variables, which win.
func runOpsEnv(t *testing.T, bin string, cred *syscall.Credential, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	testenv.Integration(t, needs...) // under -short: no binary, no servers
	ctx, cancel := context.WithTimeout(context.Background(), opsTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "CDC2S3_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, s3Env()...), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("cdc2s3 %s did not exit within %s\nstderr:\n%s", args[0], opsTimeout, errb.String())
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// checkOutput is what check --json prints.
type checkOutput struct {
	OK       bool               `json:"ok"`
	Failed   int                `json:"failed"`
	Warnings int                `json:"warnings"`
	Results  []preflight.Result `json:"results"`
}

// runCheck runs check --json with args and parses its output.
func runCheck(t *testing.T, args ...string) (checkOutput, int) {
	t.Helper()
	stdout, stderr, code := runOps(t, append([]string{"check", "--json"}, args...)...)
	var out checkOutput
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("check --json printed no JSON (%v), exit %d\nstdout:\n%s\nstderr:\n%s", err, code, stdout, stderr)
	}
	for _, r := range out.Results {
		t.Logf("%-4s %-24s %s", r.Status, r.Name, r.Detail)
	}
	if (code != 0) != (out.Failed > 0) || out.OK != (out.Failed == 0) {
		t.Errorf("exit %d with %d failed checks and ok=%t", code, out.Failed, out.OK)
	}
	if code != 0 && !strings.Contains(stderr, "check(s) failed") {
		t.Errorf("stderr does not say that checks failed:\n%s", stderr)
	}
	return out, code
}

// result returns the result named name, failing t when there is none.
func (o checkOutput) result(t *testing.T, name string) preflight.Result {
	t.Helper()
	for _, r := range o.Results {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no %q result", name)
	return preflight.Result{}
}

// expect fails t unless the result named name has status and its detail
// and fix contain the phrases.
func (o checkOutput) expect(t *testing.T, name string, status preflight.Status, detail []string, fix ...string) {
	t.Helper()
	r := o.result(t, name)
	if r.Status != status {
		t.Errorf("%s: status %s, want %s (%s)", name, r.Status, status, r.Detail)
	}
	for _, d := range detail {
		if !strings.Contains(r.Detail, d) {
			t.Errorf("%s: detail does not say %q: %s", name, d, r.Detail)
		}
	}
	for _, f := range fix {
		if !strings.Contains(r.Fix, f) {
			t.Errorf("%s: fix does not say %q: %s", name, f, r.Fix)
		}
	}
}

// slotExists reports whether the cluster of conn has replication slot name.
func slotExists(t *testing.T, conn *pgx.Conn, name string) bool {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// publicationExists reports whether the database of conn has publication
// name.
func publicationExists(t *testing.T, conn *pgx.Conn, name string) bool {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_publication WHERE pubname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// dirFiles lists the files under dir with their sizes and times.
func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, fmt.Sprintf("%s %d %s", path, info.Size(), info.ModTime()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// TestCheckHealthy checks a source and a bucket that are ready: every
// check passes or only warns (max_slot_wal_keep_size is unlimited in the
// test cluster), check exits 0, and neither the server nor the bucket
// keeps anything of the check.
func TestCheckHealthy(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, `CREATE TABLE items (id int PRIMARY KEY, n numeric(10,2))`); err != nil {
		t.Fatal(err)
	}
	if err := s3srv.CreateBucket(ctx, "ops-check"); err != nil {
		t.Fatal(err)
	}
	args := []string{"--source", dsn, "--dest", "s3://ops-check/app", "--slot", "ops_check_ok", "--publication", "ops_check_ok"}
	out, code := runCheck(t, args...)
	if code != 0 {
		t.Fatalf("check exited %d on a ready source and destination", code)
	}
	out.expect(t, preflight.NameConnect, preflight.OK, []string{"PostgreSQL 15"})
	out.expect(t, preflight.NameWALLevel, preflight.OK, []string{"logical"})
	out.expect(t, preflight.NameRole, preflight.OK, []string{"superuser"})
	out.expect(t, preflight.NameReplConn, preflight.OK, nil)
	// Other tests' slots may use up some headroom: a warning at most.
	for _, name := range []string{preflight.NameSlotHeadroom, preflight.NameSenderHeadroom} {
		if r := out.result(t, name); r.Status == preflight.Fail || !strings.Contains(r.Detail, "free") {
			t.Errorf("%s: %s %s", name, r.Status, r.Detail)
		}
	}
	out.expect(t, preflight.NamePublication, preflight.OK, []string{"does not exist", "FOR ALL TABLES"})
	out.expect(t, preflight.NameTables, preflight.OK, []string{"public.items"})
	out.expect(t, preflight.NameSelect, preflight.OK, nil)
	out.expect(t, preflight.NameReplicaIdentity, preflight.OK, nil)
	out.expect(t, preflight.NameSlot, preflight.Info, []string{"does not exist"})
	out.expect(t, preflight.NameKeepSize, preflight.Warn, []string{"-1", "disk"}, "max_slot_wal_keep_size")
	out.expect(t, preflight.NameDest, preflight.OK, []string{"ops-check"})
	out.expect(t, preflight.NameDestWrite, preflight.OK, []string{preflight.CheckKeyPrefix})
	out.expect(t, preflight.NameConditionalWrite, preflight.OK, nil)
	out.result(t, preflight.NameBucketRegion)
	out.expect(t, preflight.NameBucketEncryption, preflight.Info, nil)
	out.expect(t, preflight.NameState, preflight.Info, []string{"no cdc2s3 state"})
	out.expect(t, preflight.NameStart, preflight.OK, []string{"creates slot ops_check_ok"})

	if keys := s3Keys(t, "ops-check", ""); len(keys) != 0 {
		t.Errorf("check left objects in the bucket: %v", keys)
	}
	if slotExists(t, conn, "ops_check_ok") || publicationExists(t, conn, "ops_check_ok") {
		t.Error("check created the slot or the publication")
	}

	// The table for people: one line per check, the fixes below.
	stdout, _, code := runOps(t, append([]string{"check"}, args...)...)
	t.Logf("check:\n%s", stdout)
	if code != 0 || !strings.Contains(stdout, "CHECK") || !strings.Contains(stdout, "WARN") || !strings.Contains(stdout, "fix: ") {
		t.Errorf("check (text) exited %d:\n%s", code, stdout)
	}
}

// TestCheckMisconfigured runs check against servers and destinations set up
// to fail each check, and expects every problem in one report, with its
// fix, and nothing changed on the server.
func TestCheckMisconfigured(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	db := strings.ToLower(t.Name())
	if _, err := conn.Exec(ctx, `
		CREATE TABLE items (id int PRIMARY KEY, doc text, r int4range, pt point, tags int[]);
		CREATE TABLE nokey (a int, b int);
		CREATE TABLE secret (id int PRIMARY KEY);
		CREATE TABLE clash (id int PRIMARY KEY, "ID" int, op text);
		CREATE TABLE fullident (a int);
		ALTER TABLE fullident REPLICA IDENTITY FULL;`); err != nil {
		t.Fatal(err)
	}
	// A login role without REPLICATION that may read every table but one.
	const role, rolePassword = "ops_check_role", "OpsCheckPw-4b1d9e"
	if err := pg.Exec(ctx, db, fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s'; GRANT SELECT ON items, nokey, clash, fullident TO %s`, role, rolePassword, role)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pg.Exec(context.Background(), db, "DROP OWNED BY "+role+"; DROP ROLE "+role); err != nil {
			t.Error(err)
		}
	})
	roleDSN := fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", role, rolePassword, pg.Port(), db)
	// A slot that nobody consumes.
	if _, err := conn.Exec(ctx, `SELECT pg_create_logical_replication_slot('ops_check_idle', 'pgoutput')`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := conn.Exec(context.Background(), `SELECT pg_drop_replication_slot('ops_check_idle')`); err != nil {
			t.Error(err)
		}
	})

	t.Run("role and tables", func(t *testing.T) {
		out, code := runCheck(t, "--source", roleDSN, "--dest", "s3://ops-no-such-bucket/x", "--slot", "ops_check_slot", "--publication", "ops_check_pub")
		if code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		out.expect(t, preflight.NameWALLevel, preflight.OK, nil)
		out.expect(t, preflight.NameRole, preflight.Fail, []string{role, "REPLICATION"}, "ALTER ROLE", "REPLICATION", "rds_replication")
		out.expect(t, preflight.NamePublication, preflight.Fail, []string{"FOR ALL TABLES", "superuser"}, "CREATE PUBLICATION", "--tables")
		out.expect(t, preflight.NameSelect, preflight.Fail, []string{"public.secret"}, `GRANT SELECT ON "public"."secret" TO "ops_check_role"`)
		if r := out.result(t, preflight.NameSelect); strings.Contains(r.Detail, "public.items") {
			t.Errorf("%s names a readable table: %s", r.Name, r.Detail)
		}
		out.expect(t, preflight.NameReplicaIdentity, preflight.Warn, []string{"public.nokey", "without a primary key"}, `ALTER TABLE "public"."nokey" REPLICA IDENTITY FULL`)
		if r := out.result(t, preflight.NameReplicaIdentity); strings.Contains(r.Detail, "fullident") {
			t.Errorf("%s names a table with REPLICA IDENTITY FULL: %s", r.Name, r.Detail)
		}
		out.expect(t, preflight.NameTOAST, preflight.Info, []string{"public.items (doc, ", "_cdc_unchanged"})
		out.expect(t, preflight.NameTypes, preflight.Info, []string{"public.items.r (int4range)", "public.items.pt (point)"})
		out.expect(t, preflight.NameArrays, preflight.Info, []string{"public.items.tags (integer[])", "flattened"}, "--arrays-as-text")
		out.expect(t, preflight.NameColumnNames, preflight.Warn, []string{"public.clash.ID", "public.clash.op"}, "RENAME COLUMN")
		out.expect(t, preflight.NameSlot, preflight.Info, []string{"does not exist"})
		out.expect(t, preflight.NameKeepSize, preflight.Warn, []string{"unlimited"}, "max_slot_wal_keep_size")
		out.expect(t, preflight.NameInactiveSlots, preflight.Warn, []string{"ops_check_idle (logical, retains"}, "pg_drop_replication_slot('ops_check_idle')")
		out.expect(t, preflight.NameDest, preflight.Fail, []string{"ops-no-such-bucket", "does not exist"}, "create the bucket")
		for _, r := range out.Results {
			if r.Name == preflight.NameReplConn || r.Name == preflight.NameStart {
				t.Errorf("unexpected %s result without REPLICATION or a destination: %+v", r.Name, r)
			}
		}
		if slotExists(t, conn, "ops_check_slot") || publicationExists(t, conn, "ops_check_pub") {
			t.Error("check created the slot or the publication")
		}
	})

	t.Run("tables to create the publication for", func(t *testing.T) {
		out, code := runCheck(t, "--source", roleDSN, "--slot", "ops_check_slot", "--publication", "ops_check_pub", "--tables", "items,public.nosuch")
		if code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		out.expect(t, preflight.NameTables, preflight.Fail, []string{"public.nosuch"}, "--tables")
		out, _ = runCheck(t, "--source", roleDSN, "--slot", "ops_check_slot", "--publication", "ops_check_pub", "--tables", "items")
		out.expect(t, preflight.NameTables, preflight.Fail, []string{"ownership", "public.items (owner postgres)"}, `CREATE PUBLICATION "ops_check_pub" FOR TABLE "public"."items"`)
		out.expect(t, preflight.NameDest, preflight.Info, []string{"no --dest"})
	})

	t.Run("existing publication", func(t *testing.T) {
		if _, err := conn.Exec(ctx, `CREATE PUBLICATION ops_check_viaroot FOR TABLE items WITH (publish = 'insert, update')`); err != nil {
			t.Fatal(err)
		}
		out, _ := runCheck(t, "--source", dsn, "--slot", "ops_check_slot", "--publication", "ops_check_viaroot")
		out.expect(t, preflight.NamePublication, preflight.Warn, []string{"exists", "insert, update"}, "ALTER PUBLICATION", "delete")
		out.expect(t, preflight.NameTables, preflight.OK, []string{"1 table(s)", "public.items"})
	})

	t.Run("wal_level replica", func(t *testing.T) {
		// A second cluster that cannot decode WAL, has no replication
		// slots to spare and limits the WAL a slot may keep.
		replica, err := testenv.StartPostgres(ctx, testenv.PostgresOptions{WALLevel: "replica", Settings: map[string]string{
			"max_replication_slots":  "0",
			"max_slot_wal_keep_size": "64MB",
		}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := replica.Stop(); err != nil {
				t.Error(err)
			}
		})
		out, code := runCheck(t, "--source", replica.DSN("postgres"), "--slot", "ops_check_slot")
		if code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		out.expect(t, preflight.NameWALLevel, preflight.Fail, []string{"replica"}, "wal_level = logical", "restart")
		out.expect(t, preflight.NameSlotHeadroom, preflight.Fail, []string{"0 of 0"}, "max_replication_slots")
		out.expect(t, preflight.NameKeepSize, preflight.Info, []string{"64MB"})
		out.expect(t, preflight.NameInactiveSlots, preflight.OK, nil)
	})

	t.Run("unreachable source", func(t *testing.T) {
		closed, err := testenv.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		out, code := runCheck(t, "--source", fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/x?sslmode=disable", pg.Password(), closed), "--dest", t.TempDir())
		if code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		out.expect(t, preflight.NameConnect, preflight.Fail, []string{"cannot connect"}, "--source")
		// The destination is still checked.
		out.expect(t, preflight.NameDestWrite, preflight.OK, nil)
		b, _ := json.Marshal(out)
		if strings.Contains(string(b), pg.Password()) {
			t.Error("check printed the password")
		}
	})

	t.Run("local destination under a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, code := runCheck(t, "--dest", filepath.Join(file, "out"))
		if code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		out.expect(t, preflight.NameDest, preflight.Fail, []string{"cannot create or write"}, "writable")
	})

	t.Run("read-only local destination", func(t *testing.T) {
		// Root writes into a 0555 directory regardless, so as root the
		// check runs as the postgres OS user (which the test clusters need
		// anyway), from a copy of the binary that user can execute, on a
		// directory it can reach.
		bin, cred := binary, (*syscall.Credential)(nil)
		base := t.TempDir()
		if os.Geteuid() == 0 {
			u, err := user.Lookup("postgres")
			if err != nil {
				t.Fatalf("running as root needs the postgres OS user to run the check as (a 0555 directory is writable for root); scripts/ensure-postgres.sh creates it: %v", err)
			}
			uid, _ := strconv.ParseUint(u.Uid, 10, 32)
			gid, _ := strconv.ParseUint(u.Gid, 10, 32)
			cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
			if base, err = os.MkdirTemp("", "cdc2s3-ops-ro-"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(base) })
			if err := os.Chmod(base, 0o755); err != nil {
				t.Fatal(err)
			}
			bin = filepath.Join(base, "cdc2s3")
			b, err := os.ReadFile(binary)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(bin, b, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		dir := filepath.Join(base, "ro")
		if err := os.Mkdir(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o555); err != nil { // past the umask
			t.Fatal(err)
		}
		stdout, stderr, code := runOpsAs(t, bin, cred, "check", "--json", "--dest", dir)
		var out checkOutput
		if err := json.Unmarshal([]byte(stdout), &out); err != nil {
			t.Fatalf("check --json printed no JSON (%v), exit %d\n%s%s", err, code, stdout, stderr)
		}
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s", code, stdout)
		}
		out.expect(t, preflight.NameDest, preflight.Fail, []string{"cannot create or write", "permission denied"}, "writable")
		if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
			t.Errorf("read-only destination holds %v (%v)", entries, err)
		}
	})

	t.Run("writable local destination is left as found", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "new", "out")
		out, code := runCheck(t, "--dest", dir)
		if code != 0 {
			t.Fatalf("exit %d, want 0", code)
		}
		out.expect(t, preflight.NameDest, preflight.OK, []string{"does not exist yet"})
		out.expect(t, preflight.NameDestWrite, preflight.OK, nil)
		out.expect(t, preflight.NameConditionalWrite, preflight.OK, nil)
		if _, err := os.Stat(filepath.Dir(dir)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("check left %s behind (%v)", filepath.Dir(dir), err)
		}
	})
}

// statusOutput is what status --json prints.
type statusOutput struct {
	Slot *struct {
		Name              string `json:"name"`
		Exists            bool   `json:"exists"`
		Active            bool   `json:"active"`
		PID               int32  `json:"pid"`
		WALStatus         string `json:"wal_status"`
		ConfirmedFlushLSN string `json:"confirmed_flush_lsn"`
		RestartLSN        string `json:"restart_lsn"`
		CurrentLSN        string `json:"current_wal_lsn"`
		LagBytes          int64  `json:"lag_bytes"`
		RetainedBytes     int64  `json:"retained_wal_bytes"`
		Ahead             bool   `json:"ahead_of_destination"`
	} `json:"slot"`
	Destination *struct {
		URL   string `json:"url"`
		State *struct {
			Slot          string    `json:"slot"`
			Publication   string    `json:"publication"`
			SnapshotDone  bool      `json:"snapshot_done"`
			CheckpointLSN string    `json:"checkpoint_lsn"`
			UpdatedAt     time.Time `json:"updated_at"`
		} `json:"state"`
	} `json:"destination"`
	Tables []struct {
		Table       string     `json:"table"`
		LoadFiles   int        `json:"load_files"`
		CDCFiles    int        `json:"cdc_files"`
		LastCDCFile string     `json:"last_cdc_file"`
		LastCDCLSN  string     `json:"last_cdc_lsn"`
		LastCDCTime *time.Time `json:"last_cdc_time"`
	} `json:"tables"`
	LagSeconds *float64 `json:"lag_seconds"`
}

// runStatus runs status --json with args and parses its output.
func runStatus(t *testing.T, args ...string) statusOutput {
	t.Helper()
	stdout, stderr, code := runOps(t, append([]string{"status", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("status exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	var out statusOutput
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("status --json printed no JSON: %v\n%s", err, stdout)
	}
	t.Logf("status: %s", stdout)
	return out
}

func parseLSN(t *testing.T, what, s string) pglogrepl.LSN {
	t.Helper()
	lsn, err := pglogrepl.ParseLSN(s)
	if err != nil {
		t.Fatalf("%s %q: %v", what, s, err)
	}
	return lsn
}

// TestStatusRunningPipeline runs the daemon into S3 and checks what status
// reports while it streams and after it stopped, what check says about the
// running pipeline, that drop refuses an active slot and that drop --yes
// with the destination removes the slot and the publication its state
// names, and nothing in the bucket.
func TestStatusRunningPipeline(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, `CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 100) g`); err != nil {
		t.Fatal(err)
	}
	if err := s3srv.CreateBucket(ctx, "ops-status"); err != nil {
		t.Fatal(err)
	}
	const slot = "ops_status"
	dst := "s3://ops-status/lake"
	d := start(t, "run", "--source", dsn, "--dest", dst, "--slot", slot, "--publication", slot, "--flush-interval", "500ms", "--status-interval", "500ms")
	waitConfirmed(t, conn, slot, 1, d, 2*time.Minute)
	if _, err := conn.Exec(ctx, `INSERT INTO items SELECT g, 'w' || g FROM generate_series(101, 200) g; UPDATE items SET v = 'u' WHERE id <= 10`); err != nil {
		t.Fatal(err)
	}
	target := currentLSN(t, conn)
	waitConfirmed(t, conn, slot, target, d, 2*time.Minute)

	// No --slot: the destination's state names it.
	st := runStatus(t, "--source", dsn, "--dest", dst)
	if st.Slot == nil || st.Slot.Name != slot || !st.Slot.Exists || !st.Slot.Active || st.Slot.PID <= 0 {
		t.Fatalf("slot: %+v, want %s, existing and active", st.Slot, slot)
	}
	if st.Slot.WALStatus != "reserved" && st.Slot.WALStatus != "extended" {
		t.Errorf("wal_status %q", st.Slot.WALStatus)
	}
	confirmed := parseLSN(t, "confirmed_flush_lsn", st.Slot.ConfirmedFlushLSN)
	restart := parseLSN(t, "restart_lsn", st.Slot.RestartLSN)
	current := parseLSN(t, "current_wal_lsn", st.Slot.CurrentLSN)
	if confirmed < target || restart > confirmed || current < confirmed {
		t.Errorf("restart %s, confirmed %s, current %s; want restart <= confirmed, %s <= confirmed <= current", restart, confirmed, current, target)
	}
	if st.Slot.LagBytes != int64(current-confirmed) || st.Slot.RetainedBytes != int64(current-restart) {
		t.Errorf("lag %d and retained %d bytes, want %d and %d", st.Slot.LagBytes, st.Slot.RetainedBytes, current-confirmed, current-restart)
	}
	if st.Destination == nil || st.Destination.State == nil {
		t.Fatalf("no destination state: %+v", st.Destination)
	}
	if s := st.Destination.State; s.Slot != slot || s.Publication != slot || !s.SnapshotDone || parseLSN(t, "checkpoint_lsn", s.CheckpointLSN) == 0 {
		t.Errorf("state %+v", s)
	}
	if len(st.Tables) != 1 || st.Tables[0].Table != "public.items" {
		t.Fatalf("tables %+v, want public.items", st.Tables)
	}
	tb := st.Tables[0]
	if tb.LoadFiles != 1 || tb.CDCFiles < 1 || tb.LastCDCTime == nil || !strings.HasPrefix(tb.LastCDCFile, "public/items/CDC-") {
		t.Errorf("table %+v, want one LOAD file and a last CDC file", tb)
	} else if lsn := parseLSN(t, "last_cdc_lsn", tb.LastCDCLSN); lsn > confirmed || lsn == 0 {
		t.Errorf("last CDC LSN %s, want at most the confirmed %s", lsn, confirmed)
	} else if age := time.Since(*tb.LastCDCTime); age < -time.Minute || age > 5*time.Minute {
		t.Errorf("last CDC file uploaded %s ago", age)
	}
	if st.LagSeconds == nil || *st.LagSeconds < 0 || *st.LagSeconds > 300 {
		t.Errorf("lag_seconds %v", st.LagSeconds)
	}
	stdout, _, code := runOps(t, "status", "--source", dsn, "--dest", dst)
	t.Logf("status:\n%s", stdout)
	for _, want := range []string{"slot " + slot + ": active", "checkpoint", "public.items", "lag: "} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("status (text) exited %d, does not say %q:\n%s", code, want, stdout)
		}
	}

	// check on the running pipeline: the slot is in use, the next start
	// would resume.
	ck, _ := runCheck(t, "--source", dsn, "--dest", dst, "--slot", slot, "--publication", slot)
	ck.expect(t, preflight.NameSlot, preflight.Info, []string{"active (PID"})
	ck.expect(t, preflight.NameSenderHeadroom, preflight.OK, []string{"has its own"})
	ck.expect(t, preflight.NamePublication, preflight.OK, []string{"exists", "publish_via_partition_root = true"})
	ck.expect(t, preflight.NameStart, preflight.OK, []string{"resumes streaming"})

	// drop refuses an active slot.
	_, stderr, code := runOps(t, "drop", "--source", dsn, "--dest", dst, "--slot", slot, "--yes")
	if code == 0 || !strings.Contains(stderr, "is active") || !strings.Contains(stderr, "stop the cdc2s3 daemon") {
		t.Errorf("drop of an active slot exited %d:\n%s", code, stderr)
	}
	if !slotExists(t, conn, slot) {
		t.Fatal("drop removed an active slot")
	}

	d.stop(t)
	st = runStatus(t, "--source", dsn, "--dest", dst)
	if st.Slot == nil || !st.Slot.Exists || st.Slot.Active {
		t.Errorf("after stop: slot %+v, want existing and inactive", st.Slot)
	}

	before := s3Keys(t, "ops-status", "")
	stdout, stderr, code = runOps(t, "drop", "--source", dsn, "--dest", dst, "--yes")
	if code != 0 {
		t.Fatalf("drop exited %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"dropped replication slot " + slot, "dropped publication " + slot, "not touched"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("drop does not say %q:\n%s", want, stdout)
		}
	}
	if slotExists(t, conn, slot) || publicationExists(t, conn, slot) {
		t.Error("drop left the slot or the publication")
	}
	if after := s3Keys(t, "ops-status", ""); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("drop changed the bucket:\nbefore %v\nafter %v", before, after)
	}

	// Now the destination's load has lost its slot: check says the next
	// run would refuse, and status shows the slot missing.
	ck, code = runCheck(t, "--source", dsn, "--dest", dst, "--slot", slot, "--publication", slot)
	if code != 1 {
		t.Errorf("check exited %d after the slot was dropped, want 1", code)
	}
	ck.expect(t, preflight.NameStart, preflight.Fail, []string{"does not exist", "finished load"}, "new --dest")
	if st = runStatus(t, "--source", dsn, "--dest", dst); st.Slot == nil || st.Slot.Exists {
		t.Errorf("after drop: slot %+v, want missing", st.Slot)
	}
}

// TestDrop drops a stopped pipeline's slot without a destination: it asks
// first (no terminal: nothing happens), keeps a publication nothing says
// cdc2s3 uses until it is named with --yes, and never touches the
// destination.
func TestDrop(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, `CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 10)`); err != nil {
		t.Fatal(err)
	}
	// The default publication name (publications are per database); the
	// slot's name is unique on the server.
	const slot, pub = "ops_drop", "cdc2s3"
	out := t.TempDir()
	d := start(t, "run", "--source", dsn, "--dest", out, "--slot", slot, "--flush-interval", "500ms", "--status-interval", "500ms")
	waitConfirmed(t, conn, slot, 1, d, 2*time.Minute)
	d.stop(t)
	files := dirFiles(t, out)

	// Without --yes and without a terminal to answer on, nothing happens.
	stdout, stderr, code := runOps(t, "drop", "--source", dsn, "--slot", slot)
	if code == 0 || !strings.Contains(stderr, "not confirmed") {
		t.Errorf("unconfirmed drop exited %d:\n%s%s", code, stdout, stderr)
	}
	if !slotExists(t, conn, slot) {
		t.Fatal("unconfirmed drop removed the slot")
	}

	// --yes without the destination: the slot goes, the publication stays.
	stdout, stderr, code = runOps(t, "drop", "--source", dsn, "--slot", slot, "--yes")
	if code != 0 || !strings.Contains(stdout, "dropped replication slot "+slot) || !strings.Contains(stdout, "publication "+pub+" kept") {
		t.Errorf("drop exited %d:\n%s%s", code, stdout, stderr)
	}
	if slotExists(t, conn, slot) {
		t.Error("drop --yes left the slot")
	}
	if !publicationExists(t, conn, pub) {
		t.Error("drop removed a publication it was not asked to")
	}

	// Named explicitly with --yes, the publication goes too.
	stdout, stderr, code = runOps(t, "drop", "--source", dsn, "--slot", slot, "--publication", pub, "--yes")
	if code != 0 || !strings.Contains(stdout, "no replication slot "+slot) || !strings.Contains(stdout, "dropped publication "+pub) {
		t.Errorf("drop --publication exited %d:\n%s%s", code, stdout, stderr)
	}
	if publicationExists(t, conn, pub) {
		t.Error("drop --publication --yes left the publication")
	}

	// Nothing left: say so and fail.
	_, stderr, code = runOps(t, "drop", "--source", dsn, "--slot", slot, "--yes")
	if code == 0 || !strings.Contains(stderr, "nothing dropped") {
		t.Errorf("drop of nothing exited %d:\n%s", code, stderr)
	}

	if got := dirFiles(t, out); strings.Join(got, "\n") != strings.Join(files, "\n") {
		t.Errorf("drop changed the destination:\nbefore %v\nafter %v", files, got)
	}
}

// TestCatalogBadInput: a wrong format or database name, a destination with
// no table folder and a table it does not hold each stop with a message
// that names the fix and a non-zero exit.
func TestCatalogBadInput(t *testing.T) {
	empty := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"catalog", "--dest", empty, "--format", "hive"}, 2, "use duckdb, athena or spark"},
		{[]string{"catalog", "--dest", empty, "--format", "athena", "--database", "My-Lake"}, 2, "lower-case letters"},
		{[]string{"catalog", "--dest", empty}, 1, "holds no table folder"},
		{[]string{"catalog", "--dest", empty, "--tables", "public.nope"}, 1, "check --tables"},
		{[]string{"catalog"}, 2, "--dest"},
	} {
		_, stderr, code := runOps(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("cdc2s3 %s: exit %d, want %d with %q:\n%s", strings.Join(c.args[1:], " "), code, c.code, c.want, stderr)
		}
	}
}
