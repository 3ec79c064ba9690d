// merge.mjs computes the current state of one cdc2s3 table folder by the
// merge rule of the output contract (section 6 of docs/output-format.md,
// version 2 with reloads: docs/reload.md section 2), independently of the
// cdc2s3 writer. The Parquet files are decoded by DuckDB only.
//
// Request (JSON on stdin):
//
//   {
//     "dir": "/dest/public/t",                    // the table's folder
//     "key": ["id"],                              // primary key; [] = multiset
//     "columns": [{"name": "id", "kind": "int", "array": false}, ...],
//     "history": [{"name": "c", "added_lsn": "123", "added_seq": "0", "missing": "5"}]
//   }
//
// "kind" is one of bool, int, float4, float8, decimal, numeric, text, bytea,
// date, timestamp, timestamptz. "added_lsn" and "added_seq" are decimal
// strings (a uint64 does not fit a JS number): rows at a position
// (_cdc_lsn, _cdc_seq) below them take the missing value; "missing" is the column's missing value already in
// canonical form (the Go side converts PostgreSQL's text); a column without a
// history entry was there from LSN 0.
//
// Response (JSON on stdout): {"files": n, "rows": [[cell, ...], ...]} where
// each cell is the canonical text of one value, in the order of "columns".
// Canonical text is JSON: null; true/false; integers and decimals as plain
// JSON numbers without trailing fractional zeros; floats as the shortest
// round-trip decimal in JavaScript's Number#toString layout, or the strings
// "NaN", "Infinity", "-Infinity"; text (and numeric without typmod) as a JSON
// string; bytea as the string "\\x<lower hex>"; date as "YYYY-MM-DD";
// timestamp as "YYYY-MM-DDTHH:MM:SS.ffffff" and timestamptz the same with
// "Z", with astronomical years (year 0 = 1 BC, "-0044" = 45 BC); arrays as
// JSON arrays of canonical elements without spaces.
//
// Errors go to stderr with exit status 1.

import { DuckDBInstance } from '@duckdb/node-api';
import fs from 'node:fs';
import path from 'node:path';

const KINDS = new Set(['bool', 'int', 'float4', 'float8', 'decimal', 'numeric', 'text', 'bytea', 'date', 'timestamp', 'timestamptz']);

function fail(msg) {
  process.stderr.write(`merge: ${msg}\n`);
  process.exit(1);
}

// ident quotes a DuckDB identifier.
function ident(name) {
  return '"' + name.replaceAll('"', '""') + '"';
}

// str quotes a DuckDB string literal.
function str(s) {
  return "'" + s.replaceAll("'", "''") + "'";
}

// parquetFiles lists <dir>/**/*.parquet in a stable order. A folder that does
// not exist holds no files: the table has never been written.
function parquetFiles(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true })
    .filter((f) => f.endsWith('.parquet'))
    .map((f) => path.join(dir, f))
    .filter((f) => fs.statSync(f).isFile())
    .sort();
}

// ---- canonical text ----

// shortest formats a number given as decimal digits d (no leading or trailing
// zeros) and exponent n, meaning 0.d × 10^n, the way ECMAScript's
// Number::toString lays it out. The Go side has the same function.
function shortest(neg, d, n) {
  const k = d.length;
  let s;
  if (k <= n && n <= 21) s = d + '0'.repeat(n - k);
  else if (0 < n && n <= 21) s = d.slice(0, n) + '.' + d.slice(n);
  else if (-6 < n && n <= 0) s = '0.' + '0'.repeat(-n) + d;
  else {
    const e = n - 1;
    s = d[0] + (k > 1 ? '.' + d.slice(1) : '') + 'e' + (e >= 0 ? '+' : '-') + Math.abs(e);
  }
  return (neg ? '-' : '') + s;
}

