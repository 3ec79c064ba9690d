//go:build faultpoints

package faultpoint

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
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

// TestDelay checks that Delay sleeps at the point CDC2S3_FAULTDELAY names
// and nowhere else.
func TestDelay(t *testing.T) {
	if os.Getenv(childEnv) == "delay" {
		start := time.Now()
		Delay(AfterUpload)
		other := time.Since(start)
		Delay(ReloadBeforeHigh)
		os.Stdout.WriteString(fmt.Sprintf("%v %v\n", other >= 200*time.Millisecond, time.Since(start) >= 200*time.Millisecond))
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDelay$")
	cmd.Env = append(os.Environ(), childEnv+"=delay", DelayEnvVar+"="+ReloadBeforeHigh+":200ms")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if string(out) != "false true\n" {
		t.Fatalf("child: %q, want a delay at %s only (\"false true\")", out, ReloadBeforeHigh)
	}
}
