package generate

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// opKind names one kind of operation in the workload mix.
type opKind int

const (
	opInsertCustomer opKind = iota
	opUpdateCustomer
	opInsertOrder
	opUpdateOrder
	opUpdateDoc
	opUpdateLine
	opDeleteOrder
	opInsertEvent
)

var opNames = [...]string{
	opInsertCustomer: "insert customer",
	opUpdateCustomer: "update customer",
	opInsertOrder:    "insert order",
	opUpdateOrder:    "update order",
	opUpdateDoc:      "update doc",
	opUpdateLine:     "update line",
	opDeleteOrder:    "delete order",
	opInsertEvent:    "insert event",
}

func (k opKind) String() string { return opNames[k] }

// mix weighs the operations. Orders grow slowly: 28 inserts against 10 deletes.
var mix = []struct {
	kind   opKind
	weight int
}{
	{opInsertCustomer, 5},
	{opUpdateCustomer, 4},
	{opInsertOrder, 28},
	{opUpdateOrder, 25},
	{opUpdateDoc, 5},
	{opUpdateLine, 5},
	{opDeleteOrder, 10},
	{opInsertEvent, 18},
}

var mixTotal = func() int {
	n := 0
	for _, m := range mix {
		n += m.weight
	}
	return n
}()

// op is one planned operation. Its parameters are drawn when it is planned,
// so re-running exec after a serialization failure repeats the same change.
type op struct {
	kind opKind
	exec func(ctx context.Context, tx pgx.Tx, st *Stats) error
}

// generator plans operations from a random source. It remembers the id
// ranges it has seen so that updates and deletes find existing rows.
type generator struct {
	rng *rand.Rand
	// Targets are picked as "the first id >= a random id in [lo, hi]".
	custLo, custHi   int64
	orderLo, orderHi int64
}

func newGenerator(seed int64) *generator {
	return &generator{rng: rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))}
}

// load reads the current id ranges.
func (g *generator) load(ctx context.Context, conn *pgx.Conn) error {
	err := conn.QueryRow(ctx, `SELECT
		(SELECT coalesce(min(id), 0) FROM demo.customers), (SELECT coalesce(max(id), 0) FROM demo.customers),
		(SELECT coalesce(min(id), 0) FROM demo.orders), (SELECT coalesce(max(id), 0) FROM demo.orders)`,
	).Scan(&g.custLo, &g.custHi, &g.orderLo, &g.orderHi)
	if err != nil {
		return fmt.Errorf("load id ranges: %w", err)
	}
	return nil
}

// plan returns the operations of one transaction.
func (g *generator) plan(n int) []op {
	ops := make([]op, 0, n)
	for range n {
		ops = append(ops, g.next())
	}
	return ops
}

// next picks one operation from the mix.
func (g *generator) next() op {
	r := g.rng.IntN(mixTotal)
	kind := mix[len(mix)-1].kind
	for _, m := range mix {
		if r < m.weight {
			kind = m.kind
			break
		}
		r -= m.weight
	}
	switch kind {
	case opInsertCustomer:
		return g.insertCustomer()
	case opUpdateCustomer:
		return g.updateCustomer()
	case opInsertOrder:
		return g.insertOrder()
	case opUpdateOrder:
		return g.updateOrder()
	case opUpdateDoc:
		return g.updateDoc()
	case opUpdateLine:
		return g.updateLine()
	case opDeleteOrder:
		return g.deleteOrder()
	default:
		return g.insertEvent()
	}
}

func (g *generator) pick(lo, hi int64) int64 {
	if hi <= lo {
		return lo
	}
	return lo + g.rng.Int64N(hi-lo+1)
}

func (g *generator) oneOf(s []string) string { return s[g.rng.IntN(len(s))] }

