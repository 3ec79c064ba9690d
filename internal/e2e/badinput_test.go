package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cdc2s3/cdc2s3/internal/testenv"
)

// badInputTimeout bounds one run of the binary on bad input: every case
// must fail fast, not retry until someone notices.
const badInputTimeout = 30 * time.Second

// badCase is one bad input: the binary must exit non-zero with one line
// on stderr that starts with "cdc2s3:" and contains every phrase of want.
type badCase struct {
	name string
	args []string // after the binary
	want []string // phrases that name the fix

	// srv and db, when srv is set, name the database the run points at:
	// afterwards it must hold no slot and no publication of the case.
	srv  *testenv.Postgres
	db   string
	slot string
	pub  string

	// out, when set, is a local destination that must stay empty.
	out string
}

// TestBadInput runs `run` and `snapshot` on bad connection strings, servers
// that cannot replicate, missing buckets, malformed destinations and bad
// flag values. Each must exit non-zero with one line that names the fix,
// never echo a secret, and leave the server and the destination as they
// were.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	db := strings.ToLower(t.Name())
	if _, err := conn.Exec(ctx, `CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items VALUES (1, 'a')`); err != nil {
		t.Fatal(err)
	}

	// A login role without REPLICATION that may read the table.
	const role, rolePassword = "badinput_norepl", "RolePw-7f3a9c21e8"
	if err := pg.Exec(ctx, db, fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO %s`, role, rolePassword, role)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pg.Exec(context.Background(), db, "DROP OWNED BY "+role+"; DROP ROLE "+role); err != nil {
			t.Error(err)
		}
	})
	roleDSN := fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", role, rolePassword, pg.Port(), db)

	// A second cluster that cannot decode WAL.
	replica, err := testenv.StartPostgres(ctx, testenv.PostgresOptions{WALLevel: "replica"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := replica.Stop(); err != nil {
			t.Error(err)
		}
	})
	if err := replica.Exec(ctx, "postgres", `CREATE TABLE items (id int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}

	closed, err := testenv.FreePort() // free a moment ago; nothing listens
	if err != nil {
		t.Fatal(err)
	}
	const wrongPassword = "WrongPw-0c9d1e5b7a"
	unreachable := fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/%s?sslmode=disable", pg.Password(), closed, db)
	// No sslmode: pgconn tries TLS, then plain, and joins both errors.
	unreachableHost := fmt.Sprintf("postgres://postgres:%s@localhost:%d/%s", pg.Password(), closed, db)
	unreachableKV := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=%s dbname=%s sslmode=disable", closed, pg.Password(), db)
	wrongPW := fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/%s?sslmode=disable", wrongPassword, pg.Port(), db)
	noDB := pg.DSN("badinput_no_such_db")

	// Every secret the runs could see; none may be printed.
	secrets := []string{pg.Password(), replica.Password(), rolePassword, wrongPassword, s3srv.SecretKey()}

	var cases []badCase
	// run: each case gets its own slot and publication names, so the
	// server-side checks cannot see another case's leftovers.
	addRun := func(name string, srv *testenv.Postgres, db, source, dest string, extra []string, want ...string) {
		id := "bi_" + regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(name), "_")
		c := badCase{name: "run/" + name, want: want, srv: srv, db: db, slot: id, pub: id}
		if dest == "" {
			dest = filepath.Join(t.TempDir(), "out")
			c.out = dest
		}
		c.args = append([]string{"run", "--source", source, "--dest", dest, "--slot", id, "--publication", id}, extra...)
		cases = append(cases, c)
	}
	addSnapshot := func(name, source, dest string, extra []string, want ...string) {
		c := badCase{name: "snapshot/" + name, want: want}
		if dest == "" {
			dest = filepath.Join(t.TempDir(), "out")
			c.out = dest
		}
		c.args = append([]string{"snapshot", "--source", source, "--dest", dest}, extra...)
		cases = append(cases, c)
	}

	addRun("unreachable", nil, "", unreachable, "", nil, "cannot connect", "host and port")
	addRun("unreachable localhost", nil, "", unreachableHost, "", nil, "cannot connect", "host and port")
	addRun("unreachable key=value", nil, "", unreachableKV, "", nil, "cannot connect", "host and port")
	addRun("wrong password", pg, db, wrongPW, "", nil, "password", "--source")
	addRun("no such database", pg, "postgres", noDB, "", nil, "does not exist", "database name")
	addRun("wal_level replica", replica, "postgres", replica.DSN("postgres"), "", nil, "wal_level = logical", "restart")
	addRun("no REPLICATION", pg, db, roleDSN, "", nil, "REPLICATION", "ALTER ROLE")
	addRun("missing bucket", pg, db, dsn, "s3://no-such-bucket/x", nil, "no-such-bucket", "create it")
	addRun("dest s3 no bucket", pg, db, dsn, "s3://", nil, "s3://bucket/prefix")
	addRun("dest ftp", pg, db, dsn, "ftp://x", nil, `"ftp"`, "s3://bucket/prefix")
	addRun("dest file relative", pg, db, dsn, "file://relative", nil, "file:///", "s3://bucket/prefix")
	addRun("dest with credentials", pg, db, dsn, "s3://"+s3srv.AccessKey()+":"+s3srv.SecretKey()+"@bucket/x", nil, "AWS_ENDPOINT_URL_S3", "s3://bucket/prefix")
	addRun("flush-size", pg, db, dsn, "", []string{"--flush-size", "abc"}, "--flush-size", "32MB")
	addRun("compression", pg, db, dsn, "", []string{"--compression", "lz5"}, "--compression", "zstd, snappy or none")
	addRun("temp-dir", pg, db, dsn, "", []string{"--temp-dir", "/etc/hostname/tmp"}, "--temp-dir", "directory this user may write")
	addRun("log-level", pg, db, dsn, "", nil, "--log-level", "debug, info, warn or error")
	cases[len(cases)-1].args = append([]string{"--log-level", "loud"}, cases[len(cases)-1].args...)
	cases = append(cases, badCase{
		name: "run/slot", want: []string{"--slot", "lower-case"}, srv: pg, db: db, slot: "Bad-Name", pub: "bi_slot",
		args: []string{"run", "--source", dsn, "--dest", t.TempDir(), "--slot", "Bad-Name", "--publication", "bi_slot"},
	})

	addSnapshot("unreachable", unreachable, "", nil, "cannot connect", "host and port")
	addSnapshot("unreachable localhost", unreachableHost, "", nil, "cannot connect", "host and port")
	addSnapshot("wrong password", wrongPW, "", nil, "password", "--source")
	addSnapshot("no such database", noDB, "", nil, "does not exist", "database name")
	addSnapshot("missing bucket", dsn, "s3://no-such-bucket/x", nil, "no-such-bucket", "create it")
	addSnapshot("dest s3 no bucket", dsn, "s3://", nil, "s3://bucket/prefix")
	addSnapshot("dest ftp", dsn, "ftp://x", nil, `"ftp"`, "s3://bucket/prefix")
	addSnapshot("dest file relative", dsn, "file://relative", nil, "file:///", "s3://bucket/prefix")
	addSnapshot("compression", dsn, "", []string{"--compression", "lz5"}, "--compression", "zstd, snappy or none")
	addSnapshot("temp-dir", dsn, "", []string{"--temp-dir", "/etc/hostname/tmp"}, "--temp-dir", "directory this user may write")
	addSnapshot("log-level", dsn, "", nil, "--log-level", "debug, info, warn or error")
	cases[len(cases)-1].args = append([]string{"--log-level", "loud"}, cases[len(cases)-1].args...)

	cases = append(cases,
		badCase{name: "reload/no tables", want: []string{"--tables schema.table"}, args: []string{"reload", "--dest", t.TempDir()}},
		badCase{name: "reload/no dest", want: []string{"--dest"}, args: []string{"reload", "--tables", "public.items"}},
		badCase{name: "reload/missing bucket", want: []string{"no-such-bucket", "create it"}, args: []string{"reload", "--dest", "s3://no-such-bucket/x", "--tables", "public.items"}},
		badCase{name: "run/initial-load", want: []string{"--initial-load", "snapshot", "chunks"}, srv: pg, db: db, slot: "bi_initial_load", pub: "bi_initial_load",
			args: []string{"run", "--source", dsn, "--dest", t.TempDir(), "--slot", "bi_initial_load", "--publication", "bi_initial_load", "--initial-load", "chunked"}},
		badCase{name: "run/reload-workers", want: []string{"--reload-workers", "1 or more"}, srv: pg, db: db, slot: "bi_reload_workers", pub: "bi_reload_workers",
			args: []string{"run", "--source", dsn, "--dest", t.TempDir(), "--slot", "bi_reload_workers", "--publication", "bi_reload_workers", "--reload-workers", "-1"}},
		badCase{name: "run/reload-rate", want: []string{"--reload-rate", "0 for no cap"}, srv: pg, db: db, slot: "bi_reload_rate", pub: "bi_reload_rate",
			args: []string{"run", "--source", dsn, "--dest", t.TempDir(), "--slot", "bi_reload_rate", "--publication", "bi_reload_rate", "--reload-rate", "fast"}},
		badCase{name: "run/initial-load-snapshot-max", want: []string{"--initial-load-snapshot-max"}, srv: pg, db: db, slot: "bi_snap_max", pub: "bi_snap_max",
			args: []string{"run", "--source", dsn, "--dest", t.TempDir(), "--slot", "bi_snap_max", "--publication", "bi_snap_max", "--initial-load-snapshot-max", "lots"}},
		badCase{name: "run/date-partition-timezone", want: []string{"--date-partition", "Mars/Olympus", "IANA name"}, srv: pg, db: db, slot: "bi_date_tz", pub: "bi_date_tz",
			args: []string{"run", "--source", dsn, "--dest", t.TempDir(), "--slot", "bi_date_tz", "--publication", "bi_date_tz", "--date-partition", "--date-partition-timezone", "Mars/Olympus"}},
		badCase{name: "run/date-partition-sequence", want: []string{"--date-partition", "YYYYMMDDHH"}, srv: pg, db: db, slot: "bi_date_seq", pub: "bi_date_seq",
			args: []string{"run", "--source", dsn, "--dest", t.TempDir(), "--slot", "bi_date_seq", "--publication", "bi_date_seq", "--date-partition", "--date-partition-sequence", "YYYY"}},
	)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, err := runBad(t, c.args...)
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("want a non-zero exit, got %v\nstderr:\n%s", err, stderr)
			}
			for _, s := range secrets {
				if strings.Contains(stdout+stderr, s) {
					t.Errorf("output contains a secret (%.4s…)\nstdout:\n%s\nstderr:\n%s", s, stdout, stderr)
				}
			}
			if stdout != "" {
				t.Errorf("stdout is not empty:\n%s", stdout)
			}
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			last := lines[len(lines)-1]
			if len(lines) != 1 || !strings.HasPrefix(last, "cdc2s3: ") {
				t.Errorf("want one line starting with \"cdc2s3: \" on stderr, got %d lines:\n%s", len(lines), stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(last, w) {
					t.Errorf("error does not say %q:\n%s", w, last)
				}
			}
			t.Logf("exit %d: %s", exit.ExitCode(), last)
			if c.srv != nil {
				badUntouched(t, c.srv, c.db, c.slot, c.pub)
			}
			if c.out != "" {
				badEmptyDir(t, c.out)
			}
		})
	}
}

