package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/jackc/pgx/v5"

	"github.com/cdc2s3/cdc2s3/internal/oracle"
)

// TestPublicationColumnsAndFilter: a publication with column lists and row
// filters (PostgreSQL 15) is honoured by the full load as by the stream.
// The excluded column appears in no file of the table (read with arrow-go,
// not the writer's library), and the destination's current state (DuckDB,
// by the contract's merge rule) is exactly the source's published rows
// and columns, after rows moved into and out of the filter.
func TestPublicationColumnsAndFilter(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, filteredSchemaSQL+"; CREATE TABLE unlisted (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	d := start(t, "run", "--source", dsn, "--dest", out, "--slot", "pubfilter", "--publication", "pf", "--flush-interval", "300ms")
	waitConfirmed(t, conn, "pubfilter", 1, d, 2*time.Minute)
	if _, err := conn.Exec(ctx, filteredChangesSQL); err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, conn, "pubfilter", currentLSN(t, conn), d, 2*time.Minute)
	d.stop(t)

	comparePublished(t, conn, out, "people", "secret", "region = 'eu'")
	comparePublished(t, conn, out, "parted", "hidden", "id % 4 = 0")
	if _, err := os.Stat(filepath.Join(out, "public", "unlisted")); err == nil {
		t.Errorf("public.unlisted, which the publication does not publish, has a folder")
	}
}

// filteredSchemaSQL makes two tables published with column lists and row
// filters (publication pf): people (secret left out, region = 'eu') and
// the partitioned parted (hidden left out, id % 4 = 0), published through
// its root.
const filteredSchemaSQL = `
	CREATE TABLE people (id int PRIMARY KEY, region text NOT NULL, score int, secret text);
	INSERT INTO people SELECT g, (ARRAY['eu', 'us', 'asia'])[g % 3 + 1], g * 10, 'pii-' || g FROM generate_series(1, 3000) g;
	-- A row filter on updates and deletes may use only replica identity columns.
	CREATE UNIQUE INDEX people_ident ON people (id, region);
	ALTER TABLE people REPLICA IDENTITY USING INDEX people_ident;
	CREATE TABLE parted (id int, region text NOT NULL, v text, hidden text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
	CREATE TABLE parted_eu PARTITION OF parted FOR VALUES IN ('eu');
	CREATE TABLE parted_us PARTITION OF parted FOR VALUES IN ('us');
	INSERT INTO parted SELECT g, (ARRAY['eu', 'us'])[g % 2 + 1], 'v' || g, 'h' || g FROM generate_series(1, 2000) g;
	CREATE PUBLICATION pf FOR TABLE people (id, region, score) WHERE (region = 'eu'),
	                                parted (id, region, v) WHERE (id % 4 = 0)
	  WITH (publish_via_partition_root = true)`

// filteredChangesSQL changes the tables of filteredSchemaSQL: rows moving
// into and out of the filters, changes of published and of left-out
// columns, inserts and deletes.
const filteredChangesSQL = `
	INSERT INTO people VALUES (5001, 'eu', 1, 'pii-new'), (5002, 'us', 2, 'pii-new');
	UPDATE people SET region = 'us' WHERE id BETWEEN 1 AND 300 AND region = 'eu';   -- leave the filter
	UPDATE people SET region = 'eu' WHERE id BETWEEN 301 AND 600 AND region = 'us'; -- enter it
	UPDATE people SET score = -1 WHERE id BETWEEN 601 AND 900;
	UPDATE people SET secret = 'changed' WHERE id BETWEEN 901 AND 1200;
	DELETE FROM people WHERE id BETWEEN 1201 AND 1500;
	INSERT INTO parted VALUES (4000, 'eu', 'new', 'x'), (4001, 'us', 'new', 'x'), (4004, 'us', 'new', 'x');
	UPDATE parted SET v = 'changed', hidden = 'changed' WHERE id BETWEEN 1 AND 400;
	DELETE FROM parted WHERE id BETWEEN 401 AND 800`

