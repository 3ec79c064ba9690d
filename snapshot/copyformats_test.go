package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"

	"github.com/cdc2s3/cdc2s3/internal/testenv"
	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/localfs"
	"github.com/cdc2s3/cdc2s3/source"
)

// everyTypeSQL creates public.every with a column of every type the
// contract's type table names and more (domains over domains, composites,
// arrays, enums, ranges and bit(4), arrays of every kind, types whose cast
// to text differs from their output), a row of special values, a row of
// NULLs, and rows of values drawn at random.
const everyTypeSQL = `
CREATE EXTENSION citext;
CREATE EXTENSION hstore;
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TYPE pair AS (a int, b text);
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN pos2 AS posint;
CREATE DOMAIN amount AS numeric(5,1);
CREATE DOMAIN dpair AS pair;
CREATE DOMAIN tags AS text[];
CREATE DOMAIN dmood AS mood;
CREATE DOMAIN drange AS int4range;
CREATE DOMAIN dbits AS bit(4);
CREATE TABLE every (
	id int PRIMARY KEY,
	b bool, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8,
	n5 numeric(5,2), n18 numeric(18,4), n30 numeric(30,6), n38 numeric(38,0), nfree numeric, n50 numeric(50,10), nneg numeric(3,-2),
	t text, vc varchar(10), ch char(5), nm name, ci citext, js json, jb jsonb, en mood, u uuid, c1 "char",
	tm time, ttz timetz, iv interval, ip inet, cd cidr, mac macaddr, mo money, bt bit(4), vb varbit, by bytea,
	x xml, tsv tsvector, pt point, hs hstore, o oid,
	d date, ts timestamp, tstz timestamptz, ts0 timestamp(0),
	dom posint, dom2 pos2, domn amount, comp pair, dcomp dpair, rng int4range, mrng int4multirange,
	ai int[], ai2 int2[], ai8 int8[], at text[], avc varchar[], ach char(3)[], ajs json[], ajb jsonb[], au uuid[],
	atz timestamptz[], ats timestamp[], ad date[], an numeric(6,2)[], anf numeric[], af4 float4[], af float8[], ab bool[],
	aby bytea[], abx box[], adom posint[], dtags tags, aen mood[], aip inet[], acomp pair[],
	den dmood, drng drange, dbt dbits,
	g int GENERATED ALWAYS AS (id * 2) STORED
);
INSERT INTO every (id, b, i2, i4, i8, f4, f8, n5, n18, n30, n38, nfree, n50, nneg, t, vc, ch, nm, ci, js, jb, en, u, c1,
	tm, ttz, iv, ip, cd, mac, mo, bt, vb, by, x, tsv, pt, hs, o, d, ts, tstz, ts0, dom, dom2, domn, comp, dcomp, rng, mrng,
	ai, ai2, ai8, at, avc, ach, ajs, ajb, au, atz, ats, ad, an, anf, af4, af, ab, aby, abx, adom, dtags, aen, aip, acomp) VALUES
(1, true, -32768, 2147483647, -9223372036854775808, 'NaN', '-Infinity',
 -999.99, 'NaN', -123456789012345678901234.123456, 99999999999999999999999999999999999999, '-Infinity', 'NaN', 12345,
 E'tab\there\nnew \\ line \u00e9', 'abc', 'ab', 'nm', 'CaSe', '{"b": 1,  "a":2}', '{"b": 1,  "a":[2, null]}', 'happy',
 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', E'\\377',
 '13:45:00.123456', '13:45:00+02', '1 year 2 months 3 days 04:05:06.5', '192.168.0.1/32', '10.0.0.0/8', '08:00:2b:01:02:03', -12.34,
 B'1010', B'101', '\x00ff10', '<?xml version="1.0"?><a>x</a>', 'fat cat', '(1.5,-2)', 'a=>1, b=>NULL', 4294967295,
 'infinity', '-infinity', 'infinity', '2024-01-01 12:00:00.6', 5, 6, -0.0, ROW(1, 'x y'), ROW(NULL, ''), '[1,5)', '{[1,3), [5,7)}',
 '{{1,2},{3,NULL}}', '{-32768,32767}', '{-9223372036854775808}', '{"a,b","q\"uote",NULL,"","NULL","\\\\"}', '{"x y"}', '{"ab","a  "}',
 ARRAY['{"k": [1]}'::json, 'null'], '{"{\"b\": 1,  \"a\": 2}"}', '{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11,NULL}',
 '{"2020-01-01 00:00:00+02",infinity,NULL}', '{-infinity,"1999-12-31 23:59:59.999999"}', '{"0044-03-15 BC",2000-01-01,infinity}',
 '{1.50,NaN,NULL}', '{1.500,-Infinity,NaN,0.000001}', '{NaN,-0,1e-45}', '{0.1,NaN,-Infinity,5e-324}', '[0:1]={t,f}',
 '{"\\x00",NULL,"\\x"}', '{(1,2),(3,4);(0,0),(1,1)}', '{1,2}', '{a,"b c"}', '{sad,happy}', '{::1,10.1.2.3/24}', ARRAY[ROW(1, 'a')::pair, NULL]),
(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
(3, false, 0, 0, 0, '-0', 'Infinity', 0, 0, 0, 0, 0, 0, 0, '', '', '', '', '', 'null', '[]', 'sad', '00000000-0000-0000-0000-000000000000', '',
 '00:00', '00:00+00', 'PT0S', '::1', '::/0', '00:00:00:00:00:00', 0, B'0000', B'', '\x', '', '', '(0,0)', '', 0,
 '0044-03-15 BC', '4713-11-24 00:00:00 BC', '294276-12-31 23:59:59.999999+00', '1970-01-01', 1, 1, 0, ROW(NULL, NULL), NULL, 'empty', '{}',
 '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}');
UPDATE every SET den = 'happy', drng = '[2,9)', dbt = B'1011' WHERE id = 1;
INSERT INTO every (id, b, i2, i4, i8, f4, f8, n5, n18, n30, n38, nfree, n50, nneg, t, ch, js, jb, u, iv, ip, mo, by, d, ts, tstz,
	domn, ai, at, atz, an, anf, af, aby)
SELECT g, g % 3 = 0, (g * 37 % 65536 - 32768)::int2, (g * 7919)::int4 * (1 - 2 * (g % 2)), g::int8 * 1000000007 * (1 - 2 * (g % 2)),
	((random() - 0.5) * 10 ^ (g % 60 - 30))::float4, (random() - 0.5) * 10 ^ (g % 600 - 300),
	round(((random() - 0.5) * 1999)::numeric, 2), round(((random() - 0.5) * 10 ^ (g % 14))::numeric, 4),
	round(((random() - 0.5) * 10 ^ (g % 24))::numeric, 6), round(((random() - 0.5) * 10 ^ (g % 38))::numeric),
	round(((random() - 0.5) * 10 ^ (g % 80 - 40))::numeric, g % 45), round(((random() - 0.5) * 10 ^ (g % 40))::numeric, 10),
	round(((random() - 0.5) * 10 ^ (g % 5))::numeric, -2),
	CASE WHEN g % 11 = 0 THEN NULL ELSE repeat(chr(32 + g % 95), g % 7) || E'\t\\' || md5(g::text) || chr(1000 + g % 5000) END,
	chr(65 + g % 26), json_build_object('g', g, 's', md5(g::text)), jsonb_build_object('g', g, 'f', random()),
	md5(g::text)::uuid, make_interval(secs => (random() - 0.5) * 1e9),
	('10.' || g % 256 || '.' || g % 7 || '.1/' || 8 + g % 25)::inet, ((random() - 0.5) * 1e6)::numeric::money,
	decode(md5(g::text) || repeat('00', g % 5), 'hex'),
	date '2000-01-01' + ((random() - 0.5) * 2e6)::int,
	timestamp '1970-01-01' + (random() - 0.5) * interval '12000 years',
	timestamptz '1970-01-01 00:00:00+00' + (random() - 0.5) * interval '3000 years',
	round(((random() - 0.5) * 1999)::numeric, 1),
	CASE WHEN g % 5 = 0 THEN NULL ELSE ARRAY[g, -g, NULL, g * 1000] END,
	ARRAY[md5(g::text), '', NULL, E'quote " and \\ back'],
	ARRAY[timestamptz '2000-01-01 00:00:00+00' + g * interval '1 hour 1 microsecond'],
	ARRAY[round(((random() - 0.5) * 1e4)::numeric, 2)],
	ARRAY[round(((random() - 0.5) * 10 ^ (g % 30))::numeric, g % 9), NULL],
	ARRAY[random(), -random() * 1e300],
	ARRAY[decode(md5(g::text), 'hex')]
FROM generate_series(10, 3000) g;
`

