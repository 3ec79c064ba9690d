package catalog

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/pqfile"
)

// TestFirstFolder checks that the projection starts at the earliest date
// folder by date, not by name (DDMMYYYY sorts otherwise), and skips LOAD
// files and folders of another layout.
func TestFirstFolder(t *testing.T) {
	dp, err := sink.ParseDatePartition("DDMMYYYY", "DASH", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{
		"s/t/LOAD00000001.parquet",
		"s/t/01-12-2026/CDC-a-b.parquet",
		"s/t/15-11-2026/CDC-a-b.parquet",
		"s/t/2025/01/01/CDC-a-b.parquet", // written under another setting
		"s/t/02-01-2027/CDC-a-b.parquet",
	}
	if got := firstFolder(dp, "s/t/", keys); got != "15-11-2026" {
		t.Errorf("first folder %q, want 15-11-2026", got)
	}
	if got := firstFolder(dp, "s/t/", keys[:1]); got != "" {
		t.Errorf("first folder of LOAD files only %q, want none", got)
	}
}

// TestDatedTable checks the by-date change table in Athena's DDL and in
// Glue: partitioned by cdc_date, projected over the folders' format from
// the first folder, its template the table folder.
func TestDatedTable(t *testing.T) {
	dp, _ := sink.ParseDatePartition("YYYYMMDDHH", "SLASH", "UTC")
	tbl := Table{Schema: "public", Name: "t", Dir: "public/t/", Dated: dp, DatedFrom: "2026/12/01/07",
		Columns: []Column{{Name: "id", Type: pqfile.Type{Kind: pqfile.Int32}}}, Key: []string{"id"}}
	script := Athena("lake", "s3://b/p", []Table{tbl})
	for _, want := range []string{
		"CREATE EXTERNAL TABLE `lake`.`public_t_cdc_by_date` (",
		"  `id` int\n)\nPARTITIONED BY (`cdc_date` string)\nSTORED AS PARQUET\nLOCATION 's3://b/p/public/t/'",
		"'projection.cdc_date.format' = 'yyyy/MM/dd/HH'",
		"'projection.cdc_date.range' = '2026/12/01/07,NOW'",
		"'projection.cdc_date.interval.unit' = 'HOURS'",
		"'storage.location.template' = 's3://b/p/public/t/${cdc_date}/'",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("the Athena script lacks %q:\n%s", want, script)
		}
	}
	if strings.Contains(Athena("lake", "s3://b/p", []Table{{Schema: "public", Name: "t", Dir: "public/t/", Columns: tbl.Columns}}), "by_date") {
		t.Error("a by-date table without date folders")
	}
	change, _ := GlueTables("lake", "s3://b/p", tbl)
	g := glueDated("s3://b/p", tbl, change)
	if aws.ToString(g.Name) != "public_t_cdc_by_date" || len(g.PartitionKeys) != 1 || aws.ToString(g.PartitionKeys[0].Name) != DatedColumn ||
		g.Parameters["projection.enabled"] != "true" || g.Parameters["storage.location.template"] != "s3://b/p/public/t/${cdc_date}/" ||
		g.Parameters["classification"] != "parquet" {
		t.Errorf("Glue by-date table: %+v", g)
	}
	// A zone ahead of UTC lets the projection reach past Athena's (UTC) now.
	seoul, _ := sink.ParseDatePartition("YYYYMMDD", "SLASH", "Asia/Seoul")
	tbl.Dated, tbl.DatedFrom = seoul, "2026/12/01"
	if got := projection("s3://b/p", tbl)["projection.cdc_date.range"]; got != "2026/12/01,NOW+1DAYS" {
		t.Errorf("range in Seoul %q", got)
	}
}
