package source

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
)

// TestIAMAuth checks the password a connection gets with IAM database
// authentication on: a token for its host, port and user, signed with the
// credentials (their secret not in it); and the refusals (no TLS, a
// password given).
// (RDS itself, which checks the token, is not here.)
func TestIAMAuth(t *testing.T) {
	UseIAMAuth(&IAMAuth{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")})
	defer UseIAMAuth(nil)
	t.Setenv("PGPASSWORD", "")
	t.Setenv("PGPASSFILE", "/nonexistent")
	token := func(dsn string) (string, error) {
		cfg, err := ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		err = applyIAMAuth(context.Background(), cfg)
		return cfg.Password, err
	}
	dsn := "postgres://cdc2s3@mydb.abc123.eu-west-1.rds.amazonaws.com:5432/app?sslmode=verify-full"
	tok, err := token(dsn)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mydb.abc123.eu-west-1.rds.amazonaws.com:5432?", "Action=connect", "DBUser=cdc2s3", "X-Amz-Signature=", "eu-west-1%2Frds-db"} {
		if !strings.Contains(tok, want) {
			t.Errorf("token %q lacks %q", tok, want)
		}
	}
	if strings.Contains(tok, "secret") {
		t.Error("the token holds the secret key")
	}
	for dsn, want := range map[string]string{
		"postgres://cdc2s3@db:5432/app?sslmode=disable":                 "needs TLS",
		"postgres://cdc2s3:pw@db:5432/app?sslmode=verify-full":          "remove the password",
		"postgres://cdc2s3@db:5432/app?sslmode=verify-full&password=pw": "remove the password",
	} {
		if _, err := token(dsn); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", dsn, err, want)
		}
	}
}
