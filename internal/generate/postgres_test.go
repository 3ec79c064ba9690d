package generate

import (
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

// pgBin holds the PostgreSQL 15 binaries.
const pgBin = "/usr/lib/postgresql/15/bin"

// cluster is one PostgreSQL shared by the tests in this package; each test
// gets its own database.
var cluster struct {
	once sync.Once
	dir  string // owned by the postgres OS user when running as root
	port int
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cluster.dir != "" {
		_ = pgCmd("pg_ctl", "-D", filepath.Join(cluster.dir, "data"), "-m", "immediate", "-w", "stop").Run()
		_ = os.RemoveAll(cluster.dir)
	}
	os.Exit(code)
}

// testDSN returns the DSN of a fresh database for t. It fails t, rather than
// skipping, when PostgreSQL cannot start; under -short it skips t.
func testDSN(t *testing.T) string {
	t.Helper()
	testenv.Integration(t, "PostgreSQL")
	cluster.once.Do(func() { cluster.err = startCluster() })
	if cluster.err != nil {
		t.Fatalf("start postgres: %v", cluster.err)
	}
	db := "t_" + strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name()))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn("postgres"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	return dsn(db)
}

func dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", cluster.port, db)
}

// pgCmd runs a PostgreSQL binary as the postgres OS user: initdb and
// postgres refuse to run as root.
func pgCmd(name string, args ...string) *exec.Cmd {
	bin := filepath.Join(pgBin, name)
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", bin}, args...)...)
	}
	return exec.Command(bin, args...)
}

func startCluster() error {
	dir, err := os.MkdirTemp("", "cdc2s3-generate-pg-")
	if err != nil {
		return err
	}
	cluster.dir = dir
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("look up postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return err
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := pgCmd("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--no-sync", "--no-instructions").CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	cluster.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s "+
		"-c wal_level=logical -c max_replication_slots=4 -c max_wal_senders=4 "+
		"-c fsync=off -c full_page_writes=off", cluster.port, dir)
	logFile := filepath.Join(dir, "postgres.log")
	if out, err := pgCmd("pg_ctl", "-D", data, "-l", logFile, "-o", opts, "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(logFile)
		return fmt.Errorf("pg_ctl start: %w: %s\n%s", err, out, log)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, dsn("postgres"))
		if err == nil {
			return conn.Close(ctx)
		}
		if ctx.Err() != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
