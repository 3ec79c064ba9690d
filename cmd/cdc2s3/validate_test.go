package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/cdc2s3/cdc2s3/internal/validate"
)

// TestValidateReport: the report lists every table with its counts and,
// under one that differs, the keys of each kind; it exits 1 when a table
// differs (also for a stray object only) and 0 otherwise, as text and as
// JSON.
func TestValidateReport(t *testing.T) {
	pos := positionReport{LSN: "0/16B3748", Checkpoint: "0/16B3800", Daemon: true, Exact: true}
	equal := validate.Result{Table: "public.a", SourceRows: 3, DestRows: 3}
	differs := validate.Result{Table: "public.b", SourceRows: 3, DestRows: 3, Missing: 1, Extra: 1, Mismatched: 1,
		MissingKeys: []string{"(id=1)"}, ExtraKeys: []string{"(id=9)"},
		Mismatches: []validate.Mismatch{{Key: "(id=2)", Columns: []validate.ColumnDiff{{Column: "v", Source: `"x"`, Dest: `"y"`}}}},
		Notes:      []string{"a note"}}
	stray := validate.Result{Table: "public.c", Files: []string{"x.txt: not a Parquet file"}}

	var out bytes.Buffer
	if err := report(&out, false, pos, []validate.Result{equal}, nil); err != nil {
		t.Errorf("every table equal: %v", err)
	}
	if !strings.Contains(out.String(), "public.a") || !strings.Contains(out.String(), "1 table: 1 equal, 0 differ") {
		t.Errorf("every table equal:\n%s", out.String())
	}

	for _, asJSON := range []bool{false, true} {
		out.Reset()
		err := report(&out, asJSON, pos, []validate.Result{equal, differs, stray}, []string{"public.old"})
		var exit cli.ExitCoder
		if !errors.As(err, &exit) || exit.ExitCode() != exitDiffers || !strings.Contains(err.Error(), "2 of 3") {
			t.Errorf("json %t: %v, want exit status 1 naming 2 of 3 tables", asJSON, err)
		}
		if asJSON {
			var rep validateReport
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.OK || len(rep.Tables) != 3 || rep.NotCompared[0] != "public.old" {
				t.Errorf("JSON report %+v (%v)\n%s", rep, err, out.String())
			}
			continue
		}
		for _, want := range []string{"public.b", "DIFFERS", "missing: (id=1)", "extra: (id=9)", `mismatched: (id=2): v source "x", destination "y"`,
			"note: a note", "file: x.txt: not a Parquet file", "not compared", "public.old", "3 tables: 1 equal, 2 differ", "a daemon streaming"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("the report lacks %q:\n%s", want, out.String())
			}
		}
	}
}
