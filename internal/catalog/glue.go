package catalog

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	"github.com/aws/aws-sdk-go-v2/service/glue/types"
	"github.com/aws/smithy-go"
)

// GlueAPI is the part of the Glue client SyncGlue calls: the actions the
// least-privilege policy of docs/analysts.md grants.
type GlueAPI interface {
	GetDatabase(ctx context.Context, in *glue.GetDatabaseInput, opts ...func(*glue.Options)) (*glue.GetDatabaseOutput, error)
	CreateDatabase(ctx context.Context, in *glue.CreateDatabaseInput, opts ...func(*glue.Options)) (*glue.CreateDatabaseOutput, error)
	GetTable(ctx context.Context, in *glue.GetTableInput, opts ...func(*glue.Options)) (*glue.GetTableOutput, error)
	CreateTable(ctx context.Context, in *glue.CreateTableInput, opts ...func(*glue.Options)) (*glue.CreateTableOutput, error)
	UpdateTable(ctx context.Context, in *glue.UpdateTableInput, opts ...func(*glue.Options)) (*glue.UpdateTableOutput, error)
}

// GlueSync counts what SyncGlue did.
type GlueSync struct {
	Created, Updated, Unchanged int
}

// SyncGlue makes database db of the Glue Data Catalog hold, for each table,
// its change table and its Athena view (GlueTables), creating the database
// and what is missing and updating what differs. base is the destination,
// s3://bucket/prefix.
func SyncGlue(ctx context.Context, api GlueAPI, db, base string, tables []Table) (GlueSync, error) {
	var n GlueSync
	if !strings.HasPrefix(base, "s3://") {
		return n, fmt.Errorf("the Glue Data Catalog needs an s3:// destination, not %s", base)
	}
	if _, err := api.GetDatabase(ctx, &glue.GetDatabaseInput{Name: aws.String(db)}); err != nil {
		if !isGlueError(err, "EntityNotFoundException") {
			return n, glueError("GetDatabase", db, err)
		}
		_, err := api.CreateDatabase(ctx, &glue.CreateDatabaseInput{DatabaseInput: &types.DatabaseInput{
			Name: aws.String(db), Description: aws.String("cdc2s3 tables: the change tables (<schema>_<table>_cdc) and current-state views of " + base),
		}})
		if err != nil && !isGlueError(err, "AlreadyExistsException") {
			return n, glueError("CreateDatabase", db, err)
		}
	}
	for _, t := range tables {
		change, view := GlueTables(db, base, t)
		ins := []types.TableInput{change, view}
		if t.Dated != nil {
			ins = append(ins, glueDated(base, t, change))
		}
		for _, in := range ins {
			did, err := putTable(ctx, api, db, in)
			if err != nil {
				return n, err
			}
			switch did {
			case "created":
				n.Created++
			case "updated":
				n.Updated++
			default:
				n.Unchanged++
			}
		}
	}
	return n, nil
}

// putTable creates or updates one table, and says which it did.
func putTable(ctx context.Context, api GlueAPI, db string, in types.TableInput) (string, error) {
	name := aws.ToString(in.Name)
	got, err := api.GetTable(ctx, &glue.GetTableInput{DatabaseName: aws.String(db), Name: in.Name})
	switch {
	case isGlueError(err, "EntityNotFoundException"):
		if _, err := api.CreateTable(ctx, &glue.CreateTableInput{DatabaseName: aws.String(db), TableInput: &in}); err != nil {
			return "", glueError("CreateTable", db+"."+name, err)
		}
		return "created", nil
	case err != nil:
		return "", glueError("GetTable", db+"."+name, err)
	case sameTable(got.Table, in):
		return "unchanged", nil
	}
	if _, err := api.UpdateTable(ctx, &glue.UpdateTableInput{DatabaseName: aws.String(db), TableInput: &in}); err != nil {
		return "", glueError("UpdateTable", db+"."+name, err)
	}
	return "updated", nil
}

