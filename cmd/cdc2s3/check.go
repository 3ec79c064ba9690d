package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cdc2s3/cdc2s3/internal/preflight"
	"github.com/cdc2s3/cdc2s3/pipeline"
)

// checkCommand returns the "check" subcommand: pre-flight checks of the
// source and the destination that report every problem at once, each with
// its fix. It changes nothing on the server; on the destination it writes
// one object under _cdc2s3/ and deletes it again.
func checkCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "check the source and the destination before a first run: every problem at once, each with its fix",
		Flags: []cli.Flag{
			sourceFlag(),
			&cli.StringFlag{Name: "dest", Usage: "destination: s3://bucket/prefix, file:///abs/path or a local path", EnvVars: env("DEST")},
			&cli.BoolFlag{Name: "s3-path-style", Usage: "use path-style S3 addressing (implied by a custom endpoint)", EnvVars: env("S3_PATH_STYLE")},
			&cli.StringFlag{Name: "publication", Value: pipeline.DefaultPublication, Usage: "publication run would use or create", EnvVars: env("PUBLICATION")},
			&cli.StringFlag{Name: "slot", Value: pipeline.DefaultSlot, Usage: "replication slot run would use or create", EnvVars: env("SLOT")},
			&cli.StringFlag{Name: "tables", Usage: "comma-separated schema.table list for a publication run would create (default: all tables)", EnvVars: env("TABLES")},
			&cli.BoolFlag{Name: "arrays-as-text", Usage: "array columns would be written as text", EnvVars: env("ARRAYS_AS_TEXT")},
			&cli.BoolFlag{Name: "json", Usage: "print the results as JSON"},
		},
		Action: func(c *cli.Context) error {
			o := preflight.Options{
				Source:       c.String("source"),
				Dest:         c.String("dest"),
				PathStyle:    c.Bool("s3-path-style"),
				Publication:  c.String("publication"),
				Slot:         c.String("slot"),
				Tables:       splitList(c.String("tables")),
				ArraysAsText: c.Bool("arrays-as-text"),
			}
			if o.Source == "" && o.Dest == "" {
				return cli.Exit("nothing to check: set --source (or CDC2S3_SOURCE) and --dest (or CDC2S3_DEST)", 2)
			}
			rs := preflight.Run(c.Context, o)
			if o.Source == "" {
				rs = append([]preflight.Result{{Name: preflight.NameConnect, Status: preflight.Info, Detail: "source not checked: no --source"}}, rs...)
			}
			if o.Dest == "" {
				rs = append(rs, preflight.Result{Name: preflight.NameDest, Status: preflight.Info, Detail: "destination not checked: no --dest"})
			}
			fails, warns := preflight.Failed(rs)
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				err := enc.Encode(struct {
					OK       bool               `json:"ok"`
					Failed   int                `json:"failed"`
					Warnings int                `json:"warnings"`
					Results  []preflight.Result `json:"results"`
				}{fails == 0, fails, warns, rs})
				if err != nil {
					return err
				}
			} else {
				printResults(c.App.Writer, rs, fails, warns)
			}
			if fails > 0 {
				return cli.Exit(fmt.Sprintf("%d check(s) failed: fix them before cdc2s3 run", fails), 1)
			}
			return nil
		},
	}
}

// statusLabel is how the table shows a status: problems in capitals.
var statusLabel = map[preflight.Status]string{
	preflight.OK: "ok", preflight.Info: "info", preflight.Warn: "WARN", preflight.Fail: "FAIL",
}

// printResults prints one line per check and, below a check that is not
// OK, its fix; then a summary line.
func printResults(out io.Writer, rs []preflight.Result, fails, warns int) {
	width := len("CHECK")
	for _, r := range rs {
		width = max(width, len(r.Name))
	}
	indent := strings.Repeat(" ", 6+width+2)
	fmt.Fprintf(out, "%-4s  %-*s  %s\n", "", width, "CHECK", "DETAIL")
	for _, r := range rs {
		fmt.Fprintf(out, "%-4s  %-*s  %s\n", statusLabel[r.Status], width, r.Name, r.Detail)
		if r.Fix != "" {
			fmt.Fprintf(out, "%sfix: %s\n", indent, r.Fix)
		}
	}
	fmt.Fprintf(out, "\n%d check(s): %d failed, %d warning(s)\n", len(rs), fails, warns)
}
