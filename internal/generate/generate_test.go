package generate

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var tables = []string{"demo.customers", "demo.orders", "demo.order_lines", "demo.events"}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	return conn
}

func counts(t *testing.T, conn *pgx.Conn) map[string]int64 {
	t.Helper()
	m := make(map[string]int64, len(tables))
	for _, tbl := range tables {
		var n int64
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+tbl).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", tbl, err)
		}
		m[tbl] = n
	}
	return m
}

func total(m map[string]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

func TestSetupIdempotent(t *testing.T) {
	ctx := context.Background()
	conn := connect(t, testDSN(t))
	if err := Setup(ctx, conn); err != nil {
		t.Fatal(err)
	}
	first := counts(t, conn)
	want := map[string]int64{"demo.customers": seedCustomers, "demo.orders": seedOrders, "demo.events": seedEvents}
	for tbl, n := range want {
		if first[tbl] != n {
			t.Errorf("%s: %d rows after setup, want %d", tbl, first[tbl], n)
		}
	}
	if first["demo.order_lines"] < seedOrders {
		t.Errorf("order_lines: %d rows, want at least %d", first["demo.order_lines"], seedOrders)
	}
	if err := Setup(ctx, conn); err != nil {
		t.Fatalf("second setup: %v", err)
	}
	if second := counts(t, conn); !mapsEqual(first, second) {
		t.Errorf("second setup changed row counts: %v then %v", first, second)
	}

	// doc must be stored out of line, or pgoutput would send it inline on
	// every update.
	var minSize, toastBytes int64
	err := conn.QueryRow(ctx, `SELECT min(pg_column_size(doc)),
		pg_relation_size((SELECT reltoastrelid FROM pg_class WHERE oid = 'demo.orders'::regclass))
		FROM demo.orders`).Scan(&minSize, &toastBytes)
	if err != nil {
		t.Fatal(err)
	}
	if minSize < 4000 || toastBytes == 0 {
		t.Errorf("doc not TOASTed: smallest doc %d bytes, toast relation %d bytes", minSize, toastBytes)
	}
	var partitions int
	if err := conn.QueryRow(ctx, `SELECT count(DISTINCT tableoid) FROM demo.events`).Scan(&partitions); err != nil {
		t.Fatal(err)
	}
	if partitions < 2 {
		t.Errorf("seed events in %d partitions, want several", partitions)
	}
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRun(t *testing.T) {
	ctx := context.Background()
	dsn := testDSN(t)
	conn := connect(t, dsn)
	if err := Setup(ctx, conn); err != nil {
		t.Fatal(err)
	}
	before := counts(t, conn)

	const rate, d = 200, 2 * time.Second
	began := time.Now()
	st, err := Run(ctx, dsn, Options{Rate: rate, Duration: d, Seed: 1}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(began); el < d || el > d+5*time.Second {
		t.Errorf("Run took %v, want about %v", el, d)
	}
	t.Logf("stats: %+v", st)
	if st.Txns == 0 || st.Inserts == 0 || st.Updates == 0 || st.Deletes == 0 {
		t.Fatalf("stats %+v: want inserts, updates and deletes", st)
	}
	// Each transaction holds at least one operation, and the pacer allows
	// at most rate×duration plus one burst of operations.
	if max := int64(rate*d.Seconds() + rate); st.Txns > max {
		t.Errorf("%d transactions, want at most %d at %d ops/s", st.Txns, max, rate)
	}
	after := counts(t, conn)
	if got, want := total(after)-total(before), st.Inserts-st.Deletes; got != want {
		t.Errorf("rows grew by %d, want inserts-deletes = %d (before %v, after %v)", got, want, before, after)
	}
	var orphans, emptyOrders int64
	err = conn.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM demo.order_lines l WHERE NOT EXISTS (SELECT 1 FROM demo.orders o WHERE o.id = l.order_id)),
		(SELECT count(*) FROM demo.orders o WHERE NOT EXISTS (SELECT 1 FROM demo.order_lines l WHERE l.order_id = o.id))`,
	).Scan(&orphans, &emptyOrders)
	if err != nil {
		t.Fatal(err)
	}
	if orphans != 0 || emptyOrders != 0 {
		t.Errorf("%d lines without an order, %d orders without lines", orphans, emptyOrders)
	}
	var changed int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM demo.orders WHERE status <> 'pending' AND status <> 'paid'`).Scan(&changed); err != nil {
		t.Fatal(err)
	}
	if changed == 0 {
		t.Error("no order moved past paid: status updates missing")
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	dsn := testDSN(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(1500*time.Millisecond, cancel)
	began := time.Now()
	st, err := Run(ctx, dsn, Options{Rate: 100}, testLogger(t))
	if err != nil {
		t.Fatalf("Run after cancel: %v, want nil", err)
	}
	if el := time.Since(began); el > 5*time.Second {
		t.Errorf("Run took %v to stop", el)
	}
	if st.Txns == 0 {
		t.Errorf("stats %+v: want transactions", st)
	}
}

func TestRunCancelledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, testDSN(t), Options{}, nil); err != nil {
		t.Fatalf("Run with cancelled context: %v, want nil", err)
	}
}

// TestUpdateLeavesDocUnchanged checks, with test_decoding, that a status
// update leaves the TOASTed doc as an unchanged datum in the WAL, and that a
// doc update carries the new doc.
func TestUpdateLeavesDocUnchanged(t *testing.T) {
	ctx := context.Background()
	conn := connect(t, testDSN(t))
	if err := Setup(ctx, conn); err != nil {
		t.Fatal(err)
	}
	g := newGenerator(3)
	if err := g.load(ctx, conn); err != nil {
		t.Fatal(err)
	}
	g.orderLo = g.orderHi // target the last order
	if _, err := conn.Exec(ctx, `SELECT pg_create_logical_replication_slot('generate_test', 'test_decoding')`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Exec(ctx, `SELECT pg_drop_replication_slot('generate_test')`) })

	changes := func(o op) string {
		t.Helper()
		if _, err := g.txn(ctx, conn, []op{o}); err != nil {
			t.Fatal(err)
		}
		rows, err := conn.Query(ctx, `SELECT data FROM pg_logical_slot_get_changes('generate_test', NULL, NULL)`)
		if err != nil {
			t.Fatal(err)
		}
		data, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(data, func(s string) bool { return strings.HasPrefix(s, "table demo.orders: UPDATE") })
		if i < 0 {
			t.Fatalf("no update of demo.orders in %q", data)
		}
		return data[i]
	}
	if got := changes(g.updateOrder()); !strings.Contains(got, "doc[jsonb]:unchanged-toast-datum") {
		t.Errorf("status update: doc not unchanged-toast: %.300s", got)
	}
	if got := changes(g.updateDoc()); strings.Contains(got, "unchanged-toast-datum") || !strings.Contains(got, `"signature"`) {
		t.Errorf("doc update: doc not sent: %.300s", got)
	}
}

