package oracle

import (
	"context"
	"fmt"
	"math/big"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cdc2s3/cdc2s3/internal/pgtext"
	"github.com/jackc/pgx/v5"
)

// allTypesDDL creates public.alltypes with every type the contract maps.
const allTypesDDL = `
CREATE EXTENSION IF NOT EXISTS citext SCHEMA public;
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TYPE pair AS (a int, b text);
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN amount AS numeric(5,1);
CREATE TABLE alltypes (
	id int PRIMARY KEY,
	b bool, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8,
	n10 numeric(10,2), nbig numeric(40,2), nfree numeric, nneg numeric(3,-2),
	t text, vc varchar(10), ch char(5), nm name, ci citext, js json, jb jsonb, en mood, u uuid,
	tm time, ttz timetz, iv interval, ip inet, mo money, by bytea,
	d date, ts timestamp, tstz timestamptz,
	dom posint, domn amount,
	ai int[], at text[], atz timestamptz[], an numeric(6,2)[], af float8[], ab bool[], ad date[],
	comp pair, rng int4range,
	g int GENERATED ALWAYS AS (id * 2) STORED
);
ALTER TABLE alltypes ADD COLUMN gone int;
ALTER TABLE alltypes DROP COLUMN gone;
INSERT INTO alltypes (id, b, i2, i4, i8, f4, f8, n10, nbig, nfree, nneg, t, vc, ch, nm, ci, js, jb, en, u,
	tm, ttz, iv, ip, mo, by, d, ts, tstz, dom, domn, ai, at, atz, an, af, ab, ad, comp, rng) VALUES
(1, true, -32768, 2147483647, -9223372036854775808, 0.1, 0.1,
 12345678.90, 12345678901234567890123456789012345678.90, 1.500, 12345,
 E'h\u00e9llo "w"\n', 'abc', 'ab', 'name', 'CaSe', '{"b": 1,  "a":2}', '{"b": 1,  "a":2}', 'happy',
 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
 '13:45:00.123456', '13:45:00+02', '1 year 2 months 3 days 04:05:06.5', '192.168.0.1/24', 12.34, '\xDEADBEEF',
 '2024-02-29', '1969-07-20 20:17:40.000001', '2024-01-01 12:00:00+02', 5, 1234.5,
 '{{1,2},{3,NULL}}', '{"a,b","q\"uote",NULL,"","NULL"}', '{"2020-01-01 00:00:00+02",infinity}',
 '{1.50,NaN}', '{0.1,NaN,-Infinity}', '[0:1]={t,f}', '{"0044-03-15 BC",2000-01-01}',
 ROW(1, 'x y'), '[1,5)'),
(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
(3, false, 0, 0, 0, 'NaN', '-Infinity', 'NaN', NULL, 'Infinity', NULL, '', '', '', '', '', 'null', 'null', 'sad', NULL,
 '00:00', '00:00+00', 'PT0S', '::1', 0, '\x', 'infinity', '-infinity', 'infinity', 1, -0.0,
 '{}', '{}', '{}', '{}', '{}', '{}', '{}', ROW(NULL, NULL), 'empty'),
(4, NULL, NULL, NULL, 9223372036854775807, 1e-45, '-0', -0.01, NULL, 1e100, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, '-1 day -00:00:01', NULL, NULL, NULL,
 '0044-03-15 BC', '4713-11-24 00:00:00 BC', '1900-01-01 00:00:00.5+00', NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
(5, NULL, NULL, NULL, NULL, 16777217, 1e300, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
 '5874897-12-31', '294276-12-31 23:59:59.999999', '294000-01-01 00:00:00+00', NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
`

