package oracle

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdc2s3/cdc2s3/internal/testenv"
)

// ---- DuckDB, to build Parquet inputs without cdc2s3's writer ----

// duckScript runs SQL statements read from stdin in an in-memory DuckDB.
const duckScript = `
import { DuckDBInstance } from '@duckdb/node-api';
let sql = '';
process.stdin.setEncoding('utf8');
for await (const chunk of process.stdin) sql += chunk;
const db = await DuckDBInstance.create(':memory:');
const conn = await db.connect();
await conn.run(sql);
`

// duck runs SQL in DuckDB (through Node.js, from the oracle's js directory).
func duck(t *testing.T, sql string) {
	t.Helper()
	testenv.Integration(t, "DuckDB (node/npm)")
	if err := Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", "--input-type=module", "-e", duckScript)
	cmd.Dir = jsDir()
	cmd.Stdin = strings.NewReader(sql)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if len(sql) > 2000 {
			sql = sql[:2000] + " ..."
		}
		t.Fatalf("duckdb: %v: %s\nSQL:\n%s", err, stderr.String(), sql)
	}
}

// prow is one row of a test Parquet file: the contract's system columns and
// the table columns as DuckDB SQL literals.
type prow struct {
	op        string
	lsn, seq  int64
	unchanged []string
	vals      []string
}

func row(op string, lsn, seq int64, vals ...string) prow {
	return prow{op: op, lsn: lsn, seq: seq, vals: vals}
}

func (r prow) with(unchanged ...string) prow {
	r.unchanged = unchanged
	return r
}

// copySQL returns a COPY statement that writes rows to path as Parquet with
// the contract's system columns followed by cols ("name TYPE" or
// `"quoted name" TYPE`, DuckDB types). Literals in one column must share a
// type across rows (VALUES unifies them): cast where they would not.
func copySQL(path string, cols []string, rows ...prow) string {
	sel := []string{
		"CAST(c0 AS VARCHAR) AS Op",
		"TIMESTAMPTZ '2024-01-01 00:00:00+00' AS _cdc_commit_ts",
		"CAST(c1 AS BIGINT) AS _cdc_lsn",
		"CAST(c2 AS BIGINT) AS _cdc_seq",
		"CAST(c3 AS VARCHAR[]) AS _cdc_unchanged",
	}
	for i, c := range cols {
		name, typ, _ := strings.Cut(c, " ")
		if strings.HasPrefix(c, `"`) { // a quoted name: "Mixed Case" VARCHAR
			end := strings.Index(c[1:], `"`) + 1
			name, typ = c[1:end], strings.TrimSpace(c[end+1:])
		}
		sel = append(sel, fmt.Sprintf("CAST(c%d AS %s) AS %q", i+4, typ, name))
	}
	var values []string
	for _, r := range rows {
		items := []string{lit(r.op), strconv.FormatInt(r.lsn, 10), strconv.FormatInt(r.seq, 10), "NULL"}
		if r.unchanged != nil {
			var u []string
			for _, n := range r.unchanged {
				u = append(u, lit(n))
			}
			items[3] = "[" + strings.Join(u, ", ") + "]"
		}
		if len(r.vals) != len(cols) {
			panic(fmt.Sprintf("row %v: %d values for %d columns", r, len(r.vals), len(cols)))
		}
		items = append(items, r.vals...)
		values = append(values, "("+strings.Join(items, ", ")+")")
	}
	names := make([]string, len(cols)+4)
	for i := range names {
		names[i] = fmt.Sprintf("c%d", i)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		panic(err)
	}
	return fmt.Sprintf("COPY (SELECT %s FROM (VALUES %s) v(%s)) TO %s (FORMAT parquet);\n",
		strings.Join(sel, ", "), strings.Join(values, ", "), strings.Join(names, ", "), lit(path))
}

// lit quotes a SQL string literal.
func lit(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// ---- PostgreSQL ----

const pgBin = "/usr/lib/postgresql/15/bin"

var pg struct {
	once    sync.Once
	connStr string
	stop    func()
	err     error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pg.stop != nil {
		pg.stop()
	}
	os.Exit(code)
}

// pgConn connects to a PostgreSQL 15 cluster (wal_level = logical) that the
// package's tests share; the first call starts it. It fails the test when
// PostgreSQL cannot run, and skips it under -short.
func pgConn(t *testing.T) *pgx.Conn {
	t.Helper()
	testenv.Integration(t, "PostgreSQL")
	pg.once.Do(func() { pg.connStr, pg.stop, pg.err = startPostgres() })
	if pg.err != nil {
		t.Fatalf("start PostgreSQL: %v", pg.err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.connStr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// startPostgres initializes and starts a throw-away cluster under
// os.TempDir(), as the postgres OS user when running as root.
func startPostgres() (connStr string, stop func(), err error) {
	if _, err := os.Stat(filepath.Join(pgBin, "postgres")); err != nil {
		return "", nil, fmt.Errorf("PostgreSQL 15 is not installed: %w", err)
	}
	dir, err := os.MkdirTemp("", "oracle-pg-")
	if err != nil {
		return "", nil, err
	}
	asPostgres := func(name string, args ...string) *exec.Cmd {
		return exec.Command(filepath.Join(pgBin, name), args...)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return "", nil, fmt.Errorf("running as root needs a postgres OS user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", nil, err
		}
		asPostgres = func(name string, args ...string) *exec.Cmd {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(pgBin, name)}, args...)...)
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := asPostgres("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale").CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s -c wal_level=logical -c fsync=off", port, dir)
	if out, err := asPostgres("pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-o", opts, "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		_ = os.RemoveAll(dir)
		return "", nil, fmt.Errorf("pg_ctl start: %v: %s\n%s", err, out, log)
	}
	stop = func() {
		_ = asPostgres("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop").Run()
		_ = os.RemoveAll(dir)
	}
	connStr = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	// pg_ctl -w waits for readiness, but allow a moment for the TCP listener.
	for i := 0; ; i++ {
		c, err := pgx.Connect(context.Background(), connStr)
		if err == nil {
			_ = c.Close(context.Background())
			return connStr, stop, nil
		}
		if i == 50 {
			stop()
			return "", nil, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// exec runs SQL statements on conn, failing the test on error.
func mustExec(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
