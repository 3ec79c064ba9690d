// Package e2e holds the end-to-end tests: the cdc2s3 binary against a real
// PostgreSQL and a real S3 server, judged by an independent reader
// (internal/oracle, DuckDB) against the source. This file is the scripted
// workload that covers every row of the contract's type table and every
// shape of change.
package e2e

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// setupSQL creates the tables before the daemon starts, so they are in the
// full load as well as the stream.
var setupSQL = []string{
	`CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')`,
	`CREATE DOMAIN posint AS integer CHECK (VALUE > 0)`,
	`CREATE DOMAIN money2 AS numeric(12,2)`,
	`CREATE TABLE alltypes (
		id integer PRIMARY KEY,
		b boolean, i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision,
		n_small numeric(5,2), n_mid numeric(18,4), n_big numeric(30,6), n_free numeric, n_huge numeric(50,10), n_neg numeric(5,-2),
		t text, vc varchar(10), ch char(5), nm name, by bytea,
		d date, ts timestamp, tstz timestamptz, tm time, tmtz timetz, iv interval, u uuid,
		j json, jb jsonb, e mood, dom posint, m2 money2,
		ai integer[], at text[], ats timestamptz[], an numeric(10,2)[], ab boolean[],
		ip inet, mo money, bits bit(4), rng int4range, pt point, x xml, tsv tsvector, grid integer[],
		g integer GENERATED ALWAYS AS (i4 * 2) STORED
	)`,
	`CREATE SCHEMA "Mixed Case"`,
	`CREATE TABLE "Mixed Case"."Order Items" ("Item ID" bigint PRIMARY KEY, "Qty" integer, "Note/%" text)`,
	`CREATE TABLE nopk (a integer, b text)`,
	`ALTER TABLE nopk REPLICA IDENTITY FULL`,
	`CREATE TABLE toasty (id integer PRIMARY KEY, big text, small integer)`,
	`CREATE TABLE toastyfull (id integer PRIMARY KEY, big text, small integer)`,
	`ALTER TABLE toastyfull REPLICA IDENTITY FULL`,
	`CREATE TABLE measurements (id integer, at date, v numeric(8,2), PRIMARY KEY (id, at)) PARTITION BY RANGE (at)`,
	`CREATE TABLE measurements_2023 PARTITION OF measurements FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')`,
	`CREATE TABLE measurements_2024 PARTITION OF measurements FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`,
	`CREATE TABLE parent (id integer PRIMARY KEY, name text)`,
	`CREATE TABLE child (extra text) INHERITS (parent)`,
	`ALTER TABLE child ADD PRIMARY KEY (id)`,
	`CREATE TABLE trunc (id integer PRIMARY KEY, v text)`,
	`CREATE TABLE evolve (id integer PRIMARY KEY, a text, b integer)`,
	`CREATE TABLE bulk (id integer PRIMARY KEY, v text, n numeric(12,2))`,
	`CREATE TABLE empty_table (id integer PRIMARY KEY, v text)`,
}