// decimalParts splits decimal text such as "-0012.340e+5" into sign, digits
// without leading or trailing zeros, and n with value = 0.digits × 10^n.
// Zero has digits "".
function decimalParts(text) {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) throw new Error(`not a decimal number: ${JSON.stringify(text)}`);
  const neg = m[1] === '-';
  const int = m[2];
  const frac = m[3] ?? '';
  let digits = int + frac;
  let n = int.length + (m[4] ? parseInt(m[4], 10) : 0);
  const lead = digits.length - digits.replace(/^0+/, '').length;
  digits = digits.slice(lead);
  n -= lead;
  digits = digits.replace(/0+$/, '');
  return { neg, digits, n };
}

// canonFloat renders a FLOAT (bits 32) or DOUBLE (bits 64) by its exact
// value: the shortest decimal that reads back as the same value, and the
// closest such one to it, as Go's strconv does.
function canonFloat(x, bits) {
  if (Number.isNaN(x)) return '"NaN"';
  if (x === Infinity) return '"Infinity"';
  if (x === -Infinity) return '"-Infinity"';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  if (bits === 64) return layout(String(x)); // ECMAScript's Number::toString is that for doubles
  // Float32: the shortest p for which a p-digit decimal reads back as x. Only
  // the two p-digit neighbours of x can: the correctly rounded one (closest,
  // so preferred) and the one on x's other side, which matters where the
  // float32 spacing below x is half that above (at powers of two). When x
  // lies exactly halfway between two that both read back, Go (and
  // ECMAScript for doubles) takes the even one; toPrecision rounds up.
  const up = (t) => Number(t) < x;
  for (let p = 1; p <= 9; p++) {
    const near = x.toPrecision(p);
    const other = stepDecimal(near, up(near) ? 1n : -1n);
    if (Math.fround(Number(near)) === x) {
      const tie = exactly(x, midpoint(near, other)) && Math.fround(Number(other)) === x;
      return layout(tie && oddLast(near) ? other : near);
    }
    if (Math.fround(Number(other)) === x) return layout(other);
  }
  throw new Error(`no float32 text for ${x}`); // unreachable: 9 digits always do
}

// mantExp splits decimal text into a BigInt mantissa and exponent:
// value = mant × 10^exp.
function mantExp(text) {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/.exec(text);
  const frac = m[3] ?? '';
  return { mant: BigInt(m[1] + m[2] + frac), exp: (m[4] ? parseInt(m[4], 10) : 0) - frac.length };
}

function oddLast(text) {
  return mantExp(text).mant % 2n !== 0n;
}

// midpoint returns the decimal halfway between two decimal texts.
function midpoint(a, b) {
  const x = mantExp(a);
  const y = mantExp(b);
  const e = Math.min(x.exp, y.exp);
  const sum = x.mant * 10n ** BigInt(x.exp - e) + y.mant * 10n ** BigInt(y.exp - e);
  return `${sum * 5n}e${e - 1}`;
}

// exactly reports whether the float32 x equals the decimal text exactly.
function exactly(x, text) {
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, x);
  const bits = view.getUint32(0);
  const biased = (bits >>> 23) & 0xff;
  let m = BigInt(bits & 0x7fffff);
  let e = -149;
  if (biased !== 0) {
    m |= 1n << 23n;
    e = biased - 150;
  }
  if (bits >>> 31) m = -m;
  const d = mantExp(text);
  // m × 2^e = mant × 10^exp, with both sides brought to integers.
  const lhs = m * 2n ** BigInt(Math.max(e, 0)) * 10n ** BigInt(Math.max(-d.exp, 0));
  const rhs = d.mant * 10n ** BigInt(Math.max(d.exp, 0)) * 2n ** BigInt(Math.max(-e, 0));
  return lhs === rhs;
}

// stepDecimal moves decimal text by one unit in its last significant digit.
function stepDecimal(text, by) {
  const { mant, exp } = mantExp(text);
  return `${mant + by}e${exp}`;
}

// layout renders decimal text in the canonical float layout.
function layout(text) {
  const { neg, digits, n } = decimalParts(text);
  if (digits === '') return neg ? '-0' : '0';
  return shortest(neg, digits, n);
}

