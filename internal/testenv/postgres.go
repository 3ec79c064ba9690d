package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultPostgresBinDir is where Debian's postgresql-15 package installs the
// server programs. CDC2S3_PG_BINDIR or PostgresOptions.BinDir override it.
const DefaultPostgresBinDir = "/usr/lib/postgresql/15/bin"

// postgresStartTimeout bounds how long one server start may take.
const postgresStartTimeout = 60 * time.Second

// PostgresOptions configures StartPostgres. The zero value gives a cluster
// with wal_level = logical.
type PostgresOptions struct {
	// WALLevel is the cluster's wal_level; "" means "logical". Use
	// "replica" to test how the tool reports a misconfigured server.
	WALLevel string

	// Settings are extra postgresql.conf parameters, applied after the
	// defaults.
	Settings map[string]string

	// BinDir holds initdb and postgres; "" means $CDC2S3_PG_BINDIR, else
	// DefaultPostgresBinDir.
	BinDir string

	// Files are written into the data directory before the server starts,
	// mode 0600 and owned by the server's user (a TLS certificate and key
	// for ssl_cert_file and ssl_key_file).
	Files map[string][]byte
}

// Postgres is a throwaway PostgreSQL cluster listening on 127.0.0.1. The
// superuser is "postgres" with a random password; TCP connections, including
// replication ones, authenticate with scram-sha-256.
type Postgres struct {
	binDir   string
	dir      string // temp dir: data/, log, unix socket
	dataDir  string
	logPath  string
	port     int
	password string
	cred     *syscall.Credential // run as this user; nil when not root

	mu   sync.Mutex
	proc *process
	conf map[string]string // SetConf settings, written to testenv.conf
}

// NewPostgres starts a cluster for tb and stops it when tb ends. It fails tb
// if the cluster cannot start, and skips it under -short (see Integration).
// At most one PostgresOptions may be given.
func NewPostgres(tb testing.TB, opts ...PostgresOptions) *Postgres {
	tb.Helper()
	Integration(tb, "PostgreSQL")
	pg, err := StartPostgres(context.Background(), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := pg.Stop(); err != nil {
			tb.Error(err)
		}
	})
	return pg
}

// StartPostgres creates a cluster in a new temp dir with initdb and starts
// it on a free port. At most one PostgresOptions may be given. The caller
// calls Stop.
func StartPostgres(ctx context.Context, opts ...PostgresOptions) (*Postgres, error) {
	var o PostgresOptions
	switch len(opts) {
	case 0:
	case 1:
		o = opts[0]
	default:
		return nil, errors.New("postgres: more than one PostgresOptions")
	}
	if o.WALLevel == "" {
		o.WALLevel = "logical"
	}
	binDir := o.BinDir
	if binDir == "" {
		binDir = os.Getenv("CDC2S3_PG_BINDIR")
	}
	if binDir == "" {
		binDir = DefaultPostgresBinDir
	}
	for _, prog := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(binDir, prog)); err != nil {
			return nil, fmt.Errorf("postgres: %s not found in %s: install PostgreSQL 15 (apt-get install postgresql-15) or set CDC2S3_PG_BINDIR: %w", prog, binDir, err)
		}
	}

	pg := &Postgres{binDir: binDir, password: randomHex(16), conf: map[string]string{}}
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root.
		cred, err := lookupCredential("postgres")
		if err != nil {
			return nil, fmt.Errorf("postgres: running as root needs the postgres OS user: %w", err)
		}
		pg.cred = cred
	}
	// Not t.TempDir: that is under a 0700 root-owned dir the postgres user
	// cannot reach.
	dir, err := os.MkdirTemp("", "cdc2s3-pg-")
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pg.dir = dir
	pg.dataDir = filepath.Join(dir, "data")
	pg.logPath = filepath.Join(dir, "postgres.log")
	if err := pg.initdb(ctx, o); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}

	// Another process may take the free port before the server binds it;
	// try a few.
	for attempt := 0; ; attempt++ {
		if pg.port, err = FreePort(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("postgres: %w", err)
		}
		err = pg.start(ctx)
		if err == nil {
			return pg, nil
		}
		if attempt == 4 || !strings.Contains(logTail(pg.logPath, 20), "could not bind") {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

// lookupCredential returns the uid and gid of the named OS user.
func lookupCredential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// command returns a command for one of the cluster's programs, run as the
// postgres OS user when we are root.
func (pg *Postgres) command(ctx context.Context, prog string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(pg.binDir, prog), args...)
	cmd.Dir = pg.dir
	cmd.Env = append(cleanEnv("PG", "HOME=", "LC_ALL="), "HOME="+pg.dir, "LC_ALL=C", "TZ=UTC")
	if pg.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	}
	return cmd
}

