package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/cdc2s3/cdc2s3/internal/catalog"
	"github.com/cdc2s3/cdc2s3/internal/oracle"
	"github.com/cdc2s3/cdc2s3/internal/testenv"
)

var (
	pg     *testenv.Postgres
	s3srv  *testenv.S3Server
	binary string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

// needs is what the tests here run against, for their skip under -short.
var needs = []string{"PostgreSQL", "versitygw", "DuckDB (node/npm)", "a cdc2s3 binary built by go build"}

func testMain(m *testing.M) int {
	if testenv.Short() {
		// No servers, no build: every test skips (newDatabase, startEnv).
		return m.Run()
	}
	ctx := context.Background()
	var err error
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		return 1
	}
	// A small logical_decoding_work_mem makes PostgreSQL stream every
	// transaction above 64 kB while it runs (protocol version 2), so the
	// tests exercise the streamed path; TestLocalDestination keeps
	// protocol version 1 covered.
	if pg, err = testenv.StartPostgres(ctx, testenv.PostgresOptions{Settings: map[string]string{"logical_decoding_work_mem": "64kB"}}); err != nil {
		return fail(err)
	}
	defer pg.Stop()
	if s3srv, err = testenv.StartS3(ctx); err != nil {
		return fail(err)
	}
	defer s3srv.Stop()
	if err := oracle.Ensure(ctx); err != nil {
		return fail(err)
	}
	dir, err := os.MkdirTemp("", "cdc2s3-e2e-bin-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "cdc2s3")
	// The fault points (CDC2S3_FAULTPOINT, internal/faultpoint) exist only
	// in a faultpoints build; release builds leave them out.
	args := []string{"build", "-tags", "faultpoints", "-o", binary}
	if os.Getenv("CDC2S3_E2E_RACE") == "1" {
		// A binary built with the race detector: a data race makes it
		// print a report and exit with status 66, which fails the test.
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "./cmd/cdc2s3")...)
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("build cdc2s3: %v\n%s", err, out))
	}
	return m.Run()
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// newDatabase creates a fresh database for one test and returns its DSN
// and a connection to it.
func newDatabase(t *testing.T) (string, *pgx.Conn) {
	t.Helper()
	testenv.Integration(t, needs...)
	ctx := context.Background()
	name := strings.ToLower(strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := pg.CreateDatabase(ctx, name); err != nil {
		t.Fatal(err)
	}
	conn, err := pg.Connect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Drop the test's slots (the daemons are gone by now: cleanups run
		// last-in first-out), so they do not hold WAL for the tests after.
		ctx := context.Background()
		if c, err := pg.Connect(ctx, name); err == nil {
			c.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active", name)
			c.Close(ctx)
		}
		conn.Close(ctx)
	})
	return pg.DSN(name), conn
}

// daemon is a cdc2s3 process.
type daemon struct {
	cmd     *exec.Cmd
	out     *syncBuffer
	done    chan error
	started time.Time
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// s3Env is the environment that points the AWS SDK at the test server.
func s3Env() []string { return s3srv.Env() }

// start runs the binary with args; the environment has the S3 settings.
func start(t *testing.T, args ...string) *daemon {
	t.Helper()
	return startEnv(t, nil, args...)
}

// startEnv is start with extra environment variables.
func startEnv(t *testing.T, env []string, args ...string) *daemon {
	t.Helper()
	testenv.Integration(t, needs...)
	d := &daemon{out: &syncBuffer{}, done: make(chan error, 1), started: time.Now()}
	d.cmd = exec.Command(binary, args...)
	d.cmd.Env = append(append(os.Environ(), s3Env()...), env...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("cdc2s3 %s output:\n%s", args[0], tail(d.out.String(), 60))
		}
	})
	return d
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	// A process signalled before its runtime installs the handler dies of
	// the signal's default action: give it a moment (the soak can restart
	// the generator just before its last stop).
	time.Sleep(time.Until(d.started.Add(500 * time.Millisecond)))
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("cdc2s3 exited with %v after SIGTERM\n%s", err, tail(d.out.String(), 40))
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("cdc2s3 did not stop within 90s of SIGTERM\n%s", tail(d.out.String(), 40))
	}
}

