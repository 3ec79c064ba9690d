package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
)

// The benchmark table: the 6-column shape of issues 4 and 5 (a bigint
// primary key, text, timestamptz, numeric(12,2), a small jsonb and an int).
const createTable = `CREATE TABLE public.items (
	id         bigint PRIMARY KEY,
	name       text NOT NULL,
	created_at timestamptz NOT NULL,
	amount     numeric(12,2) NOT NULL,
	attrs      jsonb NOT NULL,
	qty        int NOT NULL
)`

// rowsSQL returns a SELECT of rows with ids lo..hi in the table's shape,
// about 140 bytes per row on disk.
func rowsSQL(lo, hi string) string {
	return `SELECT g, 'item ' || g || ' ' || md5(g::text),
		timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
		(g % 100000) / 100.0 + 0.25,
		jsonb_build_object('color', (ARRAY['red','green','blue','black'])[1 + g % 4], 'size', g % 50, 'tags', jsonb_build_array('a', g % 7)),
		(g % 1000)::int
	FROM generate_series(` + lo + `::bigint, ` + hi + `::bigint) AS g`
}

// updateProc makes single-row UPDATEs of existing rows, committing every
// per rows: the update half of the streaming backlog.
const updateProc = `CREATE PROCEDURE bench_updates(n bigint, per int, maxid bigint)
LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..n LOOP
		UPDATE public.items SET qty = qty + 1, amount = amount + 0.01,
			name = 'item ' || id || ' updated ' || i
		WHERE id = 1 + (i * 7919) % maxid;
		IF i % per = 0 THEN
			COMMIT;
		END IF;
	END LOOP;
END
$$`

// pgEnv is how to reach the throwaway server: over TCP (a loopback
// address, with the password in PGPASSWORD, which every client here
// reads from the environment) or over its Unix socket.
type pgEnv struct {
	TCP, Socket, Port, User string
	BinDir                  string
	// Transport is how the next connections go: "tcp" or "unix".
	Transport string
}

// transports are the values of pgEnv.Transport, described.
var transports = map[string]string{
	"tcp":  "TCP on the loopback interface",
	"unix": "a Unix socket",
}

// DSN returns a key=value connection string for database db over
// e.Transport (no password: the clients read PGPASSWORD).
func (e pgEnv) DSN(db string) string {
	host := e.Socket
	if e.Transport == "tcp" {
		host = e.TCP
	}
	return fmt.Sprintf("host=%s port=%s user=%s dbname=%s sslmode=disable", host, e.Port, e.User, db)
}

func (e pgEnv) connect(ctx context.Context, db string) (*pgx.Conn, error) {
	c, err := pgx.Connect(ctx, e.DSN(db))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", db, err)
	}
	return c, nil
}

// createDB (re)creates database db with the items table and returns a
// connection to it.
func (e pgEnv) createDB(ctx context.Context, db string) (*pgx.Conn, error) {
	admin, err := e.connect(ctx, "postgres")
	if err != nil {
		return nil, err
	}
	defer admin.Close(ctx)
	// Slots of an earlier, interrupted run would keep the database in use.
	if _, err := admin.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, db); err != nil {
		return nil, fmt.Errorf("drop old slots: %w", err)
	}
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()); err != nil {
		return nil, fmt.Errorf("drop database %s: %w", db, err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create database %s: %w", db, err)
	}
	c, err := e.connect(ctx, db)
	if err != nil {
		return nil, err
	}
	if _, err := c.Exec(ctx, createTable); err != nil {
		c.Close(ctx)
		return nil, fmt.Errorf("create table: %w", err)
	}
	return c, nil
}

// dropDB drops a database and its slots, once nothing uses them.
func (e pgEnv) dropDB(ctx context.Context, db string) error {
	admin, err := e.connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, db); err != nil {
		return fmt.Errorf("drop slots of %s: %w", db, err)
	}
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()); err != nil {
		return fmt.Errorf("drop database %s: %w", db, err)
	}
	return nil
}

