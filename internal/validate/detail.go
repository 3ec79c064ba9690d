package validate

import (
	"bytes"
	"os"
)

// pair is a partition of the differing rows on both sides; either may be
// absent (no rows).
type pair struct{ dst, src *part }

// size is the pair's bytes on disk.
func (p pair) size() int64 {
	var n int64
	for _, x := range []*part{p.dst, p.src} {
		if x != nil {
			n += x.size
		}
	}
	return n
}

// pairs matches two spills' partitions by their bits.
func pairs(dst, src []part) []pair {
	byID := map[[2]uint64]*pair{}
	var order [][2]uint64
	get := func(p part) *pair {
		id := [2]uint64{uint64(p.nbits), p.id}
		if byID[id] == nil {
			byID[id] = &pair{}
			order = append(order, id)
		}
		return byID[id]
	}
	for i := range dst {
		get(dst[i]).dst = &dst[i]
	}
	for i := range src {
		get(src[i]).src = &src[i]
	}
	out := make([]pair, len(order))
	for i, id := range order {
		out[i] = *byID[id]
	}
	return out
}

// compareDetail compares the differing rows of both sides row by row, a
// partition at a time.
func (t *tableRun) compareDetail(dst, src []part) error {
	for i, p := range pairs(dst, src) {
		if err := t.comparePair(p); err != nil {
			for _, rest := range pairs(dst, src)[i+1:] {
				removePair(rest)
			}
			return err
		}
	}
	return nil
}

// removePair removes a pair's files.
func removePair(p pair) {
	for _, x := range []*part{p.dst, p.src} {
		if x != nil {
			os.Remove(x.path)
		}
	}
}

// comparePair compares one partition's rows, split first (both sides by
// the same bits) while larger than the memory allows.
func (t *tableRun) comparePair(p pair) error {
	nbits := 0
	for _, x := range []*part{p.dst, p.src} {
		if x != nil {
			nbits = x.nbits
		}
	}
	if p.size() > t.partLimit() && nbits < rangeBits {
		t.splits++
		var subs [2][]part
		for i, x := range []*part{p.dst, p.src} {
			if x == nil {
				continue
			}
			var err error
			if subs[i], err = split(*x, t.dir, []string{"dest", "source"}[i]); err != nil {
				return err
			}
		}
		return t.compareDetail(subs[0], subs[1])
	}
	defer removePair(p)
	dst := map[string][][]byte{} // rows by key
	if p.dst != nil {
		recs, err := loadFrames(p.dst.path)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			r, err := decodeStateRow(rec)
			if err != nil {
				return err
			}
			dst[string(r.key)] = append(dst[string(r.key)], r.values)
		}
	}
	if p.src != nil {
		if err := eachFrame(p.src.path, func(rec []byte) error { return t.matchSource(rec, dst) }); err != nil {
			return err
		}
	}
	for key, rows := range dst {
		for range rows {
			t.res.Extra++
			t.sample(&t.res.ExtraKeys, t.keyText([]byte(key)))
		}
	}
	return nil
}

// matchSource takes the destination's row for a source row out of dst:
// missing when there is none, mismatched when its values differ.
func (t *tableRun) matchSource(rec []byte, dst map[string][][]byte) error {
	r, err := decodeStateRow(rec)
	if err != nil {
		return err
	}
	rows := dst[string(r.key)]
	if len(rows) == 0 {
		t.res.Missing++
		t.sample(&t.res.MissingKeys, t.keyText(r.key))
		return nil
	}
	got := rows[0]
	if len(rows) == 1 {
		delete(dst, string(r.key))
	} else {
		dst[string(r.key)] = rows[1:]
	}
	if bytes.Equal(got, r.values) {
		return nil
	}
	t.res.Mismatched++
	if len(t.res.Mismatches) < t.o.Samples {
		t.res.Mismatches = append(t.res.Mismatches, t.mismatch(r.key, r.values, got))
	}
	return nil
}

// mismatch describes a mismatched row: the columns whose values differ.
func (t *tableRun) mismatch(key, src, dst []byte) Mismatch {
	m := Mismatch{Key: t.keyText(key)}
	n := len(t.spec.cols)
	sv, err1 := splitValues(src, n)
	dv, err2 := splitValues(dst, n)
	if err1 != nil || err2 != nil {
		return m
	}
	for j, c := range t.spec.cols {
		if !bytes.Equal(sv[j], dv[j]) {
			m.Columns = append(m.Columns, ColumnDiff{Column: c.name, Source: formatValue(sv[j]), Dest: formatValue(dv[j])})
		}
	}
	return m
}
