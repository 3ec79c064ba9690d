package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdc2s3/cdc2s3/internal/oracle"
)

// fakeGlue is a Glue endpoint (JSON 1.1 over HTTP) that keeps databases and
// tables in memory and records every call, for AWS_ENDPOINT_URL_GLUE.
type fakeGlue struct {
	mu     sync.Mutex
	dbs    map[string]bool
	tables map[string]map[string]any // "db.name" → the TableInput received
	calls  []string                  // "Action db.name"
}

func newFakeGlue(t *testing.T) (*fakeGlue, string) {
	g := &fakeGlue{dbs: map[string]bool{}, tables: map[string]map[string]any{}}
	srv := httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(srv.Close)
	return g, srv.URL
}

func (g *fakeGlue) serve(w http.ResponseWriter, r *http.Request) {
	action := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AWSGlue.")
	body, _ := io.ReadAll(r.Body)
	var in map[string]any
	json.Unmarshal(body, &in)
	g.mu.Lock()
	defer g.mu.Unlock()
	fail := func(code string) {
		w.Header().Set("X-Amzn-ErrorType", code)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"__type": code, "Message": action + ": " + code})
	}
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		json.NewEncoder(w).Encode(v)
	}
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	switch action {
	case "GetDatabase":
		g.calls = append(g.calls, action+" "+str(in, "Name"))
		if !g.dbs[str(in, "Name")] {
			fail("EntityNotFoundException")
			return
		}
		reply(map[string]any{"Database": map[string]any{"Name": str(in, "Name")}})
	case "CreateDatabase":
		db, _ := in["DatabaseInput"].(map[string]any)
		g.calls = append(g.calls, action+" "+str(db, "Name"))
		g.dbs[str(db, "Name")] = true
		reply(map[string]any{})
	case "GetTable":
		key := str(in, "DatabaseName") + "." + str(in, "Name")
		g.calls = append(g.calls, action+" "+key)
		tab, ok := g.tables[key]
		if !ok {
			fail("EntityNotFoundException")
			return
		}
		reply(map[string]any{"Table": tab})
	case "CreateTable", "UpdateTable":
		ti, _ := in["TableInput"].(map[string]any)
		key := str(in, "DatabaseName") + "." + str(ti, "Name")
		g.calls = append(g.calls, action+" "+key)
		if !g.dbs[str(in, "DatabaseName")] {
			fail("EntityNotFoundException")
			return
		}
		g.tables[key] = ti
		reply(map[string]any{})
	default:
		fail("InvalidInputException")
	}
}

// takeCalls returns and forgets the calls of other actions than Get*.
func (g *fakeGlue) takeCalls() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, c := range g.calls {
		if !strings.HasPrefix(c, "Get") {
			out = append(out, c)
		}
	}
	g.calls = nil
	return out
}

// columns returns a stored table's columns as "name type".
func (g *fakeGlue) columns(key string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	sd, _ := g.tables[key]["StorageDescriptor"].(map[string]any)
	cols, _ := sd["Columns"].([]any)
	var out []string
	for _, c := range cols {
		m := c.(map[string]any)
		out = append(out, m["Name"].(string)+" "+m["Type"].(string))
	}
	return out
}

