// dups.mjs checks contract guarantee 3 for one table folder: no
// (_cdc_lsn, _cdc_seq) appears twice among the table's CDC rows (the rows
// of files other than LOAD*.parquet). The Parquet files are decoded by
// DuckDB only.
//
// Usage: node dups.mjs DIR
// Output (JSON on stdout): {"cdc_rows": n, "duplicates": [["lsn", "seq", count], ...]}
// (at most 20 duplicates listed).

import { DuckDBInstance } from '@duckdb/node-api';
import fs from 'node:fs';
import path from 'node:path';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node dups.mjs DIR\n');
  process.exit(1);
}
const files = fs.existsSync(dir)
  ? fs.readdirSync(dir, { recursive: true })
      .filter((f) => f.endsWith('.parquet') && !path.basename(f).startsWith('LOAD'))
      .map((f) => path.join(dir, f))
      .sort()
  : [];
if (files.length === 0) {
  process.stdout.write(JSON.stringify({ cdc_rows: 0, duplicates: [] }));
  process.exit(0);
}
const list = '[' + files.map((f) => "'" + f.replaceAll("'", "''") + "'").join(', ') + ']';
const db = await DuckDBInstance.create(':memory:');
const conn = await db.connect();
const total = await conn.runAndReadAll(`SELECT count(*)::VARCHAR FROM read_parquet(${list}, union_by_name = true)`);
const dups = await conn.runAndReadAll(`
  SELECT _cdc_lsn::VARCHAR, _cdc_seq::VARCHAR, count(*)::VARCHAR AS n
  FROM read_parquet(${list}, union_by_name = true)
  GROUP BY _cdc_lsn, _cdc_seq HAVING count(*) > 1
  ORDER BY _cdc_lsn, _cdc_seq LIMIT 20`);
process.stdout.write(JSON.stringify({ cdc_rows: Number(total.getRows()[0][0]), duplicates: dups.getRows() }));
