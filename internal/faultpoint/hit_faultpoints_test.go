//go:build faultpoints

package faultpoint

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// childEnv marks the copy of the test binary that TestHitKills runs.
const childEnv = "FAULTPOINT_TEST_CHILD"

// TestHitKills runs this test binary again with after-upload:2 armed and
// checks that the second Hit(AfterUpload), not the first nor another
// point's, kills it with SIGKILL.
func TestHitKills(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		Hit(AfterCheckpoint)
		Hit(AfterUpload)
		os.Stdout.WriteString("survived the first hit\n")
		Hit(AfterUpload)
		os.Stdout.WriteString("survived the second hit\n")
		os.Exit(0)
	}
	if !Enabled {
		t.Fatal("Enabled is false in a faultpoints build")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHitKills$")
	cmd.Env = append(os.Environ(), childEnv+"=1", EnvVar+"="+AfterUpload+":2")
	out, err := cmd.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("child: got %v, want it killed\n%s", err, out)
	}
	ws, ok := exit.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child: %v, want SIGKILL\n%s", err, out)
	}
	if string(out) != "survived the first hit\n" {
		t.Fatalf("child output %q: want it killed at the second hit only", out)
	}
}
