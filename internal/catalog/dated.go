package catalog

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/glue/types"

	"github.com/cdc2s3/cdc2s3/sink"
)

// With run --date-partition, change files sit in date folders under their
// table folder (<table>/2026/12/03/CDC-….parquet). The change table reads
// the folder recursively, so the view and every query of it are unchanged;
// for queries of the changes of a few days, Athena also gets
// <schema>_<table>_cdc_by_date: the CDC files only, partitioned by their
// folder (cdc_date), with partition projection, so that no crawler and no
// MSCK REPAIR TABLE is needed and a WHERE on cdc_date reads only those
// folders.

// DatedColumn is the partition column of the by-date change table.
const DatedColumn = "cdc_date"

// datedName is the by-date change table's name.
func datedName(t Table) string { return LakeName(t) + "_cdc_by_date" }

// firstFolder returns the earliest date folder among a table folder's
// files (keys under dir), or "" when none is in a date folder.
func firstFolder(dp *sink.DatePartition, dir string, keys []string) string {
	var first time.Time
	var folder string
	for _, k := range keys {
		rest := strings.TrimPrefix(k, dir)
		i := strings.LastIndexByte(rest, '/')
		if i < 0 {
			continue
		}
		at, err := dp.Parse(rest[:i])
		if err != nil {
			continue // a folder of another layout (the setting changed)
		}
		if folder == "" || at.Before(first) {
			first, folder = at, rest[:i]
		}
	}
	return folder
}

// projection is the by-date table's partition projection: a date
// projection over the folders' format from the first folder to now
// (shifted by the zone's lead on UTC, since Athena's NOW is UTC), and the
// template that maps a value to its folder.
func projection(base string, t Table) map[string]string {
	dp := t.Dated
	from := t.DatedFrom
	if from == "" {
		from, _, _ = dp.Folder(time.Now().UnixMicro())
	}
	until := "NOW"
	if _, off := time.Now().In(dp.Location()).Zone(); off > 0 {
		lead := map[string]string{"HOURS": "+14HOURS", "DAYS": "+1DAYS", "MONTHS": "+1MONTHS"}
		until += lead[dp.Unit()]
	}
	p := "projection." + DatedColumn + "."
	return map[string]string{
		"projection.enabled":        "true",
		p + "type":                  "date",
		p + "format":                dp.JavaFormat(),
		p + "range":                 from + "," + until,
		p + "interval":              "1",
		p + "interval.unit":         dp.Unit(),
		"storage.location.template": tableLocation(base, t) + "${" + DatedColumn + "}/",
	}
}

// tableLocation is t's folder under base, with its trailing '/'.
func tableLocation(base string, t Table) string {
	return strings.TrimSuffix(base, "/") + "/" + t.Dir
}

// athenaDated is the DDL of t's by-date change table.
func athenaDated(db, base string, t Table) string {
	var b strings.Builder
	fmt.Fprintf(&b, "DROP TABLE IF EXISTS `%[1]s`.`%[2]s`;\nCREATE EXTERNAL TABLE `%[1]s`.`%[2]s` (\n", db, datedName(t))
	writeColumns(&b, t)
	fmt.Fprintf(&b, ")\nPARTITIONED BY (`%s` string)\nSTORED AS PARQUET\nLOCATION %s\nTBLPROPERTIES (\n", DatedColumn, sqlString(tableLocation(base, t)))
	props := projection(base, t)
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		sep := ","
		if i == len(keys)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "  %s = %s%s\n", sqlString(k), sqlString(props[k]), sep)
	}
	b.WriteString(")")
	return b.String()
}

// glueDated is t's by-date change table as a Glue table, from the change
// table's definition.
func glueDated(base string, t Table, change types.TableInput) types.TableInput {
	sd := *change.StorageDescriptor
	return types.TableInput{
		Name:              aws.String(datedName(t)),
		TableType:         change.TableType,
		Parameters:        merged(change.Parameters, projection(base, t)),
		PartitionKeys:     []types.Column{{Name: aws.String(DatedColumn), Type: aws.String("string")}},
		StorageDescriptor: &sd,
	}
}
