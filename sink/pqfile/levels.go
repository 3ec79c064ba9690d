package pqfile

import (
	"unsafe"

	"github.com/parquet-go/parquet-go"
)

// setLevels sets the repetition level, definition level and column index
// of *v, as *v = v.Level(rep, def, col) does.
//
// parquet.Value.Level is not inlined (it panics on out-of-range levels),
// and the writer calls it for every value: about a sixth of the CPU time of
// writing a file. setLevels sets the fields directly, through a mirror of
// parquet.Value's layout that is checked when the program starts (see
// valueLayoutOK), and in place: the writer builds each value where it
// stays (batch.slot), since setting the fields on a copy on the stack and
// copying it on made the processor wait for the bytes just stored (store
// forwarding fails on such overlapping copies), a quarter of the CPU time
// of the writer's conversions. The levels here come from the schema,
// always in range.
func setLevels(v *parquet.Value, rep, def, col int) {
	l := (*valueLayout)(unsafe.Pointer(v))
	l.rep, l.def, l.col = byte(rep), byte(def), ^uint16(col)
}

// valueLayout mirrors parquet.Value in parquet-go v0.32: data pointer and
// word, kind, definition level, repetition level, and the column index
// stored complemented.
type valueLayout struct {
	ptr  *byte
	u64  uint64
	kind int8
	def  byte
	rep  byte
	col  uint16
}

// valueLayoutOK reports whether valueLayout matches parquet.Value: the same
// size, and level agrees with Level on sample values of every kind of
// storage (pointer, word, null). go.mod pins parquet-go; an upgrade that
// changes the layout stops every program using this package at start-up
// (and fails its tests) rather than writing wrong levels.
var valueLayoutOK = func() bool {
	if unsafe.Sizeof(parquet.Value{}) != unsafe.Sizeof(valueLayout{}) {
		return false
	}
	samples := []parquet.Value{
		parquet.NullValue(),
		parquet.Int32Value(-7),
		parquet.Int64Value(1 << 40),
		parquet.DoubleValue(2.5),
		parquet.BooleanValue(true),
		parquet.ByteArrayValue([]byte("abc")),
		parquet.FixedLenByteArrayValue([]byte{1, 2}),
	}
	for _, v := range samples {
		for _, lv := range [][3]int{{0, 0, 0}, {1, 3, 7}, {0, 1, 300}, {1, 2, 65534}} {
			want := v.Level(lv[0], lv[1], lv[2])
			l := v
			lp := (*valueLayout)(unsafe.Pointer(&l))
			lp.rep, lp.def, lp.col = byte(lv[0]), byte(lv[1]), ^uint16(lv[2])
			if l.RepetitionLevel() != want.RepetitionLevel() || l.DefinitionLevel() != want.DefinitionLevel() ||
				l.Column() != want.Column() || l.Kind() != want.Kind() || l.IsNull() != want.IsNull() ||
				!parquet.Equal(l, want) {
				return false
			}
		}
	}
	return true
}()

func init() {
	if !valueLayoutOK {
		panic("sink/pqfile: parquet.Value's layout is not the one levels.go mirrors; update valueLayout for this parquet-go version")
	}
}
