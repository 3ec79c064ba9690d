package sink

import (
	"errors"
	"testing"
)

func TestValidKey(t *testing.T) {
	for _, k := range []string{"a", "a/b.parquet", "_cdc2s3/state.json", "s/t/.hidden", "a..b/c"} {
		if err := ValidKey(k); err != nil {
			t.Errorf("ValidKey(%q) = %v", k, err)
		}
	}
	for _, k := range []string{"", "/a", "a/", "a//b", ".", "..", "a/./b", "a/../b", "s/../t.parquet", "a\x00b"} {
		if err := ValidKey(k); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidKey(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
}

func TestCheckTableName(t *testing.T) {
	for _, n := range [][2]string{{"public", "t"}, {"public", "..."}, {"public", ".x"}, {"_cdc2s3x", "t"}, {"x", "_cdc2s3"}, {"a/b", "c%d"}} {
		if err := CheckTableName(n[0], n[1]); err != nil {
			t.Errorf("CheckTableName(%q, %q) = %v", n[0], n[1], err)
		}
	}
	for _, n := range [][2]string{{"public", "."}, {"public", ".."}, {".", "t"}, {"..", "t"}, {"_cdc2s3", "t"}, {"_cdc2s3", "lease"}} {
		if err := CheckTableName(n[0], n[1]); !errors.Is(err, ErrReservedName) {
			t.Errorf("CheckTableName(%q, %q) = %v, want ErrReservedName", n[0], n[1], err)
		}
	}
}