// currentLSN returns pg_current_wal_lsn().
func currentLSN(ctx context.Context, c *pgx.Conn) (pglogrepl.LSN, error) {
	var s string
	if err := c.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&s); err != nil {
		return 0, err
	}
	return pglogrepl.ParseLSN(s)
}

// markerTxn commits one single-row UPDATE and returns the end LSN of its
// commit: the position a consumer has confirmed once it has everything up
// to and including it. The LSN comes from a temporary logical slot created
// just before, so the lookup decodes only this transaction. The UPDATE is
// one of the backlog's changes.
func markerTxn(ctx context.Context, c *pgx.Conn, publication string) (pglogrepl.LSN, error) {
	if _, err := c.Exec(ctx, "SELECT pg_create_logical_replication_slot('bench_marker', 'pgoutput', true)"); err != nil {
		return 0, fmt.Errorf("marker slot: %w", err)
	}
	defer c.Exec(context.WithoutCancel(ctx), "SELECT pg_drop_replication_slot('bench_marker')")
	if _, err := c.Exec(ctx, "UPDATE public.items SET qty = qty + 1 WHERE id = (SELECT min(id) FROM public.items)"); err != nil {
		return 0, fmt.Errorf("marker update: %w", err)
	}
	var s *string
	err := c.QueryRow(ctx, `SELECT max(lsn)::text FROM pg_logical_slot_peek_binary_changes('bench_marker', NULL, NULL,
		'proto_version', '1', 'publication_names', $1)`, publication).Scan(&s)
	if err != nil {
		return 0, fmt.Errorf("marker position: %w", err)
	}
	if s == nil {
		return 0, fmt.Errorf("marker position: the marker transaction was not decoded (is the table in publication %s?)", publication)
	}
	return pglogrepl.ParseLSN(*s)
}

// slotWatch polls a replication slot every tick for when its
// confirmed_flush_lsn reaches a target.
type slotWatch struct {
	mu        sync.Mutex
	reachedAt time.Time
	confirmed pglogrepl.LSN
	err       error

	cancel context.CancelFunc
	done   chan struct{}
}

func watchSlot(ctx context.Context, e pgEnv, db, slot string, target pglogrepl.LSN, tick time.Duration) (*slotWatch, error) {
	c, err := e.connect(ctx, db)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &slotWatch{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer c.Close(context.WithoutCancel(ctx))
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			var lsn *string
			err := c.QueryRow(ctx, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&lsn)
			now := time.Now()
			if ctx.Err() != nil {
				return
			}
			w.mu.Lock()
			if err != nil {
				w.err = fmt.Errorf("watch slot %s: %w", slot, err)
				w.mu.Unlock()
				return
			}
			if lsn != nil {
				if l, err := pglogrepl.ParseLSN(*lsn); err == nil {
					w.confirmed = l
					if l >= target && w.reachedAt.IsZero() {
						w.reachedAt = now
					}
				}
			}
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return w, nil
}

// reached returns when the target was first seen confirmed (zero: not yet).
func (w *slotWatch) reached() (time.Time, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reachedAt, w.err
}

// waitReached waits until the slot's confirmed position reaches the
// target, failing when p exits first or after timeout.
func (w *slotWatch) waitReached(ctx context.Context, p *proc, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		at, err := w.reached()
		if err != nil {
			return at, err
		}
		if !at.IsZero() {
			return at, nil
		}
		if p.exited() {
			return at, fmt.Errorf("%s exited before its slot reached the target: %v%s", p.name, p.err, p.logTail())
		}
		if time.Now().After(deadline) {
			w.mu.Lock()
			c := w.confirmed
			w.mu.Unlock()
			return at, fmt.Errorf("%s: slot did not reach the target within %s (confirmed %s)%s", p.name, timeout, c, p.logTail())
		}
		select {
		case <-ctx.Done():
			return at, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// finish stops polling.
func (w *slotWatch) finish() {
	w.cancel()
	<-w.done
}
