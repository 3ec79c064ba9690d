package validate

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestSums: a range's sum does not depend on the order of its rows, and
// changes with a row missing, a row twice or a changed value.
func TestSums(t *testing.T) {
	rows := []stateRow{}
	for i := range 100 {
		v := appendValue(nil, tagNumber, fmt.Appendf(nil, "%d", i))
		rows = append(rows, stateRow{keyHash: keyHash(v), key: v, values: v})
	}
	a, b := newSums(), newSums()
	for _, r := range rows {
		a.add(r)
	}
	for _, i := range rand.Perm(len(rows)) {
		b.add(rows[i])
	}
	if !equalSums(a, b) || a.rows() != 100 {
		t.Fatal("the sums depend on the order of the rows")
	}
	twice := newSums()
	for _, r := range append(rows, rows[7]) {
		twice.add(r)
	}
	changed := newSums()
	for i, r := range rows {
		if i == 7 {
			r.values = appendValue(nil, tagNumber, []byte("8"))
		}
		changed.add(r)
	}
	for name, s := range map[string]sums{"a row twice": twice, "a changed value": changed} {
		if equalSums(a, s) {
			t.Errorf("%s: sums equal", name)
		}
		n := 0
		for r := range a {
			if a[r] != s[r] {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %d ranges differ, want 1", name, n)
		}
	}
}

func equalSums(a, b sums) bool {
	for r := range a {
		if a[r] != b[r] {
			return false
		}
	}
	return true
}

// TestSpillSplit: records go to the partition of their hash's top bits, a
// split spreads a partition over the next bits, and a hash range lies in
// exactly one partition at every depth.
func TestSpillSplit(t *testing.T) {
	dir := t.TempDir()
	sp, err := newSpill(dir, "x", 0, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var hashes []uint64
	for range 2000 {
		h := rng.Uint64()
		hashes = append(hashes, h)
		if err := sp.add(binary.BigEndian.AppendUint64(nil, h)); err != nil {
			t.Fatal(err)
		}
	}
	parts, err := sp.close()
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 4 {
		t.Fatalf("%d partitions, want 4", len(parts))
	}
	var all []part
	for _, p := range parts {
		subs, err := split(p, dir, "x")
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, subs...)
	}
	n := 0
	for _, p := range all {
		if p.nbits != 2+splitBits {
			t.Errorf("partition of %d bits, want %d", p.nbits, 2+splitBits)
		}
		err := eachFrame(p.path, func(rec []byte) error {
			h := binary.BigEndian.Uint64(rec)
			if h>>(64-p.nbits) != p.id {
				t.Errorf("hash %016x in partition %x/%d", h, p.id, p.nbits)
			}
			if !p.contains(rangeOf(h)) {
				t.Errorf("range of %016x not in its partition %x/%d", h, p.id, p.nbits)
			}
			n++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n != len(hashes) {
		t.Errorf("%d records after the split, want %d", n, len(hashes))
	}
	for r := range uint32(1 << rangeBits) {
		in := 0
		for _, p := range append(all, part{nbits: 0}) {
			if p.contains(r) && p.nbits > 0 {
				in++
			}
		}
		if in > 1 {
			t.Fatalf("range %d in %d partitions", r, in)
		}
	}
}

// TestSmallMemory compares a table whose spilled rows are many times the
// memory allowed: partitions are split until they fit, on both the merge
// and the row-by-row side, and every difference is still found.
func TestSmallMemory(t *testing.T) {
	tt := newTestTable(t, []testCol{intCol("id"), textCol("v")}, "id")
	const n = 6000
	var load, upd1 []row
	var src [][]*string
	for i := range n {
		id := s(fmt.Sprint(i))
		load = append(load, ins(100, 0, id, s(fmt.Sprintf("value %d, padded to take room in the spill", i))))
		if i%2 == 0 {
			upd1 = append(upd1, upd(200, uint64(i), nil, id, s(fmt.Sprintf("updated %d", i))))
			src = append(src, []*string{id, s(fmt.Sprintf("updated %d", i))})
		} else {
			src = append(src, []*string{id, s(fmt.Sprintf("value %d, padded to take room in the spill", i))})
		}
	}
	tt.write("LOAD00000001.parquet", nil, false, load...)
	tt.write(cdc(200, 200), nil, false, upd1...)
	run := tt.run(200, 256<<10, src...)
	expect(t, run.res, n, n, 0, 0, 0)
	if run.bits == 0 || run.splits == 0 {
		t.Errorf("first split %d bits, %d splits: the memory limit was not exercised", run.bits, run.splits)
	}

	// Every odd row differs: each of them is found.
	for i := 1; i < n; i += 2 {
		src[i] = []*string{src[i][0], s("other")}
	}
	run = tt.run(200, 256<<10, src...)
	expect(t, run.res, n, n, 0, 0, n/2)
	t.Logf("first split %d bits, %d splits, %d ranges compared", run.bits, run.splits, run.res.Compared)
	if run.res.Compared < 1000 || run.splits == 0 {
		t.Errorf("%d ranges compared row by row, %d splits", run.res.Compared, run.splits)
	}
}

// TestFirstBits: the first split is sized for the folder.
func TestFirstBits(t *testing.T) {
	run := &tableRun{o: Options{Memory: 256 << 20}}
	for _, c := range []struct {
		bytes int64
		want  int
	}{{0, 0}, {1 << 20, 0}, {16 << 20, 0}, {17 << 20, 1}, {64 << 20, 2}, {1 << 40, splitBits}} {
		if got := run.firstBits(c.bytes); got != c.want {
			t.Errorf("firstBits(%d) = %d, want %d", c.bytes, got, c.want)
		}
	}
}
