package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/cdc2s3/cdc2s3/pipeline"
)

// TestPprofFlag checks that run serves /debug/pprof/ on --metrics-addr
// only with --pprof, and refuses --pprof without --metrics-addr.
func TestPprofFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, http.StatusNotFound},
		{[]string{"--pprof"}, http.StatusOK},
		{[]string{"--pprof=false"}, http.StatusNotFound},
	} {
		app := newApp(context.Background())
		code := 0
		for _, cmd := range app.Commands {
			if cmd.Name == "run" {
				cmd.Action = func(c *cli.Context) error {
					rec := httptest.NewRecorder()
					metricsHandler(c, pipeline.NewMetrics()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/pprof/", nil))
					code = rec.Code
					return nil
				}
			}
		}
		if err := app.Run(append([]string{"cdc2s3", "run", "--metrics-addr", "127.0.0.1:0"}, tc.args...)); err != nil {
			t.Fatal(err)
		}
		if code != tc.want {
			t.Errorf("run %v: /debug/pprof/ %d, want %d", tc.args, code, tc.want)
		}
	}

	err := newApp(context.Background()).Run([]string{"cdc2s3", "run", "--pprof"})
	if ec, ok := err.(cli.ExitCoder); !ok || ec.ExitCode() != 2 || !strings.Contains(err.Error(), "--metrics-addr") {
		t.Errorf("--pprof without --metrics-addr: %v, want a usage error naming --metrics-addr", err)
	}
}
