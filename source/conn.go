// Package source holds what cdc2s3 asks of a PostgreSQL server outside the
// replication stream: connections with the contract's session settings,
// the published tables, their keys and column types, and the checks and
// hints that turn server errors into messages a user can act on.
package source

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// SessionSettings are the settings of every session cdc2s3 opens: those
// under which both the snapshot and the replication stream print values,
// so LOAD and CDC rows of the same value are identical (contract §3), and
// no statement, idle-transaction or lock timeouts.
var SessionSettings = map[string]string{
	"TimeZone":           "UTC",
	"DateStyle":          "ISO, MDY",
	"IntervalStyle":      "iso_8601",
	"extra_float_digits": "3",
	"bytea_output":       "hex",
	"application_name":   "cdc2s3",
	// Timeouts a role or database may set would kill a long COPY, the
	// exported snapshot (held by an idle transaction) or a wait for a
	// lock mid-load: every session of cdc2s3 runs without them.
	"statement_timeout":                   "0",
	"idle_in_transaction_session_timeout": "0",
	"lock_timeout":                        "0",
}

// ParseConfig parses a connection string (URL or key=value; PG* variables
// and .pgpass apply) and adds the session settings.
func ParseConfig(dsn string) (*pgconn.Config, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("invalid --source connection string: %s", Redact(err.Error()))
	}
	for k, v := range SessionSettings {
		if _, set := cfg.RuntimeParams[k]; !set || k != "application_name" {
			cfg.RuntimeParams[k] = v
		}
	}
	cfg.BuildFrontend = newFrontend
	return cfg, nil
}

// readBufferSize is the size of each connection's read buffer. pgx reads
// the socket 8 KB at a time; a COPY or a replication stream of small rows
// then costs a system call per few dozen rows. A larger buffer takes
// whatever the socket holds in one call.
const readBufferSize = 256 << 10

// newFrontend is pgconn's frontend with a larger read buffer in front of
// the connection. Nothing in cdc2s3 uses the net.Conn directly (the one
// case, Hijack after SyncConn, would not see the buffered bytes).
func newFrontend(r io.Reader, w io.Writer) *pgproto3.Frontend {
	return pgproto3.NewFrontend(bufio.NewReaderSize(r, readBufferSize), w)
}

// pacedReader waits a moment before reading again when its last read
// returned little. A walsender sends each message with a send of its own,
// so a consumer that reads whenever the socket holds anything reads about
// one message per system call (and per wake-up of its goroutine); waiting
// pacedWait once the stream trickles lets a few dozen messages gather
// first. A TCP socket's buffer holds far more than that wait's worth, so
// the sender is never held up, and the delay a change sees is at most
// pacedWait per read. A Unix socket's does not (see paced).
type pacedReader struct {
	r     io.Reader
	small bool // the last read returned less than pacedSmall bytes
}

// pacedSmall and pacedWait: a read of less than pacedSmall bytes makes the
// next one wait pacedWait.
const (
	pacedSmall = 16 << 10
	pacedWait  = 200 * time.Microsecond
)

func (p *pacedReader) Read(b []byte) (int, error) {
	if p.small {
		time.Sleep(pacedWait)
	}
	n, err := p.r.Read(b)
	p.small = n < pacedSmall
	return n, err
}

// newPacedFrontend is newFrontend with a pacedReader under the buffer, for
// the replication stream, where paced says so.
func newPacedFrontend(r io.Reader, w io.Writer) *pgproto3.Frontend {
	if !paced(w) {
		return newFrontend(r, w)
	}
	return newFrontend(&pacedReader{r: r}, w)
}

// paced reports whether the replication stream on conn is read through a
// pacedReader: on every connection but a Unix socket. A Unix stream socket
// buffers what its sender's send buffer allows, counted with each send's
// overhead: a walsender's one send per message fills it with a few hundred
// messages, under a millisecond of a backlog, and a wait then holds the
// walsender up. Measured on a backlog (docs/benchmarks.md, "Reading the
// stream in fewer system calls"): over loopback TCP the wait cuts both
// processes' CPU and the drain's time; over a Unix socket the drain took
// longer with it, and three times as long with a wait of 600 µs.
func paced(conn io.Writer) bool {
	_, unix := conn.(*net.UnixConn)
	return !unix
}

// Connect opens a regular connection for catalog queries and the snapshot.
func Connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	pc, err := ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("invalid --source connection string: %s", Redact(err.Error()))
	}
	if err := applyIAMAuth(ctx, pc); err != nil {
		return nil, err
	}
	cfg.Config = *pc
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, Explain(err, pc)
	}
	return conn, nil
}

// ConnectReplication opens a logical replication connection
// (replication=database) to the database of dsn.
func ConnectReplication(ctx context.Context, dsn string) (*pgconn.PgConn, error) {
	cfg, err := ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["replication"] = "database"
	cfg.BuildFrontend = newPacedFrontend
	if err := applyIAMAuth(ctx, cfg); err != nil {
		return nil, err
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, Explain(err, cfg)
	}
	return conn, nil
}