func TestSourceStateAllTypes(t *testing.T) {
	ctx := context.Background()
	conn := pgConn(t)
	mustExec(t, conn, "CREATE SCHEMA s1; SET search_path = s1, public;"+allTypesDDL)

	tbl, err := TableFromCatalog(ctx, conn, "s1", "alltypes")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, c := range tbl.Columns {
		k := string(c.Kind)
		if c.Array {
			k += "[]"
		}
		kinds = append(kinds, c.Name+":"+k)
	}
	wantKinds := "id:int b:bool i2:int i4:int i8:int f4:float4 f8:float8 " +
		"n10:decimal nbig:numeric nfree:numeric nneg:numeric " +
		"t:text vc:text ch:text nm:text ci:text js:text jb:text en:text u:text " +
		"tm:text ttz:text iv:text ip:text mo:text by:bytea d:date ts:timestamp tstz:timestamptz " +
		"dom:int domn:decimal ai:int[] at:text[] atz:timestamptz[] an:decimal[] af:float8[] ab:bool[] ad:date[] " +
		"comp:text rng:text" // no generated g, no dropped gone
	if got := strings.Join(kinds, " "); got != wantKinds {
		t.Fatalf("kinds:\n got %s\nwant %s", got, wantKinds)
	}
	if !slices.Equal(tbl.Key, []string{"id"}) || tbl.Partitioned {
		t.Fatalf("key %v, partitioned %v", tbl.Key, tbl.Partitioned)
	}

	rows, err := SourceState(ctx, conn, tbl)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 {
		t.Fatalf("got %d rows, want 5", len(rows))
	}
	want := map[string]map[string]string{
		"1": {
			"b": "true", "i2": "-32768", "i4": "2147483647", "i8": "-9223372036854775808",
			"f4": "0.1", "f8": "0.1", "n10": "12345678.9",
			"nbig": `"12345678901234567890123456789012345678.90"`, "nfree": `"1.500"`, "nneg": `"12300"`,
			"t": `"héllo \"w\"\n"`, "vc": `"abc"`, "ch": `"ab   "`, "nm": `"name"`, "ci": `"CaSe"`,
			"js": `"{\"b\": 1,  \"a\":2}"`, "jb": `"{\"a\": 2, \"b\": 1}"`, "en": `"happy"`,
			"u": `"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`, "tm": `"13:45:00.123456"`, "ttz": `"13:45:00+02"`,
			"iv": `"P1Y2M3DT4H5M6.5S"`, "ip": `"192.168.0.1/24"`, "mo": `"$12.34"`, "by": `"\\xdeadbeef"`,
			"d": `"2024-02-29"`, "ts": `"1969-07-20T20:17:40.000001"`, "tstz": `"2024-01-01T10:00:00.000000Z"`,
			"dom": "5", "domn": "1234.5",
			"ai": "[1,2,3,null]", "at": `["a,b","q\"uote",null,"","NULL"]`,
			"atz": `["2019-12-31T22:00:00.000000Z",null]`, "an": "[1.5,null]", "af": `[0.1,"NaN","-Infinity"]`,
			"ab": "[true,false]", "ad": `["-0043-03-15","2000-01-01"]`,
			"comp": `"(1,\"x y\")"`, "rng": `"[1,5)"`,
		},
		"2": {"b": "null", "f8": "null", "t": "null", "by": "null", "d": "null", "ai": "null", "comp": "null"},
		"3": {
			"b": "false", "f4": `"NaN"`, "f8": `"-Infinity"`, "n10": "null", "nfree": `"Infinity"`,
			"t": `""`, "ch": `"     "`, "js": `"null"`, "tm": `"00:00:00"`, "ttz": `"00:00:00+00"`, "iv": `"PT0S"`,
			"ip": `"::1"`, "by": `"\\x"`, "d": "null", "ts": "null", "tstz": "null", "domn": "0",
			"ai": "[]", "at": "[]", "comp": `"(,)"`, "rng": `"empty"`,
		},
		"4": {
			"i8": "9223372036854775807", "f4": "1e-45", "f8": "-0", "n10": "-0.01", "nfree": `"1` + strings.Repeat("0", 100) + `"`,
			"iv": `"P-1DT-1S"`, "d": `"-0043-03-15"`, "ts": `"-4712-11-24T00:00:00.000000"`, "tstz": `"1900-01-01T00:00:00.500000Z"`,
		},
		"5": {
			"f4": "16777216", "f8": "1e+300", "d": `"5874897-12-31"`,
			"ts":   "null", // beyond int64 microseconds
			"tstz": `"294000-01-01T00:00:00.000000Z"`,
		},
	}
	for _, r := range rows {
		for name, w := range want[r[0]] {
			i := slices.IndexFunc(tbl.Columns, func(c Column) bool { return c.Name == name })
			if r[i] != w {
				t.Errorf("row %s column %s = %s, want %s", r[0], name, r[i], w)
			}
		}
	}

	// The same read again, and through a connection with other settings.
	mustExec(t, conn, "SET TimeZone = 'Asia/Kolkata'; SET DateStyle = 'SQL, DMY'; SET IntervalStyle = 'postgres_verbose'; "+
		"SET extra_float_digits = 0; SET bytea_output = 'escape'")
	again, err := SourceState(ctx, conn, tbl)
	if err != nil {
		t.Fatal(err)
	}
	if err := Compare(rows, again); err != nil {
		t.Fatal(err)
	}
	var tz string
	if err := conn.QueryRow(ctx, "SHOW TimeZone").Scan(&tz); err != nil || tz != "Asia/Kolkata" {
		t.Fatalf("SourceState left TimeZone = %q, %v", tz, err)
	}
}

