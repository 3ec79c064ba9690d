package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

// runWithConfig runs a command with a few flags like run's through
// applyConfig and returns the values its action saw.
func runWithConfig(t *testing.T, yamlText string, args ...string) (map[string]string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cdc2s3.yaml")
	if err := os.WriteFile(path, []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	app := &cli.App{
		Name: "cdc2s3",
		Commands: []*cli.Command{{
			Name: "run",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "source", EnvVars: env("SOURCE")},
				&cli.StringFlag{Name: "slot", Value: "cdc2s3", EnvVars: env("SLOT")},
				&cli.DurationFlag{Name: "flush-interval", Value: time.Minute, EnvVars: env("FLUSH_INTERVAL")},
				&cli.BoolFlag{Name: "arrays-as-text", EnvVars: env("ARRAYS_AS_TEXT")},
				&cli.StringFlag{Name: "tables", EnvVars: env("TABLES")},
				configFlag(),
			},
			Before: applyConfig,
			Action: func(c *cli.Context) error {
				for _, n := range []string{"source", "slot", "flush-interval", "arrays-as-text", "tables"} {
					got[n] = fmt.Sprint(c.Value(n))
				}
				return nil
			},
		}},
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err := app.Run(append([]string{"cdc2s3", "run", "--config", path}, args...))
	return got, err
}

func TestConfigPrecedence(t *testing.T) {
	t.Setenv("CDC2S3_SLOT", "from_env")
	t.Setenv("DB_PASSWORD", "s3cret")
	got, err := runWithConfig(t, `
source: postgres://u:${DB_PASSWORD}@db/app
slot: from_file
flush-interval: 30s
arrays-as-text: true
tables: [public.a, public.b]
`, "--flush-interval", "5s")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"source":         "postgres://u:s3cret@db/app", // file, with ${VAR} expanded
		"slot":           "from_env",                   // env over file
		"flush-interval": "5s",                         // flag over file
		"arrays-as-text": "true",                       // file over default
		"tables":         "public.a,public.b",          // a list
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
}

func TestConfigDefaultsWithoutFile(t *testing.T) {
	got, err := runWithConfig(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if got["slot"] != "cdc2s3" || got["flush-interval"] != "1m0s" {
		t.Errorf("defaults changed by an empty file: %v", got)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"flush-intervall: 5s\n", `unknown key "flush-intervall"`},
		{"flush-interval: soon\n", `key "flush-interval": invalid value "soon"`},
		{"arrays-as-text: maybe\n", `key "arrays-as-text"`},
		{"slot: {a: 1}\n", `key "slot": a map`},
		{"source: ${NO_SUCH_VARIABLE_X}\n", "${NO_SUCH_VARIABLE_X} is not set"},
		{"source: [unclosed\n", "not valid YAML"},
	} {
		_, err := runWithConfig(t, tc.yaml)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want an error containing %q", tc.yaml, err, tc.want)
		}
	}
}

// TestConfigurationDoc checks that docs/configuration.md shows what
// cdc2s3 config defaults prints, so the page lists every setting as it
// ships. On a failure, paste the command's output into the page's yaml
// block.
func TestConfigurationDoc(t *testing.T) {
	var out strings.Builder
	app := newApp(t.Context())
	app.Writer = &out
	if err := app.Run([]string{"cdc2s3", "config", "defaults"}); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	const open = "```yaml\n# cdc2s3 settings"
	i := strings.Index(string(doc), open)
	if i < 0 {
		t.Fatal("docs/configuration.md has no yaml block of cdc2s3 config defaults")
	}
	block := string(doc)[i+len("```yaml\n"):]
	block = block[:strings.Index(block, "```")]
	if block != out.String() {
		t.Errorf("docs/configuration.md's settings differ from cdc2s3 config defaults: regenerate the block with\n  go run ./cmd/cdc2s3 config defaults")
	}
}
