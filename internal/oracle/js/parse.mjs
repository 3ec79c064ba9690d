// parse.mjs parses the SELECT of generated views with node-sql-parser, in
// the dialect each engine speaks (athena: Trino SQL; hive: Spark SQL), and
// returns the names of each view's columns: a check of the SQL that
// cdc2s3 catalog writes for engines this machine cannot run, by a parser
// that is not ours.
//
// Request (JSON on stdin): {"queries": [{"dialect": "athena", "sql": "WITH … SELECT …"}, …]}
// Response: {"columns": [["id", "v"], …]}, or an error on stderr with exit 1.

import pkg from 'node-sql-parser';

const { Parser } = pkg;

function fail(msg) {
  process.stderr.write(`parse: ${msg}\n`);
  process.exit(1);
}

// unquote strips an identifier's quotes (node-sql-parser keeps some).
function unquote(s) {
  const m = /^(["`])(.*)\1$/.exec(s);
  return m ? m[2].replaceAll(m[1] + m[1], m[1]) : s;
}

function columnName(col) {
  if (col.as) return unquote(typeof col.as === 'string' ? col.as : col.as.value ?? String(col.as));
  const e = col.expr;
  // In Trino a double-quoted name is an identifier; the athena grammar
  // reads a bare one in a select list as a string.
  if (e && e.type === 'double_quote_string') return e.value;
  if (e && e.type === 'column_ref') {
    const c = e.column;
    return unquote(typeof c === 'string' ? c : c?.expr?.value ?? String(c));
  }
  throw new Error(`a column without a name: ${JSON.stringify(col).slice(0, 200)}`);
}

async function main() {
  let input = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) input += chunk;
  const req = JSON.parse(input);
  const parser = new Parser();
  const out = [];
  for (const [i, q] of req.queries.entries()) {
    let ast;
    try {
      ast = parser.astify(q.sql, { database: q.dialect });
    } catch (err) {
      fail(`query ${i} (${q.dialect}): ${err.message}\n${q.sql}`);
    }
    const sel = Array.isArray(ast) ? ast[0] : ast;
    if (!sel || sel.type !== 'select') fail(`query ${i} (${q.dialect}) is not a SELECT`);
    try {
      out.push(sel.columns.map(columnName));
    } catch (err) {
      fail(`query ${i} (${q.dialect}): ${err.message}`);
    }
  }
  process.stdout.write(JSON.stringify({ columns: out }) + '\n');
}

main().catch((err) => fail(err && err.stack ? err.stack : String(err)));