// TestSourceMatchesParquet writes the values of alltypes to Parquet with
// DuckDB, from numbers PostgreSQL computes (days and microseconds since 1970,
// hex bytes, text), and checks that State and SourceState render the files
// and the table identically: the two canonicalizers agree.
func TestSourceMatchesParquet(t *testing.T) {
	ctx := context.Background()
	conn := pgConn(t)
	mustExec(t, conn, "CREATE SCHEMA s2; SET search_path = s2, public;"+allTypesDDL)
	tbl, err := TableFromCatalog(ctx, conn, "s2", "alltypes")
	if err != nil {
		t.Fatal(err)
	}
	want, err := SourceState(ctx, conn, tbl)
	if err != nil {
		t.Fatal(err)
	}

	// PostgreSQL side of the conversion: per element, text that DuckDB can
	// turn into the Parquet value.
	elem := func(c Column, e string) string {
		switch c.Kind {
		case KindDate:
			return fmt.Sprintf("CASE WHEN isfinite(%s) THEN (%[1]s - DATE '1970-01-01')::text END", e)
		case KindTimestamp, KindTimestampTZ:
			return fmt.Sprintf("CASE WHEN isfinite(%s) THEN round(extract(epoch FROM %[1]s) * 1000000)::text END", e)
		case KindDecimal:
			return fmt.Sprintf("CASE WHEN %s::numeric IN ('NaN', 'Infinity', '-Infinity') THEN NULL ELSE %[1]s::text END", e)
		case KindBytea:
			return fmt.Sprintf("encode(%s, 'hex')", e)
		}
		return fmt.Sprintf("CASE WHEN num_nulls(%s) = 0 THEN format('%%s', %[1]s) END", e)
	}
	var exprs []string
	for _, c := range tbl.Columns {
		col := pgx.Identifier{c.Name}.Sanitize()
		if c.Array {
			exprs = append(exprs, fmt.Sprintf("CASE WHEN %[2]s IS NOT NULL THEN ARRAY(SELECT %[1]s FROM (SELECT unnest(%[2]s) AS e) s) END",
				elem(c, "s.e"), col))
		} else {
			exprs = append(exprs, elem(c, col))
		}
	}
	// DuckDB side: a literal of the Parquet type.
	duckType := map[Kind]string{
		KindBool: "BOOLEAN", KindInt: "BIGINT", KindFloat4: "FLOAT", KindFloat8: "DOUBLE",
		KindDecimal: "DECIMAL(38,10)", KindNumeric: "VARCHAR", KindText: "VARCHAR", KindBytea: "BLOB",
		KindDate: "DATE", KindTimestamp: "TIMESTAMP", KindTimestampTZ: "TIMESTAMPTZ",
	}
	duckLit := func(k Kind, s string) string {
		switch k {
		case KindBytea:
			return fmt.Sprintf("from_hex(%s)", lit(s))
		case KindDate:
			return fmt.Sprintf("DATE '1970-01-01' + %s", s)
		case KindTimestamp, KindTimestampTZ:
			us, ok := new(big.Int).SetString(s, 10)
			if !ok || !us.IsInt64() {
				return "NULL" // beyond int64 microseconds
			}
			if k == KindTimestamp {
				return fmt.Sprintf("make_timestamp(%s::BIGINT)", s)
			}
			return fmt.Sprintf("make_timestamptz(%s::BIGINT)", s)
		}
		return fmt.Sprintf("CAST(%s AS %s)", lit(s), duckType[k])
	}
	var cols []string
	for _, c := range tbl.Columns {
		typ := duckType[c.Kind]
		if c.Array {
			typ += "[]"
		}
		cols = append(cols, fmt.Sprintf("%q %s", c.Name, typ))
	}
	mustExec(t, conn, "SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET IntervalStyle = 'iso_8601'; "+
		"SET extra_float_digits = 3; SET bytea_output = 'hex'")
	res, err := conn.Query(ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM s2.alltypes", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	var prows []prow
	for res.Next() {
		var vals []string
		for i, raw := range res.RawValues() {
			c := tbl.Columns[i]
			switch {
			case raw == nil:
				vals = append(vals, "NULL")
			case c.Array:
				elems, err := pgtext.ParseArray(string(raw))
				if err != nil {
					t.Fatal(err)
				}
				var items []string
				for _, e := range elems {
					if e == nil {
						items = append(items, "NULL")
					} else {
						items = append(items, duckLit(c.Kind, string(e)))
					}
				}
				vals = append(vals, "["+strings.Join(items, ", ")+"]")
			default:
				vals = append(vals, duckLit(c.Kind, string(raw)))
			}
		}
		prows = append(prows, row("I", 100, 0, vals...))
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	duck(t, copySQL(filepath.Join(dir, "LOAD00000001.parquet"), cols, prows...))
	checkState(t, dir, tbl, want...)
}

func TestCatalogTableShapes(t *testing.T) {
	ctx := context.Background()
	conn := pgConn(t)
	mustExec(t, conn, `
		CREATE SCHEMA s3;
		CREATE TABLE s3.parted (id int, part text, v text, PRIMARY KEY (part, id)) PARTITION BY LIST (part);
		CREATE TABLE s3.parted_a PARTITION OF s3.parted FOR VALUES IN ('a');
		CREATE TABLE s3.parted_b PARTITION OF s3.parted FOR VALUES IN ('b');
		INSERT INTO s3.parted VALUES (1, 'a', 'x'), (2, 'b', 'y');
		CREATE TABLE s3.parent (id int PRIMARY KEY, v text);
		CREATE TABLE s3.child (extra int) INHERITS (s3.parent);
		INSERT INTO s3.parent VALUES (1, 'parent');
		INSERT INTO s3.child VALUES (2, 'child', 7);
		CREATE TABLE s3."No Key/%" ("Col A" text, b int);
		INSERT INTO s3."No Key/%" VALUES ('x', 1), ('x', 1);
	`)
	check := func(name string, key []string, partitioned bool, want ...Row) {
		t.Helper()
		tbl, err := TableFromCatalog(ctx, conn, "s3", name)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(tbl.Key, key) || tbl.Partitioned != partitioned {
			t.Errorf("%s: key %q partitioned %v, want %q %v", name, tbl.Key, tbl.Partitioned, key, partitioned)
		}
		got, err := SourceState(ctx, conn, tbl)
		if err != nil {
			t.Fatal(err)
		}
		if err := Compare(want, got); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	check("parted", []string{"part", "id"}, true, Row{"1", `"a"`, `"x"`}, Row{"2", `"b"`, `"y"`})
	check("parent", []string{"id"}, false, Row{"1", `"parent"`})
	check("child", nil, false, Row{"2", `"child"`, "7"})
	check("No Key/%", nil, false, Row{`"x"`, "1"}, Row{`"x"`, "1"})

	if _, err := TableFromCatalog(ctx, conn, "s3", "nope"); err == nil {
		t.Error("TableFromCatalog of a missing table succeeded")
	}
}
