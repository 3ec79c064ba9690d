package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	"github.com/urfave/cli/v2"

	"github.com/cdc2s3/cdc2s3/internal/catalog"
	"github.com/cdc2s3/cdc2s3/sink"
)

var validDatabase = regexp.MustCompile(`^[a-z0-9_]{1,255}$`)

func catalogCommand() *cli.Command {
	return &cli.Command{
		Name:  "catalog",
		Usage: "print the SQL that makes every table folder of a destination a view of its current state (docs/analysts.md)",
		Description: "Reads the destination's schema histories (no source connection) and writes, per table, a view named\n" +
			"\"<schema>\".\"<table>\" with exactly the table's columns, its current state by the output contract's merge\n" +
			"rule. --format duckdb reads the folders in place (s3:// through DuckDB's httpfs settings, or local paths);\n" +
			"athena and spark declare each folder as an external table <schema>_<table>_cdc and the view <schema>_<table>.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dest", Usage: "destination: s3://bucket/prefix, file:///abs/path or a local path", EnvVars: env("DEST")},
			&cli.BoolFlag{Name: "s3-path-style", Usage: "use path-style S3 addressing (implied by a custom endpoint)", EnvVars: env("S3_PATH_STYLE")},
			&cli.StringFlag{Name: "format", Value: "duckdb", Usage: "SQL dialect: duckdb (views over the folders), athena (Trino SQL) or spark (Spark SQL 3.3, Glue 4.0): external change tables and views"},
			&cli.StringFlag{Name: "database", Value: "cdc2s3", Usage: "athena and spark: the database (Glue or Hive metastore) of the tables and views", EnvVars: env("CATALOG_DATABASE")},
			&cli.StringFlag{Name: "tables", Usage: "comma-separated schema.table list (default: every table folder)", EnvVars: env("TABLES")},
			&cli.StringFlag{Name: "glue-database", Usage: "instead of printing SQL, create or update in this Glue Data Catalog database each table's change table and its Athena view (an s3:// --dest; docs/analysts.md)", EnvVars: env("GLUE_DATABASE")},
			&cli.StringFlag{Name: "out", Usage: "write one file per table, <schema>.<table>.sql, into this directory instead of the script to stdout"},
		},
		Action: func(c *cli.Context) error {
			var generate func(base string, tables []catalog.Table) string
			db := c.String("database")
			switch c.String("format") {
			case "duckdb":
				generate = catalog.DuckDB
			case "athena":
				generate = func(base string, ts []catalog.Table) string { return catalog.Athena(db, base, ts) }
			case "spark":
				generate = func(base string, ts []catalog.Table) string { return catalog.Spark(db, base, ts) }
			default:
				return cli.Exit(fmt.Sprintf("invalid --format %q: use duckdb, athena or spark", c.String("format")), 2)
			}
			if !validDatabase.MatchString(db) {
				return cli.Exit(fmt.Sprintf("invalid --database %q: use lower-case letters, digits and underscores (Glue and Athena keep names in lower case)", db), 2)
			}
			store, err := openDest(c)
			if err != nil {
				return err
			}
			tables, err := catalog.Plan(c.Context, store, splitList(c.String("tables")))
			if err != nil {
				return err
			}
			if len(tables) == 0 {
				return cli.Exit(fmt.Sprintf("%s holds no table folder (no schema history): is it a cdc2s3 destination, and has a full load run?", store), 1)
			}
			if g := c.String("glue-database"); g != "" {
				if err := checkGlueDatabase(g, store); err != nil {
					return err
				}
				api, err := glueClient(c)
				if err != nil {
					return err
				}
				n, err := catalog.SyncGlue(c.Context, api, g, store.String(), tables)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "Glue database %s: %d tables and views created, %d updated, %d unchanged\n", g, n.Created, n.Updated, n.Unchanged)
				return nil
			}
			out := c.String("out")
			if out == "" {
				_, err := fmt.Fprint(c.App.Writer, generate(store.String(), tables))
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			for _, t := range tables {
				name := filepath.Join(out, t.Schema+"."+t.Name+".sql")
				if err := os.WriteFile(name, []byte(generate(store.String(), []catalog.Table{t})), 0o644); err != nil {
					return err
				}
			}
			fmt.Fprintf(c.App.ErrWriter, "wrote %d files to %s\n", len(tables), out)
			return nil
		},
	}
}

// checkGlueDatabase refuses a Glue database name Glue would change, or a
// destination Glue cannot point at.
func checkGlueDatabase(db string, store sink.Store) error {
	if !validDatabase.MatchString(db) {
		return cli.Exit(fmt.Sprintf("invalid --glue-database %q: use lower-case letters, digits and underscores (Glue keeps names in lower case)", db), 2)
	}
	if !strings.HasPrefix(store.String(), "s3://") {
		return cli.Exit(fmt.Sprintf("--glue-database needs an s3:// --dest: Glue tables point at S3, not at %s", store), 2)
	}
	return nil
}

// glueClient is a Glue client from the usual AWS configuration chain
// (AWS_ENDPOINT_URL_GLUE points it elsewhere).
func glueClient(c *cli.Context) (*glue.Client, error) {
	cfg, err := config.LoadDefaultConfig(c.Context)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration for Glue: %w", err)
	}
	return glue.NewFromConfig(cfg), nil
}

// glueKeeper is run --glue-database's keeper of the Glue database.
func glueKeeper(c *cli.Context, db string, store sink.Store, log *slog.Logger) (*catalog.GlueKeeper, error) {
	if err := checkGlueDatabase(db, store); err != nil {
		return nil, err
	}
	api, err := glueClient(c)
	if err != nil {
		return nil, err
	}
	return catalog.NewGlueKeeper(api, db, store, log), nil
}