// comparePublished checks the folder of public.table in dest against what
// a publication with a column list leaving out excluded and the row filter
// publishes of it: no file holds the excluded column (read with arrow-go),
// and the current state (DuckDB, by the merge rule) is exactly the
// source's published rows and columns.
func comparePublished(t *testing.T, conn *pgx.Conn, dest, table, excluded, filter string) {
	t.Helper()
	ctx := context.Background()
	files, _ := filepath.Glob(filepath.Join(dest, "public", table, "*.parquet"))
	if len(files) < 2 {
		t.Errorf("%s: %d files, want LOAD and CDC files", table, len(files))
	}
	for _, f := range files {
		if cols := fileColumns(t, f); slices.Contains(cols, excluded) {
			t.Errorf("%s holds the column %s, which the publication leaves out: %v", f, excluded, cols)
		}
	}
	ot, err := oracle.TableFromCatalog(ctx, conn, "public", table)
	if err != nil {
		t.Fatal(err)
	}
	ot.Columns = slices.DeleteFunc(ot.Columns, func(col oracle.Column) bool { return col.Name == excluded })
	ot.Filter = filter
	if ot.History, err = oracle.LoadHistory(dest, "public", table); err != nil {
		t.Fatal(err)
	}
	want, err := oracle.SourceState(ctx, conn, ot)
	if err != nil {
		t.Fatal(err)
	}
	got, err := oracle.State(ctx, oracle.TableDir(dest, "public", table), ot)
	if err != nil {
		t.Fatal(err)
	}
	if err := oracle.Compare(want, got); err != nil {
		t.Errorf("public.%s differs from the source's published rows (%d there): %v", table, len(want), err)
	} else {
		t.Logf("public.%s: %d published rows match", table, len(want))
	}
}

// fileColumns returns the column names of a Parquet file, read with
// arrow-go.
func fileColumns(t *testing.T, path string) []string {
	t.Helper()
	r, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatalf("arrow-go: %s: %v", path, err)
	}
	defer r.Close()
	s := r.MetaData().Schema
	var names []string
	for i := 0; i < s.NumColumns(); i++ {
		names = append(names, strings.SplitN(s.Column(i).Path(), ".", 2)[0])
	}
	return names
}

// TestPublicationKinds runs the pipeline on the other kinds of
// publication: FOR TABLES IN SCHEMA (a table created in the schema while
// the daemon streams arrives with its changes), and a partitioned table
// published without publish_via_partition_root, whose partitions are then
// tables of their own, one with a column list and a row filter.
func TestPublicationKinds(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, `
		CREATE SCHEMA app;
		CREATE TABLE app.a (id int PRIMARY KEY, v text);
		INSERT INTO app.a SELECT g, 'a' || g FROM generate_series(1, 500) g;
		CREATE TABLE public.outside (id int PRIMARY KEY);
		CREATE TABLE parted (id int PRIMARY KEY, v text, hidden text) PARTITION BY RANGE (id);
		CREATE TABLE parted_lo PARTITION OF parted FOR VALUES FROM (0) TO (500);
		CREATE TABLE parted_hi PARTITION OF parted FOR VALUES FROM (500) TO (2000);
		INSERT INTO parted SELECT g, 'v' || g, 'h' || g FROM generate_series(1, 1000) g;
		CREATE PUBLICATION schemapub FOR TABLES IN SCHEMA app;
		CREATE PUBLICATION leafpub FOR TABLE parted_lo (id, v) WHERE (id % 2 = 0), parted_hi
		  WITH (publish_via_partition_root = false)`); err != nil {
		t.Fatal(err)
	}
	outSchema, outLeaf := t.TempDir(), t.TempDir()
	ds := start(t, "run", "--source", dsn, "--dest", outSchema, "--slot", "schemapub", "--publication", "schemapub", "--flush-interval", "300ms")
	dl := start(t, "run", "--source", dsn, "--dest", outLeaf, "--slot", "leafpub", "--publication", "leafpub", "--flush-interval", "300ms")
	waitConfirmed(t, conn, "schemapub", 1, ds, 2*time.Minute)
	waitConfirmed(t, conn, "leafpub", 1, dl, 2*time.Minute)
	if _, err := conn.Exec(ctx, `
		UPDATE app.a SET v = 'changed' WHERE id <= 100;
		CREATE TABLE app.b (id int PRIMARY KEY, v text);
		INSERT INTO app.b VALUES (1, 'new'), (2, 'new');
		INSERT INTO public.outside VALUES (1);
		UPDATE parted SET v = 'changed', hidden = 'changed' WHERE id BETWEEN 1 AND 50 OR id BETWEEN 600 AND 650;
		DELETE FROM parted WHERE id BETWEEN 51 AND 60`); err != nil {
		t.Fatal(err)
	}
	lsn := currentLSN(t, conn)
	waitConfirmed(t, conn, "schemapub", lsn, ds, time.Minute)
	waitConfirmed(t, conn, "leafpub", lsn, dl, time.Minute)
	ds.stop(t)
	dl.stop(t)

	compareTables(t, conn, outSchema, [][2]string{{"app", "a"}, {"app", "b"}})
	if _, err := os.Stat(filepath.Join(outSchema, "public", "outside")); err == nil {
		t.Errorf("public.outside, outside the published schema, has a folder")
	}
	compareTables(t, conn, outLeaf, [][2]string{{"public", "parted_hi"}})
	if _, err := os.Stat(filepath.Join(outLeaf, "public", "parted")); err == nil {
		t.Errorf("without publish_via_partition_root the root has a folder")
	}
	comparePublished(t, conn, outLeaf, "parted_lo", "hidden", "id % 2 = 0")
}
