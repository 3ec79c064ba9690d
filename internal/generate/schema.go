package generate

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Schema is the schema that Setup creates and Run writes to.
const Schema = "demo"

// Seed sizes: enough rows for a snapshot to have something in every table.
const (
	seedCustomers = 20
	seedOrders    = 40
	seedEvents    = 60
	// seedRandom makes the seed rows the same on every fresh database.
	seedRandom = 20260101
)

// ddl is idempotent: every statement is a no-op when its object exists.
// Setup runs it under an advisory lock so concurrent generators do not race.
var ddl = []string{
	`CREATE SCHEMA IF NOT EXISTS demo`,
	// CREATE TYPE has no IF NOT EXISTS.
	`DO $$ BEGIN
		CREATE TYPE demo.order_status AS ENUM ('pending', 'paid', 'shipped', 'delivered', 'cancelled');
	EXCEPTION WHEN duplicate_object THEN NULL;
	END $$`,
	`DO $$ BEGIN
		CREATE TYPE demo.customer_tier AS ENUM ('bronze', 'silver', 'gold', 'platinum');
	EXCEPTION WHEN duplicate_object THEN NULL;
	END $$`,
	`CREATE TABLE IF NOT EXISTS demo.customers (
		id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		name       text NOT NULL,
		email      text NOT NULL UNIQUE,
		tier       demo.customer_tier,
		tags       text[],
		created_at timestamptz NOT NULL DEFAULT now()
	)`,
	// orders uses a sequence default rather than identity so that both kinds
	// of generated key reach the replicator.
	`CREATE SEQUENCE IF NOT EXISTS demo.orders_id_seq`,
	`CREATE TABLE IF NOT EXISTS demo.orders (
		id          bigint PRIMARY KEY DEFAULT nextval('demo.orders_id_seq'),
		customer_id bigint NOT NULL REFERENCES demo.customers (id),
		status      demo.order_status NOT NULL DEFAULT 'pending',
		total       numeric(12,2) NOT NULL,
		placed_at   timestamptz NOT NULL,
		doc         jsonb,
		note        text
	)`,
	`ALTER SEQUENCE demo.orders_id_seq OWNED BY demo.orders.id`,
	`CREATE INDEX IF NOT EXISTS orders_customer_id_idx ON demo.orders (customer_id)`,
	// No ON DELETE CASCADE: Run deletes lines itself so that the rows it
	// counts are the rows that were deleted.
	`CREATE TABLE IF NOT EXISTS demo.order_lines (
		order_id bigint NOT NULL REFERENCES demo.orders (id),
		line_no  integer NOT NULL,
		sku      text NOT NULL,
		qty      integer NOT NULL,
		price    numeric(10,2) NOT NULL,
		amount   numeric NOT NULL,
		PRIMARY KEY (order_id, line_no)
	)`,
	// PostgreSQL 15 has no identity columns on partitioned tables.
	`CREATE SEQUENCE IF NOT EXISTS demo.events_id_seq`,
	`CREATE TABLE IF NOT EXISTS demo.events (
		id          bigint NOT NULL DEFAULT nextval('demo.events_id_seq'),
		occurred_at timestamptz NOT NULL,
		kind        text NOT NULL,
		order_id    bigint,
		payload     jsonb NOT NULL,
		PRIMARY KEY (id, occurred_at)
	) PARTITION BY RANGE (occurred_at)`,
	`ALTER SEQUENCE demo.events_id_seq OWNED BY demo.events.id`,
	`CREATE TABLE IF NOT EXISTS demo.events_old PARTITION OF demo.events
		FOR VALUES FROM ('2000-01-01 00:00:00+00') TO ('2025-01-01 00:00:00+00')`,
	`CREATE TABLE IF NOT EXISTS demo.events_2025 PARTITION OF demo.events
		FOR VALUES FROM ('2025-01-01 00:00:00+00') TO ('2026-01-01 00:00:00+00')`,
	`CREATE TABLE IF NOT EXISTS demo.events_2026 PARTITION OF demo.events
		FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2027-01-01 00:00:00+00')`,
	`CREATE TABLE IF NOT EXISTS demo.events_2027 PARTITION OF demo.events
		FOR VALUES FROM ('2027-01-01 00:00:00+00') TO ('2028-01-01 00:00:00+00')`,
	`CREATE TABLE IF NOT EXISTS demo.events_2028_2030 PARTITION OF demo.events
		FOR VALUES FROM ('2028-01-01 00:00:00+00') TO ('2031-01-01 00:00:00+00')`,
	// The default partition takes everything else, so inserts never fail.
	`CREATE TABLE IF NOT EXISTS demo.events_default PARTITION OF demo.events DEFAULT`,
}

// Setup creates the demo schema, its types and tables, and seeds a modest
// number of rows when demo.customers is empty. It is idempotent and safe to
// run concurrently with another Setup.
func Setup(ctx context.Context, conn *pgx.Conn) error {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('cdc2s3.generate.setup'))`); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		for _, q := range ddl {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
		}
		var seeded bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM demo.customers)`).Scan(&seeded); err != nil {
			return fmt.Errorf("check seed: %w", err)
		}
		if seeded {
			return nil
		}
		return seed(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	return nil
}

// seed inserts the initial rows with a fixed random source.
func seed(ctx context.Context, tx pgx.Tx) error {
	g := newGenerator(seedRandom)
	var st Stats
	run := func(n int, plan func() op) error {
		for range n {
			o := plan()
			if err := o.exec(ctx, tx, &st); err != nil {
				return fmt.Errorf("seed %s: %w", o.kind, err)
			}
		}
		return nil
	}
	if err := run(seedCustomers, g.insertCustomer); err != nil {
		return err
	}
	if err := run(seedOrders, g.insertOrder); err != nil {
		return err
	}
	return run(seedEvents, g.insertEvent)
}