// cleanEnv returns the environment without the entries that start with any
// of the prefixes.
func cleanEnv(prefixes ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}

// chown gives path to the postgres OS user when we run as root.
func (pg *Postgres) chown(path string) error {
	if pg.cred == nil {
		return nil
	}
	return os.Chown(path, int(pg.cred.Uid), int(pg.cred.Gid))
}

// writeFile writes a file the server can read.
func (pg *Postgres) writeFile(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	return pg.chown(path)
}

// initdb creates the cluster and writes its configuration.
func (pg *Postgres) initdb(ctx context.Context, o PostgresOptions) error {
	if err := os.Chmod(pg.dir, 0o700); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if err := pg.chown(pg.dir); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	pwfile := filepath.Join(pg.dir, "pwfile")
	if err := pg.writeFile(pwfile, pg.password+"\n"); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	cmd := pg.command(ctx, "initdb",
		"-D", pg.dataDir,
		"-U", "postgres",
		"--pwfile", pwfile,
		"--auth-host=scram-sha-256",
		"--auth-local=trust",
		"-E", "UTF8",
		"--locale=C",
		"--no-sync",
		"--no-instructions",
	)
	out, err := cmd.CombinedOutput()
	os.Remove(pwfile)
	if err != nil {
		return fmt.Errorf("postgres: initdb: %w\n%s", err, lastLines(string(out), 20))
	}

	// Unix sockets (trust) are in the private temp dir; TCP needs the
	// password, so a wrong password really fails.
	hba := `# written by internal/testenv
local   all          all                  trust
local   replication  all                  trust
host    all          all   127.0.0.1/32   scram-sha-256
host    replication  all   127.0.0.1/32   scram-sha-256
`
	if err := pg.writeFile(filepath.Join(pg.dataDir, "pg_hba.conf"), hba); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	for name, content := range o.Files {
		if err := pg.writeFile(filepath.Join(pg.dataDir, name), string(content)); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
	}
	settings := map[string]string{
		"listen_addresses":        "127.0.0.1",
		"unix_socket_directories": pg.dir,
		"wal_level":               o.WALLevel,
		"max_replication_slots":   "32",
		"max_wal_senders":         "32",
		"fsync":                   "off",
		"full_page_writes":        "off",
		"shared_buffers":          "32MB",
		"logging_collector":       "off",
		"log_destination":         "stderr",
		"log_line_prefix":         "%m [%p] ",
	}
	for k, v := range o.Settings {
		settings[k] = v
	}
	conf := "\n# written by internal/testenv\n" + formatConf(settings) +
		"include = 'testenv.conf'\n"
	if err := pg.writeFile(filepath.Join(pg.dataDir, "testenv.conf"), ""); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(pg.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("postgres: write postgresql.conf: %w", err)
	}
	return nil
}