// runBad runs the binary with args and the test S3 server's environment,
// free of PG*, AWS_* and CDC2S3_* settings of the caller, and returns its
// output and exit error.
func runBad(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), badInputTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "CDC2S3_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, s3Env()...)
	// A temp dir of its own: a start removes the temp directories of
	// processes that died (other tests kill daemons) and logs it, a line
	// that is not the error this test reads.
	cmd.Env = append(cmd.Env, "TMPDIR="+t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("cdc2s3 did not exit within %s\nstderr:\n%s", badInputTimeout, errb.String())
	}
	return out.String(), errb.String(), err
}

// badUntouched fails t if database db of srv holds replication slot slot
// (anywhere in the cluster) or publication pub.
func badUntouched(t *testing.T, srv *testenv.Postgres, db, slot, pub string) {
	t.Helper()
	ctx := context.Background()
	conn, err := srv.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var slots, pubs int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&slots); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_publication WHERE pubname = $1", pub).Scan(&pubs); err != nil {
		t.Fatal(err)
	}
	if slots != 0 {
		t.Errorf("failed run left replication slot %q behind", slot)
	}
	if pubs != 0 {
		t.Errorf("failed run left publication %q behind in %s", pub, db)
	}
}

// badEmptyDir fails t if a failed run wrote any file under dir.
func badEmptyDir(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			t.Errorf("failed run wrote %s", path)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
}

