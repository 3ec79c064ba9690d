package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cdc2s3/cdc2s3/internal/testenv"
	"github.com/cdc2s3/cdc2s3/internal/validate"
	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/pqfile"
)

// validateTimeout bounds one run of cdc2s3 validate.
const validateTimeout = 5 * time.Minute

// validateOut is what cdc2s3 validate --json prints.
type validateOut struct {
	OK       bool `json:"ok"`
	Position struct {
		LSN        string         `json:"lsn"`
		Checkpoint string         `json:"checkpoint"`
		Daemon     bool           `json:"daemon"`
		Exact      bool           `json:"exact"`
		Note       string         `json:"note"`
		Pending    map[string]int `json:"pending"`
	} `json:"position"`
	Tables      []validate.Result `json:"tables"`
	NotCompared []string          `json:"not_compared"`
}

// runValidate runs cdc2s3 validate --json with args, with the S3 server's
// environment and none of the caller's PG*, AWS_* or CDC2S3_* settings,
// and returns its report (when it printed one), standard error and exit
// status.
func runValidate(t *testing.T, args ...string) (validateOut, string, int) {
	t.Helper()
	testenv.Integration(t, needs...)
	ctx, cancel := context.WithTimeout(context.Background(), validateTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"validate", "--json"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "CDC2S3_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, s3Env()...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("cdc2s3 validate did not exit within %s\nstderr:\n%s", validateTimeout, tail(stderr.String(), 30))
	}
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	var out validateOut
	if code <= 1 {
		if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
			t.Fatalf("cdc2s3 validate (exit %d) printed no JSON report: %v\nstdout:\n%s\nstderr:\n%s", code, err, stdout.String(), tail(stderr.String(), 30))
		}
	}
	return out, stderr.String(), code
}

// validateEqual runs validate and fails unless it finds every table of
// want equal, at an exact position.
func validateEqual(t *testing.T, what string, want [][2]string, args ...string) validateOut {
	t.Helper()
	out, stderr, code := runValidate(t, args...)
	var names, counts []string
	for _, r := range out.Tables {
		names = append(names, r.Table)
		counts = append(counts, fmt.Sprintf("%s %d", r.Table, r.SourceRows))
		if r.Differs() {
			t.Errorf("%s: %s differs: %+v", what, r.Table, r)
		}
	}
	for _, w := range want {
		if !slices.Contains(names, w[0]+"."+w[1]) {
			t.Errorf("%s: %s.%s was not compared (compared: %v)", what, w[0], w[1], names)
		}
	}
	if code != 0 || !out.OK || !out.Position.Exact {
		t.Errorf("%s: exit %d, ok %t, position %+v, want 0, true and exact\n%s", what, code, out.OK, out.Position, tail(stderr, 20))
	}
	t.Logf("%s: equal at %s (checkpoint %s, daemon %t): %s", what, out.Position.LSN, out.Position.Checkpoint, out.Position.Daemon, strings.Join(counts, ", "))
	return out
}

// difference is what a planted corruption must show as: in table, the
// counts of each kind, and a string each kind's shown keys must contain.
type difference struct {
	table                      string
	missing, extra, mismatched int64
	key                        string
	file                       string // a string one of the listed files must contain
}

// validateFinds runs validate and fails unless it exits 1 with exactly
// the difference d, in d.table only.
func validateFinds(t *testing.T, what string, d difference, args ...string) {
	t.Helper()
	out, stderr, code := runValidate(t, args...)
	if code != 1 || out.OK {
		t.Errorf("%s: exit %d, ok %t, want 1 and false\n%s", what, code, out.OK, tail(stderr, 20))
	}
	found := false
	for _, r := range out.Tables {
		if r.Table != d.table {
			if r.Differs() {
				t.Errorf("%s: %s differs too: %+v", what, r.Table, r)
			}
			continue
		}
		found = true
		if r.Missing != d.missing || r.Extra != d.extra || r.Mismatched != d.mismatched {
			t.Errorf("%s: %s has %d missing, %d extra, %d mismatched rows; want %d, %d, %d\n%+v",
				what, r.Table, r.Missing, r.Extra, r.Mismatched, d.missing, d.extra, d.mismatched, r)
		}
		var keys []string
		keys = append(append(keys, r.MissingKeys...), r.ExtraKeys...)
		for _, m := range r.Mismatches {
			keys = append(keys, fmt.Sprintf("%s %+v", m.Key, m.Columns))
		}
		if !strings.Contains(strings.Join(keys, "|"), d.key) {
			t.Errorf("%s: %s shows %q, want one with %q", what, r.Table, keys, d.key)
		}
		if d.file != "" && !strings.Contains(strings.Join(r.Files, "|"), d.file) {
			t.Errorf("%s: %s lists files %q, want one with %q", what, r.Table, r.Files, d.file)
		}
		t.Logf("%s: found in %s: %d missing, %d extra, %d mismatched: %q %q", what, r.Table, r.Missing, r.Extra, r.Mismatched, keys, r.Files)
	}
	if !found {
		t.Errorf("%s: %s was not compared", what, d.table)
	}
}

