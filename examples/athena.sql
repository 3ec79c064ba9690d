-- Athena (engine v3, Trino SQL) over the cdc2s3 folder of the demo's
-- demo.orders table: the change table, then a view of the table's current
-- state by the merge rule of docs/output-format.md (section 6).
--
-- Replace s3://my-data-lake/cdc2s3/app with your --dest. The LOCATION is the
-- table's own folder, <dest>/<schema>/<table>/, which holds only Parquet
-- files (cdc2s3 keeps its state under <dest>/_cdc2s3/).
--
-- Column names: Athena stores them in lower case and matches Parquet columns
-- by name, so the Parquet column "Op" is read as op. Names that start with an
-- underscore need backticks in DDL and double quotes in queries.

CREATE DATABASE IF NOT EXISTS cdc2s3;

-- 1. Every row of every LOAD and CDC file: the full history since the full load.
CREATE EXTERNAL TABLE IF NOT EXISTS cdc2s3.demo_orders_cdc (
  op               string         COMMENT 'I insert, U update, D delete, T truncate, L reloaded row, R reload marker',
  `_cdc_commit_ts` timestamp      COMMENT 'commit time of the source transaction (UTC)',
  `_cdc_lsn`       bigint         COMMENT 'end LSN of the source transaction',
  `_cdc_seq`       bigint         COMMENT 'position of the row in its transaction',
  `_cdc_unchanged` array<string>  COMMENT 'columns left NULL because their TOASTed value did not change',
  `_cdc_reload`    bigint         COMMENT 'cut LSN of the reload an L or R row belongs to; NULL otherwise',
  id               bigint,
  customer_id      bigint,
  status           string         COMMENT 'enum demo.order_status',
  total            decimal(12,2),
  placed_at        timestamp      COMMENT 'timestamptz, in UTC',
  doc              string         COMMENT 'jsonb text',
  note             string
)
STORED AS PARQUET
LOCATION 's3://my-data-lake/cdc2s3/app/demo/orders/';

-- 2. The current state: per id, the latest row after the cut (the last
-- truncate, or the last completed reload: an R row cuts everything up to its
-- _cdc_reload, and the L rows of a reload count once its R row exists),
-- unless it is a delete. doc is the one column the demo's updates leave unchanged
-- while TOASTed: a row that lists it in _cdc_unchanged takes its value from
-- the latest earlier row of the same id that sent one. doc_run numbers those
-- runs of rows; first_value picks the row that sent the value.
CREATE OR REPLACE VIEW cdc2s3.demo_orders_current AS
WITH done AS (
  SELECT DISTINCT "_cdc_reload" AS id FROM cdc2s3.demo_orders_cdc WHERE op = 'R'
),
cut AS (
  SELECT CASE op WHEN 'T' THEN "_cdc_lsn" ELSE "_cdc_reload" END AS tl,
         CASE op WHEN 'T' THEN "_cdc_seq" ELSE 9223372036854775807 END AS ts
  FROM cdc2s3.demo_orders_cdc
  WHERE op IN ('T', 'R')
  ORDER BY 1 DESC, 2 DESC
  LIMIT 1
),
live AS (
  SELECT r.*,
         count(CASE WHEN NOT contains(coalesce(r."_cdc_unchanged", ARRAY[]), 'doc') THEN 1 END)
           OVER (PARTITION BY r.id ORDER BY r."_cdc_lsn", r."_cdc_seq"
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS doc_run
  FROM cdc2s3.demo_orders_cdc r
  LEFT JOIN cut ON true
  WHERE r.op NOT IN ('T', 'R')
    AND (r.op <> 'L' OR r."_cdc_reload" IN (SELECT id FROM done))
    AND (cut.tl IS NULL
         OR r."_cdc_lsn" > cut.tl
         OR (r."_cdc_lsn" = cut.tl AND r."_cdc_seq" > cut.ts))
),
filled AS (
  SELECT op, "_cdc_commit_ts", "_cdc_lsn", "_cdc_seq",
         id, customer_id, status, total, placed_at, note,
         first_value(doc) OVER (PARTITION BY id, doc_run ORDER BY "_cdc_lsn", "_cdc_seq") AS doc
  FROM live
),
ranked AS (
  SELECT *,
         row_number() OVER (PARTITION BY id ORDER BY "_cdc_lsn" DESC, "_cdc_seq" DESC) AS rn
  FROM filled
)
SELECT id, customer_id, status, total, placed_at, doc, note,
       "_cdc_commit_ts" AS changed_at
FROM ranked
WHERE rn = 1 AND op <> 'D';

-- A column added after the full load: take its "missing" value for rows older
-- than its position (added_lsn, added_seq) (from
-- <dest>/_cdc2s3/schema/demo/orders.json), e.g. in "filled":
--   CASE WHEN "_cdc_lsn" < 30779776 OR ("_cdc_lsn" = 30779776 AND "_cdc_seq" < 2)
--        THEN CAST('5' AS integer) ELSE priority END AS priority
-- and add the column to the CREATE EXTERNAL TABLE (ALTER TABLE ... ADD COLUMNS).

-- Examples
SELECT status, count(*) AS orders, sum(total) AS revenue
FROM cdc2s3.demo_orders_current
GROUP BY status
ORDER BY status;

SELECT op, count(*) AS changes, min("_cdc_commit_ts") AS first, max("_cdc_commit_ts") AS last
FROM cdc2s3.demo_orders_cdc
GROUP BY op;