// canonFloatValue accepts a JS number, or text where files disagree on the
// column's type and DuckDB unified it to VARCHAR.
function canonFloatValue(v, bits) {
  if (typeof v === 'number') {
    // A DOUBLE written for a real column shows here rather than being rounded away.
    if (bits === 32 && !Number.isNaN(v) && Math.fround(v) !== v) throw new Error(`a float4 column holds ${v}, not a float32 value`);
    return canonFloat(v, bits);
  }
  if (typeof v === 'string') {
    const t = v.trim().toLowerCase().replace(/^\+/, '');
    const x = t === 'nan' || t === '-nan' ? NaN : t === 'inf' || t === 'infinity' ? Infinity
      : t === '-inf' || t === '-infinity' ? -Infinity : Number(t);
    if (!Number.isNaN(x) || t.endsWith('nan')) return canonFloat(bits === 32 ? Math.fround(x) : x, bits);
  }
  throw new Error(`a float${bits === 32 ? 4 : 8} column holds ${JSON.stringify(String(v))}`);
}

// canonDecimal writes a decimal without exponent, leading zeros or trailing
// fractional zeros; "-0" is "0".
function canonDecimal(text) {
  const { neg, digits, n } = decimalParts(text);
  if (digits === '') return '0';
  let s;
  if (n <= 0) s = '0.' + '0'.repeat(-n) + digits;
  else if (n >= digits.length) s = digits + '0'.repeat(n - digits.length);
  else s = digits.slice(0, n) + '.' + digits.slice(n);
  return (neg ? '-' : '') + s;
}

function decimalValueText(v) {
  // DuckDBDecimalValue: unscaled bigint value and scale.
  const neg = v.value < 0n;
  let digits = (neg ? -v.value : v.value).toString();
  if (v.scale > 0) {
    digits = digits.padStart(v.scale + 1, '0');
    digits = digits.slice(0, digits.length - v.scale) + '.' + digits.slice(digits.length - v.scale);
  }
  return (neg ? '-' : '') + digits;
}

const pad = (x, w) => String(x).padStart(w, '0');

// civil converts days since 1970-01-01 to a proleptic Gregorian date with an
// astronomical year (Howard Hinnant's civil_from_days). BigInt throughout:
// PostgreSQL dates reach year 5874897.
function civil(days) {
  const z = days + 719468n;
  const era = (z >= 0n ? z : z - 146096n) / 146097n;
  const doe = z - era * 146097n;
  const yoe = (doe - doe / 1460n + doe / 36524n - doe / 146096n) / 365n;
  const doy = doe - (365n * yoe + yoe / 4n - yoe / 100n);
  const mp = (5n * doy + 2n) / 153n;
  const d = doy - (153n * mp + 2n) / 5n + 1n;
  const m = mp < 10n ? mp + 3n : mp - 9n;
  const y = yoe + era * 400n + (m <= 2n ? 1n : 0n);
  return { y, m, d };
}

function dateText(days) {
  const { y, m, d } = civil(days);
  const year = y < 0n ? '-' + pad(-y, 4) : pad(y, 4);
  return `${year}-${pad(m, 2)}-${pad(d, 2)}`;
}

const DAY_US = 86400000000n;

function timestampText(micros) {
  let days = micros / DAY_US;
  let rem = micros % DAY_US;
  if (rem < 0n) {
    rem += DAY_US;
    days -= 1n;
  }
  const us = rem % 1000000n;
  const secs = rem / 1000000n;
  return `${dateText(days)}T${pad(secs / 3600n, 2)}:${pad((secs / 60n) % 60n, 2)}:${pad(secs % 60n, 2)}.${pad(us, 6)}`;
}

function typeError(kind, v) {
  const what = v === null || typeof v !== 'object' ? typeof v : v.constructor.name;
  return new Error(`a ${kind} column holds a ${what} value (${String(v)})`);
}