// seedSQL fills the tables before the full load.
var seedSQL = []string{
	`INSERT INTO alltypes (id, b, i2, i4, i8, f4, f8, n_small, n_mid, n_big, n_free, n_huge, n_neg, t, vc, ch, nm, by,
		d, ts, tstz, tm, tmtz, iv, u, j, jb, e, dom, m2, ai, at, ats, an, ab, ip, mo, bits, rng, pt, x, tsv, grid)
	 VALUES
	 (1, true, -32768, 1000000, -9223372036854775808, 1.5, 2.25, -999.99, 12345678901234.5678, -123456789012345678901234.123456,
	  '123456789012345678901234567890.123456789012345678901234567890', 1234567890123456789012345678901234567890.0123456789, 12300,
	  'hello, "world"', 'short', 'ab', 'nm', '\x00ff10',
	  '1969-07-20', '1900-01-01 00:00:00.000001', '1965-03-04 05:06:07.891+02', '13:45:00.123456', '13:45:00+02', '1 year 2 months 3 days 04:05:06',
	  'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{"a": [1, 2]}', '{"b": {"c": null}}', 'happy', 5, 12.5,
	  '{1,NULL,3}', '{"a b","c,d","",NULL,"q\"uote"}', '{"2020-01-01 00:00:00+00"}', '{1.10,-2.25}', '{t,f}',
	  '10.0.0.1/8', 12.34, B'1010', '[1,10)', '(1.5,2)', '<a>x</a>', 'fat cat', '{{1,2},{3,4}}'),
	 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
	 (3, false, 0, 0, 0, 'NaN', '-Infinity', 0, 0, 0, 'NaN', 0, 0, '', '', '', '', '\x',
	  '-infinity', 'infinity', '-infinity', '00:00:00', '00:00:00-01:30', '-1 days', '00000000-0000-0000-0000-000000000000', '[]', '{}', 'sad', 1, 0,
	  '{}', '{}', '{}', '{}', '{}', '::1', 0, B'0000', 'empty', '(0,0)', '', '', '{}')`,
	`INSERT INTO "Mixed Case"."Order Items" VALUES (1, 10, 'first/%'), (2, 20, NULL)`,
	`INSERT INTO nopk VALUES (1, 'dup'), (1, 'dup'), (2, 'single'), (NULL, NULL)`,
	`INSERT INTO toasty SELECT i, (SELECT string_agg(md5(random()::text || j::text), '') FROM generate_series(1, 200) j), i FROM generate_series(1, 5) i`,
	`INSERT INTO toastyfull SELECT i, (SELECT string_agg(md5(random()::text || j::text), '') FROM generate_series(1, 200) j), i FROM generate_series(1, 5) i`,
	`INSERT INTO measurements SELECT i, DATE '2023-06-01' + i, i * 1.5 FROM generate_series(1, 50) i`,
	`INSERT INTO parent VALUES (1, 'p1'), (2, 'p2')`,
	`INSERT INTO child VALUES (10, 'c10', 'x'), (11, 'c11', 'y')`,
	`INSERT INTO trunc SELECT i, 'before ' || i FROM generate_series(1, 20) i`,
	`INSERT INTO evolve SELECT i, 'a' || i, i FROM generate_series(1, 10) i`,
	`INSERT INTO bulk SELECT i, 'seed', i FROM generate_series(1, 100) i`,
}

