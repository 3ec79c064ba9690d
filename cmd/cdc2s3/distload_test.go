package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRoleFlagsNotSettings: the distributed load's roles are not
// settings: config defaults prints none of them, and a config file that
// names one (which every snapshot sharing it would obey) is refused.
func TestRoleFlagsNotSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cdc2s3.yaml")
	if err := os.WriteFile(path, []byte("unit: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	app := newApp(context.Background())
	var out strings.Builder
	app.Writer = &out
	err := app.Run([]string{"cdc2s3", "snapshot", "--config", path, "--source", "x", "--dest", t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), `"unit" is a role of one process`) {
		t.Errorf("a config file with unit: %v", err)
	}
	out.Reset()
	if err := app.Run([]string{"cdc2s3", "config", "defaults"}); err != nil {
		t.Fatal(err)
	}
	for name := range roleFlags {
		if strings.Contains(out.String(), "\n"+name+":") || strings.Contains(out.String(), "# "+name+":") {
			t.Errorf("config defaults prints %s", name)
		}
	}
}
