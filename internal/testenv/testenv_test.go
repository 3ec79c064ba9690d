package testenv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := NewPostgres(t)

	if err := pg.CreateDatabase(ctx, "app db"); err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec(ctx, "app db", "CREATE TABLE t (id int primary key); CREATE PUBLICATION p FOR TABLE t"); err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec(ctx, "app db", "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", "s1"); err != nil {
		t.Fatal(err)
	}

	// A replication connection authenticates with the password over TCP.
	conn, err := pgconn.Connect(ctx, pg.DSN("app db")+"&replication=database")
	if err != nil {
		t.Fatal(err)
	}
	res, err := conn.Exec(ctx, "IDENTIFY_SYSTEM").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || len(res[0].Rows) != 1 {
		t.Fatalf("IDENTIFY_SYSTEM returned %v", res)
	}
	if _, err := conn.Exec(ctx, "CREATE_REPLICATION_SLOT s2 LOGICAL pgoutput").ReadAll(); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	// A wrong password fails, for normal and replication connections.
	bad := strings.Replace(pg.DSN("postgres"), pg.Password(), "wrong", 1)
	for _, dsn := range []string{bad, bad + "&replication=database"} {
		if c, err := pgconn.Connect(ctx, dsn); err == nil {
			c.Close(ctx)
			t.Fatalf("connect with a wrong password succeeded: %s", dsn)
		} else if !strings.Contains(err.Error(), "password authentication failed") {
			t.Fatalf("wrong password: got %v", err)
		}
	}

	// Slots survive a restart and a crash.
	if err := pg.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	pg.Kill()
	if err := pg.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := pg.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name IN ('s1', 's2')").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("got %d slots after restart, want 2", n)
	}
	var level string
	if err := c.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		t.Fatal(err)
	}
	if level != "logical" {
		t.Fatalf("wal_level = %s", level)
	}
}

func TestPostgresWALReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := NewPostgres(t, PostgresOptions{WALLevel: "replica"})
	err := pg.Exec(ctx, "postgres", "SELECT pg_create_logical_replication_slot('s', 'pgoutput')")
	if err == nil || !strings.Contains(err.Error(), "wal_level") {
		t.Fatalf("logical slot on wal_level = replica: got %v, want a wal_level error", err)
	}

	// SetConf + Restart fixes it.
	if err := pg.SetConf(ctx, "wal_level", "logical"); err != nil {
		t.Fatal(err)
	}
	if err := pg.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec(ctx, "postgres", "SELECT pg_create_logical_replication_slot('s', 'pgoutput')"); err != nil {
		t.Fatal(err)
	}
}

func TestS3(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := NewS3(t)
	if err := srv.CreateBucket(ctx, "bucket-1"); err != nil {
		t.Fatal(err)
	}
	if err := srv.CreateBucket(ctx, "bucket-1"); err == nil {
		t.Fatal("creating an existing bucket succeeded")
	}
	c := srv.Client()
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("bucket-1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("missing")}); err == nil {
		t.Fatal("HeadBucket on a missing bucket succeeded")
	}
	env := strings.Join(srv.Env(), "\n")
	for _, want := range []string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_REGION=us-east-1", "AWS_ENDPOINT_URL_S3=" + srv.Endpoint()} {
		if !strings.Contains(env, want) {
			t.Errorf("Env() lacks %s", want)
		}
	}
}

func TestWaitFor(t *testing.T) {
	start := time.Now()
	n := 0
	WaitFor(t, 5*time.Second, func() (bool, error) { n++; return n == 3, nil })
	if n != 3 || time.Since(start) > 2*time.Second {
		t.Fatalf("n = %d after %v", n, time.Since(start))
	}
	if err := Poll(context.Background(), 100*time.Millisecond, func() (bool, error) { return false, nil }); err == nil {
		t.Fatal("Poll did not time out")
	}
	port, err := FreePort()
	if err != nil || port <= 0 {
		t.Fatalf("FreePort: %d, %v", port, err)
	}
}

// TestIntegration checks that Integration skips under -short only, and that
// Short agrees with testing.Short.
func TestIntegration(t *testing.T) {
	if Short() != testing.Short() {
		t.Fatalf("Short() = %v, testing.Short() = %v", Short(), testing.Short())
	}
	var probe *testing.T
	reached := false
	t.Run("probe", func(t *testing.T) {
		probe = t
		Integration(t, "PostgreSQL", "versitygw")
		reached = true
	})
	if probe.Skipped() != testing.Short() || reached == testing.Short() {
		t.Fatalf("-short %v: Integration skipped %v, went on %v", testing.Short(), probe.Skipped(), reached)
	}
}