var (
	firstNames = []string{"Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Niklaus", "Margaret", "Dennis"}
	lastNames  = []string{"Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman", "Wirth", "Hamilton", "Ritchie"}
	tiers      = []string{"bronze", "silver", "gold", "platinum"}
	tagWords   = []string{"vip", "newsletter", "b2b", "returning", "trial", "eu", "us", "apac", "wholesale"}
	statuses   = []string{"pending", "paid", "shipped", "delivered", "cancelled"}
	notes      = []string{"leave at door", "gift wrap", "call before delivery", "fragile", "express", "backorder", "address changed"}
	channels   = []string{"web", "ios", "android", "pos", "api"}
	eventKinds = []string{"page_view", "search", "add_to_cart", "checkout", "login", "refund_request"}
)

// tier returns a tier or nil: the enum column is nullable.
func (g *generator) tier() any {
	if g.rng.IntN(5) == 0 {
		return nil
	}
	return g.oneOf(tiers)
}

// tags returns NULL, an empty array or a few tags.
func (g *generator) tags() []string {
	switch g.rng.IntN(6) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	t := make([]string, 1+g.rng.IntN(3))
	for i := range t {
		t[i] = g.oneOf(tagWords)
	}
	return t
}

func (g *generator) note() any {
	if g.rng.IntN(3) == 0 {
		return nil
	}
	return g.oneOf(notes)
}

// randomText returns n random bytes as base64. It does not compress, which
// keeps a doc several KB on disk and so TOASTed out of line.
func (g *generator) randomText(n int) string {
	b := make([]byte, (n+7)&^7)
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], g.rng.Uint64())
	}
	return base64.StdEncoding.EncodeToString(b[:n])
}

// doc returns a JSON document of roughly 4–8 KB.
func (g *generator) doc(rev int) string {
	attrs := make(map[string]string, 4)
	for i := range 4 {
		attrs[fmt.Sprintf("k%d", i)] = g.randomText(12)
	}
	d := map[string]any{
		"rev":     rev,
		"channel": g.oneOf(channels),
		"shipping": map[string]any{
			"city":    g.oneOf([]string{"Lisbon", "Oslo", "Austin", "Osaka", "Lagos", "Lima"}),
			"express": g.rng.IntN(4) == 0,
		},
		"attrs":     attrs,
		"signature": g.randomText(3000 + g.rng.IntN(3000)),
	}
	b, _ := json.Marshal(d) // cannot fail: only strings, numbers, bools and maps
	return string(b)
}

// cents returns a numeric with two decimal places.
func cents(c int64) pgtype.Numeric {
	return pgtype.Numeric{Int: big.NewInt(c), Exp: -2, Valid: true}
}

func (g *generator) insertCustomer() op {
	first, last := g.oneOf(firstNames), g.oneOf(lastNames)
	name := first + " " + last
	email := fmt.Sprintf("%s.%s.%08x@example.com", first, last, g.rng.Uint32())
	tier, tags := g.tier(), g.tags()
	return op{opInsertCustomer, func(ctx context.Context, tx pgx.Tx, st *Stats) error {
		var id int64
		err := tx.QueryRow(ctx, `INSERT INTO demo.customers (name, email, tier, tags)
			VALUES ($1, $2, $3::text::demo.customer_tier, $4)
			ON CONFLICT (email) DO NOTHING RETURNING id`, name, email, tier, tags).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		st.Inserts++
		if g.custLo == 0 || id < g.custLo {
			g.custLo = id
		}
		g.custHi = max(g.custHi, id)
		return nil
	}}
}

func (g *generator) updateCustomer() op {
	target, tier, word := g.pick(g.custLo, g.custHi), g.tier(), g.oneOf(tagWords)
	return op{opUpdateCustomer, func(ctx context.Context, tx pgx.Tx, st *Stats) error {
		tag, err := tx.Exec(ctx, `UPDATE demo.customers
			SET tier = $2::text::demo.customer_tier, tags = array_append(coalesce(tags, '{}'), $3)
			WHERE id = (SELECT id FROM demo.customers WHERE id >= $1 ORDER BY id LIMIT 1)`, target, tier, word)
		st.Updates += tag.RowsAffected()
		return err
	}}
}

