package snapshot

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cdc2s3/cdc2s3/internal/testenv"
	"github.com/cdc2s3/cdc2s3/sink/localfs"
)

// TestRewriteDuringLoad runs the DDL that gives a table a new file (a
// rewrite, a TRUNCATE) after the snapshot is taken and before its copy.
// Those are not MVCC-safe: the snapshot would read the new file as empty,
// so Copy must return ErrTableChanged (the daemon then starts over from a
// new snapshot) rather than an empty or partial LOAD.
func TestRewriteDuringLoad(t *testing.T) {
	ctx := context.Background()
	pg := testenv.NewPostgres(t)
	if err := pg.CreateDatabase(ctx, "rewrite"); err != nil {
		t.Fatal(err)
	}
	dsn := pg.DSN("rewrite")
	conn, err := pg.Connect(ctx, "rewrite")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for i, ddl := range []string{
		"ALTER TABLE %s ALTER COLUMN v TYPE bigint",
		"ALTER TABLE %s ADD COLUMN r float8 DEFAULT random()",
		"TRUNCATE %s",
		"ALTER TABLE %s ALTER COLUMN v TYPE bigint", // on a partition of a partitioned table
	} {
		t.Run(fmt.Sprintf("%d", i), func(t *testing.T) {
			name, target := fmt.Sprintf("t%d", i), fmt.Sprintf("t%d", i)
			create := fmt.Sprintf(`CREATE TABLE %s (id int PRIMARY KEY, v int); INSERT INTO %[1]s SELECT g, g FROM generate_series(1, 1000) g`, name)
			if i == 3 {
				create = fmt.Sprintf(`CREATE TABLE %s (id int, v int, PRIMARY KEY (id)) PARTITION BY RANGE (id);
					CREATE TABLE %[1]s_a PARTITION OF %[1]s FOR VALUES FROM (0) TO (500);
					CREATE TABLE %[1]s_b PARTITION OF %[1]s FOR VALUES FROM (500) TO (2000);
					INSERT INTO %[1]s SELECT g, g FROM generate_series(1, 1000) g`, name)
				target = name // ALTER on the root rewrites every partition
			}
			if _, err := conn.Exec(ctx, create); err != nil {
				t.Fatal(err)
			}
			exp, err := Export(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer exp.Close(ctx)
			jobs := jobsFor(ctx, t, conn, exp, []string{name})
			if _, err := conn.Exec(ctx, fmt.Sprintf(ddl, target)); err != nil {
				t.Fatal(err)
			}
			local, err := localfs.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			res, err := Copy(ctx, dsn, local, jobs, Options{Snapshot: exp.Name, LSN: exp.LSN, Time: exp.Time, Workers: 1, TempDir: t.TempDir()})
			if !errors.Is(err, ErrTableChanged) {
				rows := int64(-1)
				if len(res) == 1 {
					rows = res[0].Rows
				}
				t.Fatalf("%s after the snapshot: Copy = %d rows, %v; want ErrTableChanged", fmt.Sprintf(ddl, target), rows, err)
			}
		})
	}
}
