package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// CheckServer verifies what streaming needs before anything is created:
// wal_level = logical and a role that may replicate (the REPLICATION
// attribute, rds_replication or superuser), so the user gets one clear
// message instead of a protocol error.
func CheckServer(ctx context.Context, conn *pgx.Conn) error {
	var walLevel string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel); err != nil {
		return Explain(fmt.Errorf("read wal_level: %w", err), nil)
	}
	if walLevel != "logical" {
		return fmt.Errorf("wal_level is %s: set wal_level = logical in postgresql.conf (on RDS: rds.logical_replication = 1) and restart PostgreSQL", walLevel)
	}
	var user string
	var ok bool
	err := conn.QueryRow(ctx, `
		SELECT current_user, rolsuper OR rolreplication OR
		       EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = 'rds_replication' AND pg_has_role(current_user, r.oid, 'member'))
		FROM pg_roles WHERE rolname = current_user`).Scan(&user, &ok)
	if err != nil {
		return Explain(fmt.Errorf("read role: %w", err), nil)
	}
	if !ok {
		return fmt.Errorf("user %q lacks the REPLICATION attribute: ALTER ROLE %s REPLICATION (on RDS: GRANT rds_replication TO %s)",
			user, pgx.Identifier{user}.Sanitize(), pgx.Identifier{user}.Sanitize())
	}
	return nil
}

// Transient reports whether err is a lost or refused connection, which a
// reconnect may cure, as opposed to a configuration or data error. It
// judges by type and SQLSTATE, never by the error's text: server errors of
// class 08 (connection exception), 57P01-57P05 (shutdown, crash, cannot
// connect now, idle timeouts) and 53300 (too many connections); network
// errors, a connection closed under a query, and a server that is not up.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P") || pgErr.Code == "53300"
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	switch {
	case errors.As(err, &netErr), errors.As(err, &connectErr):
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	// A pgconn used after its connection died ("conn closed") fails before
	// it sends anything: pgconn marks such errors safe to retry.
	return pgconn.SafeToRetry(err)
}

// serverMessage returns the server's message of err, or err's text.
func serverMessage(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Message
	}
	return err.Error()
}

// ServerVersion is PostgreSQL's version number (150004 for 15.4), as the
// server reported it at the connection's start (no round trip), 0 when it
// does not say.
func ServerVersion(conn *pgx.Conn) int {
	var v, major int
	if _, err := fmt.Sscan(conn.PgConn().ParameterStatus("server_version_num"), &v); err == nil {
		return v
	}
	if _, err := fmt.Sscanf(conn.PgConn().ParameterStatus("server_version"), "%d", &major); err == nil {
		return major * 10000
	}
	return 0
}