// sameTable reports whether the catalog's table already has what in
// defines: its type, columns, location and view text.
func sameTable(t *types.Table, in types.TableInput) bool {
	if t == nil || t.StorageDescriptor == nil || aws.ToString(t.TableType) != aws.ToString(in.TableType) ||
		aws.ToString(t.ViewOriginalText) != aws.ToString(in.ViewOriginalText) {
		return false
	}
	sameColumns := func(a, b []types.Column) bool {
		return slices.EqualFunc(a, b, func(a, b types.Column) bool {
			return aws.ToString(a.Name) == aws.ToString(b.Name) && aws.ToString(a.Type) == aws.ToString(b.Type)
		})
	}
	for k, v := range in.Parameters {
		// The partition projection; other parameters may be Glue's or
		// Athena's own.
		if (strings.HasPrefix(k, "projection.") || k == "storage.location.template") && t.Parameters[k] != v {
			return false
		}
	}
	sd := in.StorageDescriptor
	return aws.ToString(t.StorageDescriptor.Location) == aws.ToString(sd.Location) &&
		sameColumns(t.StorageDescriptor.Columns, sd.Columns) && sameColumns(t.PartitionKeys, in.PartitionKeys)
}

// GlueTables returns t's change table (an external Parquet table over its
// folder under base) and its view as Athena stores one: a VIRTUAL_VIEW
// whose original text is the Presto view (Trino SQL and its columns,
// base64 JSON), so Athena queries it as if CREATE VIEW had made it.
func GlueTables(db, base string, t Table) (change, view types.TableInput) {
	owner := map[string]string{"cdc2s3_schema": t.Schema, "cdc2s3_table": t.Name}
	var cols, viewCols []types.Column
	for _, m := range metaColumns {
		cols = append(cols, types.Column{Name: aws.String(m[0]), Type: aws.String(m[1])})
	}
	type prestoColumn struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}
	var presto []prestoColumn
	for _, c := range t.Columns {
		name := strings.ToLower(c.Name)
		col := types.Column{Name: aws.String(name), Type: aws.String(hiveType(c.Type))}
		cols = append(cols, col)
		viewCols = append(viewCols, col)
		presto = append(presto, prestoColumn{Name: name, Type: trinoDialect.typ(c.Type)})
	}
	change = types.TableInput{
		Name:       aws.String(LakeName(t) + "_cdc"),
		TableType:  aws.String("EXTERNAL_TABLE"),
		Parameters: merged(owner, map[string]string{"classification": "parquet", "EXTERNAL": "TRUE"}),
		StorageDescriptor: &types.StorageDescriptor{
			Columns:      cols,
			Location:     aws.String(tableLocation(base, t)),
			InputFormat:  aws.String("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"),
			OutputFormat: aws.String("org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"),
			SerdeInfo: &types.SerDeInfo{
				SerializationLibrary: aws.String("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"),
				Parameters:           map[string]string{"serialization.format": "1"},
			},
		},
	}
	text, _ := json.Marshal(struct {
		OriginalSQL string         `json:"originalSql"`
		Catalog     string         `json:"catalog"`
		Schema      string         `json:"schema"`
		Columns     []prestoColumn `json:"columns"`
	}{AthenaView(db, t), "awsdatacatalog", db, presto})
	view = types.TableInput{
		Name:             aws.String(LakeName(t)),
		TableType:        aws.String("VIRTUAL_VIEW"),
		Parameters:       merged(owner, map[string]string{"presto_view": "true", "comment": "Presto View"}),
		ViewOriginalText: aws.String("/* Presto View: " + base64.StdEncoding.EncodeToString(text) + " */"),
		ViewExpandedText: aws.String("/* Presto View */"),
		StorageDescriptor: &types.StorageDescriptor{
			Columns:   viewCols,
			SerdeInfo: &types.SerDeInfo{},
		},
	}
	return change, view
}

func merged(a, b map[string]string) map[string]string {
	m := maps.Clone(a)
	maps.Copy(m, b)
	return m
}

// isGlueError reports an API error of the given code.
func isGlueError(err error, code string) bool {
	var api smithy.APIError
	return err != nil && errors.As(err, &api) && api.ErrorCode() == code
}

// glueError names what Glue refused and, for a denial, the permission to
// grant.
func glueError(action, what string, err error) error {
	if isGlueError(err, "AccessDeniedException") {
		return fmt.Errorf("Glue denied %s on %s: grant glue:%s on the catalog, the database and its tables (docs/analysts.md, \"Least privilege\"): %w", action, what, action, err)
	}
	return fmt.Errorf("Glue %s %s: %w", action, what, err)
}
