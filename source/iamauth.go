package source

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/rds/auth"
	"github.com/jackc/pgx/v5/pgconn"
)

// IAMAuth makes every new connection authenticate to RDS or Aurora with an
// IAM database authentication token instead of a password: a token signed
// with Credentials for the connection's host, port and user, made afresh
// for each connection (it is valid for 15 minutes, and only checked when
// the connection authenticates), so no password is stored anywhere.
type IAMAuth struct {
	Region      string
	Credentials aws.CredentialsProvider
}

var iamAuth atomic.Pointer[IAMAuth]

// UseIAMAuth turns IAM database authentication on for every connection
// this process opens from now on (nil turns it off). The command line sets
// it once, at start (--source-iam-auth).
func UseIAMAuth(a *IAMAuth) { iamAuth.Store(a) }

// applyIAMAuth puts a fresh token in cfg's password when IAM
// authentication is on. RDS accepts tokens only over TLS, and a password in
// the connection string would contradict the point.
func applyIAMAuth(ctx context.Context, cfg *pgconn.Config) error {
	a := iamAuth.Load()
	if a == nil {
		return nil
	}
	if cfg.TLSConfig == nil {
		return errors.New("IAM database authentication needs TLS: set sslmode=verify-full (and sslrootcert to the RDS CA bundle) in --source; RDS refuses tokens over plain connections")
	}
	if cfg.Password != "" {
		return errors.New("--source-iam-auth authenticates with IAM tokens: remove the password from --source (and PGPASSWORD, ~/.pgpass)")
	}
	token, err := auth.BuildAuthToken(ctx, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), a.Region, cfg.User, a.Credentials)
	if err != nil {
		return fmt.Errorf("IAM database authentication token for %s@%s: %w (check the AWS credentials and region)", cfg.User, cfg.Host, err)
	}
	cfg.Password = token
	return nil
}