// TestGlueCatalog writes a destination's tables and views into a Glue
// endpoint that records the calls: created the first time (the database
// too), updated after a column is added, left alone when nothing changed.
// The views are stored as Athena stores its own: a VIRTUAL_VIEW whose
// original text is the base64 JSON of the Trino SQL, which parses, and its
// columns.
func TestGlueCatalog(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, `
		CREATE TABLE g (id int PRIMARY KEY, v text);
		INSERT INTO g SELECT i, 'v' || i FROM generate_series(1, 10) i;`); err != nil {
		t.Fatal(err)
	}
	if err := s3srv.CreateBucket(ctx, "e2e-glue"); err != nil {
		t.Fatal(err)
	}
	dest := "s3://e2e-glue/lake"
	args := []string{"run", "--source", dsn, "--dest", dest, "--slot", "glue", "--flush-interval", "300ms", "--status-interval", "300ms"}
	stream := func(sql string) {
		t.Helper()
		d := start(t, args...)
		waitLog(t, d, regexp.MustCompile(`msg=streaming`), 1, 2*time.Minute)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
		waitConfirmed(t, conn, "glue", currentLSN(t, conn), d, time.Minute)
		d.stop(t)
	}
	stream("UPDATE g SET v = 'changed' WHERE id = 1")
	glue, url := newFakeGlue(t)
	env := []string{"AWS_ENDPOINT_URL_GLUE=" + url}
	sync := func(want string) {
		t.Helper()
		stdout, stderr, code := runOpsEnv(t, binary, nil, env, "catalog", "--dest", dest, "--glue-database", "lake")
		if code != 0 || !strings.Contains(stdout, want) {
			t.Fatalf("cdc2s3 catalog --glue-database: exit %d, want %q\n%s%s", code, want, stdout, stderr)
		}
	}

	sync("2 tables and views created, 0 updated, 0 unchanged")
	if got, want := glue.takeCalls(), []string{"CreateDatabase lake", "CreateTable lake.public_g_cdc", "CreateTable lake.public_g"}; !slices.Equal(got, want) {
		t.Errorf("first sync: calls %v, want %v", got, want)
	}
	meta := []string{"op string", "_cdc_commit_ts timestamp", "_cdc_lsn bigint", "_cdc_seq bigint", "_cdc_unchanged array<string>", "_cdc_reload bigint"}
	if got, want := glue.columns("lake.public_g_cdc"), append(slices.Clone(meta), "id int", "v string"); !slices.Equal(got, want) {
		t.Errorf("change table columns %v, want %v", got, want)
	}
	glue.mu.Lock()
	change, view := glue.tables["lake.public_g_cdc"], glue.tables["lake.public_g"]
	glue.mu.Unlock()
	sd := change["StorageDescriptor"].(map[string]any)
	serde := sd["SerdeInfo"].(map[string]any)
	if change["TableType"] != "EXTERNAL_TABLE" || sd["Location"] != dest+"/public/g/" ||
		serde["SerializationLibrary"] != "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe" {
		t.Errorf("change table: type %v, location %v, serde %v", change["TableType"], sd["Location"], serde["SerializationLibrary"])
	}
	if view["TableType"] != "VIRTUAL_VIEW" || view["ViewExpandedText"] != "/* Presto View */" ||
		view["Parameters"].(map[string]any)["presto_view"] != "true" {
		t.Errorf("view: type %v, expanded text %v, parameters %v", view["TableType"], view["ViewExpandedText"], view["Parameters"])
	}
	m := regexp.MustCompile(`^/\* Presto View: ([A-Za-z0-9+/=]+) \*/$`).FindStringSubmatch(view["ViewOriginalText"].(string))
	if m == nil {
		t.Fatalf("view original text %q is not a Presto view", view["ViewOriginalText"])
	}
	raw, err := base64.StdEncoding.DecodeString(m[1])
	if err != nil {
		t.Fatal(err)
	}
	var presto struct {
		OriginalSQL string `json:"originalSql"`
		Catalog     string `json:"catalog"`
		Schema      string `json:"schema"`
		Columns     []struct{ Name, Type string }
	}
	if err := json.Unmarshal(raw, &presto); err != nil {
		t.Fatal(err)
	}
	if presto.Catalog != "awsdatacatalog" || presto.Schema != "lake" || len(presto.Columns) != 2 ||
		presto.Columns[0] != (struct{ Name, Type string }{"id", "integer"}) || presto.Columns[1] != (struct{ Name, Type string }{"v", "varchar"}) {
		t.Errorf("presto view: catalog %q, schema %q, columns %+v", presto.Catalog, presto.Schema, presto.Columns)
	}
	cols, err := oracle.ParseColumns(ctx, []oracle.Query{{Dialect: "athena", SQL: presto.OriginalSQL}})
	if err != nil || !slices.Equal(cols[0], []string{"id", "v"}) {
		t.Errorf("the view's SQL: columns %v, %v\n%s", cols, err, presto.OriginalSQL)
	}

	// A column added: both objects are updated, the view's columns too.
	stream("ALTER TABLE g ADD COLUMN w integer DEFAULT 5; UPDATE g SET w = 6 WHERE id = 2")
	sync("0 tables and views created, 2 updated, 0 unchanged")
	if got, want := glue.takeCalls(), []string{"UpdateTable lake.public_g_cdc", "UpdateTable lake.public_g"}; !slices.Equal(got, want) {
		t.Errorf("after ADD COLUMN: calls %v, want %v", got, want)
	}
	if got, want := glue.columns("lake.public_g"), []string{"id int", "v string", "w int"}; !slices.Equal(got, want) {
		t.Errorf("view columns after ADD COLUMN %v, want %v", got, want)
	}
	// Nothing changed: nothing written.
	sync("0 tables and views created, 0 updated, 2 unchanged")
	if got := glue.takeCalls(); len(got) != 0 {
		t.Errorf("a sync with nothing changed called %v", got)
	}
}