// Explain turns a connection or query error into a message that names the
// fix. It never includes the password. The original error stays reachable
// with errors.As (for example to tell a lost connection from bad input).
func Explain(err error, cfg *pgconn.Config) error {
	if err == nil {
		return nil
	}
	user, where := "", ""
	if cfg != nil {
		user = cfg.User
		where = fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "28P01":
			return hint(err, "password authentication failed for user %q: check the password in --source (or PGPASSWORD / ~/.pgpass)", user)
		case "28000":
			if strings.Contains(pgErr.Message, "replication") {
				return hint(err, "user %q may not open a replication connection: grant it with ALTER ROLE %q REPLICATION (on RDS: GRANT rds_replication TO %q) and allow replication connections in pg_hba.conf", user, user, user)
			}
			return hint(err, "server rejected user %q: %s; allow the client in pg_hba.conf", user, pgErr.Message)
		case "3D000":
			return hint(err, "%s: fix the database name in --source", pgErr.Message)
		case "42501":
			if strings.Contains(pgErr.Message, "replication") {
				return hint(err, "user %q lacks the REPLICATION attribute: ALTER ROLE %q REPLICATION (on RDS: GRANT rds_replication TO %q)", user, user, user)
			}
			return hint(err, "permission denied: %s; grant the privilege to %q", pgErr.Message, user)
		case "55000":
			if strings.Contains(pgErr.Message, "wal_level") {
				return hint(err, "wal_level is not logical: set wal_level = logical in postgresql.conf (on RDS: rds.logical_replication = 1) and restart PostgreSQL")
			}
		case "53400":
			return hint(err, "%s: raise max_replication_slots / max_wal_senders on the server or drop unused slots", pgErr.Message)
		}
		return hint(err, "postgres: %s (SQLSTATE %s)", Redact(pgErr.Message), pgErr.Code)
	}
	if msg := explainTLS(err, cfg); msg != "" {
		return hint(err, "%s", msg)
	}
	var netErr net.Error
	if errors.As(err, &netErr) || strings.Contains(err.Error(), "connect") {
		return hint(err, "cannot connect to PostgreSQL at %s: %s; check the host and port in --source and that the server is running", where, Redact(rootCause(err)))
	}
	return hint(err, "%s", Redact(oneLine(err.Error())))
}

// rdsBundle is where RDS and Aurora's CA bundle is published.
const rdsBundle = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"

// explainTLS names the fix of a failed certificate check (sslmode
// verify-ca or verify-full), or returns "" for another error.
func explainTLS(err error, cfg *pgconn.Config) string {
	host := ""
	if cfg != nil {
		host = cfg.Host
	}
	var hostErr x509.HostnameError
	if errors.As(err, &hostErr) {
		names := hostErr.Certificate.DNSNames
		for _, ip := range hostErr.Certificate.IPAddresses {
			names = append(names, ip.String())
		}
		return fmt.Sprintf("the server's TLS certificate is for %s, not %s (sslmode=verify-full checks the host name): connect to a name the certificate holds "+
			"(on RDS and Aurora, the instance or cluster endpoint, not an IP address or a CNAME of your own)", strings.Join(names, ", "), host)
	}
	var authErr x509.UnknownAuthorityError
	if errors.As(err, &authErr) {
		return fmt.Sprintf("the TLS certificate of %s is not signed by a CA that sslrootcert holds: set sslrootcert in --source to the server's CA "+
			"(for RDS and Aurora, the bundle from %s)", host, rdsBundle)
	}
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) {
		return fmt.Sprintf("the TLS certificate of %s is not valid (%s): renew it, or check the clock of this host", host, invalid.Error())
	}
	return ""
}

// hintError is a user-facing message for an underlying error.
type hintError struct {
	msg   string
	cause error
}

func (e *hintError) Error() string { return e.msg }
func (e *hintError) Unwrap() error { return e.cause }

func hint(cause error, format string, args ...any) error {
	return &hintError{msg: fmt.Sprintf(format, args...), cause: cause}
}

// rootCause returns the text of the first network error in err (for
// example "dial tcp 127.0.0.1:5432: connect: connection refused"), else
// of the innermost error, on one line. pgconn joins one error per host and
// TLS attempt with newlines, often the same one twice.
func rootCause(err error) string {
	var netErr net.Error
	if errors.As(err, &netErr) {
		return oneLine(netErr.Error())
	}
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return oneLine(err.Error())
		}
		err = u
	}
}

// oneLine joins the lines of s with "; " so an error prints on one line.
func oneLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "; ")
}

// Redact removes passwords from a connection string or a message that
// quotes one: "postgres://u:secret@h" becomes "postgres://u:xxxxx@h", and
// "password=secret" becomes "password=xxxxx".
func Redact(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			break
		}
		b.WriteString(s[:i+3])
		s = s[i+3:]
		at := strings.IndexByte(s, '@')
		end := strings.IndexAny(s, " /?\t\n")
		if at >= 0 && (end < 0 || at < end) {
			cred := s[:at]
			if c := strings.IndexByte(cred, ':'); c >= 0 {
				b.WriteString(cred[:c+1] + "xxxxx")
			} else {
				b.WriteString(cred)
			}
			s = s[at:]
		}
	}
	b.WriteString(s)
	out := b.String()
	for _, key := range []string{"password=", "PASSWORD="} {
		for from := 0; ; {
			i := strings.Index(out[from:], key)
			if i < 0 {
				break
			}
			i += from + len(key)
			j := i
			for j < len(out) && out[j] != ' ' && out[j] != '&' {
				j++
			}
			out = out[:i] + "xxxxx" + out[j:]
			from = i + 5
		}
	}
	return out
}
