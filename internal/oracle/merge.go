package oracle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/cdc2s3/cdc2s3/internal/testenv"
)

// stampName marks a complete install: it holds the SHA-256 of the
// package-lock.json that npm ci installed, so an interrupted or outdated
// node_modules is installed again.
const stampName = ".cdc2s3-oracle-installed"

// jsDir returns the directory of the Node.js part (js/ next to this source
// file), so that tests of any package find it.
func jsDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "js"
	}
	return filepath.Join(filepath.Dir(file), "js")
}

// Ensure installs the Node.js dependencies (DuckDB) with npm ci unless the
// locked versions are installed already. Test packages running in parallel
// share one install through a lock file.
func Ensure(ctx context.Context) error {
	dir := jsDir()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("oracle: %s not found in PATH; install Node.js 20 or later with npm (the oracle runs DuckDB from npm)", tool)
		}
	}
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return fmt.Errorf("oracle: %w", err)
	}
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(dir, "node_modules", stampName)
	installed := func() bool {
		b, err := os.ReadFile(stamp)
		return err == nil && strings.TrimSpace(string(b)) == want
	}
	if installed() {
		return nil
	}

	unlock, err := testenv.LockFile(ctx, filepath.Join(dir, ".install.lock"))
	if err != nil {
		return fmt.Errorf("oracle: lock npm install: %w", err)
	}
	defer unlock()
	if installed() { // another test package installed it meanwhile
		return nil
	}
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("oracle: npm ci in %s: %w\n%s", dir, err, out)
	}
	if err := os.WriteFile(stamp, []byte(want+"\n"), 0o644); err != nil {
		return fmt.Errorf("oracle: %w", err)
	}
	return nil
}

// mergeRequest is js/merge.mjs's input.
type mergeRequest struct {
	Dir     string         `json:"dir"`
	Key     []string       `json:"key"`
	Columns []mergeColumn  `json:"columns"`
	History []mergeHistory `json:"history"`
}

type mergeColumn struct {
	Name  string `json:"name"`
	Kind  Kind   `json:"kind"`
	Array bool   `json:"array"`
}

type mergeHistory struct {
	Name     string `json:"name"`
	AddedLSN string `json:"added_lsn"` // decimal: a uint64 does not fit a JS number
	AddedSeq string `json:"added_seq"`
	Missing  string `json:"missing"` // canonical text
}

// mergeResponse is js/merge.mjs's output.
type mergeResponse struct {
	Files int        `json:"files"`
	Rows  [][]string `json:"rows"`
}

// State computes the current state of table t from dir, the table's folder
// (<dest>/<schema>/<table>), by the merge rule of the output contract,
// section 4. The values are canonical text in the order of t.Columns. A
// folder without Parquet files is an empty table.
func State(ctx context.Context, dir string, t Table) ([]Row, error) {
	if err := Ensure(ctx); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("oracle: %w", err)
	}
	req := mergeRequest{Dir: abs, Key: t.Key, Columns: []mergeColumn{}, History: []mergeHistory{}}
	if req.Key == nil {
		req.Key = []string{}
	}
	for _, c := range t.Columns {
		req.Columns = append(req.Columns, mergeColumn{Name: c.Name, Kind: c.Kind, Array: c.Array})
	}
	for _, h := range t.History {
		c, ok := t.column(h.Name)
		if !ok {
			continue // dropped since: not a current column
		}
		missing, err := canonValue(c, h.Missing)
		if err != nil {
			return nil, fmt.Errorf("oracle: missing value of %s: %w", h.Name, err)
		}
		req.History = append(req.History, mergeHistory{
			Name:     h.Name,
			AddedLSN: strconv.FormatUint(uint64(h.AddedLSN), 10),
			AddedSeq: strconv.FormatUint(h.AddedSeq, 10),
			Missing:  missing,
		})
	}
	var resp mergeResponse
	if err := runNode(ctx, "merge.mjs", req, &resp); err != nil {
		return nil, fmt.Errorf("oracle: merge %s: %w", abs, err)
	}
	rows := make([]Row, len(resp.Rows))
	for i, r := range resp.Rows {
		rows[i] = Row(r)
	}
	return rows, nil
}

// runNode runs one of the oracle's scripts with req on stdin and decodes
// its output into resp.
func runNode(ctx context.Context, script string, req, resp any) error {
	in, err := json.Marshal(req)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Dir = jsDir()
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(stdout.Bytes(), resp); err != nil {
		return fmt.Errorf("bad output: %w", err)
	}
	return nil
}

// ViewState runs script (cdc2s3 catalog --format duckdb) in a new DuckDB
// database and returns the rows of the view of t ("schema"."table"), as
// canonical text in the order of t.Columns, and the view's column names.
// It checks the generated SQL against the source, as State checks the
// folder.
func ViewState(ctx context.Context, script string, t Table) (names []string, rows []Row, err error) {
	if err := Ensure(ctx); err != nil {
		return nil, nil, err
	}
	req := struct {
		Script  string        `json:"script"`
		View    string        `json:"view"`
		Columns []mergeColumn `json:"columns"`
	}{Script: script, View: quoteIdent(t.Schema) + "." + quoteIdent(t.Name), Columns: []mergeColumn{}}
	for _, c := range t.Columns {
		req.Columns = append(req.Columns, mergeColumn{Name: c.Name, Kind: c.Kind, Array: c.Array})
	}
	var resp struct {
		Names []string   `json:"names"`
		Rows  [][]string `json:"rows"`
	}
	if err := runNode(ctx, "merge.mjs", req, &resp); err != nil {
		return nil, nil, fmt.Errorf("oracle: view %s.%s: %w", t.Schema, t.Name, err)
	}
	for _, r := range resp.Rows {
		rows = append(rows, Row(r))
	}
	return resp.Names, rows, nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// Query is one SELECT for ParseColumns, in a dialect of node-sql-parser
// ("athena" for Trino SQL, "hive" for Spark SQL).
type Query struct {
	Dialect string `json:"dialect"`
	SQL     string `json:"sql"`
}

// ParseColumns parses each query with node-sql-parser and returns the
// names of its columns: a check by a parser that is not ours of SQL this
// machine cannot run (Athena's, Spark's).
func ParseColumns(ctx context.Context, queries []Query) ([][]string, error) {
	if err := Ensure(ctx); err != nil {
		return nil, err
	}
	var resp struct {
		Columns [][]string `json:"columns"`
	}
	if err := runNode(ctx, "parse.mjs", struct {
		Queries []Query `json:"queries"`
	}{queries}, &resp); err != nil {
		return nil, fmt.Errorf("oracle: parse: %w", err)
	}
	return resp.Columns, nil
}