// TestGlueKeptByRun runs the daemon with --glue-database: the tables of the
// full load are registered once it is done, and a column added while it
// streams reaches the change table and the view.
func TestGlueKeptByRun(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if _, err := conn.Exec(ctx, `
		CREATE TABLE g (id int PRIMARY KEY, v text);
		CREATE TABLE h (v text);
		INSERT INTO g SELECT i, 'v' || i FROM generate_series(1, 10) i;`); err != nil {
		t.Fatal(err)
	}
	if err := s3srv.CreateBucket(ctx, "e2e-gluerun"); err != nil {
		t.Fatal(err)
	}
	glue, url := newFakeGlue(t)
	d := startEnv(t, []string{"AWS_ENDPOINT_URL_GLUE=" + url}, "run", "--source", dsn, "--dest", "s3://e2e-gluerun/lake",
		"--slot", "gluerun", "--flush-interval", "300ms", "--status-interval", "300ms", "--glue-database", "lake")
	// The tables may be registered in one sync or two (the first at the
	// start may see the histories of the full load only in part): wait
	// for all four, then for the new column.
	waitGlue := func(what string, done func() bool) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for !done() {
			if time.Now().After(deadline) {
				t.Fatalf("%s did not reach Glue within a minute\n%s", what, tail(d.out.String(), 20))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	names := []string{"lake.public_g_cdc", "lake.public_g", "lake.public_h_cdc", "lake.public_h"}
	waitGlue("the full load's tables", func() bool {
		glue.mu.Lock()
		defer glue.mu.Unlock()
		return len(glue.tables) == len(names)
	})
	created := glue.takeCalls()
	if !slices.Contains(created, "CreateDatabase lake") {
		t.Errorf("the database was not created: %v", created)
	}
	for _, n := range names {
		if !slices.Contains(created, "CreateTable "+n) {
			t.Errorf("%s was not created: %v", n, created)
		}
	}
	waitLog(t, d, regexp.MustCompile(`msg=streaming`), 1, time.Minute)
	if _, err := conn.Exec(ctx, "ALTER TABLE g ADD COLUMN w integer; UPDATE g SET w = 1 WHERE id = 3"); err != nil {
		t.Fatal(err)
	}
	want := []string{"id int", "v string", "w int"}
	waitGlue("the added column", func() bool { return slices.Equal(glue.columns("lake.public_g"), want) })
	waitGlue("the added column in the change table", func() bool { return slices.Contains(glue.columns("lake.public_g_cdc"), "w int") })
	d.stop(t)
	for _, c := range glue.takeCalls() {
		if strings.HasPrefix(c, "Create") || (strings.HasPrefix(c, "Update") && !strings.HasSuffix(c, "public_g") && !strings.HasSuffix(c, "public_g_cdc")) {
			t.Errorf("after ADD COLUMN of g: %s", c)
		}
	}
	if !strings.Contains(d.out.String(), `msg="Glue Data Catalog updated"`) {
		t.Error("the daemon did not log its Glue updates")
	}
}
