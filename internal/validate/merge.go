package validate

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"slices"

	"github.com/jackc/pglogrepl"
)

// mergeParts merges each partition of the folder's spilled changes into
// current-state rows, sums them per hash range, and spills the rows of
// ranges whose sums differ from the source's (the source's sums are
// complete by then) for the row-by-row comparison.
func (t *tableRun) mergeParts(parts []part) error {
	t.st.PartsTotal.Store(int64(len(parts)))
	out, err := newSpill(t.dir, "dest", 0, 0, t.bits)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if err := t.mergePart(p, out); err != nil {
			out.abort()
			return err
		}
		t.st.Parts.Add(1)
	}
	t.dstRows, err = out.close()
	return err
}

// mergePart merges one partition, split first while larger than the
// memory allows. Its hash ranges are complete once it is merged: a range
// lies in one partition.
func (t *tableRun) mergePart(p part, out *spill) error {
	if p.size > t.partLimit() && p.nbits < rangeBits {
		subs, err := split(p, t.dir, "changes")
		if err != nil {
			return err
		}
		t.splits++
		for i, sub := range subs {
			if err := t.mergePart(sub, out); err != nil {
				removeParts(subs[i+1:])
				return err
			}
		}
		return nil
	}
	changes, err := loadChanges(p.path)
	os.Remove(p.path)
	if err != nil {
		return err
	}
	rows, err := t.merge(changes)
	if err != nil {
		return err
	}
	for _, r := range rows {
		t.dst.add(r)
	}
	var buf []byte
	for _, r := range rows {
		if rg := rangeOf(r.keyHash); t.src[rg] != t.dst[rg] {
			buf = r.encode(buf[:0])
			if err := out.add(buf); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadChanges reads a partition's changes and sorts them by key, then
// position.
func loadChanges(path string) ([]change, error) {
	recs, err := loadFrames(path)
	if err != nil {
		return nil, err
	}
	changes := make([]change, len(recs))
	for i, rec := range recs {
		if changes[i], err = decodeChange(rec); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(changes, func(a, b change) int {
		return cmp.Or(cmp.Compare(a.keyHash, b.keyHash), bytes.Compare(a.key, b.key),
			cmp.Compare(a.pos.lsn, b.pos.lsn), cmp.Compare(a.pos.seq, b.pos.seq))
	})
	return changes, nil
}

// merge applies the merge rule to sorted changes, one key at a time.
func (t *tableRun) merge(changes []change) ([]stateRow, error) {
	var rows []stateRow
	for start := 0; start < len(changes); {
		end := start + 1
		for end < len(changes) && changes[end].keyHash == changes[start].keyHash && bytes.Equal(changes[end].key, changes[start].key) {
			end++
		}
		var err error
		if t.spec.keyed() {
			rows, err = t.mergeKey(changes[start:end], rows)
		} else {
			rows = t.mergeMultiset(changes[start:end], rows)
		}
		if err != nil {
			return nil, err
		}
		start = end
	}
	return rows, nil
}

// live reports whether a change counts for the current state (step 2):
// after the cut, and an L row only of a completed reload.
func (t *tableRun) live(c *change) bool {
	if t.hasCut && !t.cut.less(c.pos) {
		return false
	}
	return c.op != 'L' || t.done[c.reload]
}

// duplicate counts a change the folder holds twice (the same key at the
// same position) as an extra row.
func (t *tableRun) duplicate(c *change) {
	t.res.Extra++
	t.sample(&t.res.ExtraKeys, fmt.Sprintf("%s: the change at %s (seq %d) is in the folder twice", t.keyText(c.key), pglogrepl.LSN(c.pos.lsn), c.pos.seq))
}

// mergeKey merges the changes of one key, in position order (steps 2, 3
// and 5; step 4 was applied as they were read): the latest change wins
// unless it is a delete, each column from the latest change that sent it.
func (t *tableRun) mergeKey(g []change, rows []stateRow) ([]stateRow, error) {
	var live []*change
	for i := range g {
		if i > 0 && g[i].pos == g[i-1].pos {
			t.duplicate(&g[i])
			continue
		}
		if t.live(&g[i]) {
			live = append(live, &g[i])
		}
	}
	if len(live) == 0 || live[len(live)-1].op == 'D' {
		return rows, nil
	}
	latest := live[len(live)-1]
	if len(latest.unchanged) == 0 {
		// Every value sent by the latest row (and the missing values
		// already in place): the common case, without splitting.
		return append(rows, stateRow{keyHash: latest.keyHash, key: latest.key, values: latest.values}), nil
	}
	n := len(t.spec.cols)
	split := map[*change][][]byte{}
	valuesOf := func(c *change) ([][]byte, error) {
		if v, ok := split[c]; ok {
			return v, nil
		}
		v, err := splitValues(c.values, n)
		split[c] = v
		return v, err
	}
	var values []byte
	for j, col := range t.spec.cols {
		v, err := t.lastSent(live, j, valuesOf)
		if err != nil {
			return nil, err
		}
		switch {
		case v != nil:
			values = append(values, v...)
		case col.isAdded && latest.pos.less(col.added):
			values = append(values, col.missing...)
		default:
			values = appendNull(values) // never sent since the cut
		}
	}
	return append(rows, stateRow{keyHash: latest.keyHash, key: latest.key, values: values}), nil
}

// lastSent returns column j's value in the latest of live that sent it
// (did not list it in _cdc_unchanged), nil when none did.
func (t *tableRun) lastSent(live []*change, j int, valuesOf func(*change) ([][]byte, error)) ([]byte, error) {
	for k := len(live) - 1; k >= 0; k-- {
		if contains(live[k].unchanged, j) {
			continue
		}
		vals, err := valuesOf(live[k])
		if err != nil {
			return nil, err
		}
		return vals[j], nil
	}
	return nil, nil
}

// mergeMultiset merges the changes of one row of a table without a key:
// it occurs as many times as it was inserted (I, or L of a completed
// reload) less the times it was deleted, after the cut. LOAD rows share one
// position, so only other changes at one position are duplicates.
func (t *tableRun) mergeMultiset(g []change, rows []stateRow) []stateRow {
	n := 0
	for i := range g {
		if i > 0 && !g[i].load && !g[i-1].load && g[i].pos == g[i-1].pos {
			t.duplicate(&g[i])
			continue
		}
		if !t.live(&g[i]) {
			continue
		}
		if g[i].op == 'D' {
			n--
		} else {
			n++
		}
	}
	for range max(n, 0) {
		rows = append(rows, stateRow{keyHash: g[0].keyHash, key: g[0].key, values: g[0].values})
	}
	return rows
}