// line is one planned order line.
type line struct {
	sku    string
	qty    int32
	price  int64 // cents
	amount pgtype.Numeric
}

func (g *generator) insertOrder() op {
	customer := g.pick(g.custLo, g.custHi)
	lines := make([]line, 1+g.rng.IntN(5))
	var total big.Int
	for i := range lines {
		l := line{
			sku:   fmt.Sprintf("SKU-%05d", g.rng.IntN(20000)),
			qty:   int32(1 + g.rng.IntN(5)),
			price: int64(100 + g.rng.IntN(50000)),
		}
		// amount = qty × price × (1 − discount) in millionths, so the
		// unconstrained numeric column carries six decimal places.
		var discount int64
		switch g.rng.IntN(4) {
		case 1:
			discount = 50000
		case 2:
			discount = 125000
		case 3:
			discount = 333333
		}
		micro := int64(l.qty) * l.price * (1_000_000 - discount) / 100
		l.amount = pgtype.Numeric{Int: big.NewInt(micro), Exp: -6, Valid: true}
		total.Add(&total, big.NewInt(micro))
		lines[i] = l
	}
	status := g.oneOf(statuses[:2])
	placed := time.Now().Add(-time.Duration(g.rng.IntN(3600)) * time.Second)
	doc, note := g.doc(1), g.note()
	sum := pgtype.Numeric{Int: &total, Exp: -6, Valid: true} // rounded to cents by the column
	return op{opInsertOrder, func(ctx context.Context, tx pgx.Tx, st *Stats) error {
		var id int64
		err := tx.QueryRow(ctx, `INSERT INTO demo.orders (customer_id, status, total, placed_at, doc, note)
			VALUES (coalesce((SELECT id FROM demo.customers WHERE id >= $1 ORDER BY id LIMIT 1),
			                 (SELECT min(id) FROM demo.customers)),
			        $2::text::demo.order_status, $3, $4, $5::jsonb, $6)
			RETURNING id`, customer, status, sum, placed, doc, note).Scan(&id)
		if err != nil {
			return err
		}
		st.Inserts++
		nos := make([]int32, len(lines))
		skus := make([]string, len(lines))
		qtys := make([]int32, len(lines))
		prices := make([]pgtype.Numeric, len(lines))
		amounts := make([]pgtype.Numeric, len(lines))
		for i, l := range lines {
			nos[i], skus[i], qtys[i], prices[i], amounts[i] = int32(i+1), l.sku, l.qty, cents(l.price), l.amount
		}
		tag, err := tx.Exec(ctx, `INSERT INTO demo.order_lines (order_id, line_no, sku, qty, price, amount)
			SELECT $1, n, s, q, p, a
			FROM unnest($2::int[], $3::text[], $4::int[], $5::numeric[], $6::numeric[]) AS u(n, s, q, p, a)`,
			id, nos, skus, qtys, prices, amounts)
		if err != nil {
			return err
		}
		st.Inserts += tag.RowsAffected()
		if g.orderLo == 0 || id < g.orderLo {
			g.orderLo = id
		}
		g.orderHi = max(g.orderHi, id)
		return nil
	}}
}

// updateOrder changes status, total and note but never doc, so that
// pgoutput sends the TOASTed doc as "unchanged".
func (g *generator) updateOrder() op {
	target := g.pick(g.orderLo, g.orderHi)
	status := g.oneOf(statuses)
	total := cents(int64(100 + g.rng.IntN(1_000_000)))
	note := g.note()
	return op{opUpdateOrder, func(ctx context.Context, tx pgx.Tx, st *Stats) error {
		tag, err := tx.Exec(ctx, `UPDATE demo.orders
			SET status = $2::text::demo.order_status, total = $3, note = $4
			WHERE id = (SELECT id FROM demo.orders WHERE id >= $1 ORDER BY id LIMIT 1)`,
			target, status, total, note)
		st.Updates += tag.RowsAffected()
		return err
	}}
}

