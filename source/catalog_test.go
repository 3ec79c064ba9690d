package source

import (
	"context"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cdc2s3/cdc2s3/internal/testenv"
)

// TestCatalog runs the catalog lookups against a real server, whose types
// and domains the subtests share.
func TestCatalog(t *testing.T) {
	ctx := context.Background()
	pg := testenv.NewPostgres(t)
	conn, err := pg.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `
		CREATE DOMAIN money2 AS numeric(12,2);
		CREATE DOMAIN money3 AS money2;
		CREATE DOMAIN dnum AS numeric;
		CREATE DOMAIN posint AS int CHECK (VALUE > 0);
		CREATE DOMAIN intarr AS int[];
		CREATE DOMAIN boxd AS box;
		CREATE DOMAIN boxes AS box[];
		CREATE DOMAIN money2arr AS money2[];
		CREATE TYPE mood AS ENUM ('sad', 'ok');
		CREATE TYPE pair AS (a int, b text);`); err != nil {
		t.Fatal(err)
	}
	t.Run("Resolve", func(t *testing.T) { testResolve(ctx, t, conn) })
	t.Run("MissingValue", func(t *testing.T) { testMissingValue(ctx, t, conn) })
	t.Run("TableSize", func(t *testing.T) { testTableSize(ctx, t, conn) })
}

