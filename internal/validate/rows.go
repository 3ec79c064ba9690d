package validate

import (
	"fmt"
	"math"
	"strings"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
)

// The contract's metadata columns (docs/output-format.md section 2).
const (
	colOp        = "Op"
	colLSN       = "_cdc_lsn"
	colSeq       = "_cdc_seq"
	colUnchanged = "_cdc_unchanged"
	colReload    = "_cdc_reload"
)

// rowGroup reads the rows of one row group, matching columns by name as
// readers do; a column the file lacks is nil.
type rowGroup struct {
	run                             *tableRun
	load                            bool // a LOAD file
	op, lsn, seq, unchanged, reload *column
	values                          []*column // per compared column
	meta                            [5][]byte // the metadata values of the row
	val                             []byte
	ch                              change
	rec                             []byte
}

// leaves maps each top-level column of a file to its leaf column (a LIST
// has one).
func leaves(md *metadata.FileMetaData) map[string]int {
	out := map[string]int{}
	for i := 0; i < md.Schema.NumColumns(); i++ {
		top := strings.SplitN(md.Schema.Column(i).Path(), ".", 2)[0]
		if _, ok := out[top]; !ok {
			out[top] = i
		}
	}
	return out
}

// openRowGroup opens the columns of row group g that the run reads.
func (t *tableRun) openRowGroup(pf *file.Reader, g int, byName map[string]int, load bool) (*rowGroup, error) {
	rg := pf.RowGroup(g)
	open := func(name string) (*column, error) {
		leaf, ok := byName[name]
		if !ok {
			return nil, nil
		}
		return newColumn(rg, leaf, pf.MetaData().Schema.Column(leaf))
	}
	r := &rowGroup{run: t, load: load}
	var err error
	for _, m := range []struct {
		name string
		col  **column
	}{{colOp, &r.op}, {colLSN, &r.lsn}, {colSeq, &r.seq}, {colUnchanged, &r.unchanged}, {colReload, &r.reload}} {
		if *m.col, err = open(m.name); err != nil {
			return nil, badFile{err}
		}
	}
	if r.op == nil || r.lsn == nil || r.seq == nil {
		return nil, badFile{fmt.Errorf("no %s, %s or %s column: not a file of the contract", colOp, colLSN, colSeq)}
	}
	for _, c := range t.spec.cols {
		col, err := open(c.name)
		if err != nil {
			return nil, badFile{err}
		}
		r.values = append(r.values, col)
	}
	return r, nil
}

// row reads the next row and spills it when it is a change at or below the
// position; T and R rows are not spilled but move the cut (and an R row
// completes its reload).
func (r *rowGroup) row(s *spill) error {
	var err error
	for i, c := range []*column{r.op, r.lsn, r.seq, r.unchanged, r.reload} {
		r.meta[i] = r.meta[i][:0]
		if c == nil {
			r.meta[i] = appendNull(r.meta[i])
		} else if r.meta[i], err = c.next(r.meta[i]); err != nil {
			return badFile{err}
		}
	}
	op, ok1 := textOf(r.meta[0])
	lsn, ok2 := numberOf(r.meta[1])
	seq, ok3 := numberOf(r.meta[2])
	if !ok1 || !ok2 || !ok3 {
		return badFile{fmt.Errorf("a row without %s, %s or %s", colOp, colLSN, colSeq)}
	}
	pos := position{lsn, seq}
	if err := r.readValues(pos); err != nil {
		return err
	}
	t := r.run
	if pos.lsn > t.at {
		return nil
	}
	switch op {
	case "T":
		t.cutAt(pos)
	case "R":
		cut, ok := numberOf(r.meta[4])
		if !ok {
			return badFile{fmt.Errorf("an R row without %s", colReload)}
		}
		t.done[cut] = true
		t.cutAt(position{cut, math.MaxUint64})
	case "I", "U", "D", "L":
		return r.spill(op[0], s)
	default:
		return badFile{fmt.Errorf("a row with %s %q", colOp, op)}
	}
	return nil
}

// readValues reads the row's compared columns into r.ch.values. A value
// the row sends for a column at a position before the column's
// (added_lsn, added_seq) becomes the column's missing value here (merge
// rule step 4), so a value carried forward (step 3) is already the right
// one.
func (r *rowGroup) readValues(pos position) error {
	c := &r.ch
	*c = change{pos: pos, load: r.load, unchanged: c.unchanged[:0], values: c.values[:0]}
	c.unchanged = unchangedOf(r.meta[3], r.run.spec.cols, c.unchanged)
	var err error
	for j, col := range r.run.spec.cols {
		r.val = r.val[:0]
		if r.values[j] == nil {
			r.val = appendNull(r.val) // a file older than the column
		} else if r.val, err = r.values[j].next(r.val); err != nil {
			return badFile{fmt.Errorf("column %s: %w", col.name, err)}
		}
		if col.isAdded && pos.less(col.added) && !contains(c.unchanged, j) {
			c.values = append(c.values, col.missing...)
		} else {
			c.values = append(c.values, r.val...)
		}
	}
	return nil
}

// spill writes the row read last as a change.
func (r *rowGroup) spill(op byte, s *spill) error {
	c := &r.ch
	c.op = op
	if op == 'L' {
		var ok bool
		if c.reload, ok = numberOf(r.meta[4]); !ok {
			return badFile{fmt.Errorf("an L row without %s", colReload)}
		}
	}
	var err error
	if c.key, err = r.run.keyOf(c.values); err != nil {
		return err
	}
	c.keyHash = keyHash(c.key)
	r.rec = c.encode(r.rec[:0])
	return s.add(r.rec)
}

// keyOf returns the encoded key of encoded values: the key columns' values,
// or all of them for a table without a key.
func (t *tableRun) keyOf(values []byte) ([]byte, error) {
	if !t.spec.keyed() {
		return values, nil
	}
	vals, err := splitValues(values, len(t.spec.cols))
	if err != nil {
		return nil, err
	}
	var key []byte
	for _, j := range t.spec.key {
		key = append(key, vals[j]...)
	}
	return key, nil
}

// cutAt moves the cut to p when p is later.
func (t *tableRun) cutAt(p position) {
	if !t.hasCut || t.cut.less(p) {
		t.cut, t.hasCut = p, true
	}
}

// contains reports whether list holds j.
func contains(list []int, j int) bool {
	for _, x := range list {
		if x == j {
			return true
		}
	}
	return false
}

// unchangedOf appends to out the indexes of the compared columns that a
// canonical _cdc_unchanged value (a list of names) lists.
func unchangedOf(v []byte, cols []specColumn, out []int) []int {
	tag, p, _, err := nextValue(v)
	if err != nil || tag != tagList {
		return out
	}
	for len(p) > 0 {
		_, _, rest, err := nextValue(p)
		if err != nil {
			return out
		}
		if name, ok := textOf(p[:len(p)-len(rest)]); ok {
			for j, c := range cols {
				if c.name == name {
					out = append(out, j)
				}
			}
		}
		p = rest
	}
	return out
}