// updateDoc replaces doc with a new large document.
func (g *generator) updateDoc() op {
	target := g.pick(g.orderLo, g.orderHi)
	doc := g.doc(2 + g.rng.IntN(10))
	return op{opUpdateDoc, func(ctx context.Context, tx pgx.Tx, st *Stats) error {
		tag, err := tx.Exec(ctx, `UPDATE demo.orders SET doc = $2::jsonb
			WHERE id = (SELECT id FROM demo.orders WHERE id >= $1 ORDER BY id LIMIT 1)`, target, doc)
		st.Updates += tag.RowsAffected()
		return err
	}}
}

// updateLine changes a quantity on the composite-key table.
func (g *generator) updateLine() op {
	target := g.pick(g.orderLo, g.orderHi)
	qty := int32(1 + g.rng.IntN(9))
	return op{opUpdateLine, func(ctx context.Context, tx pgx.Tx, st *Stats) error {
		tag, err := tx.Exec(ctx, `UPDATE demo.order_lines SET qty = $2::int, amount = price * $2::int
			WHERE (order_id, line_no) = (SELECT order_id, line_no FROM demo.order_lines
				WHERE order_id >= $1 ORDER BY order_id, line_no LIMIT 1)`, target, qty)
		st.Updates += tag.RowsAffected()
		return err
	}}
}

// deleteOrder deletes an order and its lines.
func (g *generator) deleteOrder() op {
	target := g.pick(g.orderLo, g.orderHi)
	return op{opDeleteOrder, func(ctx context.Context, tx pgx.Tx, st *Stats) error {
		var id int64
		err := tx.QueryRow(ctx, `SELECT id FROM demo.orders WHERE id >= $1 ORDER BY id LIMIT 1 FOR UPDATE`, target).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM demo.order_lines WHERE order_id = $1`, id)
		if err != nil {
			return err
		}
		st.Deletes += tag.RowsAffected()
		tag, err = tx.Exec(ctx, `DELETE FROM demo.orders WHERE id = $1`, id)
		st.Deletes += tag.RowsAffected()
		return err
	}}
}

// insertEvent mostly writes near now; a few rows land in the old partition
// and a few far outside every range, in the default partition.
func (g *generator) insertEvent() op {
	at := time.Now().Add(time.Duration(g.rng.Int64N(int64(60*24*time.Hour))) - 30*24*time.Hour)
	switch r := g.rng.IntN(100); {
	case r < 3:
		at = time.Date(2000+g.rng.IntN(25), time.Month(1+g.rng.IntN(12)), 1+g.rng.IntN(28), 0, 0, 0, 0, time.UTC)
	case r < 5:
		at = time.Date(1990+g.rng.IntN(2)*120, time.January, 1+g.rng.IntN(28), 12, 0, 0, 0, time.UTC)
	}
	kind := g.oneOf(eventKinds)
	var order any
	if g.rng.IntN(2) == 0 {
		order = g.pick(g.orderLo, g.orderHi)
	}
	payload, _ := json.Marshal(map[string]any{
		"session": fmt.Sprintf("%016x", g.rng.Uint64()),
		"ip":      fmt.Sprintf("10.%d.%d.%d", g.rng.IntN(256), g.rng.IntN(256), g.rng.IntN(256)),
		"latency": g.rng.Float64() * 250,
		"items":   []int{g.rng.IntN(100), g.rng.IntN(100)},
	})
	return op{opInsertEvent, func(ctx context.Context, tx pgx.Tx, st *Stats) error {
		tag, err := tx.Exec(ctx, `INSERT INTO demo.events (occurred_at, kind, order_id, payload)
			VALUES ($1, $2, $3, $4::jsonb)`, at, kind, order, string(payload))
		st.Inserts += tag.RowsAffected()
		return err
	}}
}
