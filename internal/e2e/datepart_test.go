package e2e

import (
	"context"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDatePartition runs the workload with --date-partition (hourly
// folders in a zone half an hour off UTC, DMS's DASH delimiter), with a
// crash after an upload and before its checkpoint: every change file is in
// the folder of its rows' commit hour in that zone, LOAD files stay at the
// top, the restart skips what the dated folders already hold, and the
// folders merge (read recursively) to the source. The catalog's Athena
// script projects the folders.
func TestDatePartition(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if err := Setup(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if err := s3srv.CreateBucket(ctx, "e2e-dated"); err != nil {
		t.Fatal(err)
	}
	const zone = "Asia/Kolkata"
	args := []string{"run", "--source", dsn, "--dest", "s3://e2e-dated/lake", "--slot", "dated", "--flush-interval", "300ms", "--status-interval", "300ms",
		"--date-partition", "--date-partition-sequence", "YYYYMMDDHH", "--date-partition-delimiter", "DASH", "--date-partition-timezone", zone}
	d := start(t, args...)
	waitLog(t, d, regexp.MustCompile(`msg=streaming`), 1, 2*time.Minute)
	d.stop(t)
	// The second run dies right after its second upload, before the
	// checkpoint: the third replays what the dated folders already hold.
	d = startEnv(t, []string{"CDC2S3_FAULTPOINT=after-upload:2"}, args...)
	waitLog(t, d, regexp.MustCompile(`msg=streaming`), 1, 2*time.Minute)
	if err := Changes(ctx, conn); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
	case <-time.After(time.Minute):
		t.Fatalf("the fault point after the second upload was not reached\n%s", tail(d.out.String(), 20))
	}
	d = start(t, args...)
	waitConfirmed(t, conn, "dated", currentLSN(t, conn), d, 3*time.Minute)
	d.stop(t)

	out := t.TempDir()
	download(t, "e2e-dated", "lake/", out)
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	folder := regexp.MustCompile(`^\d{4}-\d{2}-\d{2}-\d{2}$`)
	dated := 0
	for _, st := range Tables {
		dir := filepath.Join(out, st[0], st[1])
		filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(dir, path)
			sub, name := filepath.Split(rel)
			sub = strings.TrimSuffix(sub, "/")
			switch {
			case strings.HasPrefix(name, "LOAD"):
				if sub != "" {
					t.Errorf("%s: a LOAD file in a date folder", rel)
				}
			case strings.HasPrefix(name, "CDC-"):
				if !folder.MatchString(sub) {
					t.Errorf("%s: a change file outside a YYYY-MM-DD-HH folder", rel)
					return nil
				}
				dated++
				for _, r := range fileRows(t, path) {
					if want := time.UnixMicro(r.ts).In(loc).Format("2006-01-02-15"); want != sub {
						t.Errorf("%s: a row committed at %s (%s) is in folder %s, want %s", rel, time.UnixMicro(r.ts).UTC(), zone, sub, want)
						break
					}
				}
			default:
				t.Errorf("%s: an unexpected file", rel)
			}
			return nil
		})
	}
	if dated == 0 {
		t.Fatal("no change file was written")
	}
	t.Logf("%d change files in date folders", dated)
	compareTables(t, conn, out, Tables)
	checkNoDuplicates(t, out, Tables)
	compareCatalog(t, conn, out, Tables)

	athena, stderr, code := runOps(t, "catalog", "--dest", out, "--format", "athena", "--database", "lake")
	if code != 0 {
		t.Fatalf("cdc2s3 catalog --format athena: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{
		"CREATE EXTERNAL TABLE `lake`.`public_alltypes_cdc_by_date`",
		"PARTITIONED BY (`cdc_date` string)",
		"'projection.cdc_date.format' = 'yyyy-MM-dd-HH'",
		"'projection.cdc_date.interval.unit' = 'HOURS'",
		"'storage.location.template' = '" + out + "/public/alltypes/${cdc_date}/'",
	} {
		if !strings.Contains(athena, want) {
			t.Errorf("the Athena script lacks %q", want)
		}
	}
	inspect, stderr, code := runOps(t, "inspect", "--dest", out)
	if code != 0 || strings.Contains(stderr, "warning") || !strings.Contains(inspect, "public.alltypes") {
		t.Errorf("cdc2s3 inspect: exit %d, output:\n%s%s", code, inspect, stderr)
	}
}
