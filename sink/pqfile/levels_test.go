package pqfile

import (
	"testing"

	"github.com/parquet-go/parquet-go"
)

// TestLevel checks setLevels against parquet.Value.Level on values of every
// kind at every level the schemas use.
func TestLevel(t *testing.T) {
	if !valueLayoutOK {
		t.Fatal("parquet.Value's layout differs from valueLayout")
	}
	for _, v := range []parquet.Value{parquet.NullValue(), parquet.Int64Value(-1), parquet.ByteArrayValue([]byte("x")), parquet.FloatValue(1.5)} {
		for rep := range 2 {
			for def := range 4 {
				for _, col := range []int{0, 4, 5, 1604} {
					got, want := v, v.Level(rep, def, col)
					setLevels(&got, rep, def, col)
					if got.RepetitionLevel() != rep || got.DefinitionLevel() != def || got.Column() != col || !parquet.Equal(got, want) {
						t.Fatalf("setLevels(%v, %d, %d, %d) = %v, want %v", v, rep, def, col, got, want)
					}
				}
			}
		}
	}
}
