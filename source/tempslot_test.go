package source

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdc2s3/cdc2s3/internal/testenv"
)

// TestTempSlotBoundary checks, on the real server and under concurrent
// commits, the rule a reload's chunk relies on to meet the stream: a
// transaction is visible in the snapshot a temporary slot exports if and
// only if its commit record ends at or below the slot's consistent point.
// Each transaction's commit end is read from a test_decoding slot created
// before any of them, which reports the same end LSN pgoutput sends.
func TestTempSlotBoundary(t *testing.T) {
	ctx := context.Background()
	pg, conn := observed(ctx, t)

	var next atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		w, err := pg.Connect(ctx, "postgres")
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close(ctx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := w.Exec(ctx, "INSERT INTO b VALUES ($1)", next.Add(1)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}

	var cuts []tempCut
	for k := range 6 {
		time.Sleep(100 * time.Millisecond)
		c, err := readAtTempSlot(ctx, pg.DSN("postgres"), fmt.Sprintf("chunk_%d", k))
		if err != nil {
			t.Fatal(err)
		}
		cuts = append(cuts, c)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	ends, err := commitEnds(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if len(ends) < 100 {
		t.Fatalf("only %d transactions committed while the slots were created: too few to test the boundary", len(ends))
	}
	for _, c := range cuts {
		var before, after, wrong int
		for id, end := range ends {
			want := end <= c.at
			if want {
				before++
			} else {
				after++
			}
			if c.visible[id] != want && wrong < 5 {
				wrong++
				t.Errorf("consistent point %s: row %d committed with end %s is visible=%t in the snapshot, want %t", c.at, id, end, c.visible[id], want)
			}
		}
		if before == 0 || after == 0 {
			t.Errorf("consistent point %s: %d commits at or below, %d above: the writers did not straddle it", c.at, before, after)
		}
		if len(c.visible) != before {
			t.Errorf("consistent point %s: snapshot holds %d rows, %d transactions ended at or below it", c.at, len(c.visible), before)
		}
	}
}

type tempCut struct {
	at      pglogrepl.LSN
	visible map[int64]bool
}

// readAtTempSlot creates a temporary slot with an exported snapshot and
// reads the ids of b in that snapshot.
func readAtTempSlot(ctx context.Context, dsn, name string) (tempCut, error) {
	repl, err := pgconn.Connect(ctx, dsn+"&replication=database")
	if err != nil {
		return tempCut{}, err
	}
	defer repl.Close(ctx)
	created, err := CreateTempSlot(ctx, repl, name)
	if err != nil {
		return tempCut{}, err
	}
	r, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return tempCut{}, err
	}
	defer r.Close(ctx)
	tx, err := r.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return tempCut{}, err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET TRANSACTION SNAPSHOT '%s'", created.Snapshot)); err != nil {
		return tempCut{}, err
	}
	rows, err := tx.Query(ctx, "SELECT id FROM b")
	if err != nil {
		return tempCut{}, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return tempCut{}, err
	}
	c := tempCut{at: created.ConsistentPoint, visible: map[int64]bool{}}
	for _, id := range ids {
		c.visible[id] = true
	}
	return c, nil
}

var insertedID = regexp.MustCompile(`^table public\.b: INSERT: id\[bigint\]:(\d+)$`)

// observed starts a server with the table b and the test_decoding slot
// observer, created before any change to b.
func observed(ctx context.Context, t *testing.T) (*testenv.Postgres, *pgx.Conn) {
	pg := testenv.NewPostgres(t)
	conn, err := pg.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	if _, err := conn.Exec(ctx, `CREATE TABLE b (id bigint PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_create_logical_replication_slot('observer', 'test_decoding')`); err != nil {
		t.Fatal(err)
	}
	return pg, conn
}

// change is one line test_decoding wrote, at its position.
type change struct {
	lsn  pglogrepl.LSN
	data string
}

// observe consumes what the observer slot has decoded so far.
func observe(ctx context.Context, conn *pgx.Conn) ([]change, error) {
	rows, err := conn.Query(ctx, "SELECT lsn::text, data FROM pg_logical_slot_get_changes('observer', NULL, NULL)")
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (change, error) {
		var at, data string
		if err := r.Scan(&at, &data); err != nil {
			return change{}, err
		}
		lsn, err := pglogrepl.ParseLSN(at)
		return change{lsn, data}, err
	})
}

// commitEnds reads the observer slot: the end LSN of the commit of each
// inserted id.
func commitEnds(ctx context.Context, conn *pgx.Conn) (map[int64]pglogrepl.LSN, error) {
	changes, err := observe(ctx, conn)
	if err != nil {
		return nil, err
	}
	ends := map[int64]pglogrepl.LSN{}
	var open []int64
	for _, c := range changes {
		if m := insertedID.FindStringSubmatch(c.data); m != nil {
			id, _ := strconv.ParseInt(m[1], 10, 64)
			open = append(open, id)
		} else if strings.HasPrefix(c.data, "COMMIT") {
			for _, id := range open {
				ends[id] = c.lsn
			}
			open = open[:0]
		}
	}
	return ends, nil
}

// TestMessagePosition checks the position a watermark takes in the stream:
// a non-transactional logical message is decoded at the LSN that
// pg_logical_emit_message returns (the end of its record), between the
// commits around it, and never at a commit's end LSN.
func TestMessagePosition(t *testing.T) {
	ctx := context.Background()
	_, conn := observed(ctx, t)
	var emitted []string
	for i := range 3 {
		if _, err := conn.Exec(ctx, "INSERT INTO b VALUES ($1)", i); err != nil {
			t.Fatal(err)
		}
		var at string
		if err := conn.QueryRow(ctx, "SELECT pg_logical_emit_message(false, 'cdc2s3.reload', $1)::text", fmt.Sprint(i)).Scan(&at); err != nil {
			t.Fatal(err)
		}
		emitted = append(emitted, at)
	}
	// A non-transactional message does not flush the WAL (PostgreSQL 17
	// adds a flush argument); the next commit, or the WAL writer within
	// wal_writer_delay, does. Here a commit does.
	if _, err := conn.Exec(ctx, "INSERT INTO b VALUES (99)"); err != nil {
		t.Fatal(err)
	}
	changes, err := observe(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var last pglogrepl.LSN
	for _, c := range changes {
		isMessage := strings.HasPrefix(c.data, "message:")
		if !isMessage && !strings.HasPrefix(c.data, "COMMIT") {
			continue // BEGIN and rows carry the position of the record before
		}
		if c.lsn <= last {
			t.Errorf("%s at %s is not after the previous commit or message at %s", c.data, c.lsn, last)
		}
		last = c.lsn
		if isMessage {
			got = append(got, c.lsn.String())
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(emitted) {
		t.Fatalf("messages decoded at %v, pg_logical_emit_message returned %v\n%v", got, emitted, changes)
	}
}