// formatConf renders settings as postgresql.conf lines, sorted by name.
func formatConf(settings map[string]string) string {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = '%s'\n", k, strings.ReplaceAll(settings[k], "'", "''"))
	}
	return b.String()
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// start runs the server on pg.port and waits until it accepts password
// connections. pg.mu need not be held: it is called before pg is shared or
// with the lock held.
func (pg *Postgres) start(ctx context.Context) error {
	logf, err := os.OpenFile(pg.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	// Not CommandContext: the server outlives the ctx that started it.
	cmd := pg.command(context.Background(), "postgres", "-D", pg.dataDir, "-p", strconv.Itoa(pg.port))
	cmd.Stdout = logf
	cmd.Stderr = logf
	proc, err := startProcess(cmd)
	logf.Close()
	if err != nil {
		return fmt.Errorf("postgres: start: %w", err)
	}
	pg.proc = proc

	var lastErr error
	err = Poll(ctx, postgresStartTimeout, func() (bool, error) {
		if proc.exited() {
			return false, proc.errExited()
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(cctx, pg.DSN("postgres"))
		if err != nil {
			lastErr = err
			return false, nil
		}
		conn.Close(cctx)
		return true, nil
	})
	if err != nil {
		proc.kill()
		if lastErr != nil {
			err = fmt.Errorf("%w (last connect error: %v)", err, lastErr)
		}
		return fmt.Errorf("postgres: server on port %d did not start: %w\nserver log:\n%s",
			pg.port, err, logTail(pg.logPath, 30))
	}
	return nil
}

// DSN returns a URL connecting to database db as the superuser over TCP
// with the password: postgres://postgres:PASSWORD@127.0.0.1:PORT/db?sslmode=disable.
func (pg *Postgres) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/%s?sslmode=disable", pg.password, pg.port, url.PathEscape(db))
}

// Password returns the superuser's password.
func (pg *Postgres) Password() string { return pg.password }

// Port returns the TCP port the server listens on (127.0.0.1).
func (pg *Postgres) Port() int { return pg.port }

// BinDir returns the directory holding the PostgreSQL programs.
func (pg *Postgres) BinDir() string { return pg.binDir }

// DataDir returns the cluster's data directory.
func (pg *Postgres) DataDir() string { return pg.dataDir }

// LogPath returns the server log file.
func (pg *Postgres) LogPath() string { return pg.logPath }

// Connect opens a connection to database db as the superuser.
func (pg *Postgres) Connect(ctx context.Context, db string) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, pg.DSN(db))
	if err != nil {
		return nil, fmt.Errorf("postgres: connect %s: %w", db, err)
	}
	return conn, nil
}

// Exec runs sql (several statements are fine when there are no args) in
// database db as the superuser.
func (pg *Postgres) Exec(ctx context.Context, db, sql string, args ...any) error {
	conn, err := pg.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("postgres: exec in %s: %w", db, err)
	}
	return nil
}

// CreateDatabase creates database name.
func (pg *Postgres) CreateDatabase(ctx context.Context, name string) error {
	return pg.Exec(ctx, "postgres", "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
}

// SetConf sets a postgresql.conf parameter. It takes effect at the next
// Restart, or at Reload for parameters that allow it. Unlike ALTER SYSTEM it
// works while the server is down.
func (pg *Postgres) SetConf(ctx context.Context, key, value string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	pg.mu.Lock()
	defer pg.mu.Unlock()
	pg.conf[key] = value
	path := filepath.Join(pg.dataDir, "testenv.conf")
	if err := pg.writeFile(path, formatConf(pg.conf)); err != nil {
		return fmt.Errorf("postgres: set %s: %w", key, err)
	}
	return nil
}

// Reload makes the server re-read its configuration (pg_reload_conf).
func (pg *Postgres) Reload(ctx context.Context) error {
	return pg.Exec(ctx, "postgres", "SELECT pg_reload_conf()")
}

// Restart stops the server (fast shutdown) if it is running and starts it
// again on the same data directory and port.
func (pg *Postgres) Restart(ctx context.Context) error {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	if pg.proc != nil {
		pg.proc.stop(syscall.SIGINT, postgresStartTimeout)
		pg.proc.kill() // wait for stray backends
	}
	return pg.start(ctx)
}

// Kill ends the server and all its backends with SIGKILL, like a crash. The
// next Restart runs crash recovery.
func (pg *Postgres) Kill() {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	if pg.proc != nil {
		pg.proc.kill()
	}
}

// Stop shuts the server down (fast shutdown: SIGINT) and removes its
// directory. Calling it again does nothing.
func (pg *Postgres) Stop() error {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	if pg.dir == "" {
		return nil
	}
	if pg.proc != nil {
		pg.proc.stop(syscall.SIGINT, postgresStartTimeout)
		pg.proc.kill()
	}
	err := os.RemoveAll(pg.dir)
	pg.dir = ""
	if err != nil {
		return fmt.Errorf("postgres: remove data: %w", err)
	}
	return nil
}