// testTableSize checks TableSize of a plain table, a partitioned root (the
// sum of its leaves, a sub-partitioned one among them) and an inheritance
// parent (its own rows only, as the load reads it with ONLY).
func testTableSize(ctx context.Context, t *testing.T, conn *pgx.Conn) {
	if _, err := conn.Exec(ctx, `
		CREATE TABLE sz_plain (id int PRIMARY KEY, v text);
		INSERT INTO sz_plain SELECT g, repeat('x', 100) FROM generate_series(1, 2000) g;
		CREATE TABLE sz_root (id int, v text) PARTITION BY RANGE (id);
		CREATE TABLE sz_p1 PARTITION OF sz_root FOR VALUES FROM (0) TO (1000);
		CREATE TABLE sz_p2 PARTITION OF sz_root FOR VALUES FROM (1000) TO (3000) PARTITION BY RANGE (id);
		CREATE TABLE sz_p21 PARTITION OF sz_p2 FOR VALUES FROM (1000) TO (3000);
		INSERT INTO sz_root SELECT g, repeat('x', 100) FROM generate_series(1, 2999) g;
		CREATE TABLE sz_parent (id int, v text);
		CREATE TABLE sz_child () INHERITS (sz_parent);
		INSERT INTO sz_child SELECT g, repeat('x', 100) FROM generate_series(1, 2000) g;`); err != nil {
		t.Fatal(err)
	}
	size := func(name string, partitioned bool) int64 {
		t.Helper()
		n, err := TableSize(ctx, conn, Table{OID: tableOID(ctx, t, conn, name), Schema: "public", Name: name, Partitioned: partitioned})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	var want int64
	if err := conn.QueryRow(ctx, `SELECT pg_table_size('sz_p1') + pg_table_size('sz_p21')`).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if got := size("sz_plain", false); got < 2000*100 {
		t.Errorf("plain table: %d bytes, want at least the 200 kB of its values", got)
	}
	if got := size("sz_root", true); got != want || want == 0 {
		t.Errorf("partitioned root: %d bytes, want its leaves' %d", got, want)
	}
	if _, err := conn.Exec(ctx, `ANALYZE sz_plain, sz_root`); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int64{"sz_plain": 2000, "sz_root": 2999} {
		n, err := EstimatedRows(ctx, conn, Table{OID: tableOID(ctx, t, conn, name), Schema: "public", Name: name, Partitioned: name == "sz_root"})
		if err != nil || n != want {
			t.Errorf("EstimatedRows(%s) = %d, %v; want %d after ANALYZE", name, n, err, want)
		}
	}
	if got := size("sz_parent", false); got > 16<<10 {
		t.Errorf("inheritance parent without rows of its own: %d bytes, want its own few pages, not its child's", got)
	}
}

// testResolve checks the ColumnType of each column of a table, shown as
// format_type gives it with "[]" for Array.
func testResolve(ctx context.Context, t *testing.T, conn *pgx.Conn) {
	cols := []struct{ name, decl, want, asText string }{
		{"i4", "int4", "integer", ""},
		{"n", "numeric", "numeric", ""},
		{"n1", "numeric(10,2)", "numeric(10,2)", ""},
		{"vc", "varchar(5)", "character varying(5)", ""},
		{"ts", "timestamptz(3)", "timestamp(3) with time zone", ""},
		{"dm", "money2", "numeric(12,2)", ""},
		{"ddm", "money3", "numeric(12,2)", ""}, // a domain over a domain
		{"dn", "dnum", "numeric", ""},
		{"dp", "posint", "integer", ""},
		{"e", "mood", "mood", ""},
		{"c", "pair", "pair", ""},
		{"bx", "box", "box", ""},
		{"ai", "int[]", "integer[]", "text"},
		{"ai2", "int[][]", "integer[]", "text"}, // the catalog knows no dimensions
		{"an", "numeric(10,2)[]", "numeric(10,2)[]", "text"},
		{"ats", "timestamptz(3)[]", "timestamp(3) with time zone[]", "text"},
		{"am", "money2[]", "numeric(12,2)[]", "text"},
		{"au", "uuid[]", "uuid[]", "text"},
		{"ae", "mood[]", "mood[]", "text"},
		{"ac", "pair[]", "pair[]", "text"},
		{"da", "intarr", "integer[]", "text"},  // a domain over an array
		{"ada", "intarr[]", "text", "text"},    // an array of arrays
		{"abx", "box[]", "text", "text"},       // box's delimiter is ';'
		{"dba", "boxes", "text", "text"},       // through a domain
		{"amd", "money2arr[]", "text", "text"}, //
		{"ap", "point[]", "point[]", "text"},   // point's delimiter is ','
		{"atx", "text[]", "text[]", "text"},    //
		{"ab", "bytea[]", "bytea[]", "text"},   //
		{"aby", "bool[]", "boolean[]", "text"}, //
		{"aj", "jsonb[]", "jsonb[]", "text"},   //
		{"ar", "int4range[]", "int4range[]", "text"},
	}
	ddl := "CREATE TABLE typed ("
	for i, c := range cols {
		if i > 0 {
			ddl += ", "
		}
		ddl += c.name + " " + c.decl
	}
	if _, err := conn.Exec(ctx, ddl+")"); err != nil {
		t.Fatal(err)
	}
	describe := func(ct ColumnType) string {
		var s string
		if err := conn.QueryRow(ctx, `SELECT format_type($1, $2)`, ct.OID, ct.Mod).Scan(&s); err != nil {
			t.Fatal(err)
		}
		if ct.Array {
			s += "[]"
		}
		return s
	}
	table, err := Describe(ctx, conn, tableOID(ctx, t, conn, "typed"))
	if err != nil {
		t.Fatal(err)
	}
	for _, arraysAsText := range []bool{false, true} {
		r := NewResolver(conn)
		r.ArraysAsText = arraysAsText
		for i, col := range table.Columns {
			// Twice: the second answer comes from the cache.
			for range 2 {
				ct, err := r.Resolve(ctx, col.TypeOID, col.TypeMod)
				if err != nil {
					t.Fatalf("%s: %v", col.Name, err)
				}
				want := cols[i].want
				if arraysAsText && cols[i].asText != "" {
					want = cols[i].asText
				}
				if got := describe(ct); got != want {
					t.Errorf("ArraysAsText %t: %s %s resolved to %s, want %s", arraysAsText, col.Name, cols[i].decl, got, want)
				}
			}
		}
	}
}

// testMissingValue adds columns with defaults to a table with a row, which
// then reads each default without a rewrite: MissingValue must give what
// the row shows.
func testMissingValue(ctx context.Context, t *testing.T, conn *pgx.Conn) {
	cols := []struct{ name, decl string }{
		{"t", `text DEFAULT 'a,b "q" \x {} ''s'`},
		{"empty", `text DEFAULT ''`},
		{"word", `text DEFAULT 'NULL'`},
		{"braces", `text DEFAULT '{}'`},
		{"spaces", `text DEFAULT '  lead and trail  '`},
		{"lines", `text DEFAULT E'line1\nline2\ttab\\back'`},
		{"utf8", `text DEFAULT 'ünï, 日本'`},
		{"vc", `varchar(8) DEFAULT 'x,y'`},
		{"i", `int DEFAULT 7`},
		{"f", `float8 DEFAULT 0.1`},
		{"n", `numeric(10,2) DEFAULT 1.5`},
		{"ts", `timestamptz DEFAULT '2020-01-01 00:00:00+00'`},
		{"by", `bytea DEFAULT '\x00ff2c'`},
		{"j", `jsonb DEFAULT '{"k": [1, "x,y"]}'`},
		{"pt", `point DEFAULT '(1,2)'`},
		{"bx", `box DEFAULT '((0,0),(1,1))'`}, // box's delimiter is ';'
		{"dbx", `boxd DEFAULT '((2,2),(3,3))'`},
		{"abx", `box[] DEFAULT '{(1,1),(0,0);(2,2),(1,1)}'`},
		{"ai", `int[] DEFAULT '{1,NULL,3}'`},
		{"at", `text[] DEFAULT '{{"a,b",c},{NULL,"d\"e"}}'`},
		{"c", `pair DEFAULT '(1,"x, y")'`},
		{"e", `mood DEFAULT 'ok'`},
		{"nul", `text DEFAULT NULL`},
		{"none", `text`},
	}
	if _, err := conn.Exec(ctx, `
		CREATE TABLE miss (id int);
		INSERT INTO miss VALUES (1);
		SET TimeZone = 'Asia/Kathmandu'`); err != nil {
		t.Fatal(err)
	}
	for _, c := range cols {
		if _, err := conn.Exec(ctx, "ALTER TABLE miss ADD COLUMN "+c.name+" "+c.decl); err != nil {
			t.Fatalf("%s %s: %v", c.name, c.decl, err)
		}
	}
	oid := tableOID(ctx, t, conn, "miss")
	for _, c := range cols {
		var want *string
		if err := conn.QueryRow(ctx, "SELECT "+c.name+"::text FROM miss").Scan(&want); err != nil {
			t.Fatal(err)
		}
		got, _, err := MissingValue(ctx, conn, oid, c.name)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if (got == nil) != (want == nil) || got != nil && *got != *want {
			t.Errorf("%s %s: MissingValue = %s, the row shows %s", c.name, c.decl, show(got), show(want))
		}
	}
	for _, name := range []string{"id", "nosuch"} {
		if got, _, err := MissingValue(ctx, conn, oid, name); got != nil || err != nil {
			t.Errorf("%s: MissingValue = %s, %v, want none", name, show(got), err)
		}
	}
	// A partitioned table keeps the value on its leaves, not on the root.
	if _, err := conn.Exec(ctx, `
		CREATE TABLE pmiss (id int, v int) PARTITION BY RANGE (id);
		CREATE TABLE pmiss_a PARTITION OF pmiss FOR VALUES FROM (0) TO (10);
		CREATE TABLE pmiss_b PARTITION OF pmiss FOR VALUES FROM (10) TO (20);
		INSERT INTO pmiss VALUES (1, 1), (11, 11);
		ALTER TABLE pmiss ADD COLUMN c int DEFAULT 7`); err != nil {
		t.Fatal(err)
	}
	root := tableOID(ctx, t, conn, "pmiss")
	if got, varies, err := MissingValue(ctx, conn, root, "c"); err != nil || varies || got == nil || *got != "7" {
		t.Errorf("partitioned root: MissingValue = %s, %t, %v; want 7", show(got), varies, err)
	}
	// A partition attached with the column added under another default:
	// the leaves disagree.
	if _, err := conn.Exec(ctx, `
		CREATE TABLE pmiss_c (id int, v int);
		INSERT INTO pmiss_c VALUES (21, 21);
		ALTER TABLE pmiss_c ADD COLUMN c int DEFAULT 9;
		ALTER TABLE pmiss ATTACH PARTITION pmiss_c FOR VALUES FROM (20) TO (30)`); err != nil {
		t.Fatal(err)
	}
	if got, varies, err := MissingValue(ctx, conn, root, "c"); err != nil || !varies || got != nil {
		t.Errorf("leaves with 7 and 9: MissingValue = %s, %t, %v; want nil, varies", show(got), varies, err)
	}

	// A failed query is an error, not "no missing value".
	closed, err := pgx.ConnectConfig(ctx, conn.Config())
	if err != nil {
		t.Fatal(err)
	}
	closed.Close(ctx)
	if got, _, err := MissingValue(ctx, closed, oid, "t"); err == nil {
		t.Errorf("closed connection: MissingValue = %s, nil", show(got))
	}
}

// show quotes a text value for messages; nil is NULL.
func show(s *string) string {
	if s == nil {
		return "NULL"
	}
	return strconv.Quote(*s)
}

// tableOID returns the OID of table name in public.
func tableOID(ctx context.Context, t *testing.T, conn *pgx.Conn, name string) uint32 {
	t.Helper()
	var oid uint32
	if err := conn.QueryRow(ctx, `SELECT $1::regclass::oid`, name).Scan(&oid); err != nil {
		t.Fatal(err)
	}
	return oid
}