// canonScalar renders one non-array value of the given kind.
function canonScalar(kind, v) {
  if (v === null || v === undefined) return 'null';
  switch (kind) {
    case 'bool':
      if (typeof v === 'boolean') return v ? 'true' : 'false';
      if (v === 'true' || v === 'false') return v;
      throw typeError(kind, v);
    case 'int':
      if (typeof v === 'number' && Number.isInteger(v)) return String(v);
      if (typeof v === 'bigint') return v.toString();
      if (typeof v === 'string' && /^[+-]?\d+$/.test(v)) return BigInt(v).toString();
      throw typeError(kind, v);
    case 'float4':
      return canonFloatValue(v, 32);
    case 'float8':
      return canonFloatValue(v, 64);
    case 'decimal':
      if (typeof v === 'object' && 'scale' in v && typeof v.value === 'bigint') return canonDecimal(decimalValueText(v));
      if (typeof v === 'bigint' || typeof v === 'string') return canonDecimal(String(v));
      if (typeof v === 'number' && Number.isInteger(v)) return canonDecimal(String(v));
      throw typeError(kind, v);
    case 'numeric':
    case 'text':
      if (typeof v === 'string') return JSON.stringify(v);
      throw typeError(kind, v);
    case 'bytea':
      if (typeof v === 'object' && v.bytes instanceof Uint8Array) return JSON.stringify('\\x' + Buffer.from(v.bytes).toString('hex'));
      throw typeError(kind, v);
    case 'date':
      if (typeof v === 'object' && typeof v.days === 'number') return JSON.stringify(dateText(BigInt(v.days)));
      throw typeError(kind, v);
    case 'timestamp':
      if (typeof v === 'object' && typeof v.micros === 'bigint') return JSON.stringify(timestampText(v.micros));
      throw typeError(kind, v);
    case 'timestamptz':
      if (typeof v === 'object' && typeof v.micros === 'bigint') return JSON.stringify(timestampText(v.micros) + 'Z');
      throw typeError(kind, v);
  }
  throw new Error(`unknown kind ${kind}`);
}

function canon(col, v) {
  if (!col.array) return canonScalar(col.kind, v);
  if (v === null || v === undefined) return 'null';
  if (typeof v !== 'object' || !Array.isArray(v.items)) throw typeError('list', v);
  return '[' + v.items.map((x) => canonScalar(col.kind, x)).join(',') + ']';
}

// ---- merge ----