// bucket is a test's S3 bucket, for planting corruptions.
type bucket struct {
	t    *testing.T
	name string
}

func (b bucket) get(key string) []byte {
	b.t.Helper()
	out, err := s3srv.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(b.name), Key: aws.String(key)})
	if err != nil {
		b.t.Fatal(err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return data
}

func (b bucket) put(key string, data []byte) {
	b.t.Helper()
	_, err := s3srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(b.name), Key: aws.String(key), Body: bytes.NewReader(data)})
	if err != nil {
		b.t.Fatal(err)
	}
}

func (b bucket) delete(key string) {
	b.t.Helper()
	if _, err := s3srv.Client().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(b.name), Key: aws.String(key)}); err != nil {
		b.t.Fatal(err)
	}
}

// parquetFile writes rows (PostgreSQL text, nil NULL) with cdc2s3's writer,
// each with its metadata.
func parquetFile(t *testing.T, cols []pqfile.Column, metas []pqfile.Meta, rows [][]*string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := pqfile.NewWriter(&buf, cols, pqfile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		vals := make([][]byte, len(r))
		for j, v := range r {
			if v != nil {
				vals[j] = []byte(*v)
			}
		}
		if err := w.Write(metas[i], vals); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func text(s string) *string { return &s }

// TestValidateWorkload runs the scripted workload (every type, unchanged
// TOAST values, columns added with defaults and dropped, key updates, a
// keyless table, partitioned and inherited tables, a truncate, a table
// that joins and is reloaded) through the daemon into S3. validate finds
// every table equal with the daemon running and after it stopped; then
// it finds each corruption planted in the bucket, in the right table and
// of the right kind, with exit status 1: a LOAD file rewritten without a
// row, a CDC file deleted, a CDC file copied under another name, a value
// changed, a stray file. Last, a change made while no daemon runs shows as
// a difference with the table named as behind.
func TestValidateWorkload(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if err := Setup(ctx, conn); err != nil {
		t.Fatal(err)
	}
	b := bucket{t, "e2e-validate"}
	if err := s3srv.CreateBucket(ctx, b.name); err != nil {
		t.Fatal(err)
	}
	dest := "s3://e2e-validate/lake"
	d := start(t, "run", "--source", dsn, "--dest", dest, "--slot", "validate", "--flush-interval", "1s", "--status-interval", "1s")
	waitLog(t, d, regexp.MustCompile(`msg=streaming`), 1, 2*time.Minute)
	if err := Changes(ctx, conn); err != nil {
		t.Fatal(err)
	}
	waitLog(t, d, regexp.MustCompile(`reload complete.* table=public.late `), 1, 3*time.Minute)
	// A column dropped and added again under its name, with a default the
	// rows that exist take: its old values must not come back. (Without a
	// change in between, the daemon tells the two columns apart by their
	// numbers: TestColumnAddedAgainUnchanged.)
	for _, q := range []string{"ALTER TABLE evolve DROP COLUMN d", "UPDATE evolve SET a = 'a4 updated' WHERE id = 4",
		"ALTER TABLE evolve ADD COLUMN d text DEFAULT 'again'", "UPDATE evolve SET a = 'a3 updated' WHERE id = 3"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	// One insert in a file of its own, to corrupt below.
	if _, err := conn.Exec(ctx, "INSERT INTO trunc VALUES (500, 'planted')"); err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, conn, "validate", currentLSN(t, conn), d, 3*time.Minute)

	out := validateEqual(t, "daemon running", Tables, "--source", dsn, "--dest", dest)
	if !out.Position.Daemon {
		t.Errorf("daemon running: the position %+v does not say so", out.Position)
	}
	if out := validateEqual(t, "--tables", [][2]string{{"public", "trunc"}}, "--source", dsn, "--dest", dest, "--tables", "trunc"); len(out.Tables) != 1 {
		t.Errorf("--tables trunc compared %d tables", len(out.Tables))
	}
	d.stop(t)
	out = validateEqual(t, "daemon stopped", Tables, "--source", dsn, "--dest", dest)
	if out.Position.Daemon || !strings.Contains(out.Position.Note, "no published table changed") {
		t.Errorf("daemon stopped: position %+v", out.Position)
	}
	plantCorruptions(t, b, dsn, dest)

	// A change no daemon streams: the table is behind, and named so.
	if _, err := conn.Exec(ctx, "UPDATE parent SET name = 'behind' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	validateFinds(t, "a change not streamed", difference{table: "public.parent", mismatched: 1, key: `(id=1) [{Column:name Source:"behind" Dest:"p1"}]`},
		"--source", dsn, "--dest", dest)
	out, _, _ = runValidate(t, "--source", dsn, "--dest", dest)
	if out.Position.Exact || out.Position.Pending["public.parent"] != 1 {
		t.Errorf("a change not streamed: position %+v, want not exact and public.parent pending", out.Position)
	}
}

// plantCorruptions plants each corruption in the workload's bucket, checks
// that validate finds it, and undoes it.
func plantCorruptions(t *testing.T, b bucket, dsn, dest string) {
	args := []string{"--source", dsn, "--dest", dest}
	var st lsnstore.State
	if err := json.Unmarshal(b.get("lake/"+lsnstore.StateKey), &st); err != nil {
		t.Fatal(err)
	}
	loadMeta := pqfile.Meta{Op: 'I', CommitTime: st.SnapshotTime.UnixMicro(), LSN: st.SnapshotLSN}

	// A LOAD file rewritten without one of its rows.
	loadKey := "lake/Mixed Case/Order Items/LOAD00000001.parquet"
	orig := b.get(loadKey)
	b.put(loadKey, parquetFile(t, []pqfile.Column{
		{Name: "Item ID", Type: pqfile.Type{Kind: pqfile.Int64}}, {Name: "Qty", Type: pqfile.Type{Kind: pqfile.Int32}}, {Name: "Note/%", Type: pqfile.Type{Kind: pqfile.String}},
	}, []pqfile.Meta{loadMeta}, [][]*string{{text("1"), text("10"), text("first/%")}}))
	validateFinds(t, "a LOAD row removed", difference{table: "Mixed Case.Order Items", missing: 1, key: "(Item ID=2)"}, args...)
	b.put(loadKey, orig)

	// The file of one insert: deleted, copied, changed.
	planted := plantedFile(t, b)
	first, last, _ := sink.ParseCDCKey(planted)
	orig = b.get(planted)
	b.delete(planted)
	validateFinds(t, "a CDC file deleted", difference{table: "public.trunc", missing: 1, key: "(id=500)"}, args...)
	b.put(planted, orig)

	copied := path.Dir(planted) + "/" + path.Base(sink.CDCKey("x", "y", first, sink.Pos{LSN: last.LSN, Seq: last.Seq + 1}))
	b.put(copied, orig)
	validateFinds(t, "a CDC file copied under another name", difference{table: "public.trunc", extra: 1, key: "(id=500): the change at"}, args...)
	b.delete(copied)

	b.put(planted, parquetFile(t, []pqfile.Column{{Name: "id", Type: pqfile.Type{Kind: pqfile.Int32}}, {Name: "v", Type: pqfile.Type{Kind: pqfile.String}}},
		[]pqfile.Meta{{Op: 'I', LSN: first.LSN, Seq: first.Seq}}, [][]*string{{text("500"), text("tampered")}}))
	validateFinds(t, "a value changed", difference{table: "public.trunc", mismatched: 1, key: `(id=500) [{Column:v Source:"planted" Dest:"tampered"}]`}, args...)
	b.put(planted, orig)

	// A stray Parquet file in a keyless table's folder (readers read it)
	// and an object that is no Parquet file.
	stray := "lake/public/nopk/part-00000.parquet"
	b.put(stray, parquetFile(t, []pqfile.Column{{Name: "a", Type: pqfile.Type{Kind: pqfile.Int32}}, {Name: "b", Type: pqfile.Type{Kind: pqfile.String}}},
		[]pqfile.Meta{{Op: 'I', LSN: first.LSN, Seq: 1000}}, [][]*string{{text("7"), text("stray")}}))
	b.put("lake/public/nopk/_SUCCESS", nil)
	validateFinds(t, "a stray file", difference{table: "public.nopk", extra: 1, key: `(a=7, b="stray")`, file: "part-00000.parquet: not a LOAD or CDC file name"}, args...)
	b.delete(stray)
	validateFinds(t, "a stray object", difference{table: "public.nopk", key: "", file: "_SUCCESS: not a Parquet file"}, args...)
	b.delete("lake/public/nopk/_SUCCESS")

	validateEqual(t, "every corruption undone", Tables, args...)
}

// plantedFile returns the key of the CDC file holding the one insert of
// TestValidateWorkload: the last of public.trunc, of one row.
func plantedFile(t *testing.T, b bucket) string {
	t.Helper()
	var last string
	for _, k := range s3Keys(t, b.name, "lake/public/trunc/CDC-") {
		last = max(last, k)
	}
	first, end, ok := sink.ParseCDCKey(last)
	if !ok || first != end {
		t.Fatalf("the last CDC file of public.trunc, %q, is not the planted insert's alone", last)
	}
	return last
}

// TestValidateUnderLoad validates tables that a load keeps changing while
// the daemon streams them (updates that leave a TOASTed value out, key
// changes, deletes, inserts, a keyless table, a partitioned one), also in
// the middle of a reload of one of them (slowed down by --reload-rate):
// each run compares at one position and finds them equal.
func TestValidateUnderLoad(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	reloadSchema(t, conn, 20_000)
	if _, err := conn.Exec(ctx, "ALTER PUBLICATION p ADD TABLE b, k"); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	d := start(t, "run", "--source", dsn, "--dest", out, "--slot", "underload", "--publication", "p",
		"--flush-interval", "500ms", "--status-interval", "500ms", "--reload-chunk-size", "64kB", "--reload-rate", "512kB")
	waitLog(t, d, regexp.MustCompile(`msg=streaming`), 1, 2*time.Minute)
	loaded := reloadLoad(t, dsn, 11)
	time.Sleep(time.Second)
	args := []string{"--source", dsn, "--dest", out, "--memory", "4MB"}
	validateEqual(t, "under load", reloadTables, args...)

	// Again in the middle of a reload of b: its L rows count for nothing
	// until its marker is written, and the state is still exact.
	if stdout, stderr, code := runOps(t, "reload", "--dest", out, "--tables", "public.b"); code != 0 {
		t.Fatalf("cdc2s3 reload: exit %d\n%s%s", code, stdout, stderr)
	}
	done := regexp.MustCompile(`reload complete.* table=public.b `)
	waitLog(t, d, regexp.MustCompile(`reload chunk.* table=public.b `), 2, 2*time.Minute)
	validateEqual(t, "under load, during a reload", reloadTables, args...)
	if done.MatchString(d.out.String()) {
		t.Errorf("the reload of public.b completed before validate did: it did not run during the reload")
	}
	waitLog(t, d, done, 1, 3*time.Minute)
	validateEqual(t, "under load, after a reload", reloadTables, args...)
	t.Logf("%d transactions of load", loaded())
}

// TestValidatePublished validates tables published in part: a column
// list (the column left out is not compared, also when it changes) and a
// row filter (only the rows that pass it, also after updates moved rows
// into and out of it), on a plain table and on a partitioned one published
// through its root.
func TestValidatePublished(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, filteredSchemaSQL); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	d := start(t, "run", "--source", dsn, "--dest", out, "--slot", "valpub", "--publication", "pf", "--flush-interval", "300ms")
	waitConfirmed(t, conn, "valpub", 1, d, 2*time.Minute)
	if _, err := conn.Exec(ctx, filteredChangesSQL); err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, conn, "valpub", currentLSN(t, conn), d, 2*time.Minute)
	tables := [][2]string{{"public", "people"}, {"public", "parted"}}
	res := validateEqual(t, "published in part", tables, "--source", dsn, "--dest", out)
	for _, r := range res.Tables {
		var want int64
		q := map[string]string{"public.people": "SELECT count(*) FROM people WHERE region = 'eu'", "public.parted": "SELECT count(*) FROM parted WHERE id % 4 = 0"}[r.Table]
		if err := conn.QueryRow(ctx, q).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if r.SourceRows != want || r.DestRows != want {
			t.Errorf("%s: %d source and %d destination rows, want the %d that pass the row filter", r.Table, r.SourceRows, r.DestRows, want)
		}
	}
	// A row the filter keeps out changes nothing; one it lets in is
	// missing until the daemon streams it (here it does: equal again).
	if _, err := conn.Exec(ctx, "UPDATE people SET score = 7 WHERE region = 'us'; UPDATE people SET score = 8 WHERE id = 2 AND region = 'eu'"); err != nil {
		t.Fatal(err)
	}
	validateEqual(t, "published in part, after more changes", tables, "--source", dsn, "--dest", out)
	d.stop(t)
}

