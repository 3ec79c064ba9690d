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