// TestBinaryCopyMatchesText loads public.every from one snapshot twice,
// through the text COPY and through the binary COPY, and compares the two
// files value by value (bits, levels and all): the binary path gives the
// same files for every type.
func TestBinaryCopyMatchesText(t *testing.T) {
	ctx := context.Background()
	pg := testenv.NewPostgres(t)
	if err := pg.CreateDatabase(ctx, "formats"); err != nil {
		t.Fatal(err)
	}
	dsn := pg.DSN("formats")
	conn, err := source.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT setseed(0.5)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, everyTypeSQL); err != nil {
		t.Fatal(err)
	}
	exp, err := Export(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Close(ctx)
	jobs := jobsFor(ctx, t, conn, exp, []string{"public.every"})
	load := func(text bool) (string, Result) {
		dir := t.TempDir()
		store, err := localfs.New(dir)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Copy(ctx, dsn, store, jobs, Options{
			Snapshot: exp.Name, LSN: exp.LSN, Time: exp.Time, Workers: 1, ChunkSize: -1,
			TempDir: t.TempDir(), TextCopy: text, ProgressInterval: -1,
		})
		if err != nil {
			t.Fatalf("text %v: %v", text, err)
		}
		return filepath.Join(dir, filepath.FromSlash(sink.LoadKey("public", "every", 1))), res[0]
	}
	textFile, textRes := load(true)
	binFile, binRes := load(false)
	if textRes.Rows != 2994 || binRes.Rows != textRes.Rows {
		t.Errorf("rows: text %d, binary %d, want 2994", textRes.Rows, binRes.Rows)
	}
	if !reflect.DeepEqual(textRes.Nulled, binRes.Nulled) || !reflect.DeepEqual(textRes.Flattened, binRes.Flattened) {
		t.Errorf("text: nulled %v, flattened %v; binary: nulled %v, flattened %v", textRes.Nulled, textRes.Flattened, binRes.Nulled, binRes.Flattened)
	}
	if len(binRes.Nulled) == 0 || len(binRes.Flattened) == 0 {
		t.Errorf("no value nulled (%v) or flattened (%v): the special values are not there", binRes.Nulled, binRes.Flattened)
	}
	compareParquet(t, textFile, binFile)
	checkPlan(t, exp.Conn(), jobs[0])
}

