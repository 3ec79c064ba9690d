package oracle

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// Duplicates checks guarantee 3 of the output contract for one table folder:
// it returns the (_cdc_lsn, _cdc_seq) pairs that appear more than once among
// the table's CDC rows (at most 20, as "lsn/seq×count"), and the number of
// CDC rows read. DuckDB reads the files.
func Duplicates(ctx context.Context, dir string) ([]string, int64, error) {
	if err := Ensure(ctx); err != nil {
		return nil, 0, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("oracle: %w", err)
	}
	cmd := exec.CommandContext(ctx, "node", "dups.mjs", abs)
	cmd.Dir = jsDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, 0, fmt.Errorf("oracle: duplicates %s: %w: %s", abs, err, strings.TrimSpace(stderr.String()))
	}
	var resp struct {
		CDCRows    int64      `json:"cdc_rows"`
		Duplicates [][]string `json:"duplicates"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil {
		return nil, 0, fmt.Errorf("oracle: duplicates %s: bad output: %w", abs, err)
	}
	var out []string
	for _, d := range resp.Duplicates {
		out = append(out, fmt.Sprintf("%s/%s×%s", d[0], d[1], d[2]))
	}
	return out, resp.CDCRows, nil
}
