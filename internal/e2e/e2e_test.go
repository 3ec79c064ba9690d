package e2e

import (
	"context"
	"testing"
	"time"
)

// TestLocalDestination runs the scripted workload through the daemon into
// a local directory and compares every table with the source.
func TestLocalDestination(t *testing.T) {
	ctx := context.Background()
	dsn, conn := newDatabase(t)
	if err := Setup(ctx, conn); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	d := start(t, "run", "--source", dsn, "--dest", out, "--flush-interval", "1s", "--status-interval", "1s")
	// The first acknowledgement comes after the full load.
	waitConfirmed(t, conn, "cdc2s3", 1, d, 2*time.Minute)
	if err := Changes(ctx, conn); err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, conn, "cdc2s3", currentLSN(t, conn), d, 3*time.Minute)
	d.stop(t)
	compareTables(t, conn, out, Tables)
}