func TestPlanDeterministic(t *testing.T) {
	kinds := func(seed int64) []opKind {
		g := newGenerator(seed)
		g.custLo, g.custHi, g.orderLo, g.orderHi = 1, 100, 1, 1000
		var k []opKind
		for _, o := range g.plan(200) {
			k = append(k, o.kind)
		}
		return k
	}
	a, b, c := kinds(7), kinds(7), kinds(8)
	if !slices.Equal(a, b) {
		t.Error("same seed, different plans")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds, same plan")
	}
	seen := map[opKind]bool{}
	for _, k := range a {
		seen[k] = true
	}
	if len(seen) != len(mix) {
		t.Errorf("200 operations covered %d of %d kinds", len(seen), len(mix))
	}
}

func TestPacer(t *testing.T) {
	start := time.Unix(0, 0)
	p := pacer{rate: 10, start: start}
	if w := p.reserve(1, start); w != 100*time.Millisecond {
		t.Errorf("first token due in %v, want 100ms", w)
	}
	if w := p.reserve(5, start); w != 600*time.Millisecond {
		t.Errorf("next 5 due in %v, want 600ms", w)
	}
	// After a long stall only maxBurst worth of tokens is available at once.
	now := start.Add(time.Minute)
	if w := p.reserve(10, now); w != 0 {
		t.Errorf("after stall: wait %v, want 0", w)
	}
	if w := p.reserve(1, now); w != 100*time.Millisecond {
		t.Errorf("burst exhausted: wait %v, want 100ms", w)
	}
}