async function main() {
  let input = '';
  process.stdin.setEncoding('utf8'); // decodes characters split across chunks
  for await (const chunk of process.stdin) input += chunk;
  const req = JSON.parse(input);
  if (typeof req.script === 'string') return view(req);
  const dir = req.dir;
  const key = req.key ?? [];
  const columns = req.columns ?? [];
  const history = req.history ?? [];
  if (typeof dir !== 'string' || dir === '') fail('request has no dir');
  for (const c of columns) {
    if (!KINDS.has(c.kind)) fail(`column ${c.name}: unknown kind ${c.kind}`);
  }
  const byName = new Map(columns.map((c, i) => [c.name, i]));
  for (const k of key) {
    if (!byName.has(k)) fail(`key column ${k} is not among the columns`);
  }

  // The newest history entry of each column wins: a dropped and re-added
  // column appeared at its last ADD COLUMN.
  const added = columns.map(() => ({ lsn: 0n, seq: 0n, missing: 'null' }));
  for (const h of history) {
    const i = byName.get(h.name);
    if (i === undefined) continue;
    const lsn = BigInt(h.added_lsn);
    const seq = BigInt(h.added_seq ?? '0');
    if (lsn > added[i].lsn || (lsn === added[i].lsn && seq >= added[i].seq)) added[i] = { lsn, seq, missing: h.missing ?? 'null' };
  }
  // before reports whether the row at (lsn, seq) is older than column i.
  const before = (lsn, seq, i) => lsn < added[i].lsn || (lsn === added[i].lsn && seq < added[i].seq);

  const files = parquetFiles(dir);
  if (files.length === 0) {
    process.stdout.write(JSON.stringify({ files: 0, rows: [] }) + '\n');
    return;
  }

  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  const source = `read_parquet([${files.map(str).join(', ')}], union_by_name = true)`;

  // Which columns exist in at least one file? DuckDB matches names without
  // regard to case.
  const described = await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`);
  const present = new Set(described.getRows().map((r) => String(r[0]).toLowerCase()));
  for (const sys of ['Op', '_cdc_lsn', '_cdc_seq']) {
    if (!present.has(sys.toLowerCase())) fail(`${dir}: the files have no ${sys} column`);
  }
  const hasUnchanged = present.has('_cdc_unchanged');

  const hasReload = present.has('_cdc_reload');
  const ops = await conn.runAndReadAll(`SELECT DISTINCT Op FROM ${source} WHERE Op IS NULL OR Op NOT IN ('I', 'U', 'D', 'T', 'L', 'R')`);
  if (ops.getRows().length > 0) fail(`${dir}: unexpected Op values ${JSON.stringify(ops.getRows().map((r) => r[0]))}`);
  const reloadRows = await conn.runAndReadAll(`SELECT count(*) FROM ${source} WHERE Op IN ('L', 'R')`);
  if (Number(reloadRows.getRows()[0][0]) > 0 && !hasReload) fail(`${dir}: L or R rows without a _cdc_reload column`);

  // A column that no file has yet reads as NULL.
  const expr = (c) => (present.has(c.name.toLowerCase()) ? ident(c.name) : 'NULL');

  // The contract's rule, version 2 (docs/reload.md section 2): the cut is
  // the latest of each T row's position and each R row's (_cdc_reload, ∞);
  // T and R rows are not data; an L row counts only once an R row of its
  // reload exists.
  const reload = hasReload ? '_cdc_reload' : 'CAST(NULL AS BIGINT)';
  const live = `
    rows AS (SELECT *, ${reload} AS _rl FROM ${source}),
    done AS (SELECT DISTINCT _rl AS id FROM rows WHERE Op = 'R'),
    cut AS (SELECT CASE Op WHEN 'T' THEN _cdc_lsn ELSE _rl END AS tl,
                   CASE Op WHEN 'T' THEN _cdc_seq ELSE 9223372036854775807 END AS ts
            FROM rows WHERE Op IN ('T', 'R') ORDER BY tl DESC, ts DESC LIMIT 1),
    live AS (SELECT r.* FROM rows r LEFT JOIN cut ON true
             WHERE r.Op NOT IN ('T', 'R')
               AND (r.Op <> 'L' OR r._rl IN (SELECT id FROM done))
               AND (cut.tl IS NULL OR r._cdc_lsn > cut.tl OR (r._cdc_lsn = cut.tl AND r._cdc_seq > cut.ts))),
    src AS (SELECT Op, _cdc_lsn, _cdc_seq,
                   ${hasUnchanged ? '_cdc_unchanged' : 'CAST(NULL AS VARCHAR[])'} AS u,
                   ${columns.map((c, i) => `${expr(c)} AS c${i}`).join(',\n                   ') || 'NULL AS c_none'}
            FROM live)`;

  let rows;
  if (key.length > 0) {
    // For each key: the latest row, unless it is a delete. Each column comes
    // from the latest row at or before it that did not list the column in
    // _cdc_unchanged (unchanged TOAST); the struct keeps a NULL value apart
    // from "no such row" under IGNORE NULLS, and carries that row's LSN for
    // the missing-value rule.
    const part = key.map((k) => `c${byName.get(k)}`).join(', ');
    const filled = columns.map((c, i) =>
      `last_value(CASE WHEN list_contains(u, ${str(c.name)}) THEN NULL ELSE {'v': c${i}, 'lsn': _cdc_lsn, 'seq': _cdc_seq} END IGNORE NULLS) OVER w AS f${i}`);
    const sql = `WITH ${live},
      ranked AS (SELECT Op, _cdc_lsn, _cdc_seq,
                        row_number() OVER (PARTITION BY ${part} ORDER BY _cdc_lsn DESC, _cdc_seq DESC) AS rn,
                        ${filled.join(',\n                        ')}
                 FROM src
                 WINDOW w AS (PARTITION BY ${part} ORDER BY _cdc_lsn, _cdc_seq
                              ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))
      SELECT _cdc_lsn, _cdc_seq, ${columns.map((_, i) => `f${i}`).join(', ')} FROM ranked WHERE rn = 1 AND Op <> 'D'`;
    const res = await conn.runAndReadAll(sql);
    rows = res.getRows().map((r) => {
      const [lsn, seq] = [BigInt(r[0]), BigInt(r[1])];
      return columns.map((c, i) => {
        const f = r[i + 2];
        // A row older than the column's appearance takes the missing value;
        // so does a value carried forward from such a row.
        if (f === null) return before(lsn, seq, i) ? added[i].missing : 'null';
        const e = f.entries;
        if (before(BigInt(e.lsn), BigInt(e.seq), i)) return added[i].missing;
        return canon(c, e.v);
      });
    });
  } else {
    // No key: a multiset replayed in commit order. I adds its row, D removes
    // one equal row (U does not occur: updates are written as D + I). The
    // L rows of a completed reload are the state at its cut, which is
    // below every live I and D row: they come first.
    const sql = `WITH ${live}
      SELECT ${['Op', '_cdc_lsn', '_cdc_seq', 'len(coalesce(u, [])) AS nu', ...columns.map((_, i) => `c${i}`)].join(', ')}
      FROM src ORDER BY Op <> 'L', _cdc_lsn, _cdc_seq`;
    const res = await conn.runAndReadAll(sql);
    const bag = new Map();
    for (const r of res.getRows()) {
      const [op, seq, nu] = [r[0], r[2], r[3]];
      const lsn = BigInt(r[1]);
      if (nu > 0n) fail(`${dir}: row at (${lsn}, ${seq}) of a table without a key lists unchanged columns`);
      const row = columns.map((c, i) => (before(lsn, BigInt(seq), i) ? added[i].missing : canon(c, r[i + 4])));
      const k = JSON.stringify(row);
      const e = bag.get(k);
      if (op === 'I' || op === 'L') {
        if (e) e.n++;
        else bag.set(k, { row, n: 1 });
      } else if (op === 'D') {
        if (!e) fail(`${dir}: D row at (${lsn}, ${seq}) matches no live row: [${row.join(', ')}]`);
        if (--e.n === 0) bag.delete(k);
      } else {
        fail(`${dir}: ${op} row at (${lsn}, ${seq}) in a table without a key`);
      }
    }
    rows = [];
    for (const { row, n } of bag.values()) for (let j = 0; j < n; j++) rows.push(row);
  }
  conn.closeSync?.();
  process.stdout.write(JSON.stringify({ files: files.length, rows }) + '\n');
}

// view runs a script (cdc2s3 catalog --format duckdb) in a new database and
// returns the canonical rows of one of its views, {"view": "\"s\".\"t\"",
// "columns": [...]}, with the view's own column names as "names": this mode
// checks the generated SQL, not the merge rule.
async function view(req) {
  for (const c of req.columns) {
    if (!KINDS.has(c.kind)) fail(`column ${c.name}: unknown kind ${c.kind}`);
  }
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  await conn.run(req.script);
  const described = await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${req.view}`);
  const names = described.getRows().map((r) => String(r[0]));
  const list = req.columns.map((c) => ident(c.name)).join(', ') || '1';
  const res = await conn.runAndReadAll(`SELECT ${list} FROM ${req.view}`);
  const rows = res.getRows().map((r) => req.columns.map((c, i) => canon(c, r[i])));
  conn.closeSync?.();
  process.stdout.write(JSON.stringify({ names, rows }) + '\n');
}

main().catch((err) => fail(err && err.stack ? err.stack : String(err)));