// changeSQL runs while the daemon streams. Each string is one transaction.
var changeSQL = []string{
	// Special values in every typed column.
	`INSERT INTO alltypes (id, f4, f8, n_small, n_big, n_free, n_huge, d, ts, tstz, ats, an, grid, dom, t, by, jb)
	 VALUES (10, 'Infinity', 'NaN', 'NaN', -0.000001, '-Infinity', 'NaN', '0044-03-15 BC', '0001-01-01 00:00:00 BC', '294276-12-31 23:59:59.999999+00',
	         '{"1969-12-31 23:59:59.999999+00","infinity",NULL}', '{NaN,1.5}', '{{{1}},{{2}}}', 7, repeat('long text ', 10000), decode(repeat('ab', 5000), 'hex'),
	         ('{"doc": "' || repeat('x', 100000) || '"}')::jsonb),
	        (11, '-0', '1e-300', 0.01, 0.000001, ('0.' || repeat('0', 100) || '1')::numeric, -0.0000000001, '5874897-12-31', '2262-04-11 23:47:16.854775', '1677-09-21 00:12:43.145225+00',
	         NULL, NULL, '{}', 9, NULL, NULL, 'null'),
	        (12, 3.4028235e38, 1.7976931348623157e308, 999.99, 999999999999999999999999.999999, ('-' || repeat('9', 200))::numeric, 1, '1970-01-01', '1970-01-01 00:00:00', '1970-01-01 00:00:00+00',
	         '{}', '{NULL}', '{NULL}', 1, 'tab	and
newline \ backslash', '\x5c78', '"\u00e9\ud83d\ude00"')`,
	`UPDATE alltypes SET t = 'updated', i4 = 42 WHERE id = 2`,
	// Primary-key update: D for the old key, I for the new one.
	`UPDATE alltypes SET id = 1001 WHERE id = 1`,
	`DELETE FROM alltypes WHERE id = 3`,
	`UPDATE "Mixed Case"."Order Items" SET "Qty" = 11 WHERE "Item ID" = 1`,
	`INSERT INTO "Mixed Case"."Order Items" VALUES (3, 30, 'third')`,
	// No primary key under REPLICA IDENTITY FULL, with duplicate rows.
	`UPDATE nopk SET b = 'changed' WHERE a = 2`,
	`DELETE FROM nopk WHERE ctid = (SELECT min(ctid) FROM nopk WHERE a = 1)`,
	`INSERT INTO nopk VALUES (3, 'new'), (3, 'new')`,
	// Unchanged TOASTed column: pgoutput does not send big.
	`UPDATE toasty SET small = small + 100 WHERE id IN (1, 2)`,
	`UPDATE toasty SET big = 'now small' WHERE id = 3`,
	`UPDATE toasty SET id = 50 WHERE id = 4`,
	`UPDATE toastyfull SET small = small + 100 WHERE id IN (1, 2)`,
	`UPDATE toastyfull SET id = 50 WHERE id = 4`,
	// Partitioned: rows move between partitions, all under the root.
	`INSERT INTO measurements SELECT i, DATE '2024-02-01' + i, i FROM generate_series(100, 120) i`,
	`UPDATE measurements SET at = DATE '2024-03-01' WHERE id = 1`,
	`UPDATE measurements SET v = v + 1 WHERE id BETWEEN 2 AND 5`,
	`DELETE FROM measurements WHERE id = 6`,
	// Inheritance: parent and child are separate tables.
	`INSERT INTO parent VALUES (3, 'p3')`,
	`INSERT INTO child VALUES (12, 'c12', 'z')`,
	`UPDATE child SET name = 'c10 renamed' WHERE id = 10`,
	`DELETE FROM parent WHERE id = 2`,
	// TRUNCATE keeps history; later rows count.
	`UPDATE trunc SET v = 'updated' WHERE id = 1`,
	`TRUNCATE trunc`,
	`INSERT INTO trunc VALUES (100, 'after'), (101, 'after')`,
	// Schema changes mid-stream.
	`ALTER TABLE evolve ADD COLUMN c integer DEFAULT 7`,
	`INSERT INTO evolve VALUES (11, 'a11', 11, 70)`,
	`UPDATE evolve SET a = 'a1 updated' WHERE id = 1`,
	`ALTER TABLE evolve DROP COLUMN b`,
	`INSERT INTO evolve VALUES (12, 'a12', 80)`,
	`ALTER TABLE evolve ADD COLUMN d text`,
	`UPDATE evolve SET d = 'dee' WHERE id = 2`,
	// One transaction of 200,000 rows.
	`INSERT INTO bulk SELECT i, md5(i::text), i / 7.0 FROM generate_series(1000, 200999) i`,
	`UPDATE bulk SET v = 'seed updated' WHERE id <= 10`,
	// A large transaction with a rolled-back subtransaction: streamed, the
	// subtransaction's rows must be dropped at commit.
	`INSERT INTO bulk SELECT i, 'kept', 1 FROM generate_series(300000, 330000) i;
	 SAVEPOINT a;
	 INSERT INTO bulk SELECT i, 'rolled back', 2 FROM generate_series(400000, 430000) i;
	 UPDATE bulk SET v = 'rolled back too' WHERE id BETWEEN 300000 AND 300010;
	 ROLLBACK TO SAVEPOINT a;
	 UPDATE bulk SET v = 'after savepoint' WHERE id BETWEEN 300000 AND 300100`,
	// A table created after the snapshot is picked up by FOR ALL TABLES.
	`CREATE TABLE late (id integer PRIMARY KEY, v text); INSERT INTO late VALUES (1, 'late')`,
	// A transaction touching several tables, then one rolled back.
	`INSERT INTO parent VALUES (4, 'p4'); INSERT INTO trunc VALUES (102, 'multi'); UPDATE alltypes SET b = NOT coalesce(b, false) WHERE id = 2`,
}

// Tables lists every table the workload creates, as schema and name.
var Tables = [][2]string{
	{"public", "alltypes"}, {"Mixed Case", "Order Items"}, {"public", "nopk"}, {"public", "toasty"}, {"public", "toastyfull"},
	{"public", "measurements"}, {"public", "parent"}, {"public", "child"}, {"public", "trunc"}, {"public", "evolve"},
	{"public", "bulk"}, {"public", "empty_table"}, {"public", "late"},
}

// Setup creates and seeds the workload's tables.
func Setup(ctx context.Context, conn *pgx.Conn) error {
	for _, q := range append(append([]string{}, setupSQL...), seedSQL...) {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("setup %.60q: %w", q, err)
		}
	}
	return nil
}

// Changes runs the streamed part of the workload, one transaction each,
// plus one transaction that is rolled back.
func Changes(ctx context.Context, conn *pgx.Conn) error {
	for _, q := range changeSQL {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, q); err != nil {
			tx.Rollback(ctx)
			return fmt.Errorf("change %.60q: %w", q, err)
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
	}
	// Rolled back: a small and a large (streamed) transaction.
	for _, q := range []string{
		`INSERT INTO parent VALUES (99, 'rolled back')`,
		`INSERT INTO bulk SELECT i, 'rolled back', 0 FROM generate_series(500000, 560000) i`,
	} {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, q); err != nil {
			return err
		}
		if err := tx.Rollback(ctx); err != nil {
			return err
		}
	}
	return nil
}