// TestReservedNames: tables whose folder cannot be written (a table named
// "." or "..", the schema _cdc2s3 that holds the tool's state) stop run
// and snapshot at once with the fix, before any slot exists or anything of
// theirs is written; one published after the start stops the daemon with
// the same message instead of an upload retried for ever.
func TestReservedNames(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, `
		CREATE TABLE ok (id int PRIMARY KEY); INSERT INTO ok VALUES (1);
		CREATE SCHEMA _cdc2s3; CREATE TABLE _cdc2s3.lease (id int PRIMARY KEY); INSERT INTO _cdc2s3.lease VALUES (1);
		CREATE TABLE public."." (id int PRIMARY KEY); INSERT INTO public."." VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"run/state schema", []string{"run", "--source", dsn, "--slot", "resv", "--publication", "resv", "--tables", "ok,_cdc2s3.lease"}, []string{`"_cdc2s3"."lease"`, "cdc2s3's own state", "RENAME"}},
		{"run/dot", []string{"run", "--source", dsn, "--slot", "resv", "--publication", "resv2", "--tables", "ok,public.."}, []string{`"public"."."`, "folder names", "RENAME"}},
		{"snapshot/dot", []string{"snapshot", "--source", dsn, "--tables", "ok,public.."}, []string{`"public"."."`, "folder names"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := t.TempDir()
			_, stderr, err := runBad(t, append(c.args, "--dest", out)...)
			if err == nil {
				t.Fatalf("exit 0; stderr:\n%s", stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			var slots int
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'resv'").Scan(&slots); err != nil || slots != 0 {
				t.Errorf("%d slot(s) left (%v)", slots, err)
			}
			// public/. is public/ itself on disk: its files would be there.
			for _, pattern := range []string{"public/LOAD*", "_cdc2s3/lease/*", "public/ok/*"} {
				if m, _ := filepath.Glob(filepath.Join(out, pattern)); len(m) > 0 {
					t.Errorf("written: %v", m)
				}
			}
		})
	}

	// Published after the start: the daemon stops with the message.
	out := t.TempDir()
	d := start(t, "run", "--source", dsn, "--dest", out, "--slot", "resv3", "--publication", "resv3", "--tables", "ok", "--flush-interval", "300ms")
	waitConfirmed(t, conn, "resv3", 1, d, 2*time.Minute)
	if _, err := conn.Exec(ctx, `ALTER PUBLICATION resv3 ADD TABLE public."."; INSERT INTO public."." VALUES (2); INSERT INTO ok VALUES (2)`); err != nil {
		t.Fatal(err)
	}
	d.waitFailure(t, badInputTimeout, `a change to public."." must stop it`)
	if msg := d.out.String(); !strings.Contains(msg, `"public"."."`) || !strings.Contains(msg, "RENAME") {
		t.Errorf("the daemon's output does not name the table and the fix:\n%s", tail(msg, 20))
	}
	if m, _ := filepath.Glob(filepath.Join(out, "public", "CDC-*")); len(m) > 0 {
		t.Errorf("files of public.\".\" were written: %v", m)
	}
}

// TestTablesFlag: --tables is never ignored. A name that is no table, an
// existing publication that publishes other tables, a FOR ALL TABLES
// publication with --tables, and a publication of no table each stop run
// with the difference and the fix, before a slot exists;
// --reconcile-publication makes the publication match instead.
func TestTablesFlag(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, `
		CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY);
		INSERT INTO a VALUES (1); INSERT INTO b VALUES (1);
		CREATE PUBLICATION only_a FOR TABLE a;
		CREATE PUBLICATION every FOR ALL TABLES;
		CREATE PUBLICATION nothing`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"missing table, new publication", []string{"--publication", "fresh", "--tables", "a,public.no_such_table"}, []string{"public.no_such_table", "do(es) not exist", "fix --tables"}},
		{"missing table, existing publication", []string{"--publication", "only_a", "--tables", "public.no_such_table"}, []string{"public.no_such_table", "fix --tables"}},
		{"publication differs", []string{"--publication", "only_a", "--tables", "a,b"}, []string{`"only_a" publishes public.a`, "not published: public.b", `ALTER PUBLICATION "only_a" SET TABLE "public"."a", "public"."b"`, "--reconcile-publication"}},
		{"all tables", []string{"--publication", "every", "--tables", "a"}, []string{"FOR ALL TABLES", "published but not in --tables: public.b", "drop --tables"}},
		{"no table", []string{"--publication", "nothing"}, []string{`"nothing" publishes no table`, "ADD TABLE"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, err := runBad(t, append([]string{"run", "--source", dsn, "--dest", t.TempDir(), "--slot", "tflag"}, c.args...)...)
			if err == nil {
				t.Fatalf("exit 0; stderr:\n%s", stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			var slots, pubs int
			if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'tflag'), (SELECT count(*) FROM pg_publication WHERE pubname = 'fresh')`).Scan(&slots, &pubs); err != nil || slots+pubs != 0 {
				t.Errorf("%d slot(s), %d new publication(s) left (%v)", slots, pubs, err)
			}
		})
	}

	out := t.TempDir()
	d := start(t, "run", "--source", dsn, "--dest", out, "--slot", "tflag", "--publication", "only_a", "--tables", "a,b", "--reconcile-publication", "--flush-interval", "300ms")
	waitConfirmed(t, conn, "tflag", 1, d, 2*time.Minute)
	if _, err := conn.Exec(ctx, `INSERT INTO b VALUES (2)`); err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, conn, "tflag", currentLSN(t, conn), d, 2*time.Minute)
	d.stop(t)
	var published string
	if err := conn.QueryRow(ctx, `SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_publication_tables WHERE pubname = 'only_a'`).Scan(&published); err != nil || published != "a,b" {
		t.Errorf("after --reconcile-publication the publication publishes %q (%v), want a,b", published, err)
	}
	compareTables(t, conn, out, [][2]string{{"public", "a"}, {"public", "b"}})
}