// TestValidateWaitTimeout: with a daemon holding the destination that does
// not move its checkpoint (paused with SIGSTOP, its lease still valid),
// validate waits --wait-timeout and exits 3, naming what to check; once
// the daemon goes on, it finds the tables equal.
func TestValidateWaitTimeout(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 100) g"); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	d := start(t, "run", "--source", dsn, "--dest", out, "--slot", "waittimeout", "--flush-interval", "300ms", "--lease-ttl", "2m")
	waitConfirmed(t, conn, "waittimeout", 1, d, 2*time.Minute)
	if _, err := conn.Exec(ctx, "UPDATE items SET v = 'changed' WHERE id <= 10"); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	cont := func() { d.cmd.Process.Signal(syscall.SIGCONT) }
	t.Cleanup(cont)
	_, stderr, code := runValidate(t, "--source", dsn, "--dest", out, "--wait-timeout", "3s")
	t.Logf("exit %d: %s", code, tail(stderr, 3))
	if code != 3 || !strings.Contains(stderr, "did not reach the position") || !strings.Contains(stderr, "--wait-timeout") {
		t.Errorf("a daemon that does not move: exit %d, want 3 with the fix\n%s", code, tail(stderr, 10))
	}
	cont()
	validateEqual(t, "the daemon going on", [][2]string{{"public", "items"}}, "--source", dsn, "--dest", out)
	d.stop(t)
}