// wait waits for the process to exit by itself, successfully.
func (d *daemon) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-d.done:
		d.done <- err
		if err != nil {
			t.Fatalf("%s exited with %v\n%s", d.cmd.Args[1], err, tail(d.out.String(), 20))
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s did not exit within 2 minutes", d.cmd.Args[1])
	}
}

// waitFailure waits for the process to exit by itself with an error within
// timeout; why says what it would mean if it does not.
func (d *daemon) waitFailure(t *testing.T, timeout time.Duration, why string) {
	t.Helper()
	select {
	case err := <-d.done:
		d.done <- err
		if err == nil {
			t.Fatalf("%s exited 0 (%s)\n%s", d.cmd.Args[1], why, tail(d.out.String(), 20))
		}
	case <-time.After(timeout):
		t.Fatalf("%s did not stop within %s (%s)\n%s", d.cmd.Args[1], timeout, why, tail(d.out.String(), 20))
	}
}

// kill sends SIGKILL and waits for the process to go.
func (d *daemon) kill() {
	d.cmd.Process.Kill()
	<-d.done
}

// exited reports whether the process has exited, and its error.
func (d *daemon) exited() (bool, error) {
	select {
	case err := <-d.done:
		d.done <- err
		return true, err
	default:
		return false, nil
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// currentLSN returns the server's current WAL insert position.
func currentLSN(t *testing.T, conn *pgx.Conn) pglogrepl.LSN {
	t.Helper()
	var s string
	if err := conn.QueryRow(context.Background(), "SELECT pg_current_wal_lsn()::text").Scan(&s); err != nil {
		t.Fatal(err)
	}
	lsn, err := pglogrepl.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return lsn
}

// waitConfirmed waits until the slot's confirmed_flush_lsn reaches target:
// the daemon has uploaded every change up to there.
func waitConfirmed(t *testing.T, conn *pgx.Conn, slot string, target pglogrepl.LSN, d *daemon, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var s *string
		err := conn.QueryRow(context.Background(), "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&s)
		if err != nil && err != pgx.ErrNoRows {
			t.Fatal(err)
		}
		if s != nil {
			lsn, _ := pglogrepl.ParseLSN(*s)
			if lsn >= target {
				return
			}
		}
		if d != nil {
			if done, err := d.exited(); done {
				t.Fatalf("cdc2s3 exited (%v) before confirming %s\n%s", err, target, tail(d.out.String(), 40))
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot %s not confirmed up to %s within %s (at %v)", slot, target, timeout, s)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// download copies every object under bucket/prefix into dir, so the
// oracle (which reads local files only) can judge an S3 destination.
func download(t *testing.T, bucket, prefix, dir string) {
	t.Helper()
	ctx := context.Background()
	c := s3srv.Client()
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range page.Contents {
			key := aws.ToString(obj.Key)
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, strings.TrimPrefix(key, prefix))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(f, out.Body)
			out.Body.Close()
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// compareTables checks, table by table, that the state the oracle derives
// from the destination in dir equals the source.
func compareTables(t *testing.T, conn *pgx.Conn, dir string, tables [][2]string) {
	t.Helper()
	ctx := context.Background()
	for _, st := range tables {
		ot, err := oracle.TableFromCatalog(ctx, conn, st[0], st[1])
		if err != nil {
			t.Errorf("%s.%s: %v", st[0], st[1], err)
			continue
		}
		if ot.History, err = oracle.LoadHistory(dir, st[0], st[1]); err != nil {
			t.Errorf("%s.%s: %v", st[0], st[1], err)
			continue
		}
		want, err := oracle.SourceState(ctx, conn, ot)
		if err != nil {
			t.Errorf("%s.%s: source: %v", st[0], st[1], err)
			continue
		}
		got, err := oracle.State(ctx, oracle.TableDir(dir, st[0], st[1]), ot)
		if err != nil {
			t.Errorf("%s.%s: oracle: %v", st[0], st[1], err)
			continue
		}
		if err := oracle.Compare(want, got); err != nil {
			t.Errorf("%s.%s differs from the source (%d rows in source): %v", st[0], st[1], len(want), err)
		} else {
			t.Logf("%s.%s: %d rows match", st[0], st[1], len(want))
		}
	}
}

// compareCatalog runs cdc2s3 catalog --format duckdb on dir and checks,
// table by table, that each view the script makes, run in DuckDB, has
// exactly the source table's columns and rows; and that the Athena and
// Spark views of the same plan parse in their dialects with the same
// columns.
func compareCatalog(t *testing.T, conn *pgx.Conn, dir string, tables [][2]string) {
	t.Helper()
	ctx := context.Background()
	script, stderr, code := runOps(t, "catalog", "--dest", dir, "--format", "duckdb")
	if code != 0 {
		t.Fatalf("cdc2s3 catalog: exit %d\n%s", code, stderr)
	}
	lakeFormats := []lakeFormat{lakeViews(t, dir, "athena", "athena"), lakeViews(t, dir, "spark", "hive")}
	for _, st := range tables {
		ot, err := oracle.TableFromCatalog(ctx, conn, st[0], st[1])
		if err != nil {
			t.Errorf("%s.%s: %v", st[0], st[1], err)
			continue
		}
		want, err := oracle.SourceState(ctx, conn, ot)
		if err != nil {
			t.Errorf("%s.%s: source: %v", st[0], st[1], err)
			continue
		}
		names, got, err := oracle.ViewState(ctx, script, ot)
		if err != nil {
			t.Errorf("%s.%s: %v\nthe script:\n%s", st[0], st[1], err, script)
			return
		}
		var cols []string
		for _, c := range ot.Columns {
			cols = append(cols, c.Name)
		}
		if !slices.Equal(names, cols) {
			t.Errorf("%s.%s: the catalog's view has columns %v, the source %v", st[0], st[1], names, cols)
		}
		if err := oracle.Compare(want, got); err != nil {
			t.Errorf("%s.%s: the catalog's DuckDB view differs from the source (%d rows in source): %v", st[0], st[1], len(want), err)
		} else {
			t.Logf("%s.%s: the catalog's DuckDB view matches (%d rows)", st[0], st[1], len(want))
		}
		for _, f := range lakeFormats {
			lower := make([]string, len(cols))
			for i, c := range cols {
				lower[i] = strings.ToLower(c)
			}
			if got := f.columns[catalog.LakeName(catalog.Table{Schema: st[0], Name: st[1]})]; !slices.Equal(got, lower) {
				t.Errorf("%s.%s: the %s view has columns %v, the DuckDB view %v", st[0], st[1], f.name, got, lower)
			}
		}
	}
}

// lakeFormat is the catalog of a metastore engine, parsed: each view's
// columns by its name.
type lakeFormat struct {
	name    string
	columns map[string][]string
}

// lakeViews runs cdc2s3 catalog --format format on dir and parses each
// view's SELECT with node-sql-parser in dialect: its columns by view name.
func lakeViews(t *testing.T, dir, format, dialect string) lakeFormat {
	t.Helper()
	script, stderr, code := runOps(t, "catalog", "--dest", dir, "--format", format, "--database", "lake")
	if code != 0 {
		t.Fatalf("cdc2s3 catalog --format %s: exit %d\n%s", format, code, stderr)
	}
	views := regexp.MustCompile("(?s)CREATE OR REPLACE VIEW [`\"]lake[`\"]\\.[`\"]([a-z0-9_]+)[`\"] AS\n(.*?);\n").FindAllStringSubmatch(script, -1)
	if len(views) == 0 {
		t.Fatalf("cdc2s3 catalog --format %s wrote no view:\n%s", format, script)
	}
	var queries []oracle.Query
	for _, v := range views {
		queries = append(queries, oracle.Query{Dialect: dialect, SQL: v[2]})
	}
	cols, err := oracle.ParseColumns(context.Background(), queries)
	if err != nil {
		t.Fatalf("%s: %v", format, err)
	}
	f := lakeFormat{name: format, columns: map[string][]string{}}
	for i, v := range views {
		f.columns[v[1]] = cols[i]
	}
	return f
}