// checkPlan checks what the binary COPY selects for some of public.every's
// columns: binary wherever the writer decodes it, else the output text.
func checkPlan(t *testing.T, conn *pgx.Conn, job Job) {
	t.Helper()
	rel := &relation{Schema: "public", Name: "every"}
	p, err := planRead(context.Background(), conn, job, rel)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"i4": "binary", "n5": "binary", "n38": "binary", "nfree": "binary numeric", "n50": "binary numeric", "nneg": "binary numeric",
		"t": "binary", "ch": "binary", "nm": "binary", "js": "binary", "by": "binary", "tstz": "binary", "dom2": "binary", "domn": "binary",
		"ai": "binary", "at": "binary", "ach": "binary", "ajs": "binary", "an": "binary", "anf": "binary numeric", "aby": "binary",
		"adom": "binary", "dtags": "binary",
		"jb": "text", "ip": "text", "x": "text", "ci": "text", "c1": "text", "comp": "text", "dcomp": "text", "ajb": "text", "abx": "text", "aip": "text",
		"den": "text", "drng": "text", "dbt": "text",
	}
	for i, c := range job.Columns {
		w, ok := want[c.Name]
		if !ok {
			continue
		}
		if got := p.formats[i].String(); got != w {
			t.Errorf("%s (%s): %s as %s, want %s", c.Name, c.Type, p.exprs[i], got, w)
		}
		if textExpr := strings.HasPrefix(p.exprs[i], "pg_catalog.textin("); textExpr != (w == "text") {
			t.Errorf("%s: selected as %s", c.Name, p.exprs[i])
		}
	}
}