// TestValidateBadInput: a wrong connection string, a destination without
// cdc2s3's output, a table the publication does not publish and bad flag
// values exit 2 with one line that names the fix and no password.
func TestValidateBadInput(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items VALUES (1, 'a')"); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if stdout, stderr, code := runOps(t, "snapshot", "--source", dsn, "--dest", out); code != 0 {
		t.Fatalf("cdc2s3 snapshot: exit %d\n%s%s", code, stdout, stderr)
	}
	closed, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	const wrongPassword = "WrongPw-51d0c3aa7e"
	db := strings.ToLower(t.Name())
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"no source", []string{"--dest", out}, []string{"no source", "--source"}},
		{"unreachable", []string{"--source", fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/%s?sslmode=disable", wrongPassword, closed, db), "--dest", out}, []string{"cannot connect", "host and port"}},
		{"wrong password", []string{"--source", fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/%s?sslmode=disable", wrongPassword, pg.Port(), db), "--dest", out}, []string{"password authentication failed", "check the password"}},
		{"no destination", []string{"--source", dsn}, []string{"no destination", "--dest"}},
		{"empty destination", []string{"--source", dsn, "--dest", t.TempDir()}, []string{"holds no cdc2s3 output", "check --dest"}},
		{"missing bucket", []string{"--source", dsn, "--dest", "s3://no-such-bucket-e2e/x"}, []string{"no-such-bucket-e2e"}},
		{"unpublished table", []string{"--source", dsn, "--dest", out, "--tables", "public.nope"}, []string{"public.nope", "--tables"}},
		{"bad memory", []string{"--source", dsn, "--dest", out, "--memory", "lots"}, []string{"invalid --memory"}},
	} {
		_, stderr, code := runValidate(t, c.args...)
		msg := strings.TrimSpace(stderr)
		t.Logf("%s: exit %d: %s", c.name, code, msg)
		if code != 2 {
			t.Errorf("%s: exit %d, want 2\n%s", c.name, code, msg)
		}
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: %q does not say %q", c.name, msg, w)
			}
		}
		if strings.Count(msg, "\n") > 0 {
			t.Errorf("%s: more than one line:\n%s", c.name, msg)
		}
		for _, secret := range []string{pg.Password(), wrongPassword, s3srv.SecretKey()} {
			if strings.Contains(msg, secret) {
				t.Errorf("%s: the message shows a secret: %s", c.name, msg)
			}
		}
	}

	// A destination written by cdc2s3 snapshot (no stream): compared as it
	// is, with a note that later changes show as differences.
	o, stderr, code := runValidate(t, "--source", dsn, "--dest", out)
	if code != 0 || len(o.Tables) != 1 || o.Tables[0].Table != "public.items" || o.Tables[0].SourceRows != 1 || !strings.Contains(o.Position.Note, "snapshot copy") {
		t.Errorf("snapshot copy: exit %d, %+v\n%s", code, o, tail(stderr, 20))
	}
	if _, err := conn.Exec(ctx, "INSERT INTO items VALUES (2, 'b')"); err != nil {
		t.Fatal(err)
	}
	validateFinds(t, "snapshot copy, changed since", difference{table: "public.items", missing: 1, key: "(id=2)"}, "--source", dsn, "--dest", out)
}