// compareParquet fails unless two Parquet files have the same schema and
// the same values in the same order: kind, levels and bytes.
func compareParquet(t *testing.T, aPath, bPath string) {
	t.Helper()
	a, as := readRows(t, aPath)
	b, bs := readRows(t, bPath)
	if as != bs {
		t.Fatalf("schemas differ:\n%s\n%s", as, bs)
	}
	if len(a) != len(b) {
		t.Fatalf("%d rows and %d rows", len(a), len(b))
	}
	diffs := 0
	for i := range a {
		if len(a[i]) != len(b[i]) {
			t.Fatalf("row %d: %d values and %d values", i, len(a[i]), len(b[i]))
		}
		for j := range a[i] {
			x, y := a[i][j], b[i][j]
			if x.Kind() != y.Kind() || x.IsNull() != y.IsNull() || x.Column() != y.Column() ||
				x.RepetitionLevel() != y.RepetitionLevel() || x.DefinitionLevel() != y.DefinitionLevel() || !bytes.Equal(x.Bytes(), y.Bytes()) {
				if diffs++; diffs <= 20 {
					t.Errorf("row %d (id %s), column %d: text %s, binary %s", i, a[i][5], x.Column(), describe(x), describe(y))
				}
			}
		}
	}
}

func describe(v parquet.Value) string {
	return fmt.Sprintf("%v (kind %v, r%d d%d, %x)", v, v.Kind(), v.RepetitionLevel(), v.DefinitionLevel(), v.Bytes())
}

// readRows reads every row of a Parquet file, and its schema.
func readRows(t *testing.T, path string) ([]parquet.Row, string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	var rows []parquet.Row
	for _, rg := range pf.RowGroups() {
		rr := rg.Rows()
		buf := make([]parquet.Row, 64)
		for {
			n, err := rr.ReadRows(buf)
			for _, r := range buf[:n] {
				rows = append(rows, r.Clone())
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		rr.Close()
	}
	return rows, pf.Schema().String()
}

// TestBinaryCopyFallsBack loads, as a role without USAGE on the schema of
// an extension's type, a table with a column of that type: the binary COPY
// would call the type's output function, which the role may not, so the
// chunk is read with the text COPY (which needs no such privilege), and
// the file is the same as the text COPY's.
func TestBinaryCopyFallsBack(t *testing.T) {
	ctx := context.Background()
	pg := testenv.NewPostgres(t)
	if err := pg.CreateDatabase(ctx, "fallback"); err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec(ctx, "fallback", `
		CREATE SCHEMA ext;
		CREATE EXTENSION hstore SCHEMA ext;
		CREATE TABLE t (id int PRIMARY KEY, h ext.hstore, n numeric(10,2), s text);
		INSERT INTO t SELECT g, ('a=>' || g)::ext.hstore, g / 3.0, md5(g::text) FROM generate_series(1, 1000) g;
		CREATE ROLE loader LOGIN PASSWORD 'loader';
		GRANT SELECT ON t TO loader;`); err != nil {
		t.Fatal(err)
	}
	dsn := fmt.Sprintf("postgres://loader:loader@127.0.0.1:%d/fallback?sslmode=disable", pg.Port())
	conn, err := source.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exp, err := Export(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Close(ctx)
	jobs := jobsFor(ctx, t, conn, exp, []string{"public.t"})
	if p, err := planRead(ctx, exp.Conn(), jobs[0], &relation{Schema: "public", Name: "t"}); err != nil || p != nil {
		t.Fatalf("planRead = %v, %v; want no plan", p, err)
	}
	load := func(text bool) string {
		dir := t.TempDir()
		store, err := localfs.New(dir)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Copy(ctx, dsn, store, jobs, Options{Snapshot: exp.Name, LSN: exp.LSN, Time: exp.Time, Workers: 1,
			ChunkSize: -1, TempDir: t.TempDir(), TextCopy: text, ProgressInterval: -1}); err != nil {
			t.Fatalf("text %v: %v", text, err)
		}
		return filepath.Join(dir, filepath.FromSlash(sink.LoadKey("public", "t", 1)))
	}
	compareParquet(t, load(true), load(false))
}
